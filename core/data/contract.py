"""The dataset directory contract (SPEC §7): every corpus, generated or imported, becomes one
directory holding ``items.parquet``, ``ratings.parquet``, ``meta.json`` and its media files.

``meta.json`` keys (typed and validated by :class:`affectlab.data.schema.DatasetMeta`, which a
loaded :class:`DatasetDir` holds as ``schema``; unknown keys are kept)::

    name            str, the dataset's name
    modality        "face" | "speech"
    format_version  int (1)
    label_set       {"scale": "category", "names": [...], "ordinal": bool}
                    the classes a classifier predicts; ``names`` fixes their order (and equals
                    the names of ``scale`` when that scale is nominal / ordinal)
    scales          {scale_name: {"type": "nominal", "names": [...]}
                                | {"type": "ordinal", "names": [...]}
                                | {"type": "likert" | "interval", "low": 1, "high": 5}}
                    every scale that appears in ratings.parquet; nominal/ordinal rating values are
                    class indices into ``names``
    provenance      free-form dict (source, importer, generator parameters, licence)
    truth_columns   names of hidden-truth columns in items.parquet (generated data only)

``items.parquet``: ``item_id``, ``media`` (relative path), ``modality``, ``split`` (train / val /
test), ``domain``, and any other columns. An optional ``label`` column is the item's single
dataset label on the label-set scale, stored as written: class *names* (text; what the importers
write, readable without meta.json) or class *indices* (int64; what the generator writes), null
where the source gives none. Read it only through :func:`label_codes`, which accepts either form
under pandas 2 and 3 (object, ``str``, ``string`` or numeric dtypes) and checks it against the
label set; :func:`write_dataset` and :func:`load_dataset` check it too.

``ratings.parquet``: one row per rating, ``item_id``, ``rater_id``, ``scale``, ``value`` (a class
index or a number in the scale's range) and optionally ``weight`` (a row counting as that many
votes). ``rater_id`` is the rater's id (text), or **null for an anonymous vote**
(:data:`ANONYMOUS_RATER`): a source that publishes only vote counts per item (FER+'s
fer2013new.csv, CREMA-D's tabulatedVotes.csv) says how many raters chose each class, not who, so
each vote becomes one row without a rater. Two anonymous rows are never the same rater;
agreement from value counts (Krippendorff's α) uses them, per-rater statistics (Dawid–Skene,
rater reliability) refuse them (:func:`affectlab.agreement.require_rater_ids`). Null survives
parquet under pandas 2 (None) and 3 (NaN) alike and is SQL's NULL.

Optional face-box columns ``face_x``, ``face_y``, ``face_width``, ``face_height``
(:data:`FACE_BOX`, all four or none): the corpus's own face box in pixels of the media image
(AffectNet publishes one per image). Where a row's box is given (width and height > 0), the
loader crops it instead of running a face detector; null elsewhere. Read it only through
:func:`face_boxes`.

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

from affectlab.data.schema import (
    FORMAT_VERSION,
    MODALITIES,
    SCALE_TYPES,
    ContractError,
    DatasetMeta,
    UnknownScaleError,
)
from affectlab.paths import mark_created, require_product_dir, unsafe_relative
from affectlab.scales import IntervalScale, NominalScale, OrdinalScale

__all__ = ["ANONYMOUS_RATER", "FORMAT_VERSION", "ITEM_REQUIRED", "MODALITIES", "RATING_REQUIRED",
           "SCALE_TYPES", "SPLITS", "ContractError", "DatasetDir", "DatasetMeta", "UnknownScaleError",
           "label_codes", "load_dataset", "media_file", "validate_tables", "write_dataset"]

SPLITS = ("train", "val", "test")
ITEM_REQUIRED = ("item_id", "media", "modality", "split", "domain")
RATING_REQUIRED = ("item_id", "rater_id", "scale", "value")
ANONYMOUS_RATER = None
"""``rater_id`` of an anonymous vote (null in ratings.parquet; NaN or None once read)."""
FACE_BOX = ("face_x", "face_y", "face_width", "face_height")
"""The optional items columns of the corpus's own face box (see the module docstring)."""


@dataclass
class DatasetDir:
    """A loaded dataset directory. ``items`` is indexed 0..n-1 in file order.

    ``schema`` is meta.json as a typed :class:`DatasetMeta` (parsed once, here); ``meta`` is the
    same as a plain dict (``schema.to_json()``), kept for code that reads keys: treat it as
    read-only, and take scales and their rules from ``schema``.
    """

    root: Path
    items: pd.DataFrame
    ratings: pd.DataFrame
    meta: dict[str, Any] | DatasetMeta
    schema: DatasetMeta = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.schema = DatasetMeta.parse(self.meta, Path(self.root) / "meta.json")
        self.meta = self.schema.to_json()

    @property
    def name(self) -> str:
        return self.schema.name

    @property
    def modality(self) -> str:
        return self.schema.modality

    @property
    def class_names(self) -> list[str]:
        return self.schema.label_names

    def media_path(self, row: int | str) -> Path:
        """Absolute path of an item's media file, by row number or item_id (through
        :func:`media_file`: ContractError for a path that leads out of the directory)."""
        if isinstance(row, str):
            rel = self.items.loc[self.items["item_id"] == row, "media"].iloc[0]
        else:
            rel = self.items["media"].iloc[row]
        return media_file(self.root, rel)

    def scale(self, name: str) -> NominalScale | OrdinalScale | IntervalScale:
        """The typed scale ``name``; :class:`UnknownScaleError` (a KeyError) names the known."""
        return self.schema.scale(name)


