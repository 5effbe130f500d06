"""Method registry: every training procedure by name (the UI and CLI list them from here).

Each entry is a :class:`affectlab.methods.base.Method` subclass, which declares
``description`` (one line), ``param_specs`` (its hyper-parameters: type, the papers' default,
bounds, help), ``modalities`` and ``ordinal_only``. ``register`` adds one (a plugin, a test's
tiny method); :func:`check_compatible` is the one rule of which methods suit which data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from affectlab.methods.base import Method, Prediction, StepResult, TrainSetInfo
from affectlab.methods.dmue import DMUE
from affectlab.methods.fspl import CEFSPL
from affectlab.methods.ldlva import LDLVA
from affectlab.methods.sgm import SGMMethod
from affectlab.methods.softlabel import CEEMD2Method, EMD2Method, SoftCE
from affectlab.methods.triplet import TripletMethod
from affectlab.registry import Param, ParamError, Registry

_METHODS = Registry("method", metadata={"modalities": ("face", "speech"), "ordinal_only": False})
register = _METHODS.register
names = _METHODS.names
unregister = _METHODS.unregister
registered = _METHODS.registered

for _name, _cls in [("ce", SoftCE),
                    *[(f"ce+fspl-{d}", CEFSPL) for d in ("kl", "rkl", "pearson", "hellinger", "js")],
                    ("emd2", EMD2Method), ("ce+emd2", CEEMD2Method), ("sgm", SGMMethod),
                    ("ldlva", LDLVA), ("dmue", DMUE), ("triplet", TripletMethod)]:
    register(_name, _cls, description=_cls.describe(_name))


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: ``params`` maps each parameter to its default, ``param_specs``
    holds their declarations. ``implemented`` is always True (every registered method is
    imported when registered); it stays for callers that filter on it."""

    name: str
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    modalities: tuple[str, ...] = ("face", "speech")
    ordinal_only: bool = False
    implemented: bool = True
    param_specs: tuple[Param, ...] = field(default=(), repr=False, compare=False)


def method_class(name: str) -> type[Method]:
    """The class registered as ``name`` (ParamError listing the known names otherwise)."""
    return _METHODS.get(name).factory


def available() -> list[MethodSpec]:
    """Every registered method with its parameters and defaults."""
    return [MethodSpec(e.name, e.description, e.defaults(), tuple(e.metadata["modalities"]),
                       bool(e.metadata["ordinal_only"]), True, e.params)
            for e in _METHODS.available()]


def check_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` of method ``name`` checked (names, types, bounds, choices), defaults filled
    in; else ParamError naming the method and the parameter."""
    return _METHODS.check(name, params)


def incompatibility(name: str, modality: str, ordinal: bool, scale: str | None = None) -> str | None:
    """Why method ``name`` cannot train on ``modality`` data with a scale whose classes are
    (``ordinal``) or are not ordered, or None when it can. ``scale`` only names the scale in
    the reason."""
    entry = _METHODS.get(name)
    modalities = tuple(entry.metadata["modalities"])
    if modality not in modalities:
        return f"method {name!r} supports {', '.join(modalities)} data, not {modality}"
    if entry.metadata["ordinal_only"] and not ordinal:
        which = f"scale {scale!r}" if scale else "the scale"
        return (f"method {name!r} needs ordered classes; {which} is not ordinal (pick an ordinal "
                "scale such as intensity)")
    return None


def check_compatible(name: str, modality: str, ordinal: bool, scale: str | None = None) -> None:
    """ParamError with :func:`incompatibility`'s reason when ``name`` does not suit the data."""
    reason = incompatibility(name, modality, ordinal, scale)
    if reason is not None:
        raise ParamError(reason)


def create(name: str, model, info: TrainSetInfo, **params: Any) -> Method:
    """Build method ``name`` around ``model``; bad parameters get ParamError (the class checks
    them against its ``param_specs``, for direct construction too)."""
    return method_class(name)(model, info, method_name=name, **params)


__all__ = ["Method", "MethodSpec", "Param", "ParamError", "Prediction", "StepResult",
           "TrainSetInfo", "available", "check_compatible", "check_params", "create",
           "incompatibility", "method_class", "names", "register", "registered", "unregister"]
