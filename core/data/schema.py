"""The typed dataset schema: ``meta.json`` as pydantic models, read once by the contract
(:class:`affectlab.data.contract.DatasetDir` ``.schema``) and the one owner of the scale rules.

- :class:`DatasetMeta`: name, modality, format_version, label_set, scales, provenance,
  truth_columns, aggregator (unknown keys are kept and written back; the known ones are
  validated).
- :class:`LabelSet`: the classes a classifier predicts (``scale``, ``names``, ``ordinal``).
- the scales (:class:`NominalScale`, :class:`OrdinalScale`, :class:`IntervalScale`, the union
  :data:`Scale`) come from :mod:`affectlab.scales`.

The rules, in one place: the default (label-set) scale; whether a scale's classes are ordered
(the label set's ``ordinal`` flag for the label-set scale, ordinal / Likert for the others); a
scale's class names (Likert: ``low``, ``high``) and number of classes; a rating's valid range.
Every problem is a :class:`ContractError` naming the file and the field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from affectlab.aggregators import DEFAULT_AGGREGATOR, check_aggregator
from affectlab.errors import UserDataError
from affectlab.scales import (
    LIKERT_CLASSES,
    SCALE_TYPES,
    IntervalScale,
    NominalScale,
    OrdinalScale,
    Scale,
    as_scale,
    describe_validation_error,
)

__all__ = ["FORMAT_VERSION", "LIKERT_CLASSES", "MODALITIES", "SCALE_TYPES", "ContractError",
           "DatasetMeta", "IntervalScale", "LabelSet", "NominalScale", "OrdinalScale", "Scale",
           "UnknownScaleError", "as_dataset_meta", "as_scale", "default_label_set"]

FORMAT_VERSION = 1
MODALITIES = ("face", "speech")


class ContractError(UserDataError):
    """A dataset directory, or the tables about to become one, break the contract."""


class UnknownScaleError(KeyError, ValueError):
    """A scale name the dataset does not declare (a KeyError for lookups, a ValueError for
    arguments)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class LabelSet(BaseModel):
    """The classes a classifier predicts: the ratings of ``scale`` over ``names`` (their order
    fixes the class indices); ``ordinal``: whether those classes are ordered."""

    model_config = ConfigDict(extra="allow", frozen=True)

    scale: str = "category"
    names: list[str] = Field(min_length=1)
    ordinal: bool = False


