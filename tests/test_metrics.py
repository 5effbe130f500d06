"""Tests for affectlab.metrics: hand-worked values, library agreement, properties, bad inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import spatial, special
from scipy import stats as sps
from sklearn import metrics as skm
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from affectlab import metrics as m

seeds = st.integers(0, 2**32 - 1)


def _random_soft(rng, n, k, tie_fraction=0.3):
    """Soft labels (n, k): Dirichlet rows, a fraction replaced by exact two-way ties."""
    y = rng.dirichlet(np.ones(k), size=n)
    for i in np.flatnonzero(rng.random(n) < tie_fraction):
        a, b = rng.choice(k, size=2, replace=False)
        y[i] = 0.0
        y[i, a] = y[i, b] = 0.5
    return y


def _resolve_by_loop(y_soft, pred):
    """Reference for the tie rule: tied item's truth = prediction if tied, else lowest tied."""
    out = []
    for row, p in zip(y_soft, pred, strict=True):
        tied = [c for c in range(row.size) if row[c] == row.max()]
        out.append(p if p in tied else tied[0])
    return np.array(out)


# --------------------------------------------------------------------------- UAR and the tie rule

# Two classes. Items 3 and 4 are tied [0.5, 0.5] and predicted class 1.
#   tie_rule="either": resolved truth 0,0,1,1,1 vs pred 0,1,1,1,1
#       recall(0) = 1/2, recall(1) = 3/3 → UAR 0.75; accuracy 4/5
#   tie_rule="first":  truth 0,0,1,0,0 (lowest tied class)
#       recall(0) = 1/4 (items 0,1,3,4 → only item 0 hit), recall(1) = 1/1 → UAR 0.625; acc 2/5
Y_TIED = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.5, 0.5]])
P_TIED = np.array([0, 1, 1, 1, 1])


def test_uar_hand_worked_tie_rule_changes_answer():
    assert m.uar(Y_TIED, P_TIED) == pytest.approx(0.75)
    assert m.uar(Y_TIED, P_TIED, tie_rule="first") == pytest.approx(0.625)


def test_accuracy_hand_worked_with_ties():
    assert m.accuracy(Y_TIED, P_TIED) == pytest.approx(0.8)
    assert m.accuracy(Y_TIED, P_TIED, tie_rule="first") == pytest.approx(0.4)


def test_uar_tied_item_missed_goes_to_lowest_tied_class():
    # Item 0 is tied between classes 0 and 1 but predicted 2: a miss, counted for class 0.
    #   resolved truth 0, 2, 0 → recall(0) = 1/2, recall(2) = 1 → UAR 0.75
    # (Counting it for class 1 instead would give (1 + 0 + 1)/3 = 0.667.)
    y = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    pred = np.array([2, 2, 0])
    assert m.uar(y, pred) == pytest.approx(0.75)


def test_uar_tie_detection_tolerates_float_noise():
    y = np.array([[0.5 + 1e-12, 0.5 - 1e-12], [0.0, 1.0]])
    assert m.uar(y, [1, 1]) == pytest.approx(1.0)
    assert m.uar(y, [1, 1], tie_atol=0.0) == pytest.approx(0.5)


def test_uar_chance_level_above_half_with_ties(rng):
    # Paper §5: with ties, uniform random guessing scores above 50 %. With 35 % of items in
    # each class and 30 % tied, class c gets 0.35n·½ hits plus 0.15n tied items predicted c,
    # over 0.35n + 0.15n items: recall (0.175 + 0.15)/0.5 = 0.65.
    n = 40_000
    y = np.zeros((n, 2))
    kind = rng.choice(3, size=n, p=[0.35, 0.35, 0.30])
    y[kind == 0, 0] = 1.0
    y[kind == 1, 1] = 1.0
    y[kind == 2] = 0.5
    pred = rng.integers(0, 2, size=n)
    assert m.uar(y, pred) == pytest.approx(0.65, abs=0.01)
    assert m.uar(y, pred, tie_rule="first") == pytest.approx(0.5, abs=0.01)


