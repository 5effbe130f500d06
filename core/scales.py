"""Rating scales (SPEC §1, §7): the typed form of one entry of ``meta.json``'s ``scales`` and the
rules every consumer applies to it (its classes, whether they are ordered, its value range).

Three kinds, told apart by ``type`` (a pydantic discriminated union, :data:`Scale`)::

    NominalScale   {"type": "nominal", "names": [...]}   unordered classes; a rating is a class
                                                          index 0..K−1 into ``names``
    OrdinalScale   {"type": "ordinal", "names": [...]}   ordered classes, ``names`` low to high
    IntervalScale  {"type": "likert" | "interval",       a number in [low, high]; its soft label
                    "low": lo, "high": hi}               has two classes, "low" and "high"

Unknown keys in an entry are kept (and written back); the known ones are validated. The models
live below :mod:`affectlab.labels` and :mod:`affectlab.agreement` in the package's layers so that
those can use them; :mod:`affectlab.data.schema` re-exports them with the dataset's own schema.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = ["LIKERT_CLASSES", "SCALE_TYPES", "IntervalScale", "NominalScale", "OrdinalScale",
           "Scale", "as_scale", "describe_validation_error", "scale_of"]

SCALE_TYPES: tuple[str, ...] = ("nominal", "ordinal", "likert", "interval")
LIKERT_CLASSES: tuple[str, str] = ("low", "high")


class _ScaleBase(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    categorical: ClassVar[bool]
    ordered: ClassVar[bool]
    level: ClassVar[str]  # Krippendorff's level of measurement (affectlab.agreement)

    def to_json(self) -> dict[str, Any]:
        """The entry as meta.json holds it (unknown keys included)."""
        return self.model_dump()

    def value_range(self) -> tuple[float, float]:
        raise NotImplementedError

    @property
    def class_names(self) -> list[str]:
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def check_values(self, values: np.ndarray, where: str) -> None:
        """Raise ValueError naming ``where`` when a (non-NaN) rating value is outside the scale:
        outside [low, high], or not an integer class index on a nominal / ordinal scale."""
        values = np.asarray(values, dtype=np.float64)
        lo, hi = self.value_range()
        with np.errstate(invalid="ignore"):
            out = (values < lo) | (values > hi)
        if out.any():
            raise ValueError(f"{where} must lie in [{lo:g}, {hi:g}]; found {values[out][0]:g}")
        if self.categorical:
            frac = np.isfinite(values) & (values != np.round(values))
            if frac.any():
                raise ValueError(f"{where} must be integer class indices into names, "
                                 f"found {values[frac][0]:g}")


class _ClassScale(_ScaleBase):
    names: list[str]
    categorical: ClassVar[bool] = True

    @field_validator("names")
    @classmethod
    def _check_names(cls, names: list[str]) -> list[str]:
        if not names:
            raise ValueError("needs a non-empty 'names' list")
        if any(not n for n in names):
            raise ValueError("class names must be non-empty strings")
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ValueError(f"class name {dup!r} appears twice")
        return names

    def value_range(self) -> tuple[float, float]:
        return 0.0, float(len(self.names) - 1)

    @property
    def class_names(self) -> list[str]:
        return list(self.names)


class NominalScale(_ClassScale):
    """Unordered classes; a rating is a class index into ``names``."""

    type: Literal["nominal"] = "nominal"
    ordered: ClassVar[bool] = False
    level: ClassVar[str] = "nominal"


class OrdinalScale(_ClassScale):
    """Ordered classes (``names`` from lowest to highest); a rating is a class index."""

    type: Literal["ordinal"] = "ordinal"
    ordered: ClassVar[bool] = True
    level: ClassVar[str] = "ordinal"


class IntervalScale(_ScaleBase):
    """A number in [low, high] (a Likert rating, or any bounded interval rating). Its soft label
    has the two classes ``low`` and ``high`` (SPEC §1); agreement is measured at the interval
    level, as soft labels place a rating on a line."""

    type: Literal["likert", "interval"] = "likert"
    low: int | float  # int stays int, so meta.json reads and writes back unchanged
    high: int | float
    categorical: ClassVar[bool] = False
    ordered: ClassVar[bool] = True
    level: ClassVar[str] = "interval"

    @field_validator("low", "high", mode="before")
    @classmethod
    def _finite_number(cls, v: Any) -> Any:
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"must be a number, got {v!r}")
        if not math.isfinite(v):
            raise ValueError(f"must be finite, got {v!r}")
        return v

    @model_validator(mode="after")
    def _ordered_ends(self) -> IntervalScale:
        if not self.low < self.high:
            raise ValueError(f"low must be < high, got low={self.low:g}, high={self.high:g}")
        return self

    def value_range(self) -> tuple[float, float]:
        return float(self.low), float(self.high)

    @property
    def class_names(self) -> list[str]:
        return list(LIKERT_CLASSES)


Scale = Annotated[NominalScale | OrdinalScale | IntervalScale, Field(discriminator="type")]
"""One scale entry of meta.json, as a typed object (pick by ``type``)."""

_SCALE = TypeAdapter(Scale)


def describe_validation_error(exc: ValidationError) -> tuple[str, str, str]:
    """The first problem of a pydantic error: (field path, what is wrong, error type). The path
    is dotted (``scales.valence.high``), without the discriminator's tag."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    tag_at = 2 if loc[:1] == ["scales"] else 0
    if len(loc) > tag_at and loc[tag_at] in SCALE_TYPES:
        del loc[tag_at]
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "missing"
    elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        given = err.get("input")
        got = given.get("type") if isinstance(given, Mapping) else None
        msg = f"'type' must be one of {SCALE_TYPES}, got {got!r}"
    return ".".join(loc), msg, str(err["type"])


