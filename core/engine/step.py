"""One training step, shared by the trainer and the benchmark so that both time and run the
same thing: :func:`forward_and_read` (the forward half) and :func:`train_step` (the whole
step, optimisers included)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from affectlab.losses import skip_value_checks
from affectlab.methods.base import Method, StepResult

__all__ = ["forward_and_read", "train_step"]


def forward_and_read(method: Method, batch: dict[str, Any], epoch: int, step: int, *,
                     amp: bool) -> tuple[StepResult, dict[str, float]]:
    """``method.training_step`` under float16 autocast (when ``amp``), and its loss and parts
    read back as floats in one transfer. FloatingPointError when the loss is not finite.

    On CUDA the losses' per-call value checks are skipped (each would wait for the GPU; see
    ``affectlab.losses._checks``): the batch comes from a dataset checked when it was loaded, and
    the finite-loss check below still stops a run that diverges.
    """
    device_type = batch["x"].device.type
    with torch.autocast(device_type=device_type, dtype=torch.float16, enabled=amp), \
            skip_value_checks(device_type == "cuda"):
        result = method.training_step(batch, epoch, step)
    losses = result.logged()
    if not math.isfinite(losses["loss"]):
        raise FloatingPointError(f"loss became {losses['loss']} at epoch {epoch + 1}, "
                                 f"training step {step + 1}: {result.parts}")
    return result, losses


def train_step(method: Method, batch: dict[str, Any], optimizers: Sequence[torch.optim.Optimizer],
               scaler: torch.amp.GradScaler, epoch: int, step: int, *, amp: bool,
               sync_gradients: Callable[[], None] | None = None
               ) -> tuple[StepResult, dict[str, float]]:
    """zero_grad → :func:`forward_and_read` → scaled backward → ``sync_gradients()`` (the
    trainer's gradient averaging over DDP ranks) → every optimiser's (scaled) step →
    ``scaler.update()``. Returns the step's result and its losses as floats."""
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    result, losses = forward_and_read(method, batch, epoch, step, amp=amp)
    scaler.scale(result.loss).backward()
    if sync_gradients is not None:
        sync_gradients()
    for opt in optimizers:
        scaler.step(opt)
    scaler.update()
    return result, losses
