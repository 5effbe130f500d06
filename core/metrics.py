"""Evaluation metrics for soft-label emotion recognition (SPEC §2–4).

Everything here works on NumPy arrays; torch tensors (any device, with or without grad) are
accepted and converted. Shapes: ``n`` items, ``K`` classes, ``d`` embedding dimensions.

Labels come in two forms wherever a true class is needed:

- integer class indices, shape ``(n,)``, values in ``0..K-1``;
- soft labels, shape ``(n, K)``, rows summing to 1.

Predictions come as integer classes ``(n,)`` or as scores ``(n, K)`` (probabilities or logits;
the predicted class is the argmax, the lowest index on a tie).

**The tie rule (f-SPL, SPEC §2).** When a soft label's maximum is shared by several classes
(``[0.5, 0.5]``), a prediction of any of the tied classes counts as correct. For per-class
metrics (UAR, macro-F1) each item needs one true class, so a tied item is *resolved*:

- predicted class among the tied ones → its true class is the predicted class (a hit for that
  class's recall, counted in that class's denominator);
- otherwise → its true class is the lowest-index tied class (a miss for that class).

In other words the ground truth of a tied item becomes the prediction whenever the prediction
is one of the tied classes, and UAR is then ordinary balanced accuracy on the resolved labels.
The set of classes averaged over is the set of resolved true classes. ``tie_rule="first"``
turns the rule off: a tied item's true class is always its lowest tied class (``np.argmax``).
Integer ``y_true`` has no ties and both rules agree with scikit-learn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
from scipy import stats

from affectlab.validation import as_float_array, check_distribution

TieRule = Literal["either", "first"]
Reduction = Literal["none", "mean"]

DEFAULT_KS: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
TIE_ATOL = 1e-8  # soft labels are means of ratings: equal maxima may differ by float noise

__all__ = [
    "DEFAULT_KS",
    "accuracy",
    "aem",
    "aeo",
    "confusion_matrix",
    "expected_calibration_error",
    "js_divergence",
    "kl_divergence",
    "kmeans_nmi",
    "knn_predict",
    "macro_f1",
    "nmi",
    "predictive_entropy",
    "recall_at_k",
    "spearman_expected_class",
    "uar",
    "uncertainty_auroc",
]


# --------------------------------------------------------------------------- input handling


def _to_numpy(x):
    """Torch tensors (duck-typed, so torch is never imported here) → NumPy; others unchanged."""
    if hasattr(x, "detach") and hasattr(x, "cpu") and hasattr(x, "numpy"):
        return x.detach().cpu().numpy()
    return x


def _non_empty(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.size == 0 or arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); expected at least one item")
    return arr


def _float_array(x, name: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    return _non_empty(as_float_array(_to_numpy(x), name, ndim=ndim), name)


def _distribution(x, name: str, ndim: int | tuple[int, ...] = 2) -> np.ndarray:
    arr = check_distribution(_float_array(x, name, ndim), name)
    return np.clip(arr, 0.0, None)  # tiny negatives allowed by the tolerance would break logs


def _class_indices(x, name: str) -> np.ndarray:
    """Non-negative integer class indices ``(n,)`` (integral floats and bools accepted)."""
    arr = np.asarray(_to_numpy(x))
    if arr.dtype.kind in "iub":
        arr = arr.astype(np.int64)
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D class indices, got shape {arr.shape}")
    else:
        arr = as_float_array(arr, name, ndim=1)
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer class indices, got non-integer values")
        arr = arr.astype(np.int64)
    _non_empty(arr, name)
    if arr.min() < 0:
        raise ValueError(f"{name} must hold class indices >= 0, got {int(arr.min())}")
    return arr


def _label_vector(x, name: str) -> np.ndarray:
    """Any 1-D labels (ints or strings) → dense codes ``0..C-1`` of shape ``(n,)``."""
    arr = np.asarray(_to_numpy(x))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    _non_empty(arr, name)
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    if arr.dtype.kind == "O":
        arr = arr.astype(str)
    return np.unique(arr, return_inverse=True)[1].reshape(-1)


def _check_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of items, "
            f"got {a.shape[0]} and {b.shape[0]}"
        )


def _predicted_classes(y_pred, name: str = "y_pred") -> tuple[np.ndarray, int | None]:
    """Integer predictions ``(n,)`` and the number of score columns (None for labels)."""
    arr = np.asarray(_to_numpy(y_pred))
    if arr.ndim == 2:
        scores = _float_array(arr, name, 2)
        if scores.shape[1] < 1:
            raise ValueError(f"{name} must have at least one class column, got {scores.shape}")
        return scores.argmax(axis=1), scores.shape[1]
    if arr.ndim == 1:
        return _class_indices(arr, name), None
    raise ValueError(f"{name} must be class indices (n,) or scores (n, K), got shape {arr.shape}")


def _true_sets(y_true, y_pred, tie_atol: float) -> tuple[np.ndarray, np.ndarray]:
    """Tied-maximum mask ``(n, K)`` of the true labels and integer predictions ``(n,)``.

    For integer ``y_true`` the mask is one-hot. ``K`` covers every class that the labels,
    the prediction indices or the score columns mention.
    """
    raw = np.asarray(_to_numpy(y_true))
    pred, n_score_cols = _predicted_classes(y_pred)
    if raw.ndim == 2:
        soft = _distribution(raw, "y_true")
        _check_length(soft, pred, "y_true", "y_pred")
        k = soft.shape[1]
        if n_score_cols is not None and n_score_cols != k:
            raise ValueError(
                f"y_true has {k} classes but y_pred has {n_score_cols} score columns"
            )
        if pred.max() >= k:
            raise ValueError(f"y_pred has class index {int(pred.max())} but y_true has {k} classes")
        tied = soft >= soft.max(axis=1, keepdims=True) - tie_atol
        return tied, pred
    if raw.ndim != 1:
        raise ValueError(
            f"y_true must be class indices (n,) or soft labels (n, K), got shape {raw.shape}"
        )
    labels = _class_indices(raw, "y_true")
    _check_length(labels, pred, "y_true", "y_pred")
    if n_score_cols is not None and labels.max() >= n_score_cols:
        raise ValueError(
            f"y_true has class index {int(labels.max())} but y_pred has only {n_score_cols} columns"
        )
    k = int(max(labels.max(), pred.max())) + 1
    tied = np.zeros((labels.size, k), dtype=bool)
    tied[np.arange(labels.size), labels] = True
    return tied, pred


def _check_tie_rule(tie_rule: str) -> None:
    if tie_rule not in ("either", "first"):
        raise ValueError(f"tie_rule must be 'either' or 'first', got {tie_rule!r}")


def _resolve(y_true, y_pred, tie_rule: str, tie_atol: float) -> tuple[np.ndarray, np.ndarray]:
    """Resolved true classes ``(n,)`` (see the module docstring) and predictions ``(n,)``."""
    _check_tie_rule(tie_rule)
    tied, pred = _true_sets(y_true, y_pred, tie_atol)
    first = tied.argmax(axis=1)  # lowest tied class
    if tie_rule == "first":
        return first, pred
    pred_is_tied = tied[np.arange(pred.size), pred]
    return np.where(pred_is_tied, pred, first), pred


# --------------------------------------------------------------------------- classification


def uar(y_true, y_pred, *, tie_rule: TieRule = "either", tie_atol: float = TIE_ATOL) -> float:
    """Unweighted average recall: the mean over true classes of per-class recall.

    Args:
        y_true: class indices ``(n,)`` or soft labels ``(n, K)``.
        y_pred: class indices ``(n,)`` or scores ``(n, K)`` (argmax taken).
        tie_rule: ``"either"`` (SPEC §2: a tied soft label accepts any tied class) or
            ``"first"`` (a tied label's class is its lowest tied class). See the module
            docstring for how a tied item enters per-class recall.
        tie_atol: two soft-label entries within this of the row maximum count as tied.

    Returns:
        UAR in [0, 1]. For integer ``y_true`` this is
        ``sklearn.metrics.balanced_accuracy_score``.
    """
    true, pred = _resolve(y_true, y_pred, tie_rule, tie_atol)
    classes = np.unique(true)
    hits = np.bincount(true, weights=(true == pred).astype(float), minlength=classes.max() + 1)
    support = np.bincount(true, minlength=classes.max() + 1)
    return float(np.mean(hits[classes] / support[classes]))


def accuracy(y_true, y_pred, *, tie_rule: TieRule = "either",
             tie_atol: float = TIE_ATOL) -> float:
    """Fraction of items predicted correctly; arguments as in :func:`uar`."""
    true, pred = _resolve(y_true, y_pred, tie_rule, tie_atol)
    return float(np.mean(true == pred))


def macro_f1(y_true, y_pred, *, tie_rule: TieRule = "either",
             tie_atol: float = TIE_ATOL) -> float:
    """Unweighted mean of per-class F1 = 2·TP / (2·TP + FP + FN).

    Averaged over every class that occurs among the (resolved) true classes or the
    predictions, like ``sklearn.metrics.f1_score(average="macro")``. Arguments as in :func:`uar`.
    """
    true, pred = _resolve(y_true, y_pred, tie_rule, tie_atol)
    k = int(max(true.max(), pred.max())) + 1
    tp = np.bincount(true[true == pred], minlength=k).astype(float)
    true_count = np.bincount(true, minlength=k)
    pred_count = np.bincount(pred, minlength=k)
    present = (true_count + pred_count) > 0
    # 2TP + FP + FN = |true = c| + |pred = c|, positive for every present class
    return float(np.mean(2.0 * tp[present] / (true_count + pred_count)[present]))


def confusion_matrix(y_true, y_pred, num_classes: int | None = None, *,
                     tie_rule: TieRule = "either", tie_atol: float = TIE_ATOL) -> np.ndarray:
    """Counts ``(K, K)``: row = (resolved) true class, column = predicted class.

    The true class of a tied soft label is resolved as for :func:`uar` (so the diagonal's sum
    over ``n`` is :func:`accuracy`). ``num_classes`` defaults to the classes the arguments
    mention. For integer ``y_true`` this is ``sklearn.metrics.confusion_matrix``. Arguments
    as in :func:`uar`.
    """
    true, pred = _resolve(y_true, y_pred, tie_rule, tie_atol)
    raw = np.asarray(_to_numpy(y_true))
    k = int(max(true.max(), pred.max())) + 1
    if raw.ndim == 2:  # a soft label names all its K classes
        k = max(k, raw.shape[1])
    if num_classes is not None:
        if num_classes < k:
            raise ValueError(f"num_classes={num_classes} but the arguments mention {k} classes")
        k = num_classes
    return np.bincount(true * k + pred, minlength=k * k).reshape(k, k)


def _ordinal_distance(y_true, y_pred, tie_rule: str, tie_atol: float) -> np.ndarray:
    """|predicted − true| in class steps ``(n,)``; under ``"either"`` the nearest tied class."""
    _check_tie_rule(tie_rule)
    tied, pred = _true_sets(y_true, y_pred, tie_atol)
    if tie_rule == "first":
        return np.abs(pred - tied.argmax(axis=1))
    steps = np.abs(np.arange(tied.shape[1])[None, :] - pred[:, None]).astype(float)
    return np.where(tied, steps, np.inf).min(axis=1)


def aem(y_true, y_pred, *, tie_rule: TieRule = "either", tie_atol: float = TIE_ATOL) -> float:
    """Accuracy of exact match for ordered classes (EMD² paper, SPEC §3).

    Same value as :func:`accuracy`; named for the ordinal tables. Arguments as in :func:`uar`.
    """
    return float(np.mean(_ordinal_distance(y_true, y_pred, tie_rule, tie_atol) == 0))


def aeo(y_true, y_pred, *, tie_rule: TieRule = "either", tie_atol: float = TIE_ATOL) -> float:
    """Accuracy within one category off for ordered classes (SPEC §3).

    Class indices must follow the order of the classes. A prediction counts if it is at most
    one class away from the true class (under ``"either"``: from the nearest tied class).
    Arguments as in :func:`uar`.
    """
    return float(np.mean(_ordinal_distance(y_true, y_pred, tie_rule, tie_atol) <= 1))


def spearman_expected_class(probs, targets) -> float:
    """Spearman ρ between the expected class index and continuous targets (SPEC §3).

    Args:
        probs: predicted distributions over ordered classes ``(n, K)``.
        targets: continuous ground truth ``(n,)`` (e.g. a mean rating).

    Returns:
        ρ in [-1, 1]; NaN when every expected class is the same (the correlation is
        undefined for a constant prediction).

    Raises:
        ValueError: when ``targets`` is constant (a data problem rather than a model's).
    """
    p = _distribution(probs, "probs")
    t = _float_array(targets, "targets", 1)
    _check_length(p, t, "probs", "targets")
    if t.size < 2 or np.all(t == t[0]):
        raise ValueError("targets must hold at least two different values for a rank correlation")
    expected = p @ np.arange(p.shape[1], dtype=float)
    if np.allclose(expected, expected[0], rtol=0.0, atol=1e-12):
        return float("nan")
    return float(stats.spearmanr(expected, t).statistic)


# --------------------------------------------------------------------------- embeddings (SGM §4)


def _entropy_of_counts(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def nmi(labels, clusters) -> float:
    """Normalised mutual information I(U; V) / mean(H(U), H(V)) (arithmetic mean).

    This is the definition of Manning et al. that SGM cites (the paper's printed
    ``2(H + H)`` denominator is a typo for ``(H + H) / 2``) and equals
    ``sklearn.metrics.normalized_mutual_info_score``. 1.0 when both sides are a single group.

    Args:
        labels: true classes ``(n,)`` (any hashable values).
        clusters: cluster assignments ``(n,)``.
    """
    u = _label_vector(labels, "labels")
    v = _label_vector(clusters, "clusters")
    _check_length(u, v, "labels", "clusters")
    table = np.zeros((u.max() + 1, v.max() + 1))
    np.add.at(table, (u, v), 1.0)
    h_u = _entropy_of_counts(table.sum(axis=1))
    h_v = _entropy_of_counts(table.sum(axis=0))
    if h_u == 0.0 and h_v == 0.0:
        return 1.0  # both trivial partitions: identical
    joint = table[table > 0] / u.size
    outer = np.outer(table.sum(axis=1), table.sum(axis=0))[table > 0] / u.size**2
    mi = max(float((joint * np.log(joint / outer)).sum()), 0.0)
    return float(mi / ((h_u + h_v) / 2.0))


def kmeans_nmi(embeddings, labels, seed: int = 0, *, n_init: int = 10) -> float:
    """NMI of k-means clusters (K = number of distinct labels) against the labels (SGM §4).

    Args:
        embeddings: ``(n, d)``.
        labels: true classes ``(n,)``.
        seed: k-means random state.
        n_init: k-means restarts (best inertia kept).
    """
    from sklearn.cluster import KMeans

    emb = _float_array(embeddings, "embeddings", 2)
    codes = _label_vector(labels, "labels")
    _check_length(emb, codes, "embeddings", "labels")
    n_classes = int(codes.max()) + 1
    km = KMeans(n_clusters=n_classes, n_init=n_init, random_state=seed)
    return nmi(codes, km.fit_predict(emb))


def _check_ks(ks: Iterable[int], n: int) -> list[int]:
    ks_list = [int(k) for k in ks]
    if not ks_list:
        raise ValueError("ks must list at least one K")
    if min(ks_list) < 1:
        raise ValueError(f"ks must be positive, got {min(ks_list)}")
    if max(ks_list) > n - 1:
        raise ValueError(
            f"ks asks for {max(ks_list)} neighbours but embeddings has only {n - 1} other items"
        )
    return list(dict.fromkeys(ks_list))


def recall_at_k(embeddings, labels, ks: Sequence[int] = DEFAULT_KS, *,
                chunk_bytes: int = 32 * 2**20) -> dict[int, float]:
    """Recall@K for retrieval (SGM §4): the fraction of queries with at least one item of the
    same label among their K nearest other items.

    Every item is a query against all others (Euclidean distance; the query itself is excluded
    by index, so exact duplicates still count as neighbours). Queries are processed in chunks
    so the distance block stays under ``chunk_bytes`` (float64), whatever ``n``.

    Args:
        embeddings: ``(n, d)``.
        labels: ``(n,)`` classes.
        ks: the K values; each must be ≤ n − 1.
        chunk_bytes: memory budget for one block of the query-by-item distance matrix.

    Returns:
        ``{K: recall}`` for each distinct K in the order given.
    """
    emb = _float_array(embeddings, "embeddings", 2)
    codes = _label_vector(labels, "labels")
    _check_length(emb, codes, "embeddings", "labels")
    n = emb.shape[0]
    ks_list = _check_ks(ks, n)
    k_max = max(ks_list)
    sq_norm = np.einsum("ij,ij->i", emb, emb)
    rows_per_chunk = max(1, int(chunk_bytes // (8 * n)))
    first_hit = np.empty(n, dtype=np.int64)  # rank of the first same-label neighbour (k_max: none)
    for start in range(0, n, rows_per_chunk):
        stop = min(n, start + rows_per_chunk)
        q = np.arange(start, stop)
        # squared distances; the expansion avoids an (m, n, d) difference tensor
        dist = sq_norm[q, None] + sq_norm[None, :] - 2.0 * (emb[q] @ emb.T)
        dist[np.arange(q.size), q] = np.inf
        nearest = np.argpartition(dist, k_max - 1, axis=1)[:, :k_max]
        order = np.argsort(np.take_along_axis(dist, nearest, axis=1), axis=1, kind="stable")
        nearest = np.take_along_axis(nearest, order, axis=1)
        same = codes[nearest] == codes[q, None]
        first_hit[start:stop] = np.where(same.any(axis=1), same.argmax(axis=1), k_max)
    return {k: float(np.mean(first_hit < k)) for k in ks_list}


def knn_predict(train_emb, train_labels, query_emb, k: int = 11) -> np.ndarray:
    """k-nearest-neighbour classification in an embedding (SGM's classifier, k = 11).

    Majority vote among the ``k`` nearest training items (Euclidean; ties between classes go
    to the lowest label, as in scikit-learn's ``KNeighborsClassifier``).

    Args:
        train_emb: ``(n_train, d)``.
        train_labels: ``(n_train,)`` classes (any hashable values).
        query_emb: ``(n_query, d)``.
        k: number of neighbours, 1 ≤ k ≤ n_train.

    Returns:
        Predicted labels ``(n_query,)``, of the same values as ``train_labels``.
    """
    from sklearn.neighbors import KNeighborsClassifier

    train = _float_array(train_emb, "train_emb", 2)
    query = _float_array(query_emb, "query_emb", 2)
    raw_labels = np.asarray(_to_numpy(train_labels))
    _label_vector(raw_labels, "train_labels")  # validation only
    _check_length(train, raw_labels, "train_emb", "train_labels")
    if query.shape[1] != train.shape[1]:
        raise ValueError(
            f"query_emb has {query.shape[1]} dimensions but train_emb has {train.shape[1]}"
        )
    if not 1 <= int(k) <= train.shape[0]:
        raise ValueError(f"k must be in 1..{train.shape[0]} (training items), got {k}")
    clf = KNeighborsClassifier(n_neighbors=int(k)).fit(train, raw_labels)
    return clf.predict(query)


# --------------------------------------------------------------------------- distributions


def _paired_distributions(p, q) -> tuple[np.ndarray, np.ndarray]:
    p_arr = _distribution(p, "p", (1, 2))
    q_arr = _distribution(q, "q", (1, 2))
    if p_arr.shape != q_arr.shape:
        raise ValueError(f"p and q must have the same shape, got {p_arr.shape} and {q_arr.shape}")
    return p_arr, q_arr


def _reduce(values: np.ndarray, reduction: str):
    if reduction == "none":
        return values if values.ndim else float(values)
    if reduction == "mean":
        return float(np.mean(values))
    raise ValueError(f"reduction must be 'none' or 'mean', got {reduction!r}")


def _kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Σ p·log(p/q) over the last axis with 0·log(0/q) = 0 and p > 0, q = 0 → inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / q), 0.0)
    return terms.sum(axis=-1)


def kl_divergence(p, q, *, eps: float | None = None, reduction: Reduction = "none"):
    """KL(p ‖ q) = Σ_k p_k·log(p_k / q_k) in nats, per row.

    ``p`` is the reference (true) distribution, ``q`` the model's. Zeros: 0·log 0 = 0; a class
    with q = 0 but p > 0 makes the divergence ``inf`` (as ``scipy.special.rel_entr``). Pass
    ``eps`` to smooth ``q`` instead: q ← (q + eps) / Σ(q + eps), which keeps it finite.

    Args:
        p, q: distributions ``(n, K)`` or one distribution ``(K,)``.
        eps: optional smoothing of ``q`` (> 0).
        reduction: ``"none"`` → ``(n,)`` (a float for 1-D input); ``"mean"`` → float.
    """
    p_arr, q_arr = _paired_distributions(p, q)
    if eps is not None:
        if not eps > 0:
            raise ValueError(f"eps must be > 0 when given, got {eps}")
        q_arr = (q_arr + eps) / (q_arr + eps).sum(axis=-1, keepdims=True)
    return _reduce(_kl_rows(p_arr, q_arr), reduction)


def js_divergence(p, q, *, reduction: Reduction = "none"):
    """Jensen–Shannon divergence ½·KL(p ‖ m) + ½·KL(q ‖ m), m = (p + q)/2, in nats, per row.

    Always finite, in [0, log 2]. It is the *square* of scipy's ``jensenshannon`` distance.

    Args:
        p, q: distributions ``(n, K)`` or ``(K,)``.
        reduction: ``"none"`` → ``(n,)`` (a float for 1-D input); ``"mean"`` → float.
    """
    p_arr, q_arr = _paired_distributions(p, q)
    m = (p_arr + q_arr) / 2.0
    js = 0.5 * _kl_rows(p_arr, m) + 0.5 * _kl_rows(q_arr, m)
    return _reduce(np.clip(js, 0.0, np.log(2.0)), reduction)


def predictive_entropy(probs):
    """Entropy −Σ p·log p in nats (0·log 0 = 0) of each predicted distribution.

    Args:
        probs: ``(n, K)`` → ``(n,)``; or ``(K,)`` → float.
    """
    p = _distribution(probs, "probs", (1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return _reduce(terms.sum(axis=-1), "none")


# --------------------------------------------------------------------------- uncertainty


def uncertainty_auroc(scores, flagged) -> float:
    """AUROC of an uncertainty score for finding flagged items (e.g. flipped labels).

    The probability that a random flagged item scores higher than a random unflagged one,
    ties counting one half (Mann–Whitney U / (n_pos·n_neg)); equals
    ``sklearn.metrics.roc_auc_score(flagged, scores)``.

    Args:
        scores: ``(n,)``, higher = more uncertain.
        flagged: ``(n,)`` booleans or 0/1; both values must occur.
    """
    s = _float_array(scores, "scores", 1)
    f = np.asarray(_to_numpy(flagged))
    if f.ndim != 1:
        raise ValueError(f"flagged must be 1-D, got shape {f.shape}")
    _non_empty(f, "flagged")
    if f.dtype.kind == "f" and np.isnan(f).any():
        raise ValueError("flagged contains NaN")
    if not np.isin(f, (0, 1)).all():
        raise ValueError("flagged must hold booleans or 0/1 values")
    f = f.astype(bool)
    _check_length(s, f, "scores", "flagged")
    n_pos = int(f.sum())
    n_neg = f.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"flagged must contain both flagged and unflagged items to define AUROC, "
            f"got {n_pos} flagged of {f.size}"
        )
    ranks = stats.rankdata(s)  # average ranks: tied scores count one half
    return float((ranks[f].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def expected_calibration_error(probs, y_true, n_bins: int = 15, *,
                               tie_rule: TieRule = "either",
                               tie_atol: float = TIE_ATOL) -> float:
    """Top-label expected calibration error with equal-width confidence bins (Guo et al. 2017).

    confidence = max_k probs, correct = argmax is the true class; bin b holds the items with
    confidence in (b/B, (b+1)/B]. ECE = Σ_b (|bin b| / n)·|accuracy(b) − mean confidence(b)|.

    Args:
        probs: predicted distributions ``(n, K)``.
        y_true: class indices ``(n,)`` or soft labels ``(n, K)`` (tie rule as in :func:`uar`).
        n_bins: number of bins B ≥ 1.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    p = _distribution(probs, "probs")
    y_raw = np.asarray(_to_numpy(y_true))
    if y_raw.ndim >= 1:  # name probs (not y_pred) when the lengths differ
        _check_length(p, y_raw, "probs", "y_true")
    true, pred = _resolve(y_raw, p, tie_rule, tie_atol)
    confidence = p.max(axis=1)
    correct = (true == pred).astype(float)
    # searchsorted(side="left") on the inner edges gives bin b with edge_b < conf <= edge_b+1
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], confidence, side="left")
    gap = np.bincount(bins, weights=correct - confidence, minlength=n_bins)
    return float(np.abs(gap).sum() / confidence.size)