def media_file(root: str | os.PathLike, rel: Any) -> Path:
    """``root / rel`` for an ``items.parquet`` media path, the one way a dataset's media path
    becomes a file: ContractError unless ``rel`` stays inside the directory
    (:func:`affectlab.paths.unsafe_relative`: no '..', absolute path, drive or control
    character) and names something below it."""
    text = str(rel)
    if _leaves_directory(text):
        raise ContractError(f"items.parquet: media {text!r} must be a path inside the dataset "
                            f"directory {root}")
    return Path(root) / text


def face_boxes(items: pd.DataFrame) -> np.ndarray | None:
    """(n, 4) float (x, y, w, h) of the items' face-box columns (:data:`FACE_BOX`), NaN in a
    row without a usable box (a null, or a width or height ≤ 0); None when the table has no
    such columns. ContractError when only some of the four are there or one is not numeric."""
    present = [c for c in FACE_BOX if c in items.columns]
    if not present:
        return None
    if len(present) < len(FACE_BOX):
        raise ContractError(f"items.parquet: face-box columns {present} without "
                            f"{[c for c in FACE_BOX if c not in present]}; give all of "
                            f"{list(FACE_BOX)} or none")
    try:
        boxes = np.array(items[list(FACE_BOX)].apply(pd.to_numeric, errors="raise"), float)
    except (ValueError, TypeError) as exc:
        raise ContractError(f"items.parquet: face-box columns must be numbers ({exc})") from exc
    boxes[~(np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0))] = np.nan
    return boxes


def _leaves_directory(rel: str) -> bool:
    return unsafe_relative(rel) is not None or not Path(rel).parts


def label_codes(column: pd.Series, names: list[str], where: str = "items.parquet 'label'"
                ) -> np.ndarray:
    """A ``label`` column as class indices (int64, −1 where missing).

    Accepts class names (object, pandas 3's ``str``, ``string`` dtypes) and class indices
    (integer, or float with integer values, e.g. an int column with NaN); an object column may
    mix both. Raises :class:`ContractError` naming the first unknown class name or index.
    """
    k = len(names)
    missing = column.isna().to_numpy()
    out = np.full(len(column), -1, dtype=np.int64)
    if pd.api.types.is_bool_dtype(column.dtype):
        raise ContractError(f"{where}: holds booleans; expected class names or indices")
    if pd.api.types.is_numeric_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)[~missing]
        bad = (values != np.round(values)) | (values < 0) | (values >= k)
        if bad.any():
            raise ContractError(f"{where}: class index {values[bad][0]:g} is not in 0..{k - 1} "
                                f"(the label set {names})")
        out[~missing] = values.astype(np.int64)
        return out
    index = {name: j for j, name in enumerate(names)}
    present = np.flatnonzero(~missing)
    mapped = column.astype(object).iloc[present].map(index)  # names; anything else → NaN
    out[present] = mapped.fillna(-1).to_numpy(dtype=np.int64)
    for row in present[mapped.isna().to_numpy()]:  # not a name: an index (object column)?
        value = column.iloc[row]
        if isinstance(value, int | np.integer) and not isinstance(value, bool) and 0 <= value < k:
            out[row] = int(value)
        else:
            raise ContractError(f"{where}: class name {value!r} (row {row}) is not in the label "
                                f"set {names}")
    return out


def validate_tables(items: pd.DataFrame, ratings: pd.DataFrame, meta: Any,
                    source: str = "meta.json") -> DatasetMeta:
    """Raise :class:`ContractError` naming the first problem found; return the typed meta."""
    schema = DatasetMeta.parse(meta, source)
    _validate_items(items, schema)
    _validate_ratings(items, ratings, schema)
    return schema


def _first_bad(table: str, col: str, values: pd.Series, allowed: tuple[str, ...]) -> None:
    bad = ~values.isin(allowed)
    if bad.any():
        raise ContractError(f"{table}: {col} {values[bad].iloc[0]!r} at row "
                            f"{int(np.argmax(bad.to_numpy()))}; expected one of {allowed}")


