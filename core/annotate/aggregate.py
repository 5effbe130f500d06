"""From a campaign's ratings to labels and agreement (pure numpy / pandas; no database here).

- :func:`soft_labels` — SPEC §1 soft labels per scale (vote histograms, Likert → two-class).
- :func:`dawid_skene`, :func:`bias_corrected_means` — from :mod:`affectlab.aggregators`
  (with one-coin DS, GLAD and MACE, and :func:`~affectlab.aggregators.aggregate_soft_labels`,
  the one entry point that turns ratings into soft labels by a named aggregator).
- :func:`weighted_soft_labels` — the ``ds`` aggregator, shaped like :func:`soft_labels`.
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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from affectlab.aggregators import (
    DawidSkeneResult,
    aggregate_soft_labels,
    bias_corrected_means,
    dawid_skene,
)
from affectlab.agreement import krippendorff_alpha, rater_agreement, require_rater_ids
from affectlab.labels import soft_labels_from_ratings
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


# --------------------------------------------------------------------------- plain soft labels


def soft_labels(ratings: pd.DataFrame, item_ids, scales: Mapping[str, Any]
                ) -> dict[str, np.ndarray]:
    """SPEC §1 soft labels for every scale: {scale: array (n_items, K or 2)}, NaN rows for items
    without ratings on that scale (see :func:`affectlab.labels.soft_labels_from_ratings`)."""
    _check_ratings(ratings)
    return {name: soft_labels_from_ratings(ratings, item_ids, name, meta)
            for name, meta in scales.items()}


def weighted_soft_labels(ratings: pd.DataFrame, item_ids, scale: str,
                         scale_meta: Any, **kwargs) -> np.ndarray:
    """Reliability-weighted soft label per item for one scale: the ``ds`` aggregator of
    :func:`affectlab.aggregators.aggregate_soft_labels` (nominal / ordinal: Dawid–Skene
    posterior, shape (n, K); likert: ``likert_to_soft`` of the bias-corrected mean, shape
    (n, 2)); NaN rows for items without ratings on ``scale``. Raises
    :class:`~affectlab.agreement.AnonymousRatingsError` for anonymous votes."""
    _check_ratings(ratings)
    return aggregate_soft_labels(ratings, item_ids, scale, scale_meta, "ds", **kwargs)


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
