"""Tables behind the Data page's browser: items with their soft labels, filters, rating
histograms and agreement per scale. Pure pandas/numpy over a :class:`DatasetDir`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from affectlab.aggregators import aggregate_soft_labels
from affectlab.agreement import anonymous_mask, krippendorff_alpha
from affectlab.data.contract import DatasetDir, label_codes
from affectlab.labels import ambiguity
from affectlab.scales import as_scale

__all__ = ["FILTER_COLUMNS", "agreement_table", "filter_items", "filter_options", "item_table",
           "rating_histogram", "scale_value_names", "soft_label_frame"]

FILTER_COLUMNS = ("split", "domain", "label")


def _check_ds(ds: Any) -> DatasetDir:
    if not isinstance(ds, DatasetDir):
        raise TypeError(f"ds must be a DatasetDir (affectlab.data.contract.load_dataset), "
                        f"got {type(ds).__name__}")
    return ds


def scale_value_names(scale_meta: Any) -> list[str]:
    """Display names of a scale's values (a typed scale or its meta entry): the class names of
    a nominal/ordinal scale, the integers low..high of a Likert scale."""
    scale = as_scale(scale_meta, "scale_meta")
    if scale.categorical:
        return scale.class_names
    lo, hi = scale.value_range()
    return [f"{v:g}" for v in np.arange(lo, hi + 1)]


def soft_label_frame(ds: DatasetDir, scale: str | None = None,
                     aggregator: str | None = None) -> pd.DataFrame:
    """Soft labels of every item on ``scale`` (default: the label set's scale) by
    ``aggregator`` (default: the dataset's, meta.json ``aggregator``; see
    :mod:`affectlab.aggregators`).

    Returns a DataFrame of shape (n_items, K) indexed by item_id, one column per class name
    (Likert scales: ``low`` / ``high``, SPEC §1); NaN rows for items without a rating.
    """
    ds = _check_ds(ds)
    scale = ds.schema.label_scale if scale is None else scale
    scale_meta = ds.scale(scale)
    aggregator = ds.schema.aggregator if aggregator is None else aggregator
    soft = aggregate_soft_labels(ds.ratings, ds.items["item_id"].to_numpy(), scale, scale_meta,
                                 aggregator)
    if soft.shape[1] == scale_meta.num_classes:
        cols = scale_meta.class_names
    else:  # FER+ 10-column votes collapse to 8 classes
        cols = [f"c{k}" for k in range(soft.shape[1])]
    return pd.DataFrame(soft, index=pd.Index(ds.items["item_id"].to_numpy(), name="item_id"),
                        columns=cols)


def item_table(ds: DatasetDir, aggregator: str | None = None) -> pd.DataFrame:
    """One display row per item (n_items rows, in items.parquet order); the soft labels by
    ``aggregator`` (default: the dataset's).

    Columns: item_id, split, domain, label (the dataset label's class name, or the soft label's
    argmax when the items have no ``label`` column), soft_top (argmax of the soft label),
    soft_top_p (its probability), ambiguity (normalised entropy of the soft label, [0, 1]),
    n_ratings (ratings on the label scale), media, and for generated data ``flipped`` and
    ``true_label`` as class names.
    """
    ds = _check_ds(ds)
    names = ds.class_names
    soft = soft_label_frame(ds, aggregator=aggregator)
    values = soft.to_numpy()
    rated = ~np.isnan(values).any(axis=1)
    top = np.full(len(values), None, dtype=object)
    top_p = np.full(len(values), np.nan)
    amb = np.full(len(values), np.nan)
    if rated.any():
        arg = values[rated].argmax(axis=1)
        top[rated] = np.asarray(soft.columns, dtype=object)[arg]
        top_p[rated] = values[rated].max(axis=1)
        amb[rated] = ambiguity(values[rated])
    items = ds.items
    out = pd.DataFrame({
        "item_id": items["item_id"].to_numpy(),
        "split": items["split"].to_numpy(),
        "domain": items["domain"].astype(str).to_numpy(),
    })
    out["label"] = _label_names(items["label"], names) if "label" in items else top
    out["soft_top"] = top
    out["soft_top_p"] = top_p
    out["ambiguity"] = amb
    scale = ds.schema.label_scale
    r = ds.ratings.loc[ds.ratings["scale"] == scale, "item_id"]
    out["n_ratings"] = out["item_id"].map(r.value_counts()).fillna(0).astype(np.int64).to_numpy()
    out["media"] = items["media"].to_numpy()
    if "flipped" in items:
        out["flipped"] = items["flipped"].to_numpy(dtype=bool)
    if "true_label" in items:
        out["true_label"] = _names_of(items["true_label"], names)
    return out


def _label_names(column: pd.Series, names: list[str]) -> np.ndarray:
    """The dataset label (class names or indices, see the contract) as class names; None where
    missing."""
    codes = label_codes(column, names)
    out = np.full(len(codes), None, dtype=object)
    out[codes >= 0] = np.asarray(names, dtype=object)[codes[codes >= 0]]
    return out


def _names_of(codes: pd.Series, names: list[str]) -> np.ndarray:
    """Integer class codes → names; codes outside 0..K-1 (or non-numeric) pass through as text."""
    num = pd.to_numeric(codes, errors="coerce").to_numpy()
    out = codes.astype(str).to_numpy(dtype=object)
    ok = np.isfinite(num) & (num >= 0) & (num < len(names)) & (num == np.round(num))
    out[ok] = np.asarray(names, dtype=object)[num[ok].astype(np.int64)]
    return out


def filter_options(table: pd.DataFrame) -> dict[str, list[str]]:
    """The values each filter column takes in ``table`` (sorted), for multiselect widgets."""
    _check_table(table)
    return {c: sorted(map(str, table[c].dropna().unique())) for c in FILTER_COLUMNS}


def filter_items(table: pd.DataFrame, split: Iterable[str] | None = None,
                 domain: Iterable[str] | None = None,
                 label: Iterable[str] | None = None) -> pd.DataFrame:
    """Rows of an :func:`item_table` whose split, domain and label are among the given values.

    None or an empty selection means "no filter" on that column (the usual multiselect reading).
    Returns a copy with the original row order.
    """
    _check_table(table)
    keep = np.ones(len(table), dtype=bool)
    for col, allowed in (("split", split), ("domain", domain), ("label", label)):
        if allowed is None:
            continue
        if isinstance(allowed, str):
            raise TypeError(f"{col} must be a list of values, got the string {allowed!r}")
        allowed = [str(a) for a in allowed]
        if allowed:
            keep &= table[col].astype(str).isin(allowed).to_numpy()
    return table.loc[keep].copy()


def _check_table(table: Any) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a DataFrame from item_table, got {type(table).__name__}")
    missing = [c for c in FILTER_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"table is missing column(s) {missing}; expected an item_table")


def rating_histogram(ds: DatasetDir, scale: str, item_ids: Iterable[str] | None = None
                     ) -> pd.DataFrame:
    """How often each value of ``scale`` was given (optionally only for ``item_ids``).

    Returns a DataFrame with one row per possible value (zero counts included), columns
    ``value`` (float), ``name`` (display name) and ``count`` (int).
    """
    ds = _check_ds(ds)
    scale_meta = ds.scale(scale)
    r = ds.ratings.loc[ds.ratings["scale"] == scale]
    if item_ids is not None:
        r = r.loc[r["item_id"].isin(list(item_ids))]
    values = pd.to_numeric(r["value"]).to_numpy(dtype=np.float64)
    if scale_meta.categorical:
        domain = np.arange(scale_meta.num_classes, dtype=np.float64)
        names = scale_meta.class_names
    else:
        lo, hi = scale_meta.value_range()
        # Averaged or half-point ratings still count; they fall between the named levels.
        domain = np.union1d(np.arange(lo, hi + 1), np.unique(values))
        names = [f"{v:g}" for v in domain]
    counts = np.array([(values == v).sum() for v in domain], dtype=np.int64)
    return pd.DataFrame({"value": domain, "name": names, "count": counts})


def agreement_table(ds: DatasetDir) -> pd.DataFrame:
    """Krippendorff's α for every scale of the dataset (SPEC §1, :mod:`affectlab.agreement`).

    Returns one row per scale: ``scale``, ``level`` (nominal / ordinal / interval), ``alpha``
    (NaN when undefined or the scale has no ratings), ``n_items`` rated, ``n_ratings``,
    ``n_raters`` (identified raters) and ``n_anonymous`` (anonymous votes, e.g. FER+'s: they
    count for α, from the value counts per item).
    """
    ds = _check_ds(ds)
    rows = []
    for scale, scale_meta in ds.schema.scales.items():
        r = ds.ratings.loc[ds.ratings["scale"] == scale]
        alpha = (krippendorff_alpha(r, scale, level=scale_meta.level, duplicates="last")
                 if len(r) else float("nan"))
        rows.append({"scale": scale, "level": scale_meta.level, "alpha": alpha,
                     "n_items": int(r["item_id"].nunique()), "n_ratings": int(len(r)),
                     "n_raters": int(r["rater_id"].nunique()),
                     "n_anonymous": int(anonymous_mask(r).sum())})
    return pd.DataFrame(rows, columns=["scale", "level", "alpha", "n_items", "n_ratings",
                                       "n_raters", "n_anonymous"])