def _validate_items(items: pd.DataFrame, schema: DatasetMeta) -> None:
    missing = [c for c in ITEM_REQUIRED if c not in items.columns]
    if missing:
        raise ContractError(f"items.parquet: missing column(s) {missing}; "
                            f"required: {list(ITEM_REQUIRED)}")
    if items["item_id"].duplicated().any():
        dup = items.loc[items["item_id"].duplicated(), "item_id"].iloc[0]
        raise ContractError(f"items.parquet: duplicate item_id {dup!r}")
    _first_bad("items.parquet", "modality", items["modality"], MODALITIES)
    _first_bad("items.parquet", "split", items["split"], SPLITS)
    _check_media_paths(items["media"])
    if "label" in items.columns:
        label_codes(items["label"], schema.label_names)
    face_boxes(items)


# a superset of the paths _leaves_directory refuses, matched in one vectorised pass; only the
# matches are looked at one by one (a 280,000-item table is checked in a fraction of a second)
_SUSPECT_MEDIA = r"^[./]*$|\.\.|^[/\\]|^[A-Za-z]:|[\x00-\x1f\x7f]"


def _check_media_paths(media: pd.Series) -> None:
    text = media.astype(str)
    for row in np.flatnonzero(text.str.contains(_SUSPECT_MEDIA, regex=True).to_numpy()):
        if _leaves_directory(text.iloc[row]):
            raise ContractError(f"items.parquet: media {text.iloc[row]!r} at row {row} must be a "
                                "path inside the dataset directory")


def _validate_ratings(items: pd.DataFrame, ratings: pd.DataFrame, schema: DatasetMeta) -> None:
    missing = [c for c in RATING_REQUIRED if c not in ratings.columns]
    if missing:
        raise ContractError(f"ratings.parquet: missing column(s) {missing}; "
                            f"required: {list(RATING_REQUIRED)}")
    unknown_items = ~ratings["item_id"].isin(items["item_id"])
    if unknown_items.any():
        raise ContractError(f"ratings.parquet: item_id {ratings.loc[unknown_items, 'item_id'].iloc[0]!r} "
                            "is not in items.parquet")
    unknown_scales = ~ratings["scale"].isin(list(schema.scales))
    if unknown_scales.any():
        raise ContractError(f"ratings.parquet: scale {ratings.loc[unknown_scales, 'scale'].iloc[0]!r} "
                            "is not declared in meta.json 'scales'")
    values = pd.to_numeric(ratings["value"], errors="coerce")
    if values.isna().any():
        row = int(np.argmax(values.isna().to_numpy()))
        raise ContractError(f"ratings.parquet: non-numeric or missing value at row {row}")
    for scale_name, scale in schema.scales.items():
        v = values[ratings["scale"] == scale_name].to_numpy(dtype=np.float64)
        try:
            scale.check_values(v, f"ratings.parquet: scale {scale_name!r} values")
        except ValueError as exc:
            raise ContractError(str(exc)) from None


def write_dataset(out: str | os.PathLike, items: pd.DataFrame, ratings: pd.DataFrame,
                  meta: dict[str, Any] | DatasetMeta, media_dir: str | os.PathLike | None = None,
                  overwrite: bool = False) -> DatasetDir:
    """Validate and write a dataset directory atomically.

    Tables and meta are validated first; nothing is written when they break the contract.
    ``media_dir``, when given, is a staging directory whose contents are moved into ``out``
    (paths in ``items['media']`` are relative to it). The directory appears under its final name
    only when complete, so an interrupted write never leaves a half dataset behind. The
    directory gets the product marker (:func:`affectlab.paths.mark_created`); ``overwrite``
    replaces only a directory that holds it (else :class:`~affectlab.paths.NotProductDirError`).
    """
    out = Path(out)
    items = items.reset_index(drop=True)
    ratings = ratings.reset_index(drop=True)
    schema = validate_tables(items, ratings, meta, str(out / "meta.json"))
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} already exists and is not empty (pass overwrite=True / --overwrite)")
    require_product_dir(out)  # overwrite replaces only a directory affectlab made
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if media_dir is not None:
            for entry in Path(media_dir).iterdir():
                shutil.move(str(entry), staging / entry.name)
        items.to_parquet(staging / "items.parquet", index=False)
        ratings.to_parquet(staging / "ratings.parquet", index=False)
        (staging / "meta.json").write_text(json.dumps(schema.to_json(), indent=2, sort_keys=True,
                                                      default=_json_default))
        mark_created(staging)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return DatasetDir(out, items, ratings, schema)


def load_dataset(path: str | os.PathLike, validate: bool = True) -> DatasetDir:
    """Read a dataset directory; raise :class:`ContractError` if a file is missing or broken."""
    root = Path(path)
    if not root.is_dir():
        raise ContractError(f"{root}: not a dataset directory (it does not exist)")
    for name in ("items.parquet", "ratings.parquet", "meta.json"):
        if not (root / name).is_file():
            raise ContractError(f"{root}: missing {name}")
    schema = DatasetMeta.read(root / "meta.json")
    try:
        items = pd.read_parquet(root / "items.parquet")
        ratings = pd.read_parquet(root / "ratings.parquet")
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise ContractError(f"{root}: cannot read parquet table ({exc})") from exc
    if validate:
        validate_tables(items, ratings, schema, str(root / "meta.json"))
    return DatasetDir(root, items, ratings, schema)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
