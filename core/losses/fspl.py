"""f-Similarity Preservation Loss (seed 000, SPEC §2).

Numerical rule for ε = 1e-12. The SPEC adds ε to denominators and to the arguments of log and
sqrt. Applied term by term, that breaks the loss at the corners: reverse KL at S = C = 0 gives
log ε + 0/ε − log ε − 1 = −1 and squared Hellinger gives −√ε, i.e. negative losses at the
optimum. So every formula here is evaluated at the shifted point (S + ε, C + ε): each log,
sqrt and denominator then sees a value ≥ ε (what the SPEC asks), and the result is exactly the
paper's f-SPL of two positive numbers, hence ≥ 0 and 0 exactly when S = C. Away from the
corners the shift changes values by O(ε·|log ε|) ≈ 3e-11. Each formula is also rearranged into
terms that vanish one by one at S = C, so the computed loss is 0.0 there, not rounding noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from affectlab.losses._checks import (
    REDUCTION,
    as_float_tensor,
    check_range,
    check_same_shape,
    float32_loss,
    reduce,
    value_checks_on,
)
from affectlab.registry import Param

EPS = 1e-12
DIVERGENCES = ("kl", "rkl", "pearson", "hellinger", "js")
# S from embedding_similarity and C from averaged labels can overshoot [0, 2] by rounding.
_RANGE_TOL = 1e-6
_SQRT2 = math.sqrt(2.0)


# -- the table (SPEC §2), at shifted arguments s = S + ε, c = C + ε -------------------------

def _kl(s, c):  # S − C·log S − C + C·log C
    return (s - c) - c * (torch.log(s) - torch.log(c))


def _rkl(s, c):  # log S + C/S − log C − 1
    return (torch.log(s) - torch.log(c)) + (c - s) / s


def _pearson(s, c):  # (C − S)²
    return (c - s) ** 2


def _hellinger(s, c):  # √S + C/√S − 2√C  =  (√S − √C)² / √S
    rs = torch.sqrt(s)
    return (rs - torch.sqrt(c)) ** 2 / rs


def _js(s, c):  # (C+1)·log(1+S) − C·log(2S) − (C+1)·log(1+C) + C·log(2C)
    return (c + 1) * (torch.log1p(s) - torch.log1p(c)) - c * (torch.log(s) - torch.log(c))


_TABLE: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "kl": _kl, "rkl": _rkl, "pearson": _pearson, "hellinger": _hellinger, "js": _js,
}


DIVERGENCE = Param("divergence", str, "kl", choices=DIVERGENCES, help="the f-divergence")
ALPHA = Param("alpha", float, 10.0, low=0, help="weight α of the f-SPL terms (the paper: 10)")


def _check_divergence(divergence: str) -> str:
    return DIVERGENCE.check(divergence)


def _check_similarities(S, C) -> tuple[torch.Tensor, torch.Tensor]:
    s = as_float_tensor(S, "S")
    c = as_float_tensor(C, "C")
    check_same_shape(s, c, "S", "C")
    check_range(s, "S", 0.0, 2.0, tol=_RANGE_TOL)
    check_range(c, "C", 0.0, 2.0, tol=_RANGE_TOL)
    return s, c.to(s)


@float32_loss
def fspl(S, C, divergence: str) -> torch.Tensor:
    """Element-wise f-SPL(S, C) from the SPEC table.

    ``S``: embedding similarities, any shape, values in [0, 2]. ``C``: label similarities,
    same shape, values in [0, 2]. ``divergence``: 'kl', 'rkl', 'pearson', 'hellinger' or
    'js'. Returns a tensor of S's shape, ≥ 0, equal to 0 exactly where S == C. Values and
    gradients stay finite at S, C ∈ {0, 2} (see the module note on ε).
    """
    fn = _TABLE[_check_divergence(divergence)]
    s, c = _check_similarities(S, C)
    # clamp only trims rounding overshoot below 0 (allowed by the range check) so log stays real
    return fn(s.clamp(min=0.0) + EPS, c.clamp(min=0.0) + EPS)


# -- the same losses built from (f, f′, f*) ---------------------------------------------------

@dataclass(frozen=True)
class FDivergence:
    """A convex f with f(1) = 0, its derivative f′ and its convex conjugate f*."""

    name: str
    f: Callable[[torch.Tensor], torch.Tensor]
    f_prime: Callable[[torch.Tensor], torch.Tensor]
    f_conj: Callable[[torch.Tensor], torch.Tensor]


F_DIVERGENCES: dict[str, FDivergence] = {
    "kl": FDivergence(
        "kl",
        f=lambda t: t * torch.log(t),
        f_prime=lambda t: 1 + torch.log(t),
        f_conj=lambda u: torch.exp(u - 1),
    ),
    "rkl": FDivergence(
        "rkl",
        f=lambda t: -torch.log(t),
        f_prime=lambda t: -1 / t,
        f_conj=lambda u: -1 - torch.log(-u),  # domain u < 0
    ),
    "pearson": FDivergence(
        "pearson",
        f=lambda t: (t - 1) ** 2,
        f_prime=lambda t: 2 * (t - 1),
        f_conj=lambda u: u ** 2 / 4 + u,
    ),
    "hellinger": FDivergence(
        "hellinger",
        f=lambda t: (torch.sqrt(t) - 1) ** 2,
        f_prime=lambda t: 1 - 1 / torch.sqrt(t),
        f_conj=lambda u: u / (1 - u),  # domain u < 1
    ),
    "js": FDivergence(
        "js",
        f=lambda t: -(t + 1) * torch.log((t + 1) / 2) + t * torch.log(t),
        f_prime=lambda t: torch.log(2 * t / (1 + t)),
        f_conj=lambda u: -torch.log(2 - torch.exp(u)),  # domain u < log 2
    ),
}


def fspg(S: torch.Tensor, C: torch.Tensor, fdiv: FDivergence) -> torch.Tensor:
    """f-Similarity Preservation Gain C·f′(S) − f*(f′(S)) (paper §3.1), element-wise; S > 0."""
    u = fdiv.f_prime(S)
    return C * u - fdiv.f_conj(u)


@float32_loss
def fspl_generic(S, C, divergence: str) -> torch.Tensor:
    """f-SPL(S, C) = f-SPG(C, C) − f-SPG(S, C) from (f, f′, f*), at the same shifted arguments
    as :func:`fspl`, so the two agree to rounding. Slower and less exact near S = C than the
    table; it exists to prove the table right."""
    fdiv = F_DIVERGENCES[_check_divergence(divergence)]
    s, c = _check_similarities(S, C)
    s, c = s.clamp(min=0.0) + EPS, c.clamp(min=0.0) + EPS
    return fspg(c, c, fdiv) - fspg(s, c, fdiv)


# -- similarities ---------------------------------------------------------------------------

def _clip_keep_grad(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Values clipped to [low, high], gradient passed through unchanged (straight-through)."""
    return x + (x.clamp(low, high) - x).detach()


