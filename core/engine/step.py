"""The forward half of a training step, shared by the trainer and the benchmark so that both
time and run the same thing."""

from __future__ import annotations

import math
from typing import Any

import torch

from affectlab.losses import skip_value_checks
from affectlab.methods.base import Method, StepResult


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
