"""Cheap input checks for the torch losses (scikit-learn style: name the argument and what was
expected). Each check is one reduction on the tensor, so it is affordable inside a training step
on the CPU.

On a GPU each value check (NaN, range, rows summing to 1) reads a result back to the host and so
waits for the device: a dozen of them per step keep a small network's GPU idle while the host
waits. The trainer therefore runs CUDA steps inside :func:`skip_value_checks`: shape checks stay,
value checks are skipped (the data were checked when the dataset was loaded, and the trainer
checks the loss once per step).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools

import torch

from affectlab.registry import Param
from affectlab.validation import check_same_shape

__all__ = ["DIST_ATOL", "REDUCTION", "as_float_tensor", "as_soft_targets", "check_distribution",
           "check_range", "check_same_shape", "float32_loss", "no_autocast", "reduce",
           "skip_value_checks", "value_checks_on"]

# Rows of a distribution may drift from 1 by this much (float32 softmax, averaged ratings).
DIST_ATOL = 1e-4

_VALUE_CHECKS = contextvars.ContextVar("affectlab_value_checks", default=True)


@contextlib.contextmanager
def skip_value_checks(skip: bool = True):
    """Inside the block (when ``skip``), checks that read tensor values are skipped; shape and
    type checks still run."""
    token = _VALUE_CHECKS.set(not skip)
    try:
        yield
    finally:
        _VALUE_CHECKS.reset(token)


def value_checks_on() -> bool:
    """False inside :func:`skip_value_checks`."""
    return _VALUE_CHECKS.get()


@contextlib.contextmanager
def no_autocast():
    """Switch autocast off, inside the block, on every device where it is on (a no-op, one
    check per device, where it is off)."""
    active = [d for d in ("cuda", "cpu") if torch.is_autocast_enabled(d)]
    with contextlib.ExitStack() as stack:
        for device_type in active:
            stack.enter_context(torch.autocast(device_type, enabled=False))
        yield


def float32_loss(fn):
    """Run ``fn`` under :func:`no_autocast`.

    Under mixed precision (the trainer's CUDA autocast) matrix products would otherwise be done
    in float16 even on float32 inputs: squared distances and Gram matrices of 256-d features
    overflow float16's 65504, and soft-label rows lose their sum. The network's forward stays in
    reduced precision; the loss arithmetic, which is cheap, runs in float32 (inputs are upcast
    by :func:`as_float_tensor`).
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with no_autocast():
            return fn(*args, **kwargs)

    return wrapper


def as_float_tensor(x, name: str, *, ndim: int | tuple[int, ...] | None = None,
                    min_ndim: int | None = None) -> torch.Tensor:
    """``x`` as a floating tensor (tensors keep device and dtype, except that float16/bfloat16
    become float32; anything else becomes float64), checked for dimensionality, NaN and
    infinity.

    The upcast is what mixed-precision training wants from a loss: under CUDA autocast the
    network's outputs are float16, and a softmax, a log or a row sum of targets in float16 is off
    by about 1e-3, more than the distribution checks allow."""
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            t = x.to(torch.get_default_dtype())
        elif x.dtype in (torch.float16, torch.bfloat16):
            t = x.float()
        else:
            t = x
    else:
        try:
            t = torch.as_tensor(x, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"{name} must be a numeric tensor or array, got "
                            f"{type(x).__name__}") from exc
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if t.ndim not in allowed:
            want = " or ".join(f"{n}-D" for n in allowed)
            raise ValueError(f"{name} must be {want}, got shape {tuple(t.shape)}")
    if min_ndim is not None and t.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape "
                         f"{tuple(t.shape)}")
    if not _VALUE_CHECKS.get():
        return t
    finite = torch.isfinite(t.detach())
    if not bool(finite.all()):
        if bool(torch.isnan(t).any()):
            idx = tuple(int(i) for i in torch.nonzero(torch.isnan(t))[0])
            raise ValueError(f"{name} contains NaN (first at index {idx})")
        raise ValueError(f"{name} contains infinite values")
    return t


def check_range(t: torch.Tensor, name: str, low: float, high: float, *, tol: float = 0.0) -> None:
    """All entries of ``t`` in [low - tol, high + tol]."""
    if t.numel() == 0 or not _VALUE_CHECKS.get():
        return
    t = t.detach()
    lo, hi = float(t.min()), float(t.max())
    if lo < low - tol or hi > high + tol:
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}], got values in "
                         f"[{lo:.6g}, {hi:.6g}]")


def check_distribution(p: torch.Tensor, name: str, *, atol: float = DIST_ATOL) -> None:
    """Rows of ``p`` (last axis) non-negative and summing to 1 within ``atol``."""
    if p.ndim < 1 or p.shape[-1] < 1:
        raise ValueError(f"{name} must have at least one class on its last axis, got shape "
                         f"{tuple(p.shape)}")
    if p.numel() == 0 or not _VALUE_CHECKS.get():
        return
    p = p.detach()
    if float(p.min()) < -atol:
        raise ValueError(f"{name} has negative entries (min {float(p.min()):.4g}); "
                         "expected probabilities")
    err = (p.sum(dim=-1) - 1.0).abs()
    if float(err.max()) > atol:
        idx = tuple(int(i) for i in torch.nonzero(err > atol)[0])
        row_sum = float(p.sum(dim=-1)[idx]) if idx else float(p.sum())
        raise ValueError(f"{name} rows must sum to 1 (±{atol}); row {idx} sums to {row_sum:.6g}")


# every loss's ``reduction`` (the functions check their argument with it too)
REDUCTION = Param("reduction", str, "mean", choices=("mean", "sum", "none"),
                  help="mean or sum over the batch, or none: one value per item")


def reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def as_soft_targets(target, name: str, n_classes: int, ref: torch.Tensor) -> torch.Tensor:
    """Targets as (N, K) distributions: integer class indices (N,) are one-hot encoded, soft
    targets (N, K) are checked to be distributions. Result has ``ref``'s dtype and device."""
    if isinstance(target, torch.Tensor) and not target.is_floating_point() and target.ndim == 1:
        if target.numel() and _VALUE_CHECKS.get() and (int(target.min()) < 0
                                                        or int(target.max()) >= n_classes):
            raise ValueError(f"{name} class indices must lie in [0, {n_classes - 1}], got "
                             f"[{int(target.min())}, {int(target.max())}]")
        return torch.nn.functional.one_hot(target.long(), n_classes).to(ref)
    t = as_float_tensor(target, name, ndim=2).to(ref)
    if t.shape[-1] != n_classes:
        raise ValueError(f"{name} must have {n_classes} classes on its last axis (as the "
                         f"predictions), got shape {tuple(t.shape)}")
    check_distribution(t, name)
    return t
