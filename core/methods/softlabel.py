"""Soft-label methods that need only a loss on the model's logits (SPEC §2–3).

- ``ce``:      cross-entropy against the soft label, class c weighted by N / (K·Σᵢ yᵢᶜ) from the
               training soft labels (the f-SPL paper's weighting, §4.2).
- ``emd2``:    squared Earth Mover's Distance Σ(CDF(p) − CDF(t))² between softmax outputs and
               soft targets (seed 003). Ordered label sets only.
- ``ce+emd2``: CE + ``emd2_weight``·EMD² (default weight 1: the two terms have comparable scale
               at the start, ≈ log K vs ≈ K/4 for a uniform prediction; tune it per data set).

All three predict with the base class's softmax and use its entropy as uncertainty.
"""

from __future__ import annotations

from typing import Any

import torch

from affectlab.losses import EMD2Loss, class_weights_from_soft_labels, emd2, soft_cross_entropy
from affectlab.methods.base import Method, Prediction, StepResult, TrainSetInfo
from affectlab.models.base import EmotionModel
from affectlab.registry import Param

__all__ = ["CLASS_WEIGHTS", "CEEMD2Method", "EMD2Method", "SoftCE", "check_method_inputs"]

CLASS_WEIGHTS = Param("class_weights", bool, True,
                      help="weight class c by N/(K·Σᵢ yᵢᶜ) from the training soft labels "
                           "(f-SPL §4.2); off: all ones")


def check_method_inputs(model: EmotionModel, info: TrainSetInfo) -> None:
    """The model and the training-set description fit together (shared by the methods here).

    ``info.soft_labels`` must be (n_items, num_classes) and the model must output num_classes.
    """
    if not isinstance(info, TrainSetInfo):
        raise TypeError(f"info must be a TrainSetInfo, got {type(info).__name__}")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be an EmotionModel (nn.Module), got {type(model).__name__}")
    y = info.soft_labels
    if not isinstance(y, torch.Tensor) or y.shape != (info.n_items, info.num_classes):
        shape = tuple(y.shape) if hasattr(y, "shape") else type(y).__name__
        raise ValueError(f"info.soft_labels must be a tensor of shape (n_items={info.n_items}, "
                         f"num_classes={info.num_classes}), got {shape}")
    k = getattr(model, "num_classes", info.num_classes)
    if k != info.num_classes:
        raise ValueError(f"model outputs {k} classes but info.num_classes is {info.num_classes}")


class _LogitsMethod(Method):
    """Shared set-up: input checks and the CE class weights (a buffer, so it follows .to())."""

    def __init__(self, model: EmotionModel, info: TrainSetInfo, method_name: str = "",
                 **params: Any) -> None:
        check_method_inputs(model, info)
        super().__init__(model, info, method_name=method_name, **params)
        k = info.num_classes
        w = (class_weights_from_soft_labels(info.soft_labels)
             if self.params.get("class_weights", False)
             else torch.ones(k, dtype=torch.float64))
        self.register_buffer("class_weight", w.to(torch.float32))

    def _logits(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.model(batch["x"], batch.get("lengths")).logits

    def _ce(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return soft_cross_entropy(logits, y.to(logits.device), self.class_weight)


class SoftCE(_LogitsMethod):
    """``ce``: mean_i −Σ_c w_c·y_ic·log softmax(logits_i)_c, w_c = N / (K·Σᵢ yᵢᶜ).

    Params: ``class_weights`` (True: the f-SPL paper's weights; False: all ones).
    Batch: ``x``, ``lengths`` (speech), ``y`` (B, K) soft labels.
    """

    description = "cross-entropy on soft labels, classes weighted by N/(K·Σy) (f-SPL §4.2)"
    param_specs = (CLASS_WEIGHTS,)

    def training_step(self, batch: dict[str, Any], epoch: int, step: int) -> StepResult:
        ce = self._ce(self._logits(batch), batch["y"])
        return StepResult(ce, {"ce": ce.detach()})


class EMD2Method(_LogitsMethod):
    """``emd2``: mean_i Σ_k (CDF_k(softmax(logits_i)) − CDF_k(y_i))² over the ordered classes.

    Only for ordered label sets: constructing it with ``info.ordinal`` False raises ValueError.
    """

    description = "squared Earth Mover's Distance on softmax vs soft targets (ordered classes)"
    ordinal_only = True

    def __init__(self, model: EmotionModel, info: TrainSetInfo, method_name: str = "",
                 **params: Any) -> None:
        name = method_name or "emd2"
        if not getattr(info, "ordinal", False):
            raise ValueError(f"method {name!r} needs an ordered label set (intensity levels, "
                             "Likert bins): info.ordinal is False; use 'ce' for unordered "
                             "categories")
        super().__init__(model, info, method_name=method_name, **params)
        self.emd2 = EMD2Loss()

    def _emd2(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.emd2(logits, y.to(logits.device))

    def training_step(self, batch: dict[str, Any], epoch: int, step: int) -> StepResult:
        emd = self._emd2(self._logits(batch), batch["y"])
        return StepResult(emd, {"emd2": emd.detach()})

    def label_uncertainty(self, batch: dict[str, Any], pred: Prediction) -> torch.Tensor:
        """The per-item EMD² against the one-hot dataset label (its training loss)."""
        probs = pred.probs.float()
        labels = torch.as_tensor(batch["label"]).long().to(probs.device)
        return emd2(probs, torch.nn.functional.one_hot(labels, probs.shape[1]).to(probs))


class CEEMD2Method(EMD2Method):
    """``ce+emd2``: weighted soft CE (as ``ce``) + ``emd2_weight``·EMD² (default 1).

    Params: ``class_weights`` (CE weights, as ``ce``), ``emd2_weight`` ≥ 0. Parts logged:
    ``ce`` and ``emd2`` (unweighted).
    """

    description = "cross-entropy + weight·EMD² on soft targets (ordered classes)"
    param_specs = (CLASS_WEIGHTS,
                   Param("emd2_weight", float, 1.0, low=0, help="weight of the EMD² term"))

    def __init__(self, model: EmotionModel, info: TrainSetInfo, method_name: str = "",
                 **params: Any) -> None:
        super().__init__(model, info, method_name=method_name, **params)
        self.emd2_weight = self.params["emd2_weight"]

    def training_step(self, batch: dict[str, Any], epoch: int, step: int) -> StepResult:
        logits = self._logits(batch)
        ce = self._ce(logits, batch["y"])
        emd = self._emd2(logits, batch["y"])
        loss = ce + self.emd2_weight * emd
        return StepResult(loss, {"ce": ce.detach(), "emd2": emd.detach()})

    def label_uncertainty(self, batch: dict[str, Any], pred: Prediction) -> torch.Tensor:
        """−log p(label) + emd2_weight·EMD² against the one-hot label (its training loss,
        unweighted by class)."""
        return (Method.label_uncertainty(self, batch, pred)
                + self.emd2_weight * super().label_uncertainty(batch, pred))