@given(seed=seeds, n=st.integers(1, 60), k=st.integers(2, 6))
def test_uar_integer_labels_equal_sklearn_balanced_accuracy(seed, n, k):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    pred = rng.integers(0, k, size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when y_pred has classes y_true lacks
        want = skm.balanced_accuracy_score(y, pred)
    assert m.uar(y, pred) == pytest.approx(want)
    assert m.uar(y, pred, tie_rule="first") == pytest.approx(want)
    assert m.uar(np.eye(k)[y], pred) == pytest.approx(want)  # one-hot soft labels: no ties


@given(seed=seeds, n=st.integers(1, 60), k=st.integers(2, 5))
def test_uar_soft_labels_equal_balanced_accuracy_of_loop_resolved_labels(seed, n, k):
    rng = np.random.default_rng(seed)
    y = _random_soft(rng, n, k)
    scores = rng.normal(size=(n, k))
    pred = scores.argmax(axis=1)
    resolved = _resolve_by_loop(y, pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = skm.balanced_accuracy_score(resolved, pred)
    assert m.uar(y, scores) == pytest.approx(want)  # scores: argmax taken
    assert m.accuracy(y, pred) == pytest.approx(np.mean(resolved == pred))
    assert m.accuracy(y, pred) >= m.accuracy(y, pred, tie_rule="first")


def test_uar_perfect_and_all_wrong():
    y = np.array([0, 1, 2, 2])
    assert m.uar(y, y) == 1.0
    assert m.uar(y, (y + 1) % 3) == 0.0


# --------------------------------------------------------------------------- F1, AEM, AEO


@given(seed=seeds, n=st.integers(1, 60), k=st.integers(2, 6))
def test_macro_f1_equals_sklearn(seed, n, k):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    pred = rng.integers(0, k, size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = skm.f1_score(y, pred, average="macro")
    assert m.macro_f1(y, pred) == pytest.approx(want)


def test_macro_f1_hand_worked_and_tie_rule():
    # classes 0,1: TP0 = 1, FN0 = 1 (item 1), FP1 = 1 → F1(0) = 2/(2+0+1) = 2/3,
    # F1(1) = 2·3/(6+1+0) = 6/7 under "either" (resolved truth 0,0,1,1,1)
    assert m.macro_f1(Y_TIED, P_TIED) == pytest.approx((2 / 3 + 6 / 7) / 2)
    resolved_first = np.array([0, 0, 1, 0, 0])
    assert m.macro_f1(Y_TIED, P_TIED, tie_rule="first") == pytest.approx(
        skm.f1_score(resolved_first, P_TIED, average="macro")
    )


def test_aem_aeo_known_values():
    y = np.array([0, 1, 2, 3, 4])
    pred = np.array([0, 2, 2, 0, 3])  # off by 0, 1, 0, 3, 1
    assert m.aem(y, pred) == pytest.approx(2 / 5)
    assert m.aeo(y, pred) == pytest.approx(4 / 5)


def test_aem_aeo_with_scores_and_ordinal_ties():
    # Tied between classes 0 and 3, predicted 2: nearest tied class is 3 (one step).
    y = np.array([[0.5, 0.0, 0.0, 0.5], [0.0, 1.0, 0.0, 0.0]])
    probs = np.array([[0.1, 0.1, 0.7, 0.1], [0.1, 0.6, 0.2, 0.1]])
    assert m.aem(y, probs) == pytest.approx(0.5)
    assert m.aeo(y, probs) == pytest.approx(1.0)
    assert m.aeo(y, probs, tie_rule="first") == pytest.approx(0.5)  # class 0 is two away


@given(seed=seeds, n=st.integers(1, 40), k=st.integers(2, 6))
def test_aem_equals_accuracy_and_aeo_bounds(seed, n, k):
    rng = np.random.default_rng(seed)
    y = _random_soft(rng, n, k)
    pred = rng.integers(0, k, size=n)
    assert m.aem(y, pred) == pytest.approx(m.accuracy(y, pred))
    assert m.aem(y, pred) <= m.aeo(y, pred)


def test_spearman_expected_class_matches_scipy(rng):
    probs = rng.dirichlet(np.ones(5), size=50)
    targets = rng.normal(size=50)
    want = sps.spearmanr(probs @ np.arange(5), targets).statistic
    assert m.spearman_expected_class(probs, targets) == pytest.approx(want)


def test_spearman_expected_class_known_values():
    probs = np.eye(4)[[0, 2, 1, 3]]
    targets = np.array([0.1, 0.7, 0.3, 0.9])  # same order as the classes
    assert m.spearman_expected_class(probs, targets) == pytest.approx(1.0)
    assert m.spearman_expected_class(probs, -targets) == pytest.approx(-1.0)
    constant = np.tile([0.5, 0.5], (3, 1))
    assert np.isnan(m.spearman_expected_class(constant, [1.0, 2.0, 3.0]))


# --------------------------------------------------------------------------- NMI, k-means, k-NN


@given(seed=seeds, n=st.integers(1, 80), ku=st.integers(1, 5), kv=st.integers(1, 5))
def test_nmi_equals_sklearn(seed, n, ku, kv):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, ku, size=n)
    v = rng.integers(0, kv, size=n)
    assert m.nmi(u, v) == pytest.approx(skm.normalized_mutual_info_score(u, v), abs=1e-12)


def test_nmi_known_values():
    labels = np.array(["a", "a", "b", "b"])
    assert m.nmi(labels, [7, 7, 3, 3]) == pytest.approx(1.0)  # same partition, renamed
    assert m.nmi(labels, [0, 1, 0, 1]) == pytest.approx(0.0)  # independent
    assert m.nmi([1, 1, 1], [2, 2, 2]) == 1.0


def test_kmeans_nmi_separated_blobs_and_agrees_with_sklearn():
    emb, labels = make_blobs(n_samples=90, centers=3, cluster_std=0.3, random_state=0)
    assert m.kmeans_nmi(emb, labels, seed=0) == pytest.approx(1.0)
    rng = np.random.default_rng(3)
    noisy = rng.normal(size=(60, 4))
    lab = rng.integers(0, 3, size=60)
    clusters = KMeans(n_clusters=3, n_init=10, random_state=5).fit_predict(noisy)
    assert m.kmeans_nmi(noisy, lab, seed=5) == pytest.approx(
        skm.normalized_mutual_info_score(lab, clusters)
    )


def test_knn_predict_matches_brute_force_majority(rng):
    train = rng.normal(size=(40, 3))
    labels = rng.integers(0, 3, size=40)
    query = rng.normal(size=(15, 3))
    got = m.knn_predict(train, labels, query, k=5)
    dist = spatial.distance.cdist(query, train)
    for i, row in enumerate(dist):
        votes = np.bincount(labels[np.argsort(row)[:5]], minlength=3)
        assert got[i] == np.argmax(votes)  # argmax: lowest label on a tied vote


def test_knn_predict_keeps_label_values():
    train = np.array([[0.0], [0.1], [5.0], [5.1]])
    got = m.knn_predict(train, ["sad", "sad", "happy", "happy"], [[0.05], [4.9]], k=1)
    assert list(got) == ["sad", "happy"]


# --------------------------------------------------------------------------- Recall@K


def _recall_brute_force(emb, labels, ks):
    dist = spatial.distance.cdist(emb, emb)
    np.fill_diagonal(dist, np.inf)
    order = np.argsort(dist, axis=1)
    same = labels[order] == labels[:, None]
    return {k: float(np.mean(same[:, :k].any(axis=1))) for k in ks}


@given(seed=seeds, n=st.integers(40, 120), d=st.integers(1, 8), c=st.integers(2, 8))
def test_recall_at_k_matches_brute_force(seed, n, d, c):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, d))
    labels = rng.integers(0, c, size=n)
    want = _recall_brute_force(emb, labels, m.DEFAULT_KS)
    # a tiny budget forces many chunks (here a handful of query rows each)
    got = m.recall_at_k(emb, labels, chunk_bytes=8 * n * 7)
    assert list(got) == list(m.DEFAULT_KS)
    for k in m.DEFAULT_KS:
        assert got[k] == pytest.approx(want[k])


