"""BalancedTripletSampler (seed 000 §3.3, SPEC §2): invariants, agreement with a literal
per-anchor dictionary implementation, epochs and seeds, fallbacks, bad input."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from affectlab.losses import BalancedTripletSampler
from affectlab.losses.triplets import _nearest_pairs


def likert_labels(n, raters=4, seed=0):
    """2-class soft labels from 1..5 ratings (SPEC §1): few distinct values."""
    r = np.random.default_rng(seed).integers(1, 6, size=(n, raters)).mean(axis=1)
    v = (r - 1) / 4
    return np.stack([1 - v, v], axis=1)


def continuous_labels(n, k=2, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(k), size=n)


def sim(y, i, j):
    return 2.0 - np.abs(y[i] - y[j]).sum(axis=-1)


def reference_valid_keys(y, a):
    """The paper's procedure, literally: {round(C, 2): [indices]} over all other items,
    keeping key c only if 2 − c is also a key."""
    table = {}
    for j in range(len(y)):
        if j != a:
            table.setdefault(int(np.rint(sim(y, a, j) * 100)), []).append(j)
    return {k: v for k, v in table.items() if 200 - k in table}


def assert_invariants(t, y, n, bound=0.01):
    assert np.array_equal(np.sort(t.anchor), np.arange(n))  # every item an anchor once
    assert not np.any(t.anchor == t.similar) and not np.any(t.anchor == t.dissimilar)
    assert np.allclose(t.c_similar, sim(y, t.anchor, t.similar), atol=1e-12)
    assert np.allclose(t.c_dissimilar, sim(y, t.anchor, t.dissimilar), atol=1e-12)
    assert np.all(t.c_similar >= t.c_dissimilar)
    gap = np.abs(t.c_similar + t.c_dissimilar - 2)
    assert np.all(gap[~t.fallback] <= bound + 1e-9)


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("raters", [2, 4])
def test_invariants_and_batch_balance(exact, raters):
    y = likert_labels(300, raters=raters)
    s = BalancedTripletSampler(y, max_unique=1024 if exact else 0, max_candidates=299, seed=3)
    assert s.exact is exact
    t = s.triplets(0)
    # fallbacks exactly where the literal dictionary has no valid key (here: the whole set is
    # compared, so both paths must agree with it)
    no_key = {a for a in range(300) if not reference_valid_keys(y, a)}
    assert set(t.anchor[t.fallback].tolist()) == no_key
    assert (len(no_key) == 0) == (raters == 2)
    assert_invariants(t, y, 300)
    ok = ~t.fallback
    keys = np.rint(t.c_similar[ok] * 100) + np.rint(t.c_dissimilar[ok] * 100)
    assert np.all(keys == 200)  # the two keys are c and 2 − c
    if raters == 2:
        for batch in s.batches(batch_size=100, epoch=0):
            assert len(batch) == 100
            # Σ_pairs (C_p − 1) = 0; exactly here, as quarter-step similarities need no rounding
            assert batch.balance() == 0.0


@pytest.mark.parametrize("exact", [True, False])
def test_choices_match_the_literal_dictionary(exact):
    """Every drawn pair comes from a key c and its partner 2 − c of the anchor's own table."""
    y = likert_labels(120, raters=3, seed=1)
    s = BalancedTripletSampler(y, max_unique=1024 if exact else 0, max_candidates=500, seed=0)
    t = s.triplets(5)
    for a, si, di in zip(t.anchor, t.similar, t.dissimilar, strict=True):
        valid = reference_valid_keys(y, a)
        ks = int(np.rint(sim(y, a, si) * 100))
        kd = int(np.rint(sim(y, a, di) * 100))
        assert ks in valid and kd == 200 - ks
        assert si in valid[ks] and di in valid[kd]


