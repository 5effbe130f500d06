"""What the app's Train form offers, derived from the registries and the dataset's meta.json,
and the config it builds. The form holds widgets only; every choice and check is made here.

- scales: every scale of the dataset (the label set's first, the default); a scale is ordered
  when the label set says ``ordinal`` (for the label-set scale) or its type is ordinal/Likert,
  the same rule the trainer applies;
- models: the model registry filtered by the dataset's modality;
- methods: the method registry, minus methods for another modality and, unless the scale is
  ordered, minus ``ordinal_only`` ones (EMD², CE+EMD²);
- hyper-parameters: one :class:`ParamField` per registry default, its widget kind from the
  default's type.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from affectlab.engine.config import ConfigError, RunConfig, validate_config

__all__ = ["PARAM_KINDS", "ParamField", "ScaleChoice", "build_run_config", "changed_params",
           "default_scale", "method_choices", "method_param_fields", "model_choices",
           "model_param_fields", "param_fields", "parse_param", "scale_choices",
           "scale_is_ordinal", "training_defaults"]

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


def _check_meta(meta: Any) -> dict[str, Any]:
    if not isinstance(meta, dict) or not isinstance(meta.get("scales"), dict):
        raise TypeError("meta must be a dataset's meta.json dict with a 'scales' mapping")
    return meta


def default_scale(meta: dict[str, Any]) -> str:
    """The label set's scale (what a run trains on when ``scale`` is left unset)."""
    return str(_check_meta(meta).get("label_set", {}).get("scale", "category"))


def scale_is_ordinal(meta: dict[str, Any], scale: str) -> bool:
    """Whether ``scale``'s classes are ordered (EMD² needs that)."""
    meta = _check_meta(meta)
    if scale not in meta["scales"]:
        raise ValueError(f"scale must be one of {list(meta['scales'])}, got {scale!r}")
    if scale == default_scale(meta):
        return bool(meta.get("label_set", {}).get("ordinal", False))
    return meta["scales"][scale].get("type") in ("ordinal", "likert")


def scale_choices(meta: dict[str, Any]) -> list[ScaleChoice]:
    """Every scale of the dataset, the label set's first."""
    meta = _check_meta(meta)
    label = default_scale(meta)
    out = []
    for name, spec in meta["scales"].items():
        kind = str(spec.get("type", "nominal"))
        classes = tuple(spec.get("names") or (("low", "high") if kind == "likert" else ()))
        out.append(ScaleChoice(name, kind, scale_is_ordinal(meta, name), name == label,
                               classes))
    return sorted(out, key=lambda c: not c.label_set)


def model_choices(modality: str):
    """Registered models for ``modality`` (list of ModelSpec)."""
    from affectlab.models import available

    if modality not in ("face", "speech"):
        raise ValueError(f"modality must be 'face' or 'speech', got {modality!r}")
    return available(modality)


def method_choices(modality: str, ordinal: bool):
    """Registered, implemented methods usable on ``modality`` data with a scale whose classes
    are (``ordinal=True``) or are not ordered (list of MethodSpec, registry order)."""
    from affectlab.methods import available

    if modality not in ("face", "speech"):
        raise ValueError(f"modality must be 'face' or 'speech', got {modality!r}")
    if not isinstance(ordinal, bool):
        raise TypeError(f"ordinal must be a bool, got {type(ordinal).__name__}")
    return [s for s in available() if s.implemented and modality in s.modalities
            and (ordinal or not s.ordinal_only)]


@dataclass(frozen=True)
class ParamField:
    """One hyper-parameter widget: kind ∈ :data:`PARAM_KINDS` (bool → checkbox, int/float →
    number input, str → text input or, with ``choices``, a select box, yaml → text input
    parsed as YAML, for defaults such as None or lists)."""

    name: str
    kind: str
    default: Any
    choices: tuple[Any, ...] = ()


def _kind(value: Any) -> str:
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "yaml"


def param_fields(params: dict[str, Any], exclude: tuple[str, ...] = (),
                 choices: dict[str, tuple[Any, ...]] | None = None) -> list[ParamField]:
    """Widgets for a registry's ``params`` (name → default), minus ``exclude``."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of name → default, got {type(params).__name__}")
    choices = choices or {}
    return [ParamField(name, _kind(default), default, tuple(choices.get(name, ())))
            for name, default in params.items() if name not in exclude]


def model_param_fields(spec) -> list[ParamField]:
    """Widgets for a ModelSpec's parameters (num_classes left to the engine)."""
    return param_fields(dict(spec.params), exclude=_ENGINE_SET_MODEL_PARAMS)


def method_param_fields(spec) -> list[ParamField]:
    """Widgets for a MethodSpec's parameters; a method class may declare ``param_choices``
    (name → allowed values) to get select boxes."""
    from affectlab.methods import method_class

    choices = getattr(method_class(spec.name), "param_choices", None) or {}
    return param_fields(dict(spec.params), choices=choices)


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


def _check_method(method: str, modality: str, scale: str, ordinal: bool) -> None:
    from affectlab.methods import available

    specs = {s.name: s for s in available()}
    spec = specs.get(method)
    if spec is None or not spec.implemented:
        raise ConfigError(f"method: unknown or unavailable method {method!r} (known: "
                          f"{', '.join(n for n, s in specs.items() if s.implemented)})")
    if modality not in spec.modalities:
        raise ConfigError(f"method: {method!r} supports {', '.join(spec.modalities)} data, "
                          f"not {modality}")
    if spec.ordinal_only and not ordinal:
        raise ConfigError(f"method: {method!r} needs ordered classes; scale {scale!r} is not "
                          "ordinal (pick an ordinal scale such as intensity)")


def build_run_config(dataset: str | os.PathLike, meta: dict[str, Any], *, model: str,
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
    modality = str(meta.get("modality"))
    scale = scale or default_scale(meta)
    if scale not in meta["scales"]:
        raise ConfigError(f"scale: {scale!r} is not a scale of this dataset "
                          f"(known: {', '.join(meta['scales'])})")
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
