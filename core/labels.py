"""Soft labels from ratings (SPEC §1): Likert → two-class soft labels, vote counts →
distributions (with the FER+ convention), label similarity C = 2 − 2·TV, entropy / ambiguity,
majority labels with an explicit tie rule, and the vectorised path from the dataset contract's
long ratings table (SPEC §7) to one soft label per item.

Missing data convention, used throughout: an item that has no usable rating gets a row of NaN
(never zeros, never an error), so arrays stay aligned with ``item_ids``; callers drop those rows
with ``~np.isnan(y).any(axis=-1)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from affectlab.scales import scale_of
from affectlab.validation import as_float_array, check_distribution

__all__ = [
    "FERPLUS_COLUMNS",
    "FERPLUS_EMOTIONS",
    "ambiguity",
    "entropy",
    "ferplus_votes_to_distribution",
    "is_ferplus",
    "is_tied",
    "label_similarity",
    "likert_means",
    "likert_to_soft",
    "majority_label",
    "soft_labels_from_ratings",
    "votes_to_distribution",
]

# FER+ vote columns in the order of fer2013new.csv; the last two are not emotions.
FERPLUS_EMOTIONS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
)
FERPLUS_COLUMNS: tuple[str, ...] = FERPLUS_EMOTIONS + ("unknown", "not-a-face")
_NOT_A_FACE_ALIASES = {"nf", "notaface", "nonface"}


# --------------------------------------------------------------------------- Likert


def _check_scale_bounds(low: float, high: float) -> tuple[float, float]:
    try:
        lo, hi = float(low), float(high)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"low and high must be numbers, got {low!r} and {high!r}") from exc
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"low and high must be finite, got low={lo:g}, high={hi:g}")
    if lo >= hi:
        raise ValueError(f"low must be < high, got low={lo:g}, high={hi:g}")
    return lo, hi


def _check_in_range(values: np.ndarray, lo: float, hi: float, name: str, *,
                    show_index: bool = True) -> None:
    """Non-NaN entries of ``values`` must lie in [lo, hi]."""
    with np.errstate(invalid="ignore"):
        out = (values < lo) | (values > hi)
    if out.any():
        idx = tuple(int(i) for i in np.argwhere(out)[0])
        at = f" at index {idx}" if show_index else ""
        raise ValueError(f"{name} must lie in [{lo:g}, {hi:g}]; found {float(values[idx]):g}{at}")


def _mean_to_soft(mean: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Mean rating (...,) → soft label (..., 2). Exact because the per-rating map is affine:
    the mean of the converted ratings equals the conversion of the mean rating."""
    pos = (mean - lo) / (hi - lo)
    return np.stack([1.0 - pos, pos], axis=-1)