def test_recall_at_k_hand_worked():
    # points on a line: 0(a) 1(b) 2(a) 10(b) 11(a)
    emb = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    labels = np.array([0, 1, 0, 1, 0])
    # nearest others: 0→1(b),2(a); 1→0|2 (tie, both a); 2→1(b),0(a); 10→11(a),2(a),1(b);
    # 11→10(b),2(a). K=1 hits: none → 0; K=2 hits: 0, 2, 11 → 3/5 (item 1 and 10 miss)
    got = m.recall_at_k(emb, labels, ks=(1, 2, 4))
    assert got[1] == pytest.approx(0.0)
    assert got[2] == pytest.approx(3 / 5)
    assert got[4] == pytest.approx(1.0)


def test_recall_at_k_excludes_self_but_keeps_duplicates():
    emb = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [5.0, 6.0]])
    assert m.recall_at_k(emb, [0, 0, 1, 2], ks=(1,))[1] == pytest.approx(0.5)


@pytest.mark.slow
def test_recall_at_k_10k_by_64_stays_within_memory_budget():
    import tracemalloc

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(10_000, 64))
    labels = rng.integers(0, 7, size=10_000)
    tracemalloc.start()
    got = m.recall_at_k(emb, labels)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 300 * 2**20  # a full 10k×10k float64 matrix alone would be 763 MiB
    assert 0.0 < got[1] < got[32] <= 1.0


