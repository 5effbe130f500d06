"""Simulated raters: the pool, the draws, and the statistics the benchmark relies on."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from affectlab.data.synth import raters as R
from affectlab.data.synth.corpus import sample_truths
from affectlab.data.synth.truth import CATEGORIES

K = len(CATEGORIES)
CLEAN = R.RaterConfig(n_raters=60, n_spammers=0, bias_sd=0.0, category_bias_sd=0.0,
                      confusion_mean=0.0, noise_max=0.0)


def _pool(config=None, seed=0):
    return R.make_rater_pool(np.random.default_rng(seed), config)


def _vote_distribution(votes):
    """(n, v) category indices → (n, K) vote fractions."""
    return np.stack([(votes == k).mean(axis=1) for k in range(K)], axis=1)


def _likert_high(r, low=1, high=5):
    """SPEC §1: the second component of a Likert rating's soft label, (r − lo)/(hi − lo)."""
    return (r - low) / (high - low)


@pytest.fixture(scope="module")
def truths():
    return sample_truths(2000, np.random.default_rng(7))


# -- the circumplex confusion matrix ---------------------------------------------------------

def test_neighbours_row_stochastic_zero_diagonal():
    n = R.circumplex_neighbours(0.5)
    assert n.shape == (K, K)
    np.testing.assert_allclose(n.sum(axis=1), 1.0)
    np.testing.assert_array_equal(np.diag(n), 0.0)


def test_neighbours_hand_worked_ratio():
    # angry (-0.6, 0.8): fearful (-0.6, 0.7) at 0.1, disgusted (-0.7, 0.3) at √0.26 = 0.5099
    n = R.circumplex_neighbours(0.5)
    a, f, d = (CATEGORIES.index(c) for c in ("angry", "fearful", "disgusted"))
    assert n[a, f] / n[a, d] == pytest.approx(math.exp((math.sqrt(0.26) - 0.1) / 0.5))
    assert np.argmax(n[a]) == f


def test_neighbours_reject_bad_tau():
    with pytest.raises(ValueError, match="tau"):
        R.circumplex_neighbours(0.0)


# -- the pool ----------------------------------------------------------------------------------

def test_pool_shapes_and_spammers():
    pool = _pool(R.RaterConfig(n_raters=40, n_spammers=5))
    assert len(pool) == 40 and len(set(pool.rater_ids)) == 40
    assert pool.spammer.sum() == 5
    assert pool.category_bias.shape == (40, K)
    assert pool.activity.sum() == pytest.approx(1.0)
    assert ((pool.noise >= 0) & (pool.noise <= 1)).all()
    assert ((pool.confusion >= 0) & (pool.confusion < 1)).all()
    summary = pool.summary()
    assert summary["n_spammers"] == 5 and len(summary["spammers"]) == 5
    assert len(summary["per_rater"]) == 40


def test_pool_deterministic_per_seed():
    a, b, c = _pool(seed=3), _pool(seed=3), _pool(seed=4)
    np.testing.assert_array_equal(a.noise, b.noise)
    np.testing.assert_array_equal(a.spammer, b.spammer)
    assert not np.array_equal(a.noise, c.noise)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_raters": 0}, "n_raters"),
    ({"n_spammers": 60}, "n_spammers"),
    ({"n_raters": 8}, "n_raters"),           # fewer than 10 votes per item
    ({"votes_per_item": 0}, "votes_per_item"),
    ({"bias_sd": -1.0}, "bias_sd"),
    ({"confusion_mean": 1.0}, "confusion_mean"),
    ({"noise_max": 1.5}, "noise_max"),
])
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        R.RaterConfig(**kwargs)


def test_pool_rejects_non_generator():
    with pytest.raises(TypeError, match="rng"):
        R.make_rater_pool(0)


# -- drawing raters ----------------------------------------------------------------------------

def test_draw_raters_distinct_per_item():
    pool = _pool()
    who = R.draw_raters(pool, 500, 10, np.random.default_rng(1))
    assert who.shape == (500, 10)
    assert all(len(set(row)) == 10 for row in who)
    assert who.min() >= 0 and who.max() < len(pool)


def test_draw_raters_single_draw_follows_activity():
    # Gumbel-max: with k = 1 the chosen rater is distributed exactly ∝ activity
    pool = _pool()
    who = R.draw_raters(pool, 60_000, 1, np.random.default_rng(2))[:, 0]
    freq = np.bincount(who, minlength=len(pool)) / who.size
    se = np.sqrt(pool.activity * (1 - pool.activity) / who.size)
    assert (np.abs(freq - pool.activity) < 5 * se + 1e-4).all()


def test_draw_raters_rejects_k_above_pool():
    with pytest.raises(ValueError, match="k must be"):
        R.draw_raters(_pool(), 5, 61, np.random.default_rng(0))


