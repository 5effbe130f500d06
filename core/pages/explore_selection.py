"""From points selected on the explore map to the items behind them.

The map draws one trace per colour group, so a selected point is known by (trace, index within
the trace); :func:`selection_rows` maps it back to the row of the run's test table.
:func:`item_cards` gathers what the page shows for each selected item.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affectlab.data.contract import ContractError, media_file
from affectlab.explore.run_outputs import RunOutputs
from affectlab.pages.explore_colour import run_uncertainty

__all__ = ["ItemCard", "group_rows", "item_cards", "selection_rows"]


def group_rows(values: np.ndarray, categorical: bool, order: Sequence[str] | None = None
               ) -> list[tuple[str, np.ndarray]]:
    """Rows of each trace: one trace per category when ``categorical``, else one trace with
    every row. Categories come in ``order`` (e.g. the class names; those with no row are left
    out), then any others sorted by name. Returns [(trace name, row indices (m,))]."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D (n,), got shape {values.shape}")
    if not categorical:
        return [("all", np.arange(len(values)))]
    labels = values.astype(str)
    names, codes = np.unique(labels, return_inverse=True)
    present = set(names.tolist())
    ordered = [n for n in dict.fromkeys(order or ()) if n in present]
    ordered += sorted(present - set(ordered))
    index = {n: i for i, n in enumerate(names.tolist())}
    by_code = np.argsort(codes, kind="stable")  # rows grouped by category, in row order
    bounds = np.searchsorted(codes[by_code], np.arange(len(names) + 1))
    return [(n, by_code[bounds[index[n]]:bounds[index[n] + 1]]) for n in ordered]


def selection_rows(points: Iterable[Mapping[str, Any]], traces: Sequence[np.ndarray]
                   ) -> np.ndarray:
    """Test-table rows of selected points.

    points: the selection's point dicts (plotly / Streamlit: ``curve_number`` and
        ``point_index`` or ``point_number``); a ``customdata`` holding the row wins when given.
    traces: the row indices of each trace, as drawn (from :func:`group_rows`).
    Returns the unique rows (int64), in selection order. Points that refer to no drawn trace
    are ignored (a stale selection after the colouring changed).
    """
    rows: list[int] = []
    for p in points:
        if not isinstance(p, Mapping):
            raise TypeError(f"points must be dicts, got {type(p).__name__}")
        custom = p.get("customdata")
        if isinstance(custom, list | tuple) and custom:
            custom = custom[0]
        if isinstance(custom, int | np.integer | float) and not isinstance(custom, bool):
            rows.append(int(custom))
            continue
        curve = p.get("curve_number", 0)
        idx = p.get("point_index", p.get("point_number"))
        if idx is None or not (0 <= int(curve) < len(traces)):
            continue
        trace = traces[int(curve)]
        if 0 <= int(idx) < len(trace):
            rows.append(int(trace[int(idx)]))
    return np.array(list(dict.fromkeys(rows)), dtype=np.int64)


@dataclass(frozen=True)
class ItemCard:
    """What the page shows for one test item: media (absolute path or None), the annotated
    and predicted distributions as a (K, ≤2) frame indexed by class name (every class, in class
    order), and a caption (id, predicted class, uncertainty on the [0, 1] scale)."""

    row: int
    item_id: str
    media: Path | None
    distributions: pd.DataFrame
    caption: str


def item_cards(outputs: RunOutputs, rows: Iterable[int], items: pd.DataFrame | None = None,
               dataset_root: str | os.PathLike | None = None) -> list[ItemCard]:
    """Cards for ``rows`` of the run's test table, in the given order.

    items / dataset_root: the run's dataset (items table and directory) to find media files;
    without them (or for a media path that leads out of the dataset's directory) ``media``
    is None.
    """
    rows = [int(r) for r in rows]
    bad = [r for r in rows if not 0 <= r < outputs.n]
    if bad:
        raise ValueError(f"rows must be in [0, {outputs.n}), got {bad[:3]}")
    media_of: dict[str, str] = {}
    if items is not None and dataset_root is not None and "media" in items.columns:
        media_of = dict(zip(items["item_id"].astype(str), items["media"].astype(str),
                            strict=True))
    names = outputs.class_names
    scores = run_uncertainty(outputs)
    cards = []
    for r in rows:
        iid = str(outputs.item_ids[r])
        cols = {}
        if outputs.soft is not None:
            cols["annotated"] = outputs.soft[r]
        if outputs.pred is not None:
            cols["predicted"] = outputs.pred[r]
        dist = pd.DataFrame(cols, index=pd.Index(names, name="class"))
        parts = [iid]
        if outputs.pred is not None:
            parts.append(f"pred {names[int(np.argmax(outputs.pred[r]))]}")
        if scores is not None and np.isfinite(scores.unit[r]):
            parts.append(f"uncertainty {scores.unit[r]:.2f}")
        cards.append(ItemCard(r, iid, _card_media(dataset_root, media_of.get(iid)), dist,
                              " · ".join(parts)))
    return cards


def _card_media(dataset_root: str | os.PathLike | None, rel: str | None) -> Path | None:
    """The card's media file, or None (no dataset, no media, or a path that leads out of the
    dataset directory: the page loads datasets without validating them)."""
    if dataset_root is None or rel is None:
        return None
    try:
        return media_file(dataset_root, rel)
    except ContractError:
        return None
