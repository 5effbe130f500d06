"""Filtering the Explore map: which of a run's items are drawn.

:class:`MapFilter` holds the criteria (every one optional; an empty choice keeps everything):
split, class (by the annotated soft label, the prediction or the dataset label), domain,
uncertainty range on the [0, 1] scale, flipped / not flipped and true label (generated data's
hidden truth), and item ids. :func:`filter_options` says what a run offers for each and
:func:`filter_mask` applies one to the run's rows. Criteria combine with AND; choices within
one criterion with OR.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from affectlab.explore.run_outputs import RunOutputs
from affectlab.pages.explore_colour import colour_values, join_items, run_uncertainty

__all__ = ["CLASS_SOURCES", "FilterOptions", "MapFilter", "filter_mask", "filter_options"]

# where an item's class comes from, in menu order (each needs the run to have it)
CLASS_SOURCES = ("soft label", "predicted", "dataset label")


@dataclass(frozen=True)
class MapFilter:
    """splits / classes / domains / true_labels: keep items with one of these (empty: all);
    class_of: one of :data:`CLASS_SOURCES`; uncertainty: keep items whose [0, 1] uncertainty
    lies in [low, high] (the full (0, 1) keeps items without one too); flipped: True (only
    flipped), False (only not flipped), None (both); item_ids: ids or parts of ids, separated
    by commas or white space, case-insensitive (an item matching any part is kept)."""

    splits: tuple[str, ...] = ()
    class_of: str = "soft label"
    classes: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    uncertainty: tuple[float, float] = (0.0, 1.0)
    flipped: bool | None = None
    true_labels: tuple[str, ...] = ()
    item_ids: str = ""

    def active(self) -> bool:
        return self != MapFilter(class_of=self.class_of)


@dataclass(frozen=True)
class FilterOptions:
    """What a run (and its dataset's items) can be filtered by: the values present."""

    splits: list[str]
    class_sources: list[str]
    classes: list[str]
    domains: list[str]
    has_uncertainty: bool
    has_flipped: bool
    true_labels: list[str] = field(default_factory=list)


def _domains(outputs: RunOutputs, joined: pd.DataFrame | None) -> np.ndarray | None:
    if "domain" in outputs.table.columns:
        return outputs.table["domain"].astype(str).to_numpy()
    if joined is not None and "domain" in joined.columns and joined["domain"].notna().any():
        return joined["domain"].astype(str).to_numpy()
    return None


def _flipped(joined: pd.DataFrame | None) -> np.ndarray | None:
    if joined is None or "flipped" not in joined.columns or not joined["flipped"].notna().any():
        return None
    return joined["flipped"].fillna(False).astype(bool).to_numpy()


def _class_sources(outputs: RunOutputs) -> list[str]:
    have = {"soft label": outputs.soft, "predicted": outputs.pred,
            "dataset label": outputs.labels}
    return [s for s in CLASS_SOURCES if have[s] is not None]


def filter_options(outputs: RunOutputs, items: pd.DataFrame | None = None) -> FilterOptions:
    """The splits, class sources and classes, domains, true labels present, and whether the
    run has uncertainty and flipped flags, for the filter widgets."""
    joined = join_items(outputs, items)
    domains = _domains(outputs, joined)
    true = None
    if joined is not None and "true_label" in joined.columns and joined["true_label"].notna().any():
        true = colour_values(outputs, "true label", items).values
    return FilterOptions(
        splits=outputs.splits, class_sources=_class_sources(outputs),
        classes=list(outputs.class_names),
        domains=sorted(set(domains.tolist())) if domains is not None else [],
        has_uncertainty=outputs.uncertainty is not None,
        has_flipped=_flipped(joined) is not None,
        true_labels=[c for c in outputs.class_names if true is not None and c in set(true)])


def _id_mask(ids: np.ndarray, text: str) -> np.ndarray:
    parts = [p.lower() for p in re.split(r"[\s,]+", text.strip()) if p]
    lowered = pd.Series(ids, dtype=object).astype(str).str.lower()
    mask = np.zeros(len(ids), dtype=bool)
    for part in parts:
        mask |= lowered.str.contains(part, regex=False).to_numpy()
    return mask


def _check(f: MapFilter) -> None:
    if not isinstance(f, MapFilter):
        raise TypeError(f"filter must be a MapFilter, got {type(f).__name__}")
    lo, hi = f.uncertainty
    if not (0.0 <= lo <= hi <= 1.0):
        raise ValueError(f"uncertainty must be a range (low, high) with 0 <= low <= high <= 1, "
                         f"got {f.uncertainty!r}")
    if f.class_of not in CLASS_SOURCES:
        raise ValueError(f"class_of must be one of {CLASS_SOURCES}, got {f.class_of!r}")


def _truth_mask(outputs: RunOutputs, items: pd.DataFrame | None, f: MapFilter) -> np.ndarray:
    """Domains, flipped and true labels: the criteria that may need the dataset's items."""
    keep = np.ones(outputs.n, dtype=bool)
    if not (f.domains or f.flipped is not None or f.true_labels):
        return keep
    joined = join_items(outputs, items)
    if f.domains:
        domains = _domains(outputs, joined)
        if domains is None:
            raise ValueError("domains: neither the run nor its dataset names domains")
        keep &= np.isin(domains, f.domains)
    if f.flipped is not None:
        flipped = _flipped(joined)
        if flipped is None:
            raise ValueError("flipped: the dataset has no flipped column (generated data only)")
        keep &= flipped == f.flipped
    if f.true_labels:
        if joined is None or "true_label" not in joined.columns:
            raise ValueError("true_labels: the dataset has no true_label column")
        keep &= np.isin(colour_values(outputs, "true label", items).values.astype(str),
                        f.true_labels)
    return keep


def filter_mask(outputs: RunOutputs, items: pd.DataFrame | None, f: MapFilter) -> np.ndarray:
    """(n,) bool: the run's rows that pass ``f``. A criterion the run cannot answer (no
    domains, no truth, no such class source) raises ValueError naming it, rather than
    silently keeping or dropping everything."""
    _check(f)
    keep = np.ones(outputs.n, dtype=bool)
    if f.splits:
        if "split" not in outputs.table.columns:
            raise ValueError("splits: this run's outputs have no split column")
        keep &= outputs.table["split"].astype(str).isin(f.splits).to_numpy()
    if f.classes:
        if f.class_of not in _class_sources(outputs):
            raise ValueError(f"class_of: this run has no {f.class_of!r}")
        keep &= np.isin(colour_values(outputs, f.class_of).values.astype(str), f.classes)
    if f.uncertainty != (0.0, 1.0):
        scores = run_uncertainty(outputs)
        if scores is None:
            raise ValueError("uncertainty: this run saved no uncertainty")
        lo, hi = f.uncertainty
        with np.errstate(invalid="ignore"):
            keep &= (scores.unit >= lo) & (scores.unit <= hi)
    if f.item_ids.strip():
        keep &= _id_mask(outputs.item_ids, f.item_ids)
    return keep & _truth_mask(outputs, items, f)
