"""What the app's Train form offers, derived from the registries and the dataset's meta.json,
and the config it builds. The form holds widgets only; every choice and check is made here.

- scales: every scale of the dataset (the label set's first, the default); a scale is ordered
  when the label set says ``ordinal`` (for the label-set scale) or its type is ordinal/Likert,
  the same rule the trainer applies;
- models: the model registry filtered by the dataset's modality;
- methods: the method registry, minus those :func:`affectlab.methods.incompatibility` refuses
  for the data (another modality; ``ordinal_only`` ones such as EMD² on an unordered scale), the
  rule the trainer applies;
- hyper-parameters: one :class:`ParamField` per declared registry parameter, its widget kind,
  bounds and help from the declaration.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from affectlab.data.schema import DatasetMeta, as_dataset_meta
from affectlab.engine.config import (
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_SEED,
    ConfigError,
    RunConfig,
    validate_config,
)
from affectlab.registry import Param

__all__ = ["PARAM_KINDS", "ParamField", "ScaleChoice", "build_run_config", "changed_params",
           "default_scale", "method_choices", "method_param_fields", "model_choices",
           "model_param_fields", "param_field", "param_fields", "parse_param", "scale_choices",
           "scale_is_ordinal", "training_defaults", "training_limits"]

PARAM_KINDS = ("bool", "int", "float", "str", "yaml")
_ENGINE_SET_MODEL_PARAMS = ("num_classes",)  # the engine sets these from the label scale


@dataclass(frozen=True)
class ScaleChoice:
    """name; type (nominal | ordinal | likert); ordinal: classes are ordered; label_set: the
    dataset's label-set scale; classes: class names (Likert scales: low/high, 2 classes)."""

    name: str
    type: str
    ordinal: bool
    label_set: bool
    classes: tuple[str, ...]

    def describe(self) -> str:
        order = "ordered" if self.ordinal else "unordered"
        tag = ", label set" if self.label_set else ""
        return f"{self.name} ({self.type}, {order}, {len(self.classes)} classes{tag})"


def _check_meta(meta: Any) -> DatasetMeta:
    """The dataset's typed meta (a DatasetMeta, or a meta.json dict validated into one)."""
    if not isinstance(meta, DatasetMeta | dict):
        raise TypeError("meta must be a dataset's DatasetMeta or meta.json dict, "
                        f"got {type(meta).__name__}")
    return as_dataset_meta(meta)


def default_scale(meta: DatasetMeta | dict[str, Any]) -> str:
    """The label set's scale (what a run trains on when ``scale`` is left unset)."""
    return _check_meta(meta).label_scale


def scale_is_ordinal(meta: DatasetMeta | dict[str, Any], scale: str) -> bool:
    """Whether ``scale``'s classes are ordered (EMD² needs that); the schema's rule,
    :meth:`DatasetMeta.is_ordered`, which the trainer applies too."""
    schema = _check_meta(meta)
    if scale not in schema.scales:
        raise ValueError(f"scale must be one of {list(schema.scales)}, got {scale!r}")
    return schema.is_ordered(scale)


def scale_choices(meta: DatasetMeta | dict[str, Any]) -> list[ScaleChoice]:
    """Every scale of the dataset, the label set's first."""
    schema = _check_meta(meta)
    out = [ScaleChoice(name, spec.type, schema.is_ordered(name), name == schema.label_scale,
                       tuple(spec.class_names))
           for name, spec in schema.scales.items()]
    return sorted(out, key=lambda c: not c.label_set)


def model_choices(modality: str):
    """Registered models for ``modality`` (list of ModelSpec)."""
    from affectlab.models import available

    if modality not in ("face", "speech"):
        raise ValueError(f"modality must be 'face' or 'speech', got {modality!r}")
    return available(modality)


def method_choices(modality: str, ordinal: bool):
    """Registered methods usable on ``modality`` data with a scale whose classes are
    (``ordinal=True``) or are not ordered (list of MethodSpec, registry order)."""
    from affectlab.methods import available, incompatibility

    if modality not in ("face", "speech"):
        raise ValueError(f"modality must be 'face' or 'speech', got {modality!r}")
    if not isinstance(ordinal, bool):
        raise TypeError(f"ordinal must be a bool, got {type(ordinal).__name__}")
    return [s for s in available() if incompatibility(s.name, modality, ordinal) is None]


@dataclass(frozen=True)
class ParamField:
    """One hyper-parameter widget: kind ∈ :data:`PARAM_KINDS` (bool → checkbox, int/float →
    number input within ``low``..``high``, str → text input or, with ``choices``, a select box,
    yaml → text input parsed as YAML, for values such as None, lists or SGM's int-or-'bic').

    ``low``/``high`` are inclusive widget limits (None: unbounded); an open bound (> 0) is
    given as its limit and refused by the registry at launch, as ``help`` says.
    """

    name: str
    kind: str
    default: Any
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    help: str = ""


def _kind(p: Param) -> str:
    if p.also or p.kind is object:
        return "yaml"
    return p.kind.__name__


