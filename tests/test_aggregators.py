"""Crowd aggregators (affectlab.aggregators): agreement with crowd-kit on the generated corpus,
worked cases, the GLAD gradient, and the long-table entry point."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad

from affectlab import aggregators as A
from affectlab.agreement import AnonymousRatingsError
from affectlab.data.synth.corpus import corpus_tables
from affectlab.data.synth.raters import RaterConfig
from affectlab.labels import soft_labels_from_ratings

ck = pytest.importorskip("crowdkit.aggregation")  # scripts/venv.sh installs it (test only)
# crowd-kit's pandas idioms warn under pandas 3 (inplace=, groupby defaults): not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::Warning:crowdkit")

K = 7


def _codes(n: int, seed: int = 0, spammers: int = 3):
    """Category ratings of a generated corpus as codes: raters and labels numbered in order of
    first appearance, the order crowd-kit numbers them internally."""
    tables = corpus_tables("face", n, seed, rater_config=RaterConfig(n_spammers=spammers))
    cat = tables.ratings[tables.ratings["scale"] == "category"]
    item = pd.Index(tables.items["item_id"]).get_indexer(cat["item_id"])
    rater, raters = pd.factorize(cat["rater_id"])
    label = cat["value"].to_numpy().astype(np.int64)
    return item, rater, label, len(raters), tables


def _crowdkit_posterior(model, item, rater, label, n_items):
    """crowd-kit's posterior (n_items, K). Worker names sort in first-appearance order: its
    MACE numbers workers by appearance but reads its expected counts in sorted-name order, and
    the two agree only then (the same holds for labels: :func:`_relabel_by_appearance`)."""
    frame = pd.DataFrame({"task": item, "worker": [f"w{r:03d}" for r in rater],
                          "label": label})
    proba = model.fit_predict_proba(frame)
    return proba.reindex(index=range(n_items), columns=range(K)).fillna(0.0).to_numpy()


def _relabel_by_appearance(label):
    """Labels renamed 0..K−1 in order of first appearance (crowd-kit's MACE numbers labels
    that way and reads its sorted columns with those numbers)."""
    codes, _ = pd.factorize(label)
    return codes.astype(np.int64)


def _agreement(ours, theirs):
    top = (ours.argmax(axis=1) == theirs.argmax(axis=1)).mean()
    tv = 0.5 * np.abs(ours - theirs).sum(axis=1)
    return top, tv.mean(), tv.max()


@pytest.fixture(scope="module")
def corpus_codes():
    return _codes(1000)


def test_dawid_skene_matches_crowdkit(corpus_codes):
    item, rater, label, m, tables = corpus_codes
    n = len(tables.items)
    ours = A.dawid_skene(item, rater, label, n_items=n, n_raters=m, n_classes=K).posterior
    theirs = _crowdkit_posterior(ck.DawidSkene(n_iter=100), item, rater, label, n)
    top, mean_tv, _ = _agreement(ours, theirs)
    # the models differ only in smoothing (pseudo-count 0.01 vs crowd-kit's clip at 1e-10)
    assert top >= 0.99 and mean_tv < 0.01


def test_one_coin_dawid_skene_matches_crowdkit(corpus_codes):
    item, rater, label, m, tables = corpus_codes
    n = len(tables.items)
    fit = A.one_coin_dawid_skene(item, rater, label, n_items=n, n_raters=m, n_classes=K)
    theirs = _crowdkit_posterior(ck.OneCoinDawidSkene(n_iter=100), item, rater, label, n)
    top, mean_tv, max_tv = _agreement(fit.posterior, theirs)
    assert top == 1.0 and max_tv < 1e-6 and fit.converged


def test_glad_matches_crowdkit():
    item, rater, label, m, tables = _codes(200, seed=1)
    n = len(tables.items)
    fit = A.glad(item, rater, label, n_items=n, n_raters=m, n_classes=K)
    theirs = _crowdkit_posterior(ck.GLAD(), item, rater, label, n)
    top, mean_tv, max_tv = _agreement(fit.posterior, theirs)
    # the same conjugate-gradient M-step; sums in another order move the optimum slightly
    assert top == 1.0 and mean_tv < 1e-3 and max_tv < 0.02


def test_mace_matches_crowdkit():
    item, rater, label, m, tables = _codes(300, seed=2, spammers=10)
    label = _relabel_by_appearance(label)
    n = len(tables.items)
    fit = A.mace(item, rater, label, n_items=n, n_raters=m, n_classes=K)
    # crowd-kit's 10 restarts all draw from random_state 0, so one restart is the same fit
    theirs = _crowdkit_posterior(ck.MACE(n_restarts=1), item, rater, label, n)
    top, _, max_tv = _agreement(fit.posterior, theirs)
    assert top == 1.0 and max_tv < 1e-6


def test_models_find_the_spammers():
    """Each model's per-rater reliability ranks the corpus's spammers below the others."""
    item, rater, label, m, tables = _codes(1000, spammers=10)
    spammer_ids = set(tables.pool.summary()["spammers"])
    order = pd.factorize(tables.ratings.loc[tables.ratings["scale"] == "category",
                                            "rater_id"])[1]
    is_spammer = np.array([rid in spammer_ids for rid in order])
    n = len(tables.items)
    for fit in (A.one_coin_dawid_skene, A.glad, A.mace):
        reliability = fit(item, rater, label, n_items=n, n_raters=m, n_classes=K).rater
        assert reliability[is_spammer].max() < reliability[~is_spammer].min(), fit.__name__


def test_unanimous_ratings_give_their_class():
    item = np.repeat(np.arange(6), 4)
    label = np.repeat([0, 1, 2, 2, 1, 0], 4)
    rater = np.tile(np.arange(4), 6)
    for name in A.AGGREGATORS:
        post = A.fit_categorical(name, item, rater, label, n_items=7, n_raters=4, n_classes=3)
        assert post.shape == (7, 3), name
        np.testing.assert_allclose(post.sum(axis=1), 1.0, err_msg=name)
        np.testing.assert_array_equal(post[:6].argmax(axis=1), label[::4], err_msg=name)
        assert post[:6].max(axis=1).min() > 0.9, name


def test_vote_distribution_hand_values():
    post = A.vote_distribution([0, 0, 0, 1], [2, 2, 0, 1], n_items=3, n_classes=3)
    np.testing.assert_allclose(post, [[1 / 3, 0, 2 / 3], [0, 1, 0], [1 / 3] * 3])


def test_one_coin_skills_are_the_raters_accuracy():
    """Three perfect raters and one who always says class 0: the skills are the fraction of
    each rater's answers that are the (recovered) true class."""
    truth = np.arange(30) % 3
    item = np.repeat(np.arange(30), 4)
    rater = np.tile(np.arange(4), 30)
    label = np.where(rater == 3, 0, truth[item])
    fit = A.one_coin_dawid_skene(item, rater, label, n_items=30, n_raters=4, n_classes=3)
    np.testing.assert_array_equal(fit.posterior.argmax(axis=1), truth)
    np.testing.assert_allclose(fit.rater, [1, 1, 1, 1 / 3], atol=1e-6)