@pytest.mark.parametrize("exact", [True, False])
def test_key_is_drawn_uniformly(exact):
    """Anchor 0 = [1, 0]; others at C = 1.5, 0.5 and 1.0: valid keys {0.5, 1.0, 1.5}, so the
    pair (1.0, 1.0) comes up with probability 1/3 and (1.5, 0.5) with 2/3."""
    y = np.array([[1.0, 0.0]] + [[0.75, 0.25]] * 3 + [[0.25, 0.75]] * 3 + [[0.5, 0.5]] * 3)
    s = BalancedTripletSampler(y, max_unique=1024 if exact else 0, seed=7)
    hits = 0
    epochs = 600
    for e in range(epochs):
        t = s.triplets(e)
        row = int(np.flatnonzero(t.anchor == 0)[0])
        hits += t.c_similar[row] == pytest.approx(1.0)
    assert hits / epochs == pytest.approx(1 / 3, abs=0.06)  # ~3.5 standard errors


@pytest.mark.parametrize("exact", [True, False])
def test_items_within_a_key_are_drawn_uniformly(exact):
    y = np.array([[1.0, 0.0]] + [[0.5, 0.5]] * 4)  # anchor 0: only key 1.0, four items
    s = BalancedTripletSampler(y, max_unique=1024 if exact else 0, seed=1)
    counts = Counter()
    for e in range(400):
        t = s.triplets(e)
        row = int(np.flatnonzero(t.anchor == 0)[0])
        counts.update([int(t.similar[row]), int(t.dissimilar[row])])
        assert t.similar[row] != t.dissimilar[row]  # distinct when the key has ≥ 2 items
    assert set(counts) == {1, 2, 3, 4}
    assert all(abs(c / 800 - 0.25) < 0.06 for c in counts.values())


def test_epochs_and_seeds():
    y = likert_labels(300)
    s = BalancedTripletSampler(y, seed=11)
    t0, t0b, t1 = s.triplets(0), s.triplets(0), s.triplets(1)
    assert np.array_equal(t0.anchor, t0b.anchor) and np.array_equal(t0.similar, t0b.similar)
    assert np.array_equal(t0.dissimilar, t0b.dissimilar)
    assert not np.array_equal(t0.anchor, t1.anchor)
    by_anchor = lambda t: np.stack([t.similar, t.dissimilar])[:, np.argsort(t.anchor)]  # noqa: E731
    assert np.mean(np.any(by_anchor(t0) != by_anchor(t1), axis=0)) > 0.5
    other = BalancedTripletSampler(y, seed=12).triplets(0)
    assert not np.array_equal(by_anchor(t0), by_anchor(other))


def test_iteration_follows_set_epoch():
    y = likert_labels(50)
    s = BalancedTripletSampler(y, seed=0)
    s.set_epoch(4)
    triples = list(s)
    assert len(triples) == len(s) == 50
    t = s.triplets(4)
    assert triples[0] == (int(t.anchor[0]), int(t.similar[0]), int(t.dissimilar[0]))
    sizes = [len(b) for b in s.batches(16, epoch=4)]
    assert sizes == [16, 16, 16, 2]
    assert [len(b) for b in s.batches(16, epoch=4, drop_last=True)] == [16, 16, 16]


def test_candidate_subset_on_continuous_labels():
    y = continuous_labels(3000, k=3, seed=2)
    s = BalancedTripletSampler(y, max_candidates=64, max_unique=0, seed=0)
    t = s.triplets(0)
    ok = np.abs(t.c_similar + t.c_dissimilar - 2) <= 0.01 + 1e-9
    assert np.sort(t.anchor).tolist() == list(range(3000))
    assert (~ok).sum() <= t.n_fallback  # only fallback triplets may miss the bound
    assert not np.any(t.anchor == t.similar) and not np.any(t.anchor == t.dissimilar)
    skipped = BalancedTripletSampler(y, max_candidates=64, max_unique=0, seed=0,
                                     on_unbalanced="skip").triplets(0)
    assert skipped.n_skipped == t.n_fallback and len(skipped) == 3000 - t.n_fallback
    assert np.all(np.abs(skipped.c_similar + skipped.c_dissimilar - 2) <= 0.01 + 1e-9)


