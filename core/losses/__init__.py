"""Losses for soft labels, one registry by name (timm-style): ``create(name, **params)`` builds
an ``nn.Module``, ``available()`` lists what can be built, for the UI and the CLI.

Forward signatures differ by family (``LossSpec.inputs`` says which):
- ``ce``, ``emd2``: (logits (N, K), target (N, K) soft or (N,) int)
- ``fspl-*``: (g_anchor, g_similar, g_dissimilar (B, d), c_similar, c_dissimilar (B,)); the
  triplets come from ``BalancedTripletSampler``, the anchors' CE is a separate ``ce`` loss
- ``sgm``: (z (N, d), target (N, K) soft or (N,) int), batches from ``ClassBalancedBatchSampler``
"""

from __future__ import annotations

import inspect
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
from affectlab.losses.triplets import BalancedTripletSampler, Triplets

__all__ = [
    "BalancedTripletSampler", "ClassBalancedBatchSampler", "EMD2Loss", "FSPLLoss", "LossSpec",
    "SGMLoss", "SoftCrossEntropyLoss", "Triplets", "available", "class_weights_from_soft_labels",
    "float32_loss", "no_autocast", "skip_value_checks", "value_checks_on",
    "create", "embedding_similarity", "emd1", "emd2", "fspl", "fspl_generic", "sgm_loss",
    "soft_cross_entropy", "torch_label_similarity",
]


@dataclass(frozen=True)
class LossSpec:
    """What the registry can build: ``params`` maps each parameter to its default."""

    name: str
    params: dict[str, Any]
    description: str
    ordinal_only: bool = False
    inputs: str = ""
    factory: Callable[..., nn.Module] | None = field(default=None, repr=False, compare=False)


def _defaults(cls: type, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    sig = inspect.signature(cls.__init__)
    return {k: p.default for k, p in sig.parameters.items()
            if k != "self" and k not in skip and p.default is not inspect.Parameter.empty}


_FSPL_NAMES = {"kl": "KL", "rkl": "reverse KL", "pearson": "Pearson χ²",
               "hellinger": "squared Hellinger", "js": "Jensen–Shannon"}
_LOGITS = "logits (N, K), target (N, K) soft or (N,) int"

_SPECS: list[LossSpec] = [
    LossSpec("ce", _defaults(SoftCrossEntropyLoss),
             "cross-entropy against soft labels, optional class weights N/(K·Σy)",
             inputs=_LOGITS, factory=SoftCrossEntropyLoss),
    *[LossSpec(f"fspl-{d}", _defaults(FSPLLoss, skip=("divergence",)),
               f"f-SPL ({_FSPL_NAMES[d]}) on balanced triplets: α·(f-SPL(S_s,C_s)+f-SPL(S_d,C_d))",
               inputs="g_anchor, g_similar, g_dissimilar (B, d), c_similar, c_dissimilar (B,)",
               factory=lambda _d=d, **kw: FSPLLoss(divergence=_d, **kw))
      for d in DIVERGENCES],
    LossSpec("emd2", _defaults(EMD2Loss),
             "squared Earth Mover's Distance Σ(CDF(p)−CDF(t))² over ordered classes",
             ordinal_only=True, inputs=_LOGITS, factory=EMD2Loss),
    LossSpec("sgm", _defaults(SGMLoss),
             "Structured Gaussian Manifold: ‖P(w|z)−y‖² with Gaussian class posteriors",
             inputs="z (N, d), target (N, K) soft or (N,) int", factory=SGMLoss),
]
_REGISTRY: dict[str, LossSpec] = {s.name: s for s in _SPECS}


def available() -> list[LossSpec]:
    """Every registered loss, in a stable order (params are fresh copies, safe to modify)."""
    return [LossSpec(s.name, dict(s.params), s.description, s.ordinal_only, s.inputs, s.factory)
            for s in _SPECS]


def create(name: str, **params) -> nn.Module:
    """The loss ``name`` built with ``params`` (unset ones keep their defaults).

    Unknown name → ValueError listing the known ones; unknown parameter → TypeError naming it
    and listing the valid ones.
    """
    spec = _REGISTRY.get(name)
    if spec is None:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(_REGISTRY)}")
    unknown = sorted(set(params) - set(spec.params))
    if unknown:
        raise TypeError(f"unknown parameter(s) {', '.join(map(repr, unknown))} for loss "
                        f"{name!r}; valid: {', '.join(spec.params) or '(none)'}")
    assert spec.factory is not None
    return spec.factory(**params)
