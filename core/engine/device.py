"""Which device training would use, in words (the app's Train page shows it)."""

from __future__ import annotations

__all__ = ["describe_device"]


def describe_device() -> str:
    """``"CUDA: <GPU name>"`` (``"CUDA: 2 × <name>"`` for several GPUs) when torch sees CUDA,
    else ``"CPU"``. The name is GPU 0's, the one a single-process run with device "auto" uses."""
    import torch

    if not torch.cuda.is_available():
        return "CPU"
    n = torch.cuda.device_count()
    name = torch.cuda.get_device_name(0)
    return f"CUDA: {name}" if n <= 1 else f"CUDA: {n} × {name}"