def likert_to_soft(ratings, low: float = 1, high: float = 5) -> np.ndarray:
    """Likert ratings → two-class soft labels (f-SPL §4.1).

    One rating r on ``low..high`` becomes ``[(high − r)/(high − low), (r − low)/(high − low)]``
    (a 2 on 1..5 is [0.75, 0.25]); an item's soft label is the mean over its raters.

    Parameters
    ----------
    ratings : array-like, shape (..., raters)
        Ratings on the last axis; NaN marks a missing rating and is skipped (never counted as
        zero). Non-integer ratings (e.g. already averaged) are allowed.
    low, high : float
        Scale end points, ``low < high``.

    Returns
    -------
    np.ndarray, shape (..., 2)
        Rows sum to 1. An item whose ratings are all missing gets a row of NaN.
    """
    lo, hi = _check_scale_bounds(low, high)
    r = as_float_array(ratings, "ratings", allow_nan=True)
    if r.ndim < 1:
        raise ValueError(f"ratings must be at least 1-D (..., raters), got shape {r.shape}")
    if r.shape[-1] < 1:
        raise ValueError(f"ratings must have at least one rater on its last axis, got {r.shape}")
    _check_in_range(r, lo, hi, "ratings")
    present = ~np.isnan(r)
    count = present.sum(axis=-1)
    total = np.where(present, r, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return _mean_to_soft(mean, lo, hi)


# --------------------------------------------------------------------------- votes


def _normalise_name(name: Any) -> str:
    return re.sub(r"[\s_\-]+", "", str(name).lower())


def _ferplus_order(names: Sequence[Any] | None) -> np.ndarray | None:
    """Column permutation that puts ``names`` in FER+ order, or None if they are not FER+'s 10."""
    if names is None or len(names) != len(FERPLUS_COLUMNS):
        return None
    norm = [_normalise_name(n) for n in names]
    norm = ["notaface" if n in _NOT_A_FACE_ALIASES else n for n in norm]
    want = [_normalise_name(n) for n in FERPLUS_COLUMNS]
    if sorted(norm) != sorted(want):
        return None
    return np.array([norm.index(w) for w in want])


def is_ferplus(names: Sequence[Any] | None) -> bool:
    """True when ``names`` are FER+'s 10 vote columns (any order, case, '-'/'_'/' ' ignored;
    "NF" accepted for not-a-face)."""
    return _ferplus_order(names) is not None


def _check_counts(counts, name: str = "counts") -> np.ndarray:
    c = as_float_array(counts, name, ndim=2)
    if c.shape[1] < 1:
        raise ValueError(f"{name} must have at least one class column, got shape {c.shape}")
    if (c < 0).any():
        i, k = (int(v) for v in np.argwhere(c < 0)[0])
        raise ValueError(f"{name} must be non-negative vote counts; "
                         f"found {c[i, k]:g} at [{i}, {k}]")
    return c


def ferplus_votes_to_distribution(counts, *, max_not_a_face: float = 0.5
                                  ) -> tuple[np.ndarray, np.ndarray]:
    """FER+ vote counts → emotion distributions and a keep mask (the FER+ authors' convention).

    "unknown" and "not-a-face" are dropped before normalising. An item is excluded
    (``keep`` False, its row NaN) when its not-a-face votes are more than ``max_not_a_face`` of
    all its votes (default: a strict majority), or when it has no emotion vote at all (e.g. only
    "unknown" votes, or no votes).

    Parameters
    ----------
    counts : array-like, shape (n, 10)
        Votes in :data:`FERPLUS_COLUMNS` order (neutral, happiness, surprise, sadness, anger,
        disgust, fear, contempt, unknown, not-a-face); non-negative.
    max_not_a_face : float in [0, 1)

    Returns
    -------
    dist : np.ndarray, shape (n, 8)
        Distribution over :data:`FERPLUS_EMOTIONS`; NaN rows where ``keep`` is False.
    keep : np.ndarray of bool, shape (n,)
    """
    c = _check_counts(counts)
    if c.shape[1] != len(FERPLUS_COLUMNS):
        raise ValueError(f"counts must have the {len(FERPLUS_COLUMNS)} FER+ columns "
                         f"{FERPLUS_COLUMNS}, got shape {c.shape}")
    if not (0.0 <= float(max_not_a_face) < 1.0):
        raise ValueError(f"max_not_a_face must be in [0, 1), got {max_not_a_face!r}")
    total = c.sum(axis=1)
    emotions = c[:, : len(FERPLUS_EMOTIONS)]
    emotion_total = emotions.sum(axis=1)
    not_a_face = c[:, -1]
    keep = (emotion_total > 0) & ~(not_a_face > max_not_a_face * total)
    dist = np.full(emotions.shape, np.nan)
    dist[keep] = emotions[keep] / emotion_total[keep, None]
    return dist, keep


def votes_to_distribution(counts, names: Sequence[Any] | None = None, *,
                          empty: str = "raise") -> np.ndarray:
    """Category vote counts → distributions (rows normalised to sum 1).

    Parameters
    ----------
    counts : array-like, shape (n, K)
        Non-negative vote counts (weighted, non-integer votes are allowed).
    names : sequence of K str, optional
        Column names. When they are FER+'s 10 columns (see :func:`is_ferplus`) the FER+ rule
        applies: the result has shape (n, 8) over :data:`FERPLUS_EMOTIONS`, with NaN rows for
        excluded items (see :func:`ferplus_votes_to_distribution`, which also returns the mask).
    empty : {"raise", "nan"}
        What an item with no votes gets: a ValueError (default) or a row of NaN.

    Returns
    -------
    np.ndarray, shape (n, K) (or (n, 8) under the FER+ rule)
    """
    if empty not in ("raise", "nan"):
        raise ValueError(f"empty must be 'raise' or 'nan', got {empty!r}")
    c = _check_counts(counts)
    if names is not None:
        names = list(names)
        if len(names) != c.shape[1]:
            raise ValueError(f"names must have one entry per column of counts "
                             f"({c.shape[1]}), got {len(names)}")
        order = _ferplus_order(names)
        if order is not None:
            return ferplus_votes_to_distribution(c[:, order])[0]
    total = c.sum(axis=1)
    zero = total == 0
    if zero.any() and empty == "raise":
        raise ValueError(f"counts row {int(np.argmax(zero))} has no votes (all zero); "
                         "pass empty='nan' to get a NaN row instead")
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = c / total[:, None]
    dist[zero] = np.nan
    return dist


# --------------------------------------------------------------------------- similarity


def _as_distribution(p, name: str) -> np.ndarray:
    arr = as_float_array(p, name)
    if arr.ndim < 1:
        raise ValueError(f"{name} must be at least 1-D (..., K), got shape {arr.shape}")
    return check_distribution(arr, name)


def label_similarity(a, b) -> np.ndarray:
    """Label similarity C(a, b) = 2 − 2·TV(a, b), TV = ½·Σ|a − b| (f-SPL), so C ∈ [0, 2].

    Parameters
    ----------
    a, b : array-like, shape (..., K)
        Distributions on the last axis; leading dims broadcast (``label_similarity(y[:, None],
        y[None])`` gives the (n, n) matrix).

    Returns
    -------
    np.ndarray, shape broadcast(a.shape[:-1], b.shape[:-1]); a float for two single labels.
        Clipped to [0, 2] (rows may miss summing to 1 by the validation tolerance).
    """
    a = _as_distribution(a, "a")
    b = _as_distribution(b, "b")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"a and b must have the same number of classes on the last axis, "
                         f"got {a.shape} and {b.shape}")
    try:
        np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    except ValueError as exc:
        raise ValueError(f"a and b leading dims must broadcast, got {a.shape} and {b.shape}"
                         ) from exc
    tv = 0.5 * np.abs(a - b).sum(axis=-1)
    c = np.clip(2.0 - 2.0 * tv, 0.0, 2.0)
    return c if c.ndim else float(c)