def param_field(p: Param) -> ParamField:
    """The widget of one declared parameter; its help says what values are allowed."""
    kind = _kind(p)
    numeric = kind in ("int", "float")
    cast = int if kind == "int" else float
    low = cast(p.low) if numeric and p.low is not None else None
    high = cast(p.high) if numeric and p.high is not None else None
    allowed = "" if p.kind is bool else f"{p.expected[:1].upper()}{p.expected[1:]}."
    return ParamField(p.name, kind, p.default, p.choices if kind == "str" else (), low, high,
                      " ".join(t for t in (f"{p.help}." if p.help else "", allowed) if t))


def param_fields(params: Sequence[Param], exclude: tuple[str, ...] = ()) -> list[ParamField]:
    """Widgets for a registry entry's declared ``params``, minus ``exclude``."""
    if isinstance(params, str | dict) or not all(isinstance(p, Param) for p in params):
        raise TypeError(f"params must be a sequence of Param declarations, got "
                        f"{type(params).__name__}")
    return [param_field(p) for p in params if p.name not in exclude]


def model_param_fields(spec) -> list[ParamField]:
    """Widgets for a ModelSpec's parameters (num_classes left to the engine)."""
    return param_fields(spec.param_specs, exclude=_ENGINE_SET_MODEL_PARAMS)


def method_param_fields(spec) -> list[ParamField]:
    """Widgets for a MethodSpec's parameters."""
    return param_fields(spec.param_specs)


def parse_param(field: ParamField, raw: Any) -> Any:
    """A widget's value as the parameter's type (``yaml`` fields parse their text)."""
    if field.kind == "yaml":
        if not isinstance(raw, str):
            return raw
        try:
            return yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{field.name}: cannot parse {raw!r} ({exc})") from exc
    if field.kind == "int":
        return int(raw)
    if field.kind == "float":
        return float(raw)
    if field.kind == "bool":
        return bool(raw)
    return str(raw)


def changed_params(fields: list[ParamField], values: dict[str, Any]) -> dict[str, Any]:
    """The parameters whose value differs from the registry default (only those go into the
    config, so it records the choices made, and later default changes still apply to the rest)."""
    out = {}
    for f in fields:
        if f.name in values:
            value = parse_param(f, values[f.name])
            if value != f.default or type(value) is not type(f.default):
                out[f.name] = value
    return out


def training_defaults(method: str) -> dict[str, Any]:
    """epochs, batch_size, lr, weight_decay and seed a run of ``method`` gets by default (from
    :class:`RunConfig`, which fills the method-dependent lr and batch size)."""
    from affectlab.models import available

    model = available()[0].name  # any registered model: the defaults do not depend on it
    cfg = validate_config({"dataset": ".", "model": model, "method": method, "name": "defaults"})
    return {k: getattr(cfg, k) for k in ("epochs", "batch_size", "lr", "weight_decay", "seed")}


def training_limits() -> dict[str, tuple[Any, Any]]:
    """(low, high) of the number fields of the form, from :class:`RunConfig`'s bounds."""
    return {"epochs": (1, MAX_EPOCHS), "batch_size": (1, MAX_BATCH_SIZE), "lr": (0.0, None),
            "weight_decay": (0.0, None), "seed": (0, MAX_SEED)}


def _check_method(method: str, modality: str, scale: str, ordinal: bool) -> None:
    from affectlab.methods import incompatibility

    try:
        reason = incompatibility(method, modality, ordinal, scale)
    except ValueError as exc:  # an unknown name: the registry lists the known ones
        raise ConfigError(f"method: {exc}") from exc
    if reason is not None:
        raise ConfigError(f"method: {reason}")


def build_run_config(dataset: str | os.PathLike, meta: DatasetMeta | dict[str, Any], *,
                     model: str,
                     method: str, scale: str | None = None, pretrained: bool = False,
                     model_params: dict[str, Any] | None = None,
                     method_params: dict[str, Any] | None = None, **fields: Any) -> RunConfig:
    """A validated :class:`RunConfig`, or :class:`ConfigError` naming what is wrong.

    Beyond the config's own validation it checks what the trainer would only find out in the
    background: the model's modality, the method's modality and its need for ordered classes,
    pretrained weights. ``scale`` equal to the label set's is stored as None (the default).
    ``fields``: any other RunConfig field (epochs, batch_size, lr, weight_decay, seed, name…).
    """
    meta = _check_meta(meta)
    modality = meta.modality
    scale = scale or default_scale(meta)
    if scale not in meta.scales:
        raise ConfigError(f"scale: {scale!r} is not a scale of this dataset "
                          f"(known: {', '.join(meta.scales)})")
    models = {s.name: s for s in model_choices(modality)}
    if model not in models:
        raise ConfigError(f"model: {model!r} is not a {modality} model (available: "
                          f"{', '.join(models) or 'none'})")
    if pretrained and not models[model].has_pretrained:
        raise ConfigError(f"pretrained: model {model!r} has no pretrained weights")
    _check_method(method, modality, scale, scale_is_ordinal(meta, scale))
    name = fields.get("name")
    if isinstance(name, str) and not name.strip():
        fields = {k: v for k, v in fields.items() if k != "name"}
    data = {"dataset": str(Path(dataset)), "model": model, "method": method,
            "scale": None if scale == default_scale(meta) else scale, "pretrained": pretrained,
            "model_params": dict(model_params or {}), "method_params": dict(method_params or {}),
            **fields}
    return validate_config(data)
