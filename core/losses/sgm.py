"""Structured Gaussian Manifold loss (seed 002, SPEC §4), extended to soft labels.

Classes absent from the batch. μ_j exists only for a class with positive total weight
Σᵢ yᵢⱼ in the batch ("present"). The posterior is normalised over the present classes only and
is 0 for the others. Because labels are non-negative, a class with zero total weight has
yᵢⱼ = 0 in every row, so each row of y already sums to 1 over the present classes: no
renormalisation of y is needed and ‖P − y‖² over all K classes equals the one over the present
ones. With hard labels this is exactly Algorithm 1 (μ_j over C_j, the batch items of class j).
Gradients flow through the centres as well as through z, as in Algorithm 1 (μ is computed from
the same batch representation z).
"""

from __future__ import annotations

import torch
from torch import nn

from affectlab.losses._checks import (
    REDUCTION,
    as_float_tensor,
    as_soft_targets,
    float32_loss,
    reduce,
)
from affectlab.registry import Param

SIGMA = Param("sigma", float, 0.5, low=0, low_open=True,
              help="σ of the Gaussian class posteriors (the paper: 0.5)")
NORM_WEIGHT = Param("norm_weight", float, 0.0, low=0,
                    help="weight of the mean embedding norm (the authors' code: 0)")


@float32_loss
def sgm_centres(z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-weighted class means of a batch.

    ``z``: (N, d) embeddings. ``y``: (N, K) soft labels. Returns ``mu`` (K, d) with
    μ_j = Σᵢ yᵢⱼ zᵢ / Σᵢ yᵢⱼ (zero rows for absent classes) and ``present`` (K,) bool.
    """
    mass = y.sum(dim=0)
    present = mass > 0
    mu = (y.T @ z) / torch.where(present, mass, torch.ones_like(mass)).unsqueeze(1)
    return mu, present


@float32_loss
def sgm_posterior(z: torch.Tensor, mu: torch.Tensor, present: torch.Tensor,
                  sigma: float = 0.5) -> torch.Tensor:
    """P(w_j | z) ∝ exp(−‖z − μ_j‖² / (2σ²)), equal priors, over the present classes.

    ``z``: (N, d), ``mu``: (K, d), ``present``: (K,) bool. Returns (N, K); rows sum to 1 and
    absent classes get 0. Computed as a softmax of the exponents (stable for far-apart centres).
    """
    sq = ((z.unsqueeze(1) - mu.unsqueeze(0)) ** 2).sum(dim=-1)
    logits = (-sq / (2.0 * sigma * sigma)).masked_fill(~present, float("-inf"))
    return torch.softmax(logits, dim=1)


@float32_loss
def sgm_loss(z, target, sigma: float = 0.5, norm_weight: float = 0.0,
             reduction: str = "mean") -> torch.Tensor:
    """L = mean_i ‖P(w | zᵢ) − yᵢ‖² + norm_weight · mean_i ‖zᵢ‖₂ (Algorithm 1; the authors'
    released code uses norm_weight = 0).

    ``z``: (N, d) embeddings, unnormalised. ``target``: (N, K) soft labels or (N,) integer
    classes (then K = max + 1). 'none' returns the (N,) per-item terms.
    """
    REDUCTION.check(reduction)
    sigma = SIGMA.check(sigma)
    norm_weight = NORM_WEIGHT.check(norm_weight)
    zz = as_float_tensor(z, "z", ndim=2)
    if isinstance(target, torch.Tensor) and not target.is_floating_point() and target.ndim == 1:
        k = int(target.max()) + 1 if target.numel() else 1
    else:
        k = as_float_tensor(target, "target", ndim=2).shape[1]
    y = as_soft_targets(target, "target", k, zz)
    if y.shape[0] != zz.shape[0]:
        raise ValueError(f"target must have {zz.shape[0]} rows (as z), got {y.shape[0]}")
    y = y.clamp(min=0.0)  # tolerated rounding negatives must not create negative class mass
    mu, present = sgm_centres(zz, y)
    post = sgm_posterior(zz, mu, present, sigma)
    per = ((post - y) ** 2).sum(dim=1)
    if norm_weight:
        per = per + norm_weight * zz.norm(dim=1)
    return reduce(per, reduction)


class SGMLoss(nn.Module):
    """Module form of :func:`sgm_loss`. forward(z (N, d), target (N, K) or (N,)) → scalar.

    Feed class-balanced batches (``ClassBalancedBatchSampler``), as the paper does, so every
    class has a centre in every batch.
    """

    param_specs = (SIGMA, NORM_WEIGHT, REDUCTION)

    def __init__(self, sigma: float = 0.5, norm_weight: float = 0.0, reduction: str = "mean"):
        super().__init__()
        self.sigma = SIGMA.check(sigma)
        self.norm_weight = NORM_WEIGHT.check(norm_weight)
        self.reduction = REDUCTION.check(reduction)

    def forward(self, z: torch.Tensor, target) -> torch.Tensor:
        return sgm_loss(z, target, self.sigma, self.norm_weight, self.reduction)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, norm_weight={self.norm_weight}, reduction={self.reduction!r}"