# --------------------------------------------------------------------------- divergences


def test_kl_matches_scipy_rel_entr(rng):
    p = rng.dirichlet(np.ones(6), size=20)
    q = rng.dirichlet(np.ones(6), size=20)
    want = special.rel_entr(p, q).sum(axis=1)
    np.testing.assert_allclose(m.kl_divergence(p, q), want, rtol=1e-12)
    assert m.kl_divergence(p, q, reduction="mean") == pytest.approx(want.mean())
    assert m.kl_divergence(p[0], q[0]) == pytest.approx(want[0])


def test_kl_zero_handling_and_eps():
    p = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    q = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    kl = m.kl_divergence(p, q)
    assert kl[0] == 0.0  # 0·log(0/0) = 0
    assert np.isinf(kl[1])
    np.testing.assert_array_equal(kl, special.rel_entr(p, q).sum(axis=1))
    eps = 1e-6
    smoothed = m.kl_divergence(p, q, eps=eps)
    q_s = (q[1] + eps) / (q[1] + eps).sum()
    assert smoothed[1] == pytest.approx(np.log(1.0 / q_s[0]))


def test_js_matches_squared_scipy_distance_and_is_bounded(rng):
    p = rng.dirichlet(np.ones(4) * 0.3, size=30)
    q = rng.dirichlet(np.ones(4) * 0.3, size=30)
    want = spatial.distance.jensenshannon(p, q, axis=1) ** 2
    np.testing.assert_allclose(m.js_divergence(p, q), want, atol=1e-12)
    assert m.js_divergence(p, q, reduction="mean") == pytest.approx(want.mean())
    disjoint = m.js_divergence([1.0, 0.0], [0.0, 1.0])
    assert disjoint == pytest.approx(np.log(2.0))
    assert m.js_divergence(p, p).max() == pytest.approx(0.0, abs=1e-15)


def test_predictive_entropy_known_values_and_scipy(rng):
    assert m.predictive_entropy(np.full(4, 0.25)) == pytest.approx(np.log(4))
    assert m.predictive_entropy([0.0, 1.0, 0.0]) == 0.0
    p = rng.dirichlet(np.ones(5), size=10)
    np.testing.assert_allclose(m.predictive_entropy(p), sps.entropy(p, axis=1))


# --------------------------------------------------------------------------- uncertainty


@given(seed=seeds, n=st.integers(2, 80))
def test_uncertainty_auroc_equals_sklearn(seed, n):
    rng = np.random.default_rng(seed)
    flagged = rng.random(n) < 0.3
    flagged[0], flagged[1] = True, False  # both classes present
    scores = rng.integers(0, 5, size=n).astype(float)  # many tied scores
    assert m.uncertainty_auroc(scores, flagged) == pytest.approx(
        skm.roc_auc_score(flagged, scores)
    )