def test_glad_gradient_matches_finite_differences(rng):
    n, m, k = 15, 5, 3
    item = np.repeat(np.arange(n), 3)
    rater = rng.integers(0, m, len(item))
    q = rng.random(len(item))
    x = rng.normal(1.0, 0.5, m + n)
    err = check_grad(lambda v: A._glad_objective(v, item, rater, q, k, m)[0],
                     lambda v: A._glad_objective(v, item, rater, q, k, m)[1], x)
    assert err < 1e-5 * max(1.0, np.abs(A._glad_objective(x, item, rater, q, k, m)[1]).max())


@pytest.mark.parametrize("name", ["one-coin", "glad", "mace"])
def test_model_validation(name):
    fit = A._MODELS[name]
    with pytest.raises(ValueError, match="label must lie in 0..2"):
        fit([0], [0], [3], n_items=1, n_raters=1, n_classes=3)
    with pytest.raises(ValueError, match="same length"):
        fit([0, 0], [0], [1], n_items=1, n_raters=1, n_classes=3)
    with pytest.raises(ValueError, match="n_classes must be at least 2"):
        fit([0], [0], [0], n_items=1, n_raters=1, n_classes=1)


# --------------------------------------------------------------------------- long table

SCALES = {"category": {"type": "nominal", "names": ["a", "b", "c"]},
          "valence": {"type": "likert", "low": 1, "high": 5}}


def _table():
    rows = [("i0", "r0", "category", 0), ("i0", "r1", "category", 0), ("i0", "r2", "category", 1),
            ("i1", "r0", "category", 2), ("i1", "r1", "category", 2), ("i1", "r2", "category", 2),
            ("i0", "r0", "valence", 4), ("i0", "r1", "valence", 5), ("i1", "r2", "valence", 1)]
    return pd.DataFrame(rows, columns=["item_id", "rater_id", "scale", "value"])


def test_aggregate_soft_labels_votes_is_spec_soft_labels():
    table = _table()
    ids = ["i0", "i1", "i2"]
    for scale in SCALES:
        np.testing.assert_array_equal(
            A.aggregate_soft_labels(table, ids, scale, SCALES[scale]),
            soft_labels_from_ratings(table, ids, scale, SCALES[scale]))


@pytest.mark.parametrize("name", ["ds", "one-coin", "glad", "mace"])
def test_aggregate_soft_labels_models(name):
    table = _table()
    y = A.aggregate_soft_labels(table, ["i0", "i1", "i2"], "category", SCALES["category"], name)
    assert y.shape == (3, 3) and np.isnan(y[2]).all()          # i2 has no rating
    np.testing.assert_array_equal(y[:2].argmax(axis=1), [0, 2])
    # Likert: every model but votes uses the bias-corrected means (the same for all)
    v = A.aggregate_soft_labels(table, ["i0", "i1", "i2"], "valence", SCALES["valence"], name)
    np.testing.assert_array_equal(
        v, A.aggregate_soft_labels(table, ["i0", "i1", "i2"], "valence", SCALES["valence"], "ds"))
    with pytest.raises(AnonymousRatingsError, match="scale 'category'"):
        A.aggregate_soft_labels(table.assign(rater_id=None), ["i0"], "category",
                                SCALES["category"], name)


def test_aggregate_soft_labels_refuses_bad_input():
    with pytest.raises(ValueError, match="unknown aggregator 'median'; known: votes, ds"):
        A.aggregate_soft_labels(_table(), ["i0"], "category", SCALES["category"], "median")
    with pytest.raises(ValueError, match="aggregator 'votes' takes no options"):
        A.fit_categorical("votes", [0], [0], [0], n_items=1, n_raters=1, n_classes=2, tol=1)
    with pytest.raises(ValueError, match="aggregator 'votes' takes no options"):
        A.aggregate_soft_labels(_table(), ["i0"], "category", SCALES["category"], tol=1)
    bad = _table().assign(value=lambda t: t["value"].where(t["scale"] != "category", 7))
    with pytest.raises(ValueError, match="scale 'category'"):
        A.aggregate_soft_labels(bad, ["i0"], "category", SCALES["category"], "mace")
