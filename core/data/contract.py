"""The dataset directory contract (SPEC §7): every corpus, generated or imported, becomes one
directory holding ``items.parquet``, ``ratings.parquet``, ``meta.json`` and its media files.

``meta.json`` keys::

    name            str, the dataset's name
    modality        "face" | "speech"
    format_version  int (1)
    label_set       {"scale": "category", "names": [...], "ordinal": bool}
                    the classes a classifier predicts; ``names`` fixes their order
    scales          {scale_name: {"type": "nominal", "names": [...]}
                                | {"type": "likert", "low": 1, "high": 5}
                                | {"type": "ordinal", "names": [...]}}
                    every scale that appears in ratings.parquet; nominal/ordinal rating values are
                    class indices into ``names``
    provenance      free-form dict (source, importer, generator parameters, licence)
    truth_columns   names of hidden-truth columns in items.parquet (generated data only)

Soft labels are always derived from ``ratings.parquet``; an items column (e.g. ``label``) may
carry a single dataset label in addition, never as the only copy of the ratings.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FORMAT_VERSION = 1
MODALITIES = ("face", "speech")
SPLITS = ("train", "val", "test")
ITEM_REQUIRED = ("item_id", "media", "modality", "split", "domain")
RATING_REQUIRED = ("item_id", "rater_id", "scale", "value")
SCALE_TYPES = ("nominal", "likert", "ordinal")


class ContractError(ValueError):
    """A dataset directory, or the tables about to become one, break the contract."""


@dataclass
class DatasetDir:
    """A loaded dataset directory. ``items`` is indexed 0..n-1 in file order."""

    root: Path
    items: pd.DataFrame
    ratings: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.meta.get("name", self.root.name))

    @property
    def modality(self) -> str:
        return str(self.meta["modality"])

    @property
    def class_names(self) -> list[str]:
        return list(self.meta["label_set"]["names"])

    def media_path(self, row: int | str) -> Path:
        """Absolute path of an item's media file, by row number or item_id."""
        if isinstance(row, str):
            rel = self.items.loc[self.items["item_id"] == row, "media"].iloc[0]
        else:
            rel = self.items["media"].iloc[row]
        return self.root / rel

    def scale(self, name: str) -> dict[str, Any]:
        try:
            return self.meta["scales"][name]
        except KeyError as exc:
            known = ", ".join(self.meta.get("scales", {})) or "none"
            raise KeyError(f"dataset {self.name!r} has no scale {name!r} (known: {known})") from exc


