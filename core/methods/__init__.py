"""Method registry: every training procedure by name (the UI and CLI list them from here).

Each entry points at a :class:`affectlab.methods.base.Method` subclass, imported on first use. A
method class declares ``name``, ``description`` (one line), ``defaults`` (its hyper-parameters
with the papers' defaults), ``modalities`` and ``ordinal_only``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from affectlab.methods.base import Method, Prediction, StepResult, TrainSetInfo

_REGISTRY: dict[str, str] = {
    "ce": "affectlab.methods.softlabel:SoftCE",
    "ce+fspl-kl": "affectlab.methods.fspl:CEFSPL",
    "ce+fspl-rkl": "affectlab.methods.fspl:CEFSPL",
    "ce+fspl-pearson": "affectlab.methods.fspl:CEFSPL",
    "ce+fspl-hellinger": "affectlab.methods.fspl:CEFSPL",
    "ce+fspl-js": "affectlab.methods.fspl:CEFSPL",
    "emd2": "affectlab.methods.softlabel:EMD2Method",
    "ce+emd2": "affectlab.methods.softlabel:CEEMD2Method",
    "sgm": "affectlab.methods.sgm:SGMMethod",
    "ldlva": "affectlab.methods.ldlva:LDLVA",
    "dmue": "affectlab.methods.dmue:DMUE",
}


@dataclass(frozen=True)
class MethodSpec:
    name: str
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    modalities: tuple[str, ...] = ("face", "speech")
    ordinal_only: bool = False
    implemented: bool = True


def _load(name: str) -> type[Method]:
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def method_class(name: str) -> type[Method]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(_REGISTRY)}")
    try:
        return _load(name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"method {name!r} is registered but not available in this build ({exc})") from exc


def available() -> list[MethodSpec]:
    """Every registered method with its parameters and defaults."""
    specs = []
    for name in _REGISTRY:
        try:
            cls = _load(name)
        except (ImportError, AttributeError):
            specs.append(MethodSpec(name, "not available in this build", implemented=False))
            continue
        specs.append(MethodSpec(name, cls.describe(name), dict(cls.default_params(name)),
                                tuple(cls.modalities), bool(cls.ordinal_only)))
    return specs


def create(name: str, model, info: TrainSetInfo, **params: Any) -> Method:
    """Build method ``name`` around ``model``; bad parameters get an error (see ``check_params``)."""
    cls = method_class(name)
    return cls(model, info, method_name=name, **{**cls.default_params(name), **params})


__all__ = ["Method", "MethodSpec", "Prediction", "StepResult", "TrainSetInfo", "available",
           "create", "method_class"]