# --------------------------------------------------------------------------- per-item summaries


def entropy(p, *, normalize: bool = False) -> np.ndarray:
    """Shannon entropy (nats) of each distribution, with 0·log 0 = 0.

    Parameters
    ----------
    p : array-like, shape (..., K), distributions on the last axis
    normalize : bool
        Divide by log K so the result lies in [0, 1] (1 = uniform). For K = 1 the result is 0.

    Returns
    -------
    np.ndarray, shape (...)
    """
    p = _as_distribution(p, "p")
    q = np.clip(p, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, -q * np.log(q), 0.0)
    h = np.maximum(terms.sum(axis=-1), 0.0)
    if normalize:
        k = p.shape[-1]
        h = np.clip(h / np.log(k), 0.0, 1.0) if k > 1 else np.zeros_like(h)
    return h


def ambiguity(p) -> np.ndarray:
    """Per-item ambiguity: normalised entropy in [0, 1] (0 = all raters agree, 1 = uniform).

    ``p`` : shape (..., K) → shape (...).
    """
    return entropy(p, normalize=True)


def _check_scores(p, name: str = "p") -> np.ndarray:
    arr = as_float_array(p, name)
    if arr.ndim < 1 or arr.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (..., K) with K >= 1, got {arr.shape}")
    if (arr < 0).any():
        raise ValueError(f"{name} must be non-negative (distributions or vote counts), "
                         f"min is {arr.min():g}")
    return arr


def is_tied(p, *, atol: float = 1e-9) -> np.ndarray:
    """Whether two or more classes share the largest value (within ``atol``).

    ``p`` : shape (..., K), distributions or vote counts (non-negative) → bool, shape (...).
    """
    arr = _check_scores(p)
    top = arr.max(axis=-1, keepdims=True)
    return (arr >= top - atol).sum(axis=-1) > 1


def majority_label(p, *, ties: str = "lowest", atol: float = 1e-9) -> np.ndarray:
    """Index of the largest class per item, with an explicit tie rule.

    Parameters
    ----------
    p : array-like, shape (..., K)
        Distributions or vote counts (non-negative, no NaN).
    ties : {"lowest", "none"}
        "lowest": a tie goes to the lowest tied class index (numpy's argmax order);
        "none": tied items get −1. Use :func:`is_tied` to flag them under either rule.
    atol : float
        Values within ``atol`` of the maximum count as tied.

    Returns
    -------
    np.ndarray of int64, shape (...)
    """
    if ties not in ("lowest", "none"):
        raise ValueError(f"ties must be 'lowest' or 'none', got {ties!r}")
    arr = _check_scores(p)
    top = arr.max(axis=-1, keepdims=True)
    # First index within atol of the maximum, so near-ties resolve the same way as exact ones.
    label = np.argmax(arr >= top - atol, axis=-1).astype(np.int64)
    if ties == "none":
        label = np.where(is_tied(arr, atol=atol), -1, label)
    return label


# --------------------------------------------------------------------------- long ratings table


def _check_item_ids(item_ids) -> pd.Index:
    if isinstance(item_ids, str | bytes):
        raise TypeError("item_ids must be a 1-D sequence of ids, got a single string")
    if np.ndim(item_ids) != 1:
        raise ValueError(f"item_ids must be 1-D, got shape {np.shape(item_ids)}")
    index = pd.Index(item_ids)
    if index.has_duplicates:
        raise ValueError(f"item_ids must be unique; {index[index.duplicated()][0]!r} repeats")
    return index