@float32_loss
def embedding_similarity(g_a, g_b) -> torch.Tensor:
    """S = 2 − √2·‖ĝ_a − ĝ_b‖ with ĝ = g / ‖g‖ (last axis), SPEC §2.

    ``g_a``, ``g_b``: (..., d) non-negative embeddings (the output of a ReLU layer), same
    shape. Returns (...,) in [0, 2]. Non-negative unit vectors lie within √2 of each other, so
    S ∈ [0, 2]; negative entries would push S below 0 and are rejected. ε = 1e-12 sits inside
    the square root so the gradient is finite (and zero) when ĝ_a = ĝ_b; the result is clipped
    to [0, 2] to remove rounding overshoot, with the gradient left unclipped.
    A zero vector (a dead ReLU layer) is kept at 0 by the normalisation, giving S ∈ [2−√2, 2].
    """
    a = as_float_tensor(g_a, "g_a", min_ndim=1)
    b = as_float_tensor(g_b, "g_b", min_ndim=1)
    check_same_shape(a, b, "g_a", "g_b")
    for t, name in ((a, "g_a"), (b, "g_b")):
        if t.numel() and value_checks_on() and float(t.detach().min()) < 0:
            raise ValueError(f"{name} must be non-negative (an embedding after ReLU) so that "
                             f"S lies in [0, 2]; min is {float(t.detach().min()):.4g}")
    a = nn.functional.normalize(a, dim=-1, eps=EPS)
    b = nn.functional.normalize(b.to(a), dim=-1, eps=EPS)
    dist = torch.sqrt(((a - b) ** 2).sum(dim=-1) + EPS)
    return _clip_keep_grad(2.0 - _SQRT2 * dist, 0.0, 2.0)


