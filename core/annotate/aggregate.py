"""From a campaign's ratings to labels and agreement (pure numpy / pandas; no database here).

- :func:`soft_labels` — SPEC §1 soft labels per scale (vote histograms, Likert → two-class).
- :func:`dawid_skene` — Dawid & Skene (1979) EM for categorical ratings: each rater has a
  confusion matrix π_r[j, l] = P(rater r says l | true class j); the item posterior over the
  true class is the reliability-weighted label.
- :func:`bias_corrected_means` — Likert ratings modelled as v_ir = μ_i + b_r + ε_ir,
  ε_ir ~ N(0, σ_r²): each rater's bias b_r is removed and ratings are weighted by 1/σ_r².
- :func:`weighted_soft_labels` — the two above, shaped like :func:`soft_labels`.
- :func:`item_disagreement` — normalised entropy (categories) or variance (Likert), in [0, 1].
- :func:`agreement_report` — Krippendorff's α per scale (``affectlab.agreement``), each rater
  against the leave-one-out consensus, and each rater's score on gold items.

Every function takes the contract's long ratings table (columns ``item_id``, ``rater_id``,
``scale``, ``value``) and scales as typed scales (:mod:`affectlab.scales`) or entries in the
contract's format (``{"type": "nominal", "names": [...]}``, ``{"type": "likert", "low": 1,
"high": 5}``, ``{"type": "ordinal", ...}``). The reliability-weighted labels and gold scores are
per-rater statistics: they refuse anonymous votes (``rater_id`` null, e.g. FER+'s).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from affectlab.agreement import krippendorff_alpha, rater_agreement, require_rater_ids
from affectlab.labels import likert_to_soft, soft_labels_from_ratings
from affectlab.scales import as_scale

__all__ = [
    "AgreementReport",
    "DawidSkeneResult",
    "agreement_report",
    "bias_corrected_means",
    "dawid_skene",
    "gold_scores",
    "item_disagreement",
    "scale_range",
    "soft_labels",
    "weighted_soft_labels",
]


def scale_range(scale_meta: Any) -> tuple[float, float]:
    """(low, high) of a scale: Likert end points, or 0..K−1 for class indices."""
    return as_scale(scale_meta, "scale_meta").value_range()


def _check_ratings(ratings: pd.DataFrame, need=("item_id", "rater_id", "scale", "value")) -> None:
    if not isinstance(ratings, pd.DataFrame):
        raise TypeError(f"ratings must be a pandas DataFrame, got {type(ratings).__name__}")
    missing = [c for c in need if c not in ratings.columns]
    if missing:
        raise ValueError(f"ratings is missing column(s) {missing}; expected {list(need)}")


def _scale_table(ratings: pd.DataFrame, item_ids, scale: str
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Index, pd.Index]:
    """Codes of one scale's ratings: (item positions in item_ids, rater codes, values, items,
    raters). Ratings of items outside ``item_ids`` are ignored."""
    _check_ratings(ratings)
    items = pd.Index(item_ids)
    if items.has_duplicates:
        raise ValueError("item_ids must be unique")
    rows = ratings[ratings["scale"] == scale]
    pos = items.get_indexer(rows["item_id"])
    rows = rows[pos >= 0]
    pos = pos[pos >= 0]
    rater_codes, raters = pd.factorize(rows["rater_id"], sort=True)
    values = pd.to_numeric(rows["value"], errors="coerce").to_numpy(np.float64)
    if np.isnan(values).any():
        raise ValueError(f"ratings['value'] of scale {scale!r} has missing or non-numeric entries")
    return pos.astype(np.int64), rater_codes.astype(np.int64), values, items, pd.Index(raters)


# --------------------------------------------------------------------------- plain soft labels


def soft_labels(ratings: pd.DataFrame, item_ids, scales: Mapping[str, Any]
                ) -> dict[str, np.ndarray]:
    """SPEC §1 soft labels for every scale: {scale: array (n_items, K or 2)}, NaN rows for items
    without ratings on that scale (see :func:`affectlab.labels.soft_labels_from_ratings`)."""
    _check_ratings(ratings)
    return {name: soft_labels_from_ratings(ratings, item_ids, name, meta)
            for name, meta in scales.items()}


# --------------------------------------------------------------------------- Dawid–Skene


@dataclass(frozen=True)
class DawidSkeneResult:
    """posterior (N, K): P(true class | ratings) per item; confusion (M, K, K): rater m's
    P(says l | true j) at [m, j, l]; prior (K,); n_iter; log_likelihood (final, marginal);
    converged."""

    posterior: np.ndarray
    confusion: np.ndarray
    prior: np.ndarray
    n_iter: int
    log_likelihood: float
    converged: bool


def _check_codes(x, name: str, upper: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr.astype(np.float64))) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must hold integer codes")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= upper):
        raise ValueError(f"{name} must lie in 0..{upper - 1}, found {arr.min()}..{arr.max()}")
    return arr


def dawid_skene(item: Sequence[int], rater: Sequence[int], label: Sequence[int], *,
                n_items: int, n_raters: int, n_classes: int, max_iter: int = 200,
                tol: float = 1e-7, smoothing: float = 0.01) -> DawidSkeneResult:
    """Dawid–Skene EM over R single ratings (vectorised: one bincount per class per step).

    Parameters
    ----------
    item, rater, label : int arrays, shape (R,)
        Rating r says rater ``rater[r]`` gave item ``item[r]`` class ``label[r]``.
    n_items, n_raters, n_classes : sizes N, M, K
    smoothing : pseudo-count added to every confusion cell and class count (keeps log finite
        for raters who never used a class)

    Starts from the per-item vote fractions (soft majority vote), then alternates the M-step
    (priors, confusion matrices from the posteriors) and the E-step
    log T_ij = log p_j + Σ_{ratings of i} log π_{r, j, l} until the log likelihood changes by
    less than ``tol`` (relative). Items without ratings get the prior.
    """
    for name, v in (("n_items", n_items), ("n_raters", n_raters), ("n_classes", n_classes)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    i = _check_codes(item, "item", n_items)
    r = _check_codes(rater, "rater", n_raters)
    lab = _check_codes(label, "label", n_classes)
    if not (len(i) == len(r) == len(lab)):
        raise ValueError(f"item, rater and label must have the same length, got "
                         f"{len(i)}, {len(r)}, {len(lab)}")
    if smoothing < 0 or not np.isfinite(smoothing):
        raise ValueError(f"smoothing must be a finite number >= 0, got {smoothing!r}")
    k = n_classes
    votes = np.zeros((n_items, k))
    np.add.at(votes, (i, lab), 1.0)
    count = votes.sum(axis=1, keepdims=True)
    post = np.where(count > 0, votes / np.maximum(count, 1), 1.0 / k)

    ll_old = -np.inf
    converged = False
    n_iter = 0
    cell = r * k + lab  # (R,) flat index of (rater, observed label)
    for step in range(1, max_iter + 1):
        n_iter = step
        # M-step
        prior = (post.sum(axis=0) + smoothing) / (n_items + k * smoothing)
        conf = np.stack([np.bincount(cell, weights=post[i, j], minlength=n_raters * k)
                         for j in range(k)], axis=0).reshape(k, n_raters, k)  # (j, m, l)
        conf = conf.transpose(1, 0, 2) + smoothing                             # (m, j, l)
        conf /= conf.sum(axis=2, keepdims=True)
        # E-step
        log_conf = np.log(conf)
        contrib = log_conf[r, :, lab]                                          # (R, K)
        log_t = np.stack([np.bincount(i, weights=contrib[:, j], minlength=n_items)
                          for j in range(k)], axis=1) + np.log(prior)
        norm = logsumexp(log_t, axis=1, keepdims=True)
        post = np.exp(log_t - norm)
        ll = float(norm.sum())
        if abs(ll - ll_old) <= tol * max(1.0, abs(ll)):
            converged = True
            break
        ll_old = ll
    return DawidSkeneResult(post, conf, prior, n_iter, ll, converged)


# --------------------------------------------------------------------------- Likert


def bias_corrected_means(item: Sequence[int], rater: Sequence[int], value: Sequence[float], *,
                         n_items: int, n_raters: int, low: float | None = None,
                         high: float | None = None, n_iter: int = 50, shrinkage: float = 1.0,
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item means with each rater's bias removed and noisy raters down-weighted.

    Model v_ir = μ_i + b_r + ε_ir, ε_ir ~ N(0, σ_r²), fitted by alternating weighted least
    squares: μ_i = Σ_r w_r (v_ir − b_r) / Σ_r w_r with w_r = 1/σ_r²;
    b_r = Σ_i (v_ir − μ_i) / (n_r + shrinkage) (shrunk towards 0 for raters with few items),
    then centred so that the biases average 0 over the ratings (the model fixes μ only up to a
    shift; this keeps the overall mean level); σ_r² from the residuals with a pooled prior of
    two pseudo-ratings.

    Parameters
    ----------
    item, rater : int arrays (R,); value : float array (R,)
    low, high : optional scale end points; the means are clipped to them

    Returns
    -------
    means (N,) — NaN for items without ratings; bias (M,); weight (M,) = 1/σ_r²
    """
    i = _check_codes(item, "item", n_items)
    r = _check_codes(rater, "rater", n_raters)
    v = np.asarray(value, dtype=np.float64)
    if v.shape != i.shape or r.shape != i.shape:
        raise ValueError(f"item, rater and value must have the same shape (R,), got "
                         f"{i.shape}, {r.shape}, {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("value must be finite (no NaN or inf)")
    if shrinkage < 0:
        raise ValueError(f"shrinkage must be >= 0, got {shrinkage!r}")
    n_item = np.bincount(i, minlength=n_items).astype(np.float64)
    n_rater = np.bincount(r, minlength=n_raters).astype(np.float64)
    bias = np.zeros(n_raters)
    weight = np.ones(n_raters)
    pooled = float(np.var(v)) if v.size > 1 else 1.0
    pooled = max(pooled, 1e-6)
    mean = np.full(n_items, np.nan)
    for _ in range(n_iter):
        w = weight[r]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (np.bincount(i, weights=w * (v - bias[r]), minlength=n_items)
                    / np.bincount(i, weights=w, minlength=n_items))
        resid_b = v - mean[i]
        new_bias = np.bincount(r, weights=resid_b, minlength=n_raters) / (n_rater + shrinkage)
        new_bias -= new_bias[r].mean() if v.size else 0.0
        resid = v - mean[i] - new_bias[r]
        # a rater alone on an item has residual 0 there; the prior keeps σ² away from 0
        var = ((np.bincount(r, weights=resid**2, minlength=n_raters) + 2.0 * pooled)
               / (n_rater + 2.0))
        new_weight = 1.0 / var
        done = np.allclose(new_bias, bias, atol=1e-9) and np.allclose(new_weight, weight,
                                                                      rtol=1e-9)
        bias, weight = new_bias, new_weight
        if done:
            break
    w = weight[r]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (np.bincount(i, weights=w * (v - bias[r]), minlength=n_items)
                / np.bincount(i, weights=w, minlength=n_items))
    mean[n_item == 0] = np.nan
    if low is not None or high is not None:
        mean = np.clip(mean, low, high)
    return mean, bias, weight


def weighted_soft_labels(ratings: pd.DataFrame, item_ids, scale: str,
                         scale_meta: Any, **kwargs) -> np.ndarray:
    """Reliability-weighted soft label per item for one scale.

    nominal / ordinal: Dawid–Skene posterior, shape (n, K); likert: ``likert_to_soft`` of the
    bias-corrected mean, shape (n, 2). Items without ratings on ``scale`` get NaN rows.
    Extra keyword arguments go to :func:`dawid_skene` / :func:`bias_corrected_means`.
    Raises :class:`~affectlab.agreement.AnonymousRatingsError` for anonymous votes: both
    models estimate each rater.
    """
    typed = as_scale(scale_meta, "scale_meta")
    pos, rater, values, items, raters = _scale_table(ratings, item_ids, scale)
    require_rater_ids(ratings, scale, "Dawid–Skene" if typed.categorical
                      else "bias-corrected means")
    lo, hi = typed.value_range()
    n = len(items)
    if not typed.categorical:
        out = np.full((n, 2), np.nan)
        if len(values) == 0:
            return out
        mean, _, _ = bias_corrected_means(pos, rater, values, n_items=n,
                                          n_raters=max(len(raters), 1), low=lo, high=hi,
                                          **kwargs)
        rated = ~np.isnan(mean)
        out[rated] = likert_to_soft(mean[rated, None], lo, hi)
        return out
    k = typed.num_classes
    out = np.full((n, k), np.nan)
    if len(values) == 0:
        return out
    res = dawid_skene(pos, rater, values.astype(np.int64), n_items=n,
                      n_raters=max(len(raters), 1), n_classes=k, **kwargs)
    rated = np.bincount(pos, minlength=n) > 0
    out[rated] = res.posterior[rated]
    return out


# --------------------------------------------------------------------------- disagreement


def item_disagreement(ratings: pd.DataFrame, item_ids, scales: Mapping[str, Any]
                      ) -> np.ndarray:
    """How much raters disagree on each item, in [0, 1]; the maximum over scales.

    nominal: entropy of the vote distribution / log K. likert and ordinal: population variance
    of the ratings / ((high − low)/2)², the largest variance a bounded rating can have.
    Items with fewer than two ratings on every scale get 0. Shape (n_items,).
    """
    _check_ratings(ratings, ("item_id", "scale", "value"))
    items = pd.Index(item_ids)
    out = np.zeros(len(items))
    for name, meta in scales.items():
        rows = ratings[ratings["scale"] == name]
        pos = items.get_indexer(rows["item_id"])
        keep = pos >= 0
        pos = pos[keep]
        v = pd.to_numeric(rows["value"], errors="coerce").to_numpy(np.float64)[keep]
        cnt = np.bincount(pos, minlength=len(items)).astype(np.float64)
        typed = as_scale(meta, f"scales[{name!r}]")
        lo, hi = typed.value_range()
        if typed.type == "nominal":
            k = typed.num_classes
            votes = np.bincount(pos * k + v.astype(np.int64), minlength=len(items) * k)
            p = votes.reshape(len(items), k) / np.maximum(cnt, 1)[:, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1) / np.log(k)
        else:
            s1 = np.bincount(pos, weights=v, minlength=len(items))
            s2 = np.bincount(pos, weights=v * v, minlength=len(items))
            m = s1 / np.maximum(cnt, 1)
            h = np.maximum(s2 / np.maximum(cnt, 1) - m * m, 0.0) / ((hi - lo) / 2.0) ** 2
        out = np.maximum(out, np.where(cnt >= 2, np.clip(h, 0.0, 1.0), 0.0))
    return out


# --------------------------------------------------------------------------- agreement


def gold_scores(ratings: pd.DataFrame, gold: pd.DataFrame,
                scales: Mapping[str, Any]) -> pd.DataFrame:
    """Each rater's score on gold items, per scale.

    ``gold``: columns item_id, scale, value (the known answers). nominal: fraction of exact
    matches; likert / ordinal: 1 − mean |rating − answer| / (high − low). Both in [0, 1].

    Returns DataFrame rater_id, scale, n_gold, score.
    """
    _check_ratings(ratings)
    _check_ratings(gold, ("item_id", "scale", "value"))
    cols = ["rater_id", "scale", "n_gold", "score"]
    if gold.empty or ratings.empty:
        return pd.DataFrame(columns=cols)
    merged = ratings.merge(gold.rename(columns={"value": "answer"}), on=["item_id", "scale"])
    if merged.empty:
        return pd.DataFrame(columns=cols)
    require_rater_ids(merged, what="gold scores")
    typed = {s: as_scale(m, f"scales[{s!r}]") for s, m in scales.items()}
    span = merged["scale"].map({s: t.value_range()[1] - t.value_range()[0]
                                for s, t in typed.items()})
    nominal = merged["scale"].map({s: t.type == "nominal" for s, t in typed.items()})
    exact = (merged["value"].astype(float) == merged["answer"].astype(float)).astype(float)
    closeness = 1.0 - (merged["value"].astype(float) - merged["answer"].astype(float)).abs() / span
    merged["score"] = np.where(nominal.astype(bool), exact, closeness)
    out = (merged.groupby(["rater_id", "scale"])["score"].agg(["size", "mean"]).reset_index()
           .rename(columns={"size": "n_gold", "mean": "score"}))
    return out[cols]


@dataclass
class AgreementReport:
    """alpha: {scale: Krippendorff's α} (NaN when undefined); alpha_mean: mean of the defined
    per-scale α (the campaign's single number); levels: {scale: level used};
    raters: one row per (rater, scale): rater_id, scale, n_items, agreement (leave-one-out,
    statistic per level, see ``affectlab.agreement.rater_agreement``), gold_n, gold_score."""

    alpha: dict[str, float]
    levels: dict[str, str]
    raters: pd.DataFrame
    n_ratings: int
    alpha_mean: float = float("nan")
    statistics: dict[str, str] = field(default_factory=dict)


def agreement_report(ratings: pd.DataFrame, scales: Mapping[str, Any],
                     gold: pd.DataFrame | None = None, *, min_items: int = 3) -> AgreementReport:
    """Krippendorff's α per scale (level from ``affectlab.agreement.default_level``: nominal for
    categories, ordinal, interval for Likert), each rater's leave-one-out agreement per scale,
    and each rater's gold score when ``gold`` answers are given."""
    _check_ratings(ratings)
    alpha, levels, stats, frames = {}, {}, {}, []
    for name, meta in scales.items():
        typed = as_scale(meta, f"scales[{name!r}]")
        level = typed.level
        levels[name] = level
        rows = ratings[ratings["scale"] == name]
        if rows.empty:
            alpha[name] = float("nan")
            continue
        lo, hi = typed.value_range()
        domain = np.arange(lo, hi + 1) if typed.categorical else None
        try:
            alpha[name] = krippendorff_alpha(rows, name, level, value_domain=domain)
        except ValueError:  # e.g. fractional Likert values outside an integer domain
            alpha[name] = krippendorff_alpha(rows, name, level)
        per = rater_agreement(rows, name, level, min_items=min_items)
        stats[name] = per.attrs.get("statistic", "")
        per.insert(1, "scale", name)
        frames.append(per)
    raters = (pd.concat(frames, ignore_index=True) if frames
              else pd.DataFrame(columns=["rater_id", "scale", "n_items", "agreement"]))
    if gold is not None and not gold.empty:
        g = gold_scores(ratings, gold, scales).rename(columns={"n_gold": "gold_n",
                                                               "score": "gold_score"})
        raters = raters.merge(g, on=["rater_id", "scale"], how="left")
    else:
        raters["gold_n"] = 0
        raters["gold_score"] = np.nan
    raters["gold_n"] = raters["gold_n"].fillna(0).astype(np.int64)
    defined = [a for a in alpha.values() if np.isfinite(a)]
    return AgreementReport(alpha=alpha, levels=levels, raters=raters, n_ratings=len(ratings),
                           alpha_mean=float(np.mean(defined)) if defined else float("nan"),
                           statistics=stats)