def test_uncertainty_auroc_known_values():
    assert m.uncertainty_auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert m.uncertainty_auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    # one flagged item tied with one of two unflagged: (1 + 0.5)/2
    assert m.uncertainty_auroc([0.5, 0.5, 0.1], [1, 0, 0]) == pytest.approx(0.75)


def test_ece_hand_worked():
    # 5 bins of width 0.2 (lo, hi]:
    #   A conf .9 correct → (.8,1];  B conf .8 wrong → (.6,.8];  C conf .6 correct → (.4,.6];
    #   D conf .7 correct → (.6,.8]
    # ECE = ¼|1 − .9| + ½|½ − .75| + ¼|1 − .6| = .025 + .125 + .1 = .25
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 1, 0, 1])
    assert m.expected_calibration_error(probs, y, n_bins=5) == pytest.approx(0.25)
    # one bin: |mean accuracy − mean confidence| = |0.75 − 0.75|
    assert m.expected_calibration_error(probs, y, n_bins=1) == pytest.approx(0.0)


def _ece_by_masks(probs, y, n_bins):
    """Reference in the style of Guo et al.'s code: a mask per bin."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            total += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return total


@given(seed=seeds, n=st.integers(1, 100), n_bins=st.integers(1, 20))
def test_ece_matches_mask_reference(seed, n, n_bins):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(3) * 0.5, size=n)
    y = rng.integers(0, 3, size=n)
    want = _ece_by_masks(probs, y, n_bins)
    assert m.expected_calibration_error(probs, y, n_bins=n_bins) == pytest.approx(want, abs=1e-12)


def test_ece_soft_labels_use_tie_rule():
    probs = np.array([[0.8, 0.2]])
    assert m.expected_calibration_error(probs, [[0.5, 0.5]], n_bins=10) == pytest.approx(0.2)
    assert m.expected_calibration_error(probs, [[0.5, 0.5]], n_bins=10,
                                        tie_rule="first") == pytest.approx(0.2)
    assert m.expected_calibration_error(probs, [[0.0, 1.0]], n_bins=10) == pytest.approx(0.8)


# --------------------------------------------------------------------------- torch inputs


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    y = torch.tensor(Y_TIED)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0], [0.0, 1.0], [0.0, 1.0]],
                          requires_grad=True)
    assert m.uar(y, logits) == pytest.approx(0.75)
    assert m.uar(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0])) == pytest.approx(0.75)
    emb = torch.randn(40, 4, requires_grad=True)
    labels = torch.arange(40) % 3
    want = _recall_brute_force(emb.detach().numpy().astype(float), labels.numpy(), (1, 4))
    assert m.recall_at_k(emb, labels, ks=(1, 4)) == pytest.approx(want)
    p = torch.softmax(torch.randn(5, 3), dim=1)
    assert m.kl_divergence(p, p, reduction="mean") == pytest.approx(0.0, abs=1e-6)


# --------------------------------------------------------------------------- bad inputs

P2 = np.array([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]])
NOT_SUMMING = np.array([[0.7, 0.7], [0.2, 0.8], [0.5, 0.5]])
WITH_NAN = np.array([[np.nan, 1.0], [0.2, 0.8], [0.5, 0.5]])
EMB = np.random.default_rng(0).normal(size=(6, 2))
LAB6 = np.array([0, 1, 0, 1, 0, 1])

BAD_CALLS = [
    # (id, callable, expected exception, argument named in the message)
    ("uar length", lambda: m.uar([0, 1, 1], [0, 1]), ValueError, "y_true and y_pred"),
    ("uar empty", lambda: m.uar([], []), ValueError, "y_true|y_pred"),
    ("uar nan soft", lambda: m.uar(WITH_NAN, [0, 1, 1]), ValueError, "y_true"),
    ("uar not summing", lambda: m.uar(NOT_SUMMING, [0, 1, 1]), ValueError, "y_true"),
    ("uar nan scores", lambda: m.uar([0, 1, 1], WITH_NAN), ValueError, "y_pred"),
    ("uar 3-D", lambda: m.uar(np.zeros((2, 2, 2)), [0, 1]), ValueError, "y_true"),
    ("uar non-integer", lambda: m.uar([0.5, 1.0], [0, 1]), ValueError, "y_true"),
    ("uar negative", lambda: m.uar([-1, 1], [0, 1]), ValueError, "y_true"),
    ("uar pred beyond K", lambda: m.uar(P2, [0, 1, 2]), ValueError, "y_pred"),
    ("uar score columns", lambda: m.uar(P2, np.zeros((3, 3))), ValueError, "y_pred"),
    ("uar label beyond cols", lambda: m.uar([0, 1, 2], P2), ValueError, "y_true"),
    ("uar tie_rule", lambda: m.uar([0, 1], [0, 1], tie_rule="any"), ValueError, "tie_rule"),
    ("uar strings", lambda: m.uar(["a", "b"], [0, 1]), TypeError, "y_true"),
    ("accuracy length", lambda: m.accuracy([0, 1], [0]), ValueError, "y_true and y_pred"),
    ("macro_f1 nan", lambda: m.macro_f1([0, np.nan], [0, 1]), ValueError, "y_true"),
    ("aem empty", lambda: m.aem([0, 1], []), ValueError, "y_pred"),
    ("aeo not summing", lambda: m.aeo(NOT_SUMMING, [0, 1, 1]), ValueError, "y_true"),
    ("spearman not summing", lambda: m.spearman_expected_class(NOT_SUMMING, [1, 2, 3]),
     ValueError, "probs"),
    ("spearman length", lambda: m.spearman_expected_class(P2, [1, 2]), ValueError, "targets"),
    ("spearman nan target", lambda: m.spearman_expected_class(P2, [1, np.nan, 3]),
     ValueError, "targets"),
    ("spearman constant", lambda: m.spearman_expected_class(P2, [1, 1, 1]), ValueError, "targets"),
    ("nmi length", lambda: m.nmi([0, 1], [0]), ValueError, "labels and clusters"),
    ("nmi empty", lambda: m.nmi([], []), ValueError, "labels"),
    ("nmi nan", lambda: m.nmi([0.0, np.nan], [0, 1]), ValueError, "labels"),
    ("nmi 2-D", lambda: m.nmi([[0, 1]], [[0, 1]]), ValueError, "labels"),
    ("kmeans_nmi length", lambda: m.kmeans_nmi(EMB, [0, 1]), ValueError, "embeddings and labels"),
    ("kmeans_nmi nan", lambda: m.kmeans_nmi(np.full((6, 2), np.nan), LAB6), ValueError,
     "embeddings"),
    ("recall 1-D", lambda: m.recall_at_k(np.zeros(6), LAB6, ks=(1,)), ValueError, "embeddings"),
    ("recall length", lambda: m.recall_at_k(EMB, [0, 1], ks=(1,)), ValueError,
     "embeddings and labels"),
    ("recall empty", lambda: m.recall_at_k(np.zeros((0, 2)), [], ks=(1,)), ValueError,
     "embeddings"),
    ("recall K too big", lambda: m.recall_at_k(EMB, LAB6, ks=(1, 6)), ValueError, "ks"),
    ("recall K zero", lambda: m.recall_at_k(EMB, LAB6, ks=(0,)), ValueError, "ks"),
    ("recall no K", lambda: m.recall_at_k(EMB, LAB6, ks=()), ValueError, "ks"),
    ("knn dims", lambda: m.knn_predict(EMB, LAB6, np.zeros((2, 3)), k=1), ValueError,
     "query_emb"),
    ("knn k", lambda: m.knn_predict(EMB, LAB6, EMB, k=7), ValueError, "k must"),
    ("knn length", lambda: m.knn_predict(EMB, [0, 1], EMB, k=1), ValueError,
     "train_emb and train_labels"),
    ("knn nan query", lambda: m.knn_predict(EMB, LAB6, [[np.nan, 0.0]], k=1), ValueError,
     "query_emb"),
    ("kl shape", lambda: m.kl_divergence(P2, P2[:2]), ValueError, "p and q"),
    ("kl not summing", lambda: m.kl_divergence(P2, NOT_SUMMING), ValueError, "q"),
    ("kl nan", lambda: m.kl_divergence(WITH_NAN, P2), ValueError, "p"),
    ("kl empty", lambda: m.kl_divergence(np.zeros((0, 2)), np.zeros((0, 2))), ValueError, "p"),
    ("kl eps", lambda: m.kl_divergence(P2, P2, eps=0.0), ValueError, "eps"),
    ("kl reduction", lambda: m.kl_divergence(P2, P2, reduction="sum"), ValueError, "reduction"),
    ("js negative", lambda: m.js_divergence([1.5, -0.5], [0.5, 0.5]), ValueError, "p"),
    ("js shape", lambda: m.js_divergence([0.5, 0.5], [0.2, 0.3, 0.5]), ValueError, "p and q"),
    ("entropy not summing", lambda: m.predictive_entropy(NOT_SUMMING), ValueError, "probs"),
    ("entropy 3-D", lambda: m.predictive_entropy(np.ones((1, 1, 1))), ValueError, "probs"),
    ("auroc one class", lambda: m.uncertainty_auroc([0.1, 0.2], [0, 0]), ValueError, "flagged"),
    ("auroc all flagged", lambda: m.uncertainty_auroc([0.1, 0.2], [True, True]), ValueError,
     "flagged"),
    ("auroc values", lambda: m.uncertainty_auroc([0.1, 0.2], [0, 2]), ValueError, "flagged"),
    ("auroc length", lambda: m.uncertainty_auroc([0.1, 0.2, 0.3], [0, 1]), ValueError,
     "scores and flagged"),
    ("auroc nan", lambda: m.uncertainty_auroc([np.nan, 0.2], [0, 1]), ValueError, "scores"),
    ("auroc empty", lambda: m.uncertainty_auroc([], []), ValueError, "scores"),
    ("ece bins", lambda: m.expected_calibration_error(P2, [0, 1, 1], n_bins=0), ValueError,
     "n_bins"),
    ("ece not summing", lambda: m.expected_calibration_error(NOT_SUMMING, [0, 1, 1]),
     ValueError, "probs"),
    ("ece length", lambda: m.expected_calibration_error(P2, [0, 1]), ValueError,
     "probs and y_true"),
    ("ece label", lambda: m.expected_calibration_error(P2, [0, 1, 4]), ValueError, "y_true"),
]


@pytest.mark.parametrize(("call", "exc", "arg"), [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])
def test_bad_input_names_the_argument(call, exc, arg):
    with pytest.raises(exc, match=arg):
        call()


# --------------------------------------------------------------------------- confusion matrix

def test_confusion_matrix_by_hand_and_against_sklearn():
    y, p = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2])
    cm = m.confusion_matrix(y, p)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y, p))
    assert m.confusion_matrix(y, p, num_classes=4).shape == (4, 4)
    with pytest.raises(ValueError, match="num_classes=2"):
        m.confusion_matrix(y, p, num_classes=2)


def test_confusion_matrix_resolves_ties_like_accuracy():
    soft = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    scores = np.array([[0.1, 0.9, 0.0], [0.1, 0.1, 0.8], [0.0, 0.0, 1.0]])
    cm = m.confusion_matrix(soft, scores)
    # item 0: predicted 1, tied with 0 → a hit for 1; item 1: predicted 2 → miss for class 0
    np.testing.assert_array_equal(cm, [[0, 0, 1], [0, 1, 0], [0, 0, 1]])
    assert np.trace(cm) / cm.sum() == pytest.approx(m.accuracy(soft, scores))


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=40))
def test_confusion_matrix_agrees_with_sklearn(pairs):
    y, p = np.array(pairs).T
    np.testing.assert_array_equal(m.confusion_matrix(y, p, num_classes=5),
                                  skm.confusion_matrix(y, p, labels=range(5)))
