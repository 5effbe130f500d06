"""One uncertainty scale for every page: 0 (certain) to 1 (as unsure as it gets).

Methods report uncertainty in their own units (``Prediction.uncertainty``, saved raw in a run's
``outputs/test.parquet``):

- ``entropy``: Shannon entropy of the predicted distribution, in nats, in [0, log K] (every
  method's default; LDLVA on items it holds no λ for);
- ``dmue``: DMUE's 1 − s_i, s_i ∈ (0, 1) its pairwise-similarity certainty;
- ``lambda``: LDLVA's λ_i = sigmoid(θ_i) ∈ (0, 1), for training items only.

:func:`unit_uncertainty` maps each onto [0, 1]: entropy / log K (normalised entropy; 1 =
uniform), the other two as they are (already in [0, 1]). The Explore map and the Live page show
this scale; the raw value and its name (:data:`RAW_NAMES`) go in the hover.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from affectlab.labels import entropy

__all__ = ["KINDS", "RAW_NAMES", "probs_uncertainty", "uncertainty_kinds", "unit_uncertainty"]

KINDS = ("entropy", "dmue", "lambda")
RAW_NAMES = {"entropy": "entropy (nats)", "dmue": "1 − s (DMUE)", "lambda": "λ (LDLVA)"}


def unit_uncertainty(raw: Any, kind: Any, num_classes: int) -> np.ndarray:
    """Raw uncertainties on the one [0, 1] scale.

    raw: (n,) or scalar method values; kind: one of :data:`KINDS`, or an (n,) array of them
    (a run whose items differ, e.g. LDLVA's λ for train items and entropy for the rest);
    num_classes: K, for the entropy's maximum log K (K = 1: 0). NaN stays NaN; values a little
    outside their range (rounding) are clipped.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) \
            or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    values = np.asarray(raw, dtype=np.float64)
    kinds = np.broadcast_to(np.asarray(kind, dtype=object), values.shape)
    unknown = sorted({str(k) for k in np.unique(kinds.astype(str))} - set(KINDS))
    if unknown:
        raise ValueError(f"kind must be one of {KINDS}, got {unknown}")
    is_entropy = kinds == "entropy"
    scale = np.log(num_classes) if num_classes > 1 else np.inf
    out = np.where(is_entropy, values / scale, values)
    with np.errstate(invalid="ignore"):
        out = np.clip(out, 0.0, 1.0)
    return out


def uncertainty_kinds(method: str | None, splits: Any) -> np.ndarray:
    """The kind of raw value a run's method saved for each item: (n,) strings.

    method: the run's method name (``config.yaml``); splits: (n,) the items' splits (LDLVA
    reports λ for training items only). Unknown or missing methods report entropy.
    """
    splits = np.asarray(splits, dtype=object).astype(str)
    out = np.full(splits.shape, "entropy", dtype=object)
    name = str(method or "")
    if name == "dmue":
        out[:] = "dmue"
    elif name == "ldlva":
        out[splits == "train"] = "lambda"
    return out


def probs_uncertainty(probs: Any) -> np.ndarray:
    """Uncertainty of predicted distributions (..., K) on the [0, 1] scale: their entropy
    through :func:`unit_uncertainty` (what the Live page shows for any model)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim < 1 or p.shape[-1] < 1:
        raise ValueError(f"probs must have a class axis (..., K), got shape {p.shape}")
    return unit_uncertainty(entropy(p), "entropy", int(p.shape[-1]))