def _scale_rows(ratings: pd.DataFrame, item_ids, scale: str
                ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Positions into ``item_ids``, float values and weights of the ratings of one scale.

    Ratings of items not in ``item_ids`` are ignored (item_ids may be a split or a subset). The
    optional ``weight`` column (default 1 per row) lets one row stand for a fractional vote, as
    in crowd label distributions (RAF-DB) or a rater ticking several categories (IEMOCAP).
    """
    if not isinstance(ratings, pd.DataFrame):
        raise TypeError(f"ratings must be a pandas DataFrame, got {type(ratings).__name__}")
    missing = [c for c in ("item_id", "scale", "value") if c not in ratings.columns]
    if missing:
        raise ValueError(f"ratings is missing column(s) {missing}; "
                         "expected the long table item_id, rater_id, scale, value")
    index = _check_item_ids(item_ids)
    columns = ["item_id", "value"] + (["weight"] if "weight" in ratings.columns else [])
    rows = ratings.loc[ratings["scale"] == scale, columns]
    pos = index.get_indexer(rows["item_id"])
    known = pos >= 0
    values = pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype=np.float64)[known]
    if np.isnan(values).any():
        raise ValueError(f"ratings['value'] for scale {scale!r} has missing or non-numeric "
                         "entries; each row must be one numeric rating")
    if "weight" in rows.columns:
        weights = pd.to_numeric(rows["weight"], errors="coerce").to_numpy(dtype=np.float64)[known]
        if np.isnan(weights).any() or (weights < 0).any():
            raise ValueError(f"ratings['weight'] for scale {scale!r} must be non-negative numbers")
    else:
        weights = np.ones_like(values)
    return pos[known], values, len(index), weights


def _per_item_mean(pos: np.ndarray, values: np.ndarray, n: int,
                   weights: np.ndarray | None = None) -> np.ndarray:
    weights = np.ones_like(values) if weights is None else weights
    count = np.bincount(pos, weights=weights, minlength=n)
    total = np.bincount(pos, weights=values * weights, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.where(count > 0, count, 1), np.nan)


def likert_means(ratings: pd.DataFrame, item_ids, scale: str,
                 scale_meta: Any = None) -> np.ndarray:
    """Mean rating per item for one scale of the long ratings table (for dimensional work).

    Parameters
    ----------
    ratings : DataFrame with columns item_id, scale, value (one row per rating)
    item_ids : sequence of n unique ids; the output follows this order
    scale : the scale name (e.g. "valence")
    scale_meta : optional; when given (a scale, one scale's entry of meta['scales'], or the
        whole meta / DatasetMeta), values are checked against its range (likert low..high, or
        class indices 0..K-1).

    Returns
    -------
    np.ndarray, shape (n,); NaN for items without a rating on ``scale``.
    """
    pos, values, n, weights = _scale_rows(ratings, item_ids, scale)
    if scale_meta is not None:
        scale_of(scale_meta, scale).check_values(values, f"ratings['value'] (scale {scale!r})")
    return _per_item_mean(pos, values, n, weights)


def soft_labels_from_ratings(ratings: pd.DataFrame, item_ids, scale: str,
                             scale_meta: Any) -> np.ndarray:
    """One soft label per item from the long ratings table (SPEC §1, §7), vectorised.

    Parameters
    ----------
    ratings : DataFrame with columns item_id, scale, value (rater_id is not needed here), and
        optionally ``weight``: a row counts as ``weight`` votes / ratings (default 1)
    item_ids : sequence of n unique ids; the output follows this order. Ratings of other items
        are ignored.
    scale : scale name, e.g. "category", "valence"
    scale_meta : the scale: a typed scale (:mod:`affectlab.scales`), its entry of meta['scales']
        (``{"type": "nominal"|"ordinal", "names": [...]}`` or ``{"type": "likert", "low": lo,
        "high": hi}``), or the whole meta (dict or DatasetMeta).

    Returns
    -------
    np.ndarray
        nominal / ordinal: shape (n, K), the vote histogram over ``names`` normalised to sum 1
        (values are class indices 0..K-1). If ``names`` are FER+'s 10 columns the FER+ rule
        applies and the shape is (n, 8) (see :func:`ferplus_votes_to_distribution`).
        likert: shape (n, 2), :func:`likert_to_soft` of the item's ratings.
        Items with no rating on ``scale`` (or excluded by the FER+ rule) get a row of NaN.
    """
    typed = scale_of(scale_meta, scale)
    pos, values, n, weights = _scale_rows(ratings, item_ids, scale)
    typed.check_values(values, f"ratings['value'] (scale {scale!r})")
    if not typed.categorical:
        lo, hi = typed.value_range()
        return _mean_to_soft(_per_item_mean(pos, values, n, weights), lo, hi)
    names = typed.class_names
    k = len(names)
    counts = np.bincount(pos * k + values.astype(np.int64), weights=weights, minlength=n * k)
    return votes_to_distribution(counts.reshape(n, k).astype(np.float64), names, empty="nan")
