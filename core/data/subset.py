"""A dataset of some items of another: :func:`write_subset` (the Explore page's "export the
selection as a dataset").

The new directory goes through :func:`affectlab.data.contract.write_dataset`, so it is a dataset
like any other (``affectlab train`` reads it): the chosen items' rows of ``items.parquet`` (every
column, hidden truth included), their ratings, their media (hard-linked when the file system
allows, else copied) and the parent's ``meta.json`` with a new name and a provenance saying where
the items came from (``source``, ``parent``, ``parent_source``, ``n_items``, ``created_at`` and
whatever the caller adds, e.g. the run and the filters of a selection).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from affectlab.data.contract import DatasetDir, load_dataset, media_file, write_dataset
from affectlab.fileio import link_or_copy

__all__ = ["write_subset"]


def _unique_ids(item_ids: Iterable[Any]) -> list[str]:
    if isinstance(item_ids, str):
        raise TypeError("item_ids must be a list of item ids, not one string")
    ids = list(dict.fromkeys(str(i) for i in item_ids))
    if not ids:
        raise ValueError("item_ids must name at least one item")
    return ids


def write_subset(dataset: str | os.PathLike | DatasetDir, item_ids: Iterable[Any],
                 out: str | os.PathLike, *, source: str,
                 provenance: Mapping[str, Any] | None = None, overwrite: bool = False,
                 link: bool = True) -> DatasetDir:
    """Write the items ``item_ids`` of ``dataset`` (in that order, repeats dropped) as a new
    dataset directory ``out``; returns it loaded.

    source: what made the subset (provenance ``source``, e.g. "explore selection");
    provenance: more keys for meta.json's provenance. Raises ValueError naming ids the dataset
    does not hold, FileExistsError when ``out`` exists (unless ``overwrite``).
    """
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"source must be a non-empty string, got {source!r}")
    ds = dataset if isinstance(dataset, DatasetDir) else load_dataset(dataset)
    ids = _unique_ids(item_ids)
    known = ds.items["item_id"].astype(str)
    missing = sorted(set(ids) - set(known))
    if missing:
        raise ValueError(f"item_ids {missing[:5]} are not in the dataset {ds.root}"
                         + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""))
    out = Path(out)
    if out.resolve() == Path(ds.root).resolve():
        raise ValueError(f"out must differ from the dataset it is taken from ({ds.root})")
    position = {k: i for i, k in enumerate(ids)}
    items = ds.items[known.isin(position)].copy()
    items = items.iloc[items["item_id"].astype(str).map(position).argsort()].reset_index(drop=True)
    ratings = ds.ratings[ds.ratings["item_id"].astype(str).isin(position)].reset_index(drop=True)
    meta = ds.schema.to_json()
    meta["name"] = out.name
    meta["provenance"] = {
        **dict(provenance or {}), "source": source, "parent": str(ds.root),
        "parent_source": ds.schema.provenance.get("source"), "n_items": len(items),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.media.", dir=out.parent))
    try:
        for rel in items["media"].astype(str):
            link_or_copy(media_file(ds.root, rel), staging / rel, link)
        return write_dataset(out, items, ratings, meta, media_dir=staging, overwrite=overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