def validate_tables(items: pd.DataFrame, ratings: pd.DataFrame, meta: dict[str, Any]) -> None:
    """Raise :class:`ContractError` naming the first problem found."""
    for key in ("name", "modality", "label_set", "scales"):
        if key not in meta:
            raise ContractError(f"meta.json: missing key {key!r}")
    if meta["modality"] not in MODALITIES:
        raise ContractError(f"meta.json: modality must be one of {MODALITIES}, got {meta['modality']!r}")
    label_set = meta["label_set"]
    if not isinstance(label_set, dict) or not label_set.get("names"):
        raise ContractError("meta.json: label_set must be a dict with a non-empty 'names' list")
    for scale_name, scale in meta["scales"].items():
        kind = scale.get("type")
        if kind not in SCALE_TYPES:
            raise ContractError(f"meta.json: scale {scale_name!r} has type {kind!r}; expected one of {SCALE_TYPES}")
        if kind == "likert" and not (float(scale["low"]) < float(scale["high"])):
            raise ContractError(f"meta.json: scale {scale_name!r} needs low < high")
        if kind in ("nominal", "ordinal") and not scale.get("names"):
            raise ContractError(f"meta.json: scale {scale_name!r} needs a 'names' list")

    missing = [c for c in ITEM_REQUIRED if c not in items.columns]
    if missing:
        raise ContractError(f"items.parquet: missing column(s) {missing}; required: {list(ITEM_REQUIRED)}")
    if items["item_id"].duplicated().any():
        dup = items.loc[items["item_id"].duplicated(), "item_id"].iloc[0]
        raise ContractError(f"items.parquet: duplicate item_id {dup!r}")
    bad_mod = ~items["modality"].isin(MODALITIES)
    if bad_mod.any():
        raise ContractError(f"items.parquet: modality {items.loc[bad_mod, 'modality'].iloc[0]!r} "
                            f"at row {int(np.argmax(bad_mod.to_numpy()))}; expected one of {MODALITIES}")
    bad_split = ~items["split"].isin(SPLITS)
    if bad_split.any():
        raise ContractError(f"items.parquet: split {items.loc[bad_split, 'split'].iloc[0]!r} "
                            f"at row {int(np.argmax(bad_split.to_numpy()))}; expected one of {SPLITS}")

    missing = [c for c in RATING_REQUIRED if c not in ratings.columns]
    if missing:
        raise ContractError(f"ratings.parquet: missing column(s) {missing}; required: {list(RATING_REQUIRED)}")
    unknown_items = ~ratings["item_id"].isin(items["item_id"])
    if unknown_items.any():
        raise ContractError(f"ratings.parquet: item_id {ratings.loc[unknown_items, 'item_id'].iloc[0]!r} "
                            "is not in items.parquet")
    unknown_scales = ~ratings["scale"].isin(list(meta["scales"]))
    if unknown_scales.any():
        raise ContractError(f"ratings.parquet: scale {ratings.loc[unknown_scales, 'scale'].iloc[0]!r} "
                            "is not declared in meta.json 'scales'")
    values = pd.to_numeric(ratings["value"], errors="coerce")
    if values.isna().any():
        row = int(np.argmax(values.isna().to_numpy()))
        raise ContractError(f"ratings.parquet: non-numeric or missing value at row {row}")
    for scale_name, scale in meta["scales"].items():
        v = values[ratings["scale"] == scale_name]
        if v.empty:
            continue
        if scale["type"] == "likert":
            lo, hi = float(scale["low"]), float(scale["high"])
        else:
            lo, hi = 0.0, float(len(scale["names"]) - 1)
        out = (v < lo) | (v > hi)
        if out.any():
            raise ContractError(f"ratings.parquet: scale {scale_name!r} value {v[out].iloc[0]} "
                                f"outside [{lo:g}, {hi:g}]")


def write_dataset(out: str | os.PathLike, items: pd.DataFrame, ratings: pd.DataFrame,
                  meta: dict[str, Any], media_dir: str | os.PathLike | None = None,
                  overwrite: bool = False) -> DatasetDir:
    """Validate and write a dataset directory atomically.

    Tables and meta are validated first; nothing is written when they break the contract.
    ``media_dir``, when given, is a staging directory whose contents are moved into ``out``
    (paths in ``items['media']`` are relative to it). The directory appears under its final name
    only when complete, so an interrupted write never leaves a half dataset behind.
    """
    out = Path(out)
    meta = {"format_version": FORMAT_VERSION, "truth_columns": [], "provenance": {}, **meta}
    items = items.reset_index(drop=True)
    ratings = ratings.reset_index(drop=True)
    validate_tables(items, ratings, meta)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} already exists and is not empty (pass overwrite=True / --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if media_dir is not None:
            for entry in Path(media_dir).iterdir():
                shutil.move(str(entry), staging / entry.name)
        items.to_parquet(staging / "items.parquet", index=False)
        ratings.to_parquet(staging / "ratings.parquet", index=False)
        (staging / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=_json_default))
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return DatasetDir(out, items, ratings, meta)


def load_dataset(path: str | os.PathLike, validate: bool = True) -> DatasetDir:
    """Read a dataset directory; raise :class:`ContractError` if a file is missing or broken."""
    root = Path(path)
    if not root.is_dir():
        raise ContractError(f"{root}: not a dataset directory (it does not exist)")
    for name in ("items.parquet", "ratings.parquet", "meta.json"):
        if not (root / name).is_file():
            raise ContractError(f"{root}: missing {name}")
    try:
        meta = json.loads((root / "meta.json").read_text())
    except json.JSONDecodeError as exc:
        raise ContractError(f"{root / 'meta.json'}: invalid JSON ({exc})") from exc
    try:
        items = pd.read_parquet(root / "items.parquet")
        ratings = pd.read_parquet(root / "ratings.parquet")
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise ContractError(f"{root}: cannot read parquet table ({exc})") from exc
    if validate:
        validate_tables(items, ratings, meta)
    return DatasetDir(root, items, ratings, meta)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
