"""Squared Earth Mover's Distance over ordered classes (seed 003, SPEC §3).

E(p, t) = Σ_i (CDF_i(p) − CDF_i(t))², no 1/K, no square root. Only meaningful when the class
order means something (intensity levels, Likert bins); the registry marks it ``ordinal_only``.
"""

from __future__ import annotations

import torch
from torch import nn

from affectlab.losses._checks import (
    REDUCTION,
    as_float_tensor,
    as_soft_targets,
    check_distribution,
    check_same_shape,
    float32_loss,
    reduce,
)


def _cdf_gap(p, t) -> torch.Tensor:
    pp = as_float_tensor(p, "p", min_ndim=1)
    tt = as_float_tensor(t, "t", min_ndim=1).to(pp)
    check_same_shape(pp, tt, "p", "t")
    check_distribution(pp, "p")
    check_distribution(tt, "t")
    return torch.cumsum(pp, dim=-1) - torch.cumsum(tt, dim=-1)


@float32_loss
def emd2(p, t) -> torch.Tensor:
    """Per-sample EMD²: Σ_i (CDF_i(p) − CDF_i(t))².

    ``p``, ``t``: (..., K) distributions over K ordered classes (t may be soft). Returns (...,).
    Zero exactly when p = t (the CDFs determine the distributions).
    """
    return (_cdf_gap(p, t) ** 2).sum(dim=-1)


@float32_loss
def emd1(p, t) -> torch.Tensor:
    """Per-sample l = 1 variant Σ_i |CDF_i(p) − CDF_i(t)|: the 1-D Wasserstein distance with
    ground cost |i − j| between class positions. ``p``, ``t``: (..., K). Returns (...,)."""
    return _cdf_gap(p, t).abs().sum(dim=-1)


class EMD2Loss(nn.Module):
    """EMD² between softmax(logits) and the targets.

    forward(logits (N, K), target (N, K) soft or (N,) integer classes) → scalar for 'mean'
    (batch mean, as dlordinal's ``EMDLoss``) or 'sum'; (N,) for 'none'.
    """

    param_specs = (REDUCTION,)

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = REDUCTION.check(reduction)

    def forward(self, logits: torch.Tensor, target) -> torch.Tensor:
        z = as_float_tensor(logits, "logits", ndim=2)
        y = as_soft_targets(target, "target", z.shape[1], z)
        if y.shape[0] != z.shape[0]:
            raise ValueError(f"target must have {z.shape[0]} rows (as logits), got {y.shape[0]}")
        return reduce(emd2(torch.softmax(z, dim=1), y), self.reduction)