def as_scale(scale: Any, what: str = "scale") -> NominalScale | OrdinalScale | IntervalScale:
    """``scale`` as a typed scale: a scale object is returned as is, a dict (one entry of
    meta['scales']) is validated. Raises TypeError / ValueError naming ``what``."""
    if isinstance(scale, _ScaleBase):
        return scale
    if not isinstance(scale, Mapping):
        raise TypeError(f"{what} must be a dict (one entry of meta['scales']) or a Scale, "
                        f"got {type(scale).__name__}")
    if "type" not in scale:
        raise ValueError(f"{what} must be one scale's entry of meta['scales'] with a 'type' key, "
                         f"got {dict(scale)!r}")
    if scale["type"] not in SCALE_TYPES:
        raise ValueError(f"{what}['type'] must be one of {SCALE_TYPES}, got {scale['type']!r}")
    try:
        return _SCALE.validate_python(dict(scale))
    except ValidationError as exc:
        path, msg, kind = describe_validation_error(exc)
        if kind == "missing":
            msg = f"{what}: a {scale['type']} scale needs {path!r}"
        else:
            msg = f"{what}['{path}']: {msg}" if path else f"{what}: {msg}"
        raise ValueError(msg) from exc


def scale_of(meta: Any, name: str, what: str = "scale_meta"
             ) -> NominalScale | OrdinalScale | IntervalScale:
    """The scale ``name`` from one scale's entry, a scale object, or a whole meta (a dict with
    ``scales`` or an object with a ``scales`` mapping, e.g. a DatasetMeta)."""
    scales = getattr(meta, "scales", None)
    if scales is None and isinstance(meta, Mapping) and "type" not in meta and "scales" in meta:
        scales = meta["scales"]
    if isinstance(scales, Mapping):
        if name not in scales:
            raise ValueError(f"scale {name!r} is not in {what}['scales'] "
                             f"(known: {', '.join(scales) or 'none'})")
        return as_scale(scales[name], f"{what}['scales'][{name!r}]")
    return as_scale(meta, what)
