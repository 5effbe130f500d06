"""Losses for soft labels, one registry by name (timm-style): ``create(name, **params)`` builds
an ``nn.Module``, ``available()`` lists what can be built, for the UI and the CLI.

Forward signatures differ by family (``LossSpec.inputs`` says which):
- ``ce``, ``emd2``: (logits (N, K), target (N, K) soft or (N,) int)
- ``fspl-*``: (g_anchor, g_similar, g_dissimilar (B, d), c_similar, c_dissimilar (B,)); the
  triplets come from ``BalancedTripletSampler``, the anchors' CE is a separate ``ce`` loss
- ``sgm``: (z (N, d), target (N, K) soft or (N,) int), batches from ``ClassBalancedBatchSampler``
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from affectlab.losses._checks import float32_loss, no_autocast, skip_value_checks, value_checks_on
from affectlab.losses.emd import EMD2Loss, emd1, emd2
from affectlab.losses.fspl import (
    DIVERGENCES,
    FSPLLoss,
    embedding_similarity,
    fspl,
    fspl_generic,
    torch_label_similarity,
)
from affectlab.losses.samplers import ClassBalancedBatchSampler
from affectlab.losses.sgm import SGMLoss, sgm_loss
from affectlab.losses.soft_ce import (
    SoftCrossEntropyLoss,
    class_weights_from_soft_labels,
    soft_cross_entropy,
)
from affectlab.losses.triplets import MAX_DECIMALS, BalancedTripletSampler, Triplets
from affectlab.registry import Param, ParamError, Registry

__all__ = [
    "MAX_DECIMALS", "BalancedTripletSampler", "ClassBalancedBatchSampler", "EMD2Loss", "FSPLLoss",
    "LossSpec", "Param", "ParamError", "SGMLoss", "SoftCrossEntropyLoss", "Triplets", "available",
    "check_params", "class_weights_from_soft_labels", "create", "embedding_similarity", "emd1",
    "emd2", "float32_loss", "fspl", "fspl_generic", "no_autocast", "names", "register", "registered",
    "sgm_loss", "skip_value_checks", "soft_cross_entropy", "torch_label_similarity",
    "unregister", "value_checks_on",
]


@dataclass(frozen=True)
class LossSpec:
    """What the registry can build: ``params`` maps each parameter to its default,
    ``param_specs`` holds their declarations (type, bounds, help)."""

    name: str
    params: dict[str, Any]
    description: str
    ordinal_only: bool = False
    inputs: str = ""
    factory: Callable[..., nn.Module] | None = field(default=None, repr=False, compare=False)
    param_specs: tuple[Param, ...] = field(default=(), repr=False, compare=False)


_FSPL_NAMES = {"kl": "KL", "rkl": "reverse KL", "pearson": "Pearson χ²",
               "hellinger": "squared Hellinger", "js": "Jensen–Shannon"}
_LOGITS = "logits (N, K), target (N, K) soft or (N,) int"

_LOSSES = Registry("loss", plural="losses", metadata={"ordinal_only": False, "inputs": ""})
register = _LOSSES.register
names = _LOSSES.names
unregister = _LOSSES.unregister
registered = _LOSSES.registered

register("ce", SoftCrossEntropyLoss,
         description="cross-entropy against soft labels, optional class weights N/(K·Σy)",
         inputs=_LOGITS)
for _d in DIVERGENCES:
    register(f"fspl-{_d}", functools.partial(FSPLLoss, divergence=_d),
             params=FSPLLoss.param_specs,
             description=f"f-SPL ({_FSPL_NAMES[_d]}) on balanced triplets: "
                         "α·(f-SPL(S_s,C_s)+f-SPL(S_d,C_d))",
             inputs="g_anchor, g_similar, g_dissimilar (B, d), c_similar, c_dissimilar (B,)")
register("emd2", EMD2Loss,
         description="squared Earth Mover's Distance Σ(CDF(p)−CDF(t))² over ordered classes",
         ordinal_only=True, inputs=_LOGITS)
register("sgm", SGMLoss,
         description="Structured Gaussian Manifold: ‖P(w|z)−y‖² with Gaussian class posteriors",
         inputs="z (N, d), target (N, K) soft or (N,) int")


def available() -> list[LossSpec]:
    """Every registered loss, in a stable order (params are fresh copies, safe to modify)."""
    return [LossSpec(e.name, e.defaults(), e.description, bool(e.metadata["ordinal_only"]),
                     str(e.metadata["inputs"]), e.factory, e.params)
            for e in _LOSSES.available()]


def check_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` of loss ``name`` checked (ParamError naming the loss and parameter), with the
    defaults of the others filled in."""
    return _LOSSES.check(name, params)


def create(name: str, **params) -> nn.Module:
    """The loss ``name`` built with ``params`` (unset ones keep their defaults).

    An unknown name, an unknown parameter or a value outside its declaration gets
    :class:`ParamError` (a ValueError) naming them and what is valid.
    """
    return _LOSSES.create(name, **params)