# -- category votes ----------------------------------------------------------------------------

@given(st.lists(st.floats(0.01, 1.0), min_size=K, max_size=K), st.integers(0, 2**16))
def test_perceived_distribution_is_a_distribution(weights, seed):
    dist = np.array(weights)[None, :] / np.sum(weights)
    pool = _pool(seed=seed % 7)
    who = R.draw_raters(pool, 1, 10, np.random.default_rng(seed))
    p = R.perceived_distribution(dist, who, pool)
    assert p.shape == (1, 10, K)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)
    assert (p > 0).all()


def test_perceived_distribution_clean_rater_sees_truth_and_spammer_uniform(truths):
    clean = _pool(CLEAN)
    who = R.draw_raters(clean, 50, 3, np.random.default_rng(0))
    p = R.perceived_distribution(truths.dist[:50], who, clean)
    np.testing.assert_allclose(p, np.repeat(truths.dist[:50, None, :], 3, axis=1))

    spam = _pool(R.RaterConfig(n_raters=10, n_spammers=9, votes_per_item=1, likert_per_item=1,
                               intensity_per_item=1))
    who = np.where(spam.spammer)[0][None, :]
    p = R.perceived_distribution(truths.dist[:1], who, spam)
    np.testing.assert_allclose(p, 1.0 / K)


def test_full_confusion_reads_the_neighbours(truths):
    pool = _pool(CLEAN)
    pool = R.RaterPool(**{**pool.__dict__, "confusion": np.full(len(pool), 1.0 - 1e-12)})
    who = np.zeros((20, 1), dtype=int)
    p = R.perceived_distribution(truths.dist[:20], who, pool)[:, 0]
    np.testing.assert_allclose(p, truths.dist[:20] @ R.circumplex_neighbours(0.5), atol=1e-9)


def test_clean_votes_converge_to_the_true_distribution(truths):
    clean = _pool(R.RaterConfig(**{**CLEAN.__dict__, "n_raters": 200}))
    tv = []
    for v in (10, 40, 160):
        _, votes = R.simulate_votes(truths.dist[:300], clean, np.random.default_rng(v), v)
        tv.append(0.5 * np.abs(_vote_distribution(votes) - truths.dist[:300]).sum(axis=1).mean())
    assert tv[0] > tv[1] > tv[2]
    # multinomial sampling error only: TV shrinks like 1/√votes
    assert tv[2] < 0.08 and tv[0] / tv[2] == pytest.approx(4.0, rel=0.25)


def test_default_votes_soft_labels_approach_the_truth(truths):
    pool = _pool()
    _, votes = R.simulate_votes(truths.dist, pool, np.random.default_rng(1), 10)
    soft = _vote_distribution(votes)
    # on average the soft labels recover the truth (biases of different raters cancel) ...
    assert 0.5 * np.abs(soft.mean(axis=0) - truths.dist.mean(axis=0)).sum() < 0.03
    # ... and each item's soft label is far closer to its own truth than to another item's
    own = 0.5 * np.abs(soft - truths.dist).sum(axis=1).mean()
    other = 0.5 * np.abs(soft - np.roll(truths.dist, 1, axis=0)).sum(axis=1).mean()
    assert own < 0.3 and own < other - 0.4
    assert (soft.argmax(axis=1) == truths.dominant).mean() > 0.85


def test_spammers_agree_less_with_the_truth(truths):
    pool = _pool(R.RaterConfig(n_raters=60, n_spammers=6))
    who, votes = R.simulate_votes(truths.dist, pool, np.random.default_rng(3), 10)
    hit = votes == truths.dominant[:, None]
    acc = np.array([hit[who == r].mean() for r in range(len(pool))])
    # a spammer hits the dominant class at chance (1/7); attentive raters far above it
    assert acc[pool.spammer].mean() == pytest.approx(1 / K, abs=0.04)
    assert acc[~pool.spammer].min() > acc[pool.spammer].max()

    va = R.draw_raters(pool, len(truths), 5, np.random.default_rng(4))
    val = R.simulate_likert(truths.valence, va, pool.valence_bias, pool, np.random.default_rng(5))
    err = np.abs(val - (3 + 2 * truths.valence)[:, None])
    mae = np.array([err[va == r].mean() for r in range(len(pool))])
    assert mae[pool.spammer].min() > np.median(mae[~pool.spammer])


# -- Likert and intensity --------------------------------------------------------------------

