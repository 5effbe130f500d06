"""Cross-entropy against soft labels, with the class weights of f-SPL §4.2 (SPEC §2)."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from affectlab.losses._checks import (
    REDUCTION,
    as_float_tensor,
    as_soft_targets,
    check_distribution,
    float32_loss,
    reduce,
    value_checks_on,
)
from affectlab.registry import Param


def class_weights_from_soft_labels(labels) -> torch.Tensor:
    """Class weights w_c = N / (K · Σᵢ yᵢᶜ) from the training soft labels.

    ``labels``: (N, K) soft labels (rows sum to 1). Returns a (K,) float64 tensor; a balanced
    set gets all ones. A class with zero total mass never appears in any target, so its weight
    multiplies nothing in training: it gets weight 0 (instead of infinity) and a RuntimeWarning.
    """
    y = as_float_tensor(labels, "labels", ndim=2).to(torch.float64)
    if y.shape[0] == 0:
        raise ValueError("labels must hold at least one row, got shape (0, K)")
    check_distribution(y, "labels")
    n, k = y.shape
    mass = y.clamp(min=0).sum(dim=0)
    empty = mass <= 0
    if bool(empty.any()):
        warnings.warn(f"classes {torch.nonzero(empty).flatten().tolist()} have no mass in "
                      "labels; their weight is set to 0", RuntimeWarning, stacklevel=2)
    return torch.where(empty, torch.zeros_like(mass), n / (k * mass.clamp(min=1e-300)))


@float32_loss
def soft_cross_entropy(logits: torch.Tensor, target, weight=None,
                       reduction: str = "mean") -> torch.Tensor:
    """−Σ_c w_c · y_c · log softmax(logits)_c per sample.

    ``logits``: (N, K). ``target``: (N, K) soft labels or (N,) integer classes. ``weight``:
    optional (K,) non-negative class weights. ``reduction``: 'mean' (sum / N, as torch's
    ``cross_entropy`` with probability targets), 'sum' or 'none' (returns (N,)).
    """
    REDUCTION.check(reduction)
    z = as_float_tensor(logits, "logits", ndim=2)
    y = as_soft_targets(target, "target", z.shape[1], z)
    if y.shape[0] != z.shape[0]:
        raise ValueError(f"target must have {z.shape[0]} rows (as logits), got {y.shape[0]}")
    logp = torch.log_softmax(z, dim=1)
    if weight is not None:
        w = as_float_tensor(weight, "weight", ndim=1).to(z)
        if w.shape[0] != z.shape[1]:
            raise ValueError(f"weight must have {z.shape[1]} entries (one per class), got "
                             f"{w.shape[0]}")
        if value_checks_on() and bool((w < 0).any()):
            raise ValueError("weight must be non-negative")
        y = y * w
    return reduce(-(y * logp).sum(dim=1), reduction)


class SoftCrossEntropyLoss(nn.Module):
    """Module form of :func:`soft_cross_entropy`; ``weight`` (K,) is kept as a buffer so it
    moves with ``.to(device)``."""

    # a tensor or sequence, checked by as_float_tensor (a registry Param checks scalars only)
    param_specs = (Param("weight", object, None, help="optional (K,) non-negative class weights"),
                   REDUCTION)

    def __init__(self, weight=None, reduction: str = "mean"):
        super().__init__()
        self.reduction = REDUCTION.check(reduction)
        w = None if weight is None else as_float_tensor(weight, "weight", ndim=1)
        self.register_buffer("weight", w)

    def forward(self, logits: torch.Tensor, target) -> torch.Tensor:
        return soft_cross_entropy(logits, target, self.weight, self.reduction)