class DatasetMeta(BaseModel):
    """``meta.json`` of a dataset directory (SPEC §7; see :mod:`affectlab.data.contract`).

    ``aggregator``: how soft labels come from ratings.parquet wherever the dataset is read
    (training, evaluation, the Data page): one of :data:`affectlab.aggregators.AGGREGATORS`,
    default ``votes`` (SPEC §1's vote fractions / mean Likert rating).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    modality: Literal["face", "speech"]
    format_version: int = FORMAT_VERSION
    label_set: LabelSet
    scales: dict[str, Scale] = Field(min_length=1)
    provenance: dict[str, Any] = Field(default_factory=dict)
    truth_columns: list[str] = Field(default_factory=list)
    aggregator: str = DEFAULT_AGGREGATOR

    @field_validator("aggregator")
    @classmethod
    def _known_aggregator(cls, v: str) -> str:
        return check_aggregator(v)

    @field_validator("format_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if not 1 <= v <= FORMAT_VERSION:
            raise ValueError(f"this affectlab reads format_version 1..{FORMAT_VERSION}, got {v}")
        return v

    @model_validator(mode="after")
    def _label_set_names_a_scale(self) -> DatasetMeta:
        scale = self.label_set.scale
        if scale not in self.scales:
            raise ValueError(f"label_set.scale {scale!r} is not one of the scales "
                             f"({', '.join(self.scales)})")
        declared = self.scales[scale]
        if declared.categorical and list(self.label_set.names) != declared.class_names:
            raise ValueError(f"label_set.names {self.label_set.names} differ from the names of "
                             f"scale {scale!r} {declared.class_names}")
        return self

    # --- reading and writing ------------------------------------------------------------

    @classmethod
    def parse(cls, data: Any, source: str | os.PathLike = "meta.json") -> DatasetMeta:
        """Validate a meta dict (or return a DatasetMeta as is); :class:`ContractError` names
        ``source`` and the field."""
        if isinstance(data, DatasetMeta):
            return data
        if not isinstance(data, Mapping):
            raise ContractError(f"{source}: must hold a JSON object, got {type(data).__name__}")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            path, msg, _ = describe_validation_error(exc)
            raise ContractError(f"{source}: {path}: {msg}" if path else f"{source}: {msg}"
                                ) from exc

    @classmethod
    def read(cls, path: str | os.PathLike) -> DatasetMeta:
        """Read and validate ``path`` (a dataset directory or its meta.json)."""
        path = Path(path)
        if path.is_dir():
            path = path / "meta.json"
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise ContractError(f"{path}: cannot read ({exc})") from exc
        except json.JSONDecodeError as exc:
            raise ContractError(f"{path}: invalid JSON ({exc})") from exc
        return cls.parse(data, path)

    def to_json(self) -> dict[str, Any]:
        """The dict meta.json holds (unknown keys included; the same JSON it was read from,
        plus the defaults of keys it lacked; ``aggregator`` only when it was given, so the
        meta of a dataset older than the field writes back unchanged)."""
        data = self.model_dump()
        if "aggregator" not in self.model_fields_set:
            del data["aggregator"]
        return data

    # --- the scale rules ----------------------------------------------------------------

    @property
    def label_scale(self) -> str:
        """The default scale: the label set's (what a run trains on unless told otherwise)."""
        return self.label_set.scale

    @property
    def label_names(self) -> list[str]:
        """The label set's class names, in class-index order."""
        return list(self.label_set.names)

    def scale(self, name: str | None = None) -> NominalScale | OrdinalScale | IntervalScale:
        """The scale ``name`` (default: the label set's); :class:`UnknownScaleError` names the
        known ones."""
        name = self.label_scale if name is None else name
        try:
            return self.scales[name]
        except (KeyError, TypeError):
            raise UnknownScaleError(f"dataset {self.name!r} has no scale {name!r} "
                                    f"(known: {', '.join(self.scales)})") from None

    def is_ordered(self, name: str | None = None) -> bool:
        """Whether the classes of ``name`` are ordered (EMD² needs that): the label set's
        ``ordinal`` flag for the label-set scale; ordinal and Likert/interval scales otherwise."""
        name = self.label_scale if name is None else name
        if name == self.label_scale:
            return bool(self.label_set.ordinal)
        return self.scale(name).ordered

    def class_names(self, name: str | None = None) -> list[str]:
        """The K classes of a soft label on ``name``: its names, or ``low``, ``high`` (Likert)."""
        return self.scale(name).class_names

    def num_classes(self, name: str | None = None) -> int:
        return self.scale(name).num_classes

    def value_range(self, name: str | None = None) -> tuple[float, float]:
        """(low, high) of a rating on ``name``: Likert end points, or 0..K−1 (class indices)."""
        return self.scale(name).value_range()


def as_dataset_meta(meta: Any, source: str | os.PathLike = "meta.json") -> DatasetMeta:
    """A DatasetMeta from a DatasetMeta (as is), a meta dict (validated) or anything with a
    ``schema`` DatasetMeta (a DatasetDir)."""
    schema = getattr(meta, "schema", None)
    if isinstance(schema, DatasetMeta):
        return schema
    return DatasetMeta.parse(meta, source)


def default_label_set(scales: Mapping[str, Any]) -> LabelSet:
    """The label set of ratings without one declared: the first nominal / ordinal scale (its
    names; ordered when ordinal), else the first scale's two-class soft label (low, high)."""
    typed = {name: as_scale(s, f"scales[{name!r}]") for name, s in scales.items()}
    if not typed:
        raise ValueError("scales must declare at least one scale")
    for name, s in typed.items():
        if s.categorical:
            return LabelSet(scale=name, names=s.class_names, ordinal=s.ordered)
    first = next(iter(typed))
    return LabelSet(scale=first, names=list(LIKERT_CLASSES), ordinal=True)