def test_likert_hand_worked_rounding_probability():
    # ν = 0 ⇒ σ = 0.3; truth 0.5 ↦ 4; the rating stays 4 iff |0.3·z| < 0.5: P = 2Φ(5/3) − 1
    pool = _pool(CLEAN)
    who = np.zeros((40_000, 1), dtype=int)
    r = R.simulate_likert(np.full(40_000, 0.5), who, pool.valence_bias, pool,
                          np.random.default_rng(0))
    expected = math.erf((0.5 / 0.3) / math.sqrt(2))
    assert (r == 4).mean() == pytest.approx(expected, abs=0.01)
    assert set(np.unique(r)) <= {3, 4, 5}


def test_likert_clips_to_the_scale():
    pool = _pool(CLEAN)
    who = np.zeros((100, 2), dtype=int)
    high = R.simulate_likert(np.ones(100), who, np.full(len(pool), 10.0), pool,
                             np.random.default_rng(0))
    low = R.simulate_likert(-np.ones(100), who, np.full(len(pool), -10.0), pool,
                            np.random.default_rng(0))
    assert (high == 5).all() and (low == 1).all()


def test_likert_soft_labels_track_true_valence_and_arousal(truths):
    pool = _pool()
    who = R.draw_raters(pool, len(truths), 5, np.random.default_rng(1))
    val = R.simulate_likert(truths.valence, who, pool.valence_bias, pool, np.random.default_rng(2))
    act = R.simulate_likert(truths.arousal, who, pool.activation_bias, pool,
                            np.random.default_rng(3))
    assert np.corrcoef(_likert_high(val).mean(axis=1), truths.valence)[0, 1] > 0.8
    assert np.corrcoef(_likert_high(act).mean(axis=1), truths.arousal)[0, 1] > 0.75


def test_intensity_ratings_are_level_indices(truths):
    pool = _pool()
    who = R.draw_raters(pool, len(truths), 3, np.random.default_rng(1))
    r = R.simulate_intensity(truths.intensity, who, pool, np.random.default_rng(2))
    assert r.min() >= 0 and r.max() <= 4
    assert np.corrcoef(r.mean(axis=1), truths.intensity)[0, 1] > 0.7


@pytest.mark.parametrize("call, match", [
    (lambda p: R.simulate_likert(np.array([1.5]), np.zeros((1, 1), int), p.valence_bias, p,
                                 np.random.default_rng()), "truth"),
    (lambda p: R.simulate_likert(np.array([0.5]), np.zeros((2, 1), int), p.valence_bias, p,
                                 np.random.default_rng()), "raters"),
    (lambda p: R.simulate_likert(np.array([0.5]), np.full((1, 1), 99), p.valence_bias, p,
                                 np.random.default_rng()), "raters"),
    (lambda p: R.simulate_intensity(np.array([6]), np.zeros((1, 1), int), p,
                                    np.random.default_rng()), "intensity"),
    (lambda p: R.perceived_distribution(np.ones((1, K)), np.zeros((1, 1), int), p), "dist"),
    (lambda p: R.perceived_distribution(np.ones((1, 3)) / 3, np.zeros((1, 1), int), p), "dist"),
    (lambda p: R.perceived_distribution(np.full((1, K), np.nan), np.zeros((1, 1), int), p),
     "dist"),
])
def test_bad_inputs_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call(_pool())


# -- the long table ------------------------------------------------------------------------------

def test_simulate_ratings_table(truths):
    n = 100
    cfg = R.RaterConfig()
    ids = np.array([f"i{i:03d}" for i in range(n)], dtype=object)
    table = R.simulate_ratings(ids, truths.dist[:n], truths.valence[:n], truths.arousal[:n],
                               truths.intensity[:n], _pool(cfg), np.random.default_rng(0), cfg)
    assert list(table.columns) == ["item_id", "rater_id", "scale", "value"]
    counts = table.groupby(["item_id", "scale"]).size().unstack()
    assert (counts["category"] == 10).all() and (counts["valence"] == 5).all()
    assert (counts["activation"] == 5).all() and (counts["intensity"] == 3).all()
    # one rater per (item, scale), and the same evaluators rate valence and activation
    assert not table.duplicated(["item_id", "scale", "rater_id"]).any()
    for _, g in table.groupby("item_id"):
        assert set(g.loc[g.scale == "valence", "rater_id"]) == \
            set(g.loc[g.scale == "activation", "rater_id"])
    assert list(table["item_id"].drop_duplicates()) == list(ids)  # ordered by item
    cat = table.loc[table.scale == "category", "value"]
    assert cat.between(0, K - 1).all() and (cat == cat.round()).all()


def test_simulate_ratings_rejects_mismatched_lengths(truths):
    with pytest.raises(ValueError, match="valence"):
        R.simulate_ratings(np.array(["a", "b"], dtype=object), truths.dist[:2],
                           truths.valence[:3], truths.arousal[:2], truths.intensity[:2],
                           _pool(), np.random.default_rng(0))