@float32_loss
def torch_label_similarity(y_a, y_b) -> torch.Tensor:
    """C = 2 − 2·TV(y_a, y_b) = 2 − Σ|y_a − y_b| over the last axis, for torch tensors.

    ``y_a``, ``y_b``: (..., K) distributions of the same shape. Returns (...,) in [0, 2].
    (affectlab.labels.label_similarity is the numpy version; this one stays on the device.)
    """
    a = as_float_tensor(y_a, "y_a", min_ndim=1)
    b = as_float_tensor(y_b, "y_b", min_ndim=1)
    check_same_shape(a, b, "y_a", "y_b")
    return (2.0 - (a - b.to(a)).abs().sum(dim=-1)).clamp(0.0, 2.0)


# -- the loss module --------------------------------------------------------------------------

class FSPLLoss(nn.Module):
    """Per-triplet α·(f-SPL(S_s, C_s) + f-SPL(S_d, C_d)) (paper §3.3), reduced over triplets.

    The loss receives triplets; it never samples them (see
    :class:`affectlab.losses.triplets.BalancedTripletSampler`). The classification term of the
    paper's triplet loss is a separate loss on the anchors (``SoftCrossEntropyLoss``).

    forward(g_anchor, g_similar, g_dissimilar, c_similar, c_dissimilar):
    embeddings (B, d) non-negative; label similarities (B,) in [0, 2]. Returns a scalar
    ('mean' over triplets, as the paper's batch mean; or 'sum') or (B,) for 'none'.
    """

    # the divergence is not among them: the registry fixes it by name (fspl-kl, …)
    param_specs = (ALPHA, REDUCTION)

    def __init__(self, divergence: str = "kl", alpha: float = 10.0, reduction: str = "mean"):
        super().__init__()
        self.divergence = _check_divergence(divergence)
        self.alpha = ALPHA.check(alpha)
        self.reduction = REDUCTION.check(reduction)

    def forward(self, g_anchor, g_similar, g_dissimilar, c_similar, c_dissimilar):
        a = as_float_tensor(g_anchor, "g_anchor", ndim=2)
        for name, g in (("g_similar", g_similar), ("g_dissimilar", g_dissimilar)):
            check_same_shape(a, as_float_tensor(g, name), "g_anchor", name)
        s_s = embedding_similarity(a, g_similar)
        s_d = embedding_similarity(a, g_dissimilar)
        c_s = as_float_tensor(c_similar, "c_similar", ndim=1)
        c_d = as_float_tensor(c_dissimilar, "c_dissimilar", ndim=1)
        for name, c in (("c_similar", c_s), ("c_dissimilar", c_d)):
            if c.shape[0] != a.shape[0]:
                raise ValueError(f"{name} must have {a.shape[0]} entries (one per triplet), "
                                 f"got {c.shape[0]}")
            check_range(c, name, 0.0, 2.0, tol=_RANGE_TOL)
        per = fspl(s_s, c_s.to(s_s), self.divergence) + fspl(s_d, c_d.to(s_d), self.divergence)
        return reduce(self.alpha * per, self.reduction)

    def extra_repr(self) -> str:
        return f"divergence={self.divergence!r}, alpha={self.alpha}, reduction={self.reduction!r}"
