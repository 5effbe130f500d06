"""Acting on a selection of the Explore map.

- :func:`selection_item_ids`: the item ids behind selected rows;
- :func:`export_selection`: the selected items as a new dataset in the datasets directory
  (:func:`affectlab.data.subset.write_subset`; provenance ``source`` "explore selection", with
  the run, the filters and the parent dataset), which the Train page and ``affectlab train``
  read like any other.

Sending a selection back to the crowd is the campaign owner's
:meth:`affectlab.annotate.OwnerSession.create_campaign` with ``item_ids`` (the page holds the
owner session; this package does not import the annotation service, its peer layer).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from affectlab.data.contract import DatasetDir
from affectlab.data.subset import write_subset
from affectlab.explore.run_outputs import RunOutputs
from affectlab.pages.explore_filters import MapFilter
from affectlab.paths import child_path, datasets_dir

__all__ = ["SELECTION_SOURCE", "dataset_target", "export_selection", "selection_item_ids"]

SELECTION_SOURCE = "explore selection"


def selection_item_ids(outputs: RunOutputs, rows: Iterable[int]) -> list[str]:
    """Item ids of ``rows`` of the run's table, in order, repeats dropped."""
    rows = np.asarray(list(rows), dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= outputs.n):
        raise ValueError(f"rows must be in [0, {outputs.n}), got {int(rows.min())}.."
                         f"{int(rows.max())}")
    return list(dict.fromkeys(outputs.item_ids[rows].tolist()))


def dataset_target(name: str) -> Path:
    """``datasets_dir() / name`` for a user-typed dataset name, through the one contained-name
    rule (:func:`affectlab.paths.child_path`: :class:`~affectlab.paths.UnsafeNameError`, a
    ValueError, for anything that is not one plain directory name)."""
    return child_path(datasets_dir(), name, "dataset name")


def export_selection(outputs: RunOutputs, rows: Iterable[int], name: str, *,
                     filters: MapFilter | None = None, link: bool = True) -> DatasetDir:
    """Write the items of ``rows`` (the run's table rows) from the run's dataset as a new
    dataset ``name`` in the datasets directory; returns it loaded. Raises ValueError when the
    run names no dataset or the name is not allowed, FileExistsError when it is taken."""
    if outputs.dataset_path is None:
        raise ValueError(f"run {outputs.name} names no dataset in its config.yaml: nothing to "
                         "take the items from")
    ids = selection_item_ids(outputs, rows)
    provenance = {"run": outputs.name, "run_dir": str(outputs.run_dir)}
    if filters is not None and filters.active():
        provenance["filters"] = {k: (list(v) if isinstance(v, tuple) else v)
                                 for k, v in asdict(filters).items()}
    return write_subset(outputs.dataset_path, ids, dataset_target(name), source=SELECTION_SOURCE,
                        provenance=provenance, link=link)