@pytest.mark.parametrize("exact", [True, False])
def test_anchors_without_valid_keys_fall_back_to_nearest_balanced_pair(exact):
    # anchor 0 = [1, 0]: C = 1.4 to items 1, 2 and 1.3 to items 3, 4; no key has its partner
    y = np.array([[1.0, 0.0], [0.7, 0.3], [0.7, 0.3], [0.65, 0.35], [0.65, 0.35]])
    s = BalancedTripletSampler(y, max_unique=1024 if exact else 0, seed=0)
    t = s.triplets(0)
    n_bad = sum(not reference_valid_keys(y, a) for a in range(5))
    assert t.n_fallback == n_bad >= 1
    row = int(np.flatnonzero(t.anchor == 0)[0])
    # best pair: two items at C = 1.3 (gap 0.6) beats 1.4 + 1.3 (0.7) and 1.4 + 1.4 (0.8)
    assert {int(t.similar[row]), int(t.dissimilar[row])} == {3, 4}
    sk = BalancedTripletSampler(y, max_unique=1024 if exact else 0, on_unbalanced="skip")
    skipped = sk.triplets(0)
    assert skipped.n_skipped == n_bad and 0 not in skipped.anchor.tolist()


def test_two_items():
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    for exact in (True, False):
        t = BalancedTripletSampler(y, max_unique=1024 if exact else 0).triplets(0)
        assert np.array_equal(np.sort(t.anchor), [0, 1])
        assert np.array_equal(t.similar, 1 - t.anchor) and np.array_equal(t.dissimilar, t.similar)


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 9)),
                  elements=st.floats(0, 2).map(lambda x: round(x, 2))),
       st.data())
def test_nearest_pairs_is_the_brute_force_minimum(c, data):
    self_ok = data.draw(hnp.arrays(bool, c.shape))
    j, k = _nearest_pairs(c, self_ok)
    for r in range(c.shape[0]):
        m = c.shape[1]
        best = min((abs(c[r, a] + c[r, b] - 2) for a in range(m) for b in range(m)
                    if a != b or self_ok[r, a] or m == 1), default=None)
        assert j[r] != k[r] or self_ok[r, j[r]] or m == 1
        assert abs(c[r, j[r]] + c[r, k[r]] - 2) == pytest.approx(best, abs=1e-9)


@pytest.mark.parametrize(("labels", "kwargs", "match"), [
    (np.array([[0.5, 0.6], [1.0, 0.0]]), {}, "labels rows must sum to 1"),
    (np.array([0.5, 0.5]), {}, "labels must be 2-D"),
    (np.array([[np.nan, 1.0], [1.0, 0.0]]), {}, "labels contains NaN"),
    (np.array([[1.0, 0.0]]), {}, "at least 2 items"),
    (np.eye(2), {"max_candidates": 0}, "max_candidates must be"),
    (np.eye(2), {"decimals": 9}, "decimals must be"),
    (np.eye(2), {"on_unbalanced": "drop"}, "on_unbalanced must be"),
    (np.eye(2), {"max_unique": -1}, "max_unique must be"),
])
def test_bad_input(labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        BalancedTripletSampler(labels, **kwargs)


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size must be an integer ≥ 1"):
        next(BalancedTripletSampler(np.eye(2)).batches(0))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["likert", "continuous"])
def test_100k_items_correctness(kind):
    n = 100_000
    y = likert_labels(n, raters=5) if kind == "likert" else continuous_labels(n)
    s = BalancedTripletSampler(y, seed=0)
    t = s.triplets(0)
    assert np.array_equal(np.sort(t.anchor), np.arange(n))
    assert not np.any(t.anchor == t.similar) and not np.any(t.anchor == t.dissimilar)
    assert np.allclose(t.c_similar, sim(y, t.anchor, t.similar))
    gap = np.abs(t.c_similar + t.c_dissimilar - 2)
    assert (gap > 0.01 + 1e-9).sum() <= t.n_fallback
    assert t.n_fallback <= n // 100
