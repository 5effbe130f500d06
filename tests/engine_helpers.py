"""Shared pieces of the engine tests: a tiny method, corpus and run builders.

``TinyCE`` is a minimal Method (soft-label cross-entropy) so the engine can be tested without
the real methods. Imported by a background worker with ``AFFECTLAB_PLUGINS=engine_helpers``
(and tests/ on PYTHONPATH), it registers itself as ``tiny-ce`` there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from affectlab.methods.base import Method, StepResult
from affectlab.registry import Param

TINY = "tiny-ce"
TINY_FAIL = "tiny-fail"


class TinyCE(Method):
    description = "test-only soft-label cross-entropy"
    param_specs = (Param("weight", float, 1.0, help="scale of the loss"),)

    def training_step(self, batch, epoch, step):
        out = self.model(batch["x"], batch.get("lengths"))
        ce = -(batch["y"] * out.logits.log_softmax(-1)).sum(-1).mean()
        loss = self.params["weight"] * ce
        return StepResult(loss, {"ce": float(ce.detach())})


class TinyFail(TinyCE):
    """Raises at the third step (to test error events)."""

    def training_step(self, batch, epoch, step):
        if step == 2:
            raise RuntimeError("boom at step 2")
        return super().training_step(batch, epoch, step)


def register() -> list[str]:
    """Register the tiny methods through the public API; returns the names it added."""
    import affectlab.methods

    added = []
    for name, cls in ((TINY, TinyCE), (TINY_FAIL, TinyFail)):
        if name not in affectlab.methods.names():
            affectlab.methods.register(name, cls)
            added.append(name)
    return added


if __name__ in os.environ.get("AFFECTLAB_PLUGINS", "").split(","):
    register()


def state_differences(a, b, where: str = "") -> list[str]:
    """The entries in which two (nested) state dicts differ: tensors compared exactly, dicts by
    key, lists item by item, plain values by ==."""
    import torch

    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where} keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a for d in state_differences(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return [f"{where} length {len(a)} != {len(b)}"]
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in state_differences(x, y, f"{where}[{i}]")]
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return [] if a.shape == b.shape and torch.equal(a, b) else [where]
    return [] if a == b else [where]


def make_corpus(root: Path, modality: str, n: int, seed: int = 1) -> Path:
    from affectlab.data.synth.corpus import generate_corpus

    out = root / f"{modality}-{n}-{seed}"
    generate_corpus(modality=modality, n=n, seed=seed, out=out)
    return out


def tiny_config(dataset: Path, out: Path, modality: str = "face", method: str = TINY, **kw):
    """A RunConfig for a seconds-long CPU run (tiny ResNet or Conv-Pool)."""
    from affectlab.engine.config import RunConfig

    if modality == "face":
        model, params = "resnet18", {"width": 4, "embedding_dim": 16, "dropout": 0.2}
    else:
        model, params = "convpool", {"channels": 16, "hidden": 16, "dropout": 0.2}
    args = {"dataset": dataset, "model": model, "model_params": params, "method": method,
            "epochs": 2, "batch_size": 16, "lr": 1e-3, "device": "cpu", "out": out, **kw}
    return RunConfig(**args)


def isolated_data_env(tmp: Path):
    """Context that points AFFECTLAB_DATA at ``tmp`` (for module-scoped fixtures, which run
    outside the per-test autouse fixture of conftest)."""
    mp = pytest.MonkeyPatch.context()
    ctx = mp.__enter__()
    ctx.setenv("AFFECTLAB_DATA", str(tmp / "affectlab-data"))
    ctx.setenv("OMP_NUM_THREADS", "1")
    return mp


def train_tiny(dataset: Path, out: Path, modality: str = "face", **kw):
    from affectlab.engine.trainer import train

    return train(tiny_config(dataset, out, modality, **kw), progress=False)


def registered_module_scope():
    """Register the tiny methods for a module-scoped fixture; returns an undo callable."""
    import affectlab.methods

    added = register()

    def undo():
        for name in added:
            affectlab.methods.unregister(name)

    return undo
