"""What a checkpoint holds, and reading one back for a resume.

A checkpoint is a dict of tensors and plain data only (dicts, lists, tuples, str, int, float,
bool, None), so that ``torch.load(weights_only=True)`` reads it and nothing is ever unpickled:

    format          :data:`FORMAT`
    epoch           epochs finished
    method_state    the method's state dict (model included)
    model_state     the bare network's state dict (for readers that want only the model)
    info            the TrainSetInfo as a dict (tensors, ints, bool)
    model, model_params, method, method_params, class_names, modality, scale, ordinal,
    dataset, normalizers      what rebuilding the method needs (as in the run's model info)

and a resumable (last / previous) checkpoint also

    global_step, optimizers (their state dicts), scaler (GradScaler state), best, history,
    config (the RunConfig as a plain dict), rng (python / numpy / torch / cuda generator
    states: lists, ints, floats and byte tensors)

Determinism: the RNG states are taken at the epoch boundary, so a run resumed from epoch e ends
with the same weights as one that never stopped (on CPU).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from affectlab.engine.config import ConfigError, RunConfig
from affectlab.engine.rundir import CheckpointError, RunDir

logger = logging.getLogger(__name__)

__all__ = ["FORMAT", "Resumed", "check_plain", "info_from_dict", "info_to_dict", "load_for_resume",
           "no_checkpoint", "resumable_state", "rng_state", "set_rng_state", "to_plain",
           "weights_state"]

FORMAT = 2  # 1: before checkpoints were plain data (pickled numpy RNG state)
RESUME_KEYS = ("method_state", "optimizers", "scaler", "epoch", "global_step", "history", "best",
               "rng", "config")
# config fields a resume must not change (epochs may grow; lr etc. may be adjusted)
MATCH_KEYS = ("dataset", "model", "model_params", "method", "method_params", "scale", "seed",
              "batch_size", "target", "train_domains", "test_domains")


# -- plain data ------------------------------------------------------------------------------

def to_plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as Python numbers and lists, paths as strings
    (floats, NaN included, are kept as they are)."""
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(to_plain(v) for v in value)
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


_SCALARS = (str, int, float, bool, type(None))  # exactly these: numpy's float64 is a float


def check_plain(value: Any, where: str = "checkpoint") -> None:
    """TypeError naming the first entry that ``torch.load(weights_only=True)`` would refuse,
    so a checkpoint that could not be read back is caught when it is written."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str | int):
                raise TypeError(f"{where}: key {k!r} is a {type(k).__name__}, not str or int")
            check_plain(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            check_plain(v, f"{where}[{i}]")
    elif not (type(value) in _SCALARS or isinstance(value, torch.Tensor)):
        raise TypeError(f"{where} is a {type(value).__module__}.{type(value).__name__}; a "
                        "checkpoint holds tensors and plain data only")


# -- random number generators ----------------------------------------------------------------

def rng_state() -> dict[str, Any]:
    """Every generator's state as plain data: python's (version, 625 words, gauss), numpy's
    legacy MT19937 (name, 624 words, position, gauss), torch's and CUDA's byte tensors."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    state: dict[str, Any] = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {"name": str(name), "keys": [int(k) for k in keys], "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


# The legacy global numpy RNG is restored on purpose: code run inside the loop (methods,
# samplers) may draw from it, and a resumed run must see the same draws.
def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`'s output. The generators want CPU byte tensors: a checkpoint
    loaded with ``map_location="cuda"`` has moved them to the GPU."""
    py, npy = state["python"], state["numpy"]
    random.setstate((int(py["version"]), tuple(int(w) for w in py["internal"]), py["gauss"]))
    np.random.set_state((npy["name"], np.asarray(npy["keys"], dtype=np.uint32),  # noqa: NPY002
                         int(npy["pos"]), int(npy["has_gauss"]), float(npy["cached_gaussian"])))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:  # resumed on a machine with another number of GPUs: keep what matches
            for i, s in enumerate(cuda_states[:torch.cuda.device_count()]):
                torch.cuda.set_rng_state(s, i)


# -- contents --------------------------------------------------------------------------------

def info_to_dict(info) -> dict[str, Any]:
    """A TrainSetInfo as a checkpoint entry (tensors on the CPU)."""
    return {"n_items": int(info.n_items), "num_classes": int(info.num_classes),
            "soft_labels": info.soft_labels.cpu(), "labels": info.labels.cpu(),
            "aux": None if info.aux is None else info.aux.cpu(), "ordinal": bool(info.ordinal),
            "aux_bounds": None if info.aux_bounds is None else info.aux_bounds.cpu()}


def info_from_dict(state: dict[str, Any]):
    """The TrainSetInfo of :func:`info_to_dict`'s entry (a checkpoint written before
    ``aux_bounds`` was saved reads with None)."""
    from affectlab.methods import TrainSetInfo

    return TrainSetInfo(**state)


def weights_state(method, info, model_info: dict[str, Any], epoch: int) -> dict[str, Any]:
    """Weights and what rebuilding the method needs (see affectlab.engine.runs.load_method)."""
    return {"format": FORMAT, "epoch": int(epoch), "method_state": method.state_dict(),
            "model_state": method.model.state_dict(), "info": info_to_dict(info),
            **to_plain(model_info)}


def resumable_state(trainer) -> dict[str, Any]:
    """The whole training state of ``trainer`` at an epoch boundary (see the module docstring);
    TypeError when any of it is not plain data."""
    state = {**weights_state(trainer.method, trainer.info, trainer.model_info, trainer.epoch),
             "global_step": int(trainer.global_step),
             "optimizers": [o.state_dict() for o in trainer.optimizers],
             "scaler": trainer.scaler.state_dict(), "rng": rng_state(),
             "history": to_plain(trainer.history), "best": to_plain(trainer.best),
             "config": trainer.config.to_dict()}
    check_plain(state)
    return state


# -- resuming --------------------------------------------------------------------------------

@dataclass
class Resumed:
    """A checkpoint read for a resume: its state, the file it came from, and a notice when it
    is not the last one (that one was missing or damaged)."""

    state: dict[str, Any]
    path: Path
    notice: str | None = None


def load_for_resume(run: RunDir, config: RunConfig, map_location: Any) -> Resumed:
    """The run's last checkpoint, or its previous one when the last is missing, empty,
    truncated or damaged (with a notice saying so). FileNotFoundError when it has neither,
    CheckpointError (naming the files) when neither can be read, ConfigError when the
    checkpoint's config differs from ``config`` in a field a resume must keep."""
    last, previous = run.checkpoint_path("last"), run.checkpoint_path("previous")
    if not run.has_checkpoint():
        raise no_checkpoint(run)
    try:
        resumed = Resumed(_resumable(last, map_location), last)
    except (FileNotFoundError, CheckpointError) as exc:
        if not previous.is_file():
            raise
        try:
            state = _resumable(previous, map_location)
        except CheckpointError as exc_previous:
            raise CheckpointError(f"cannot resume: {exc}; and {exc_previous}") from None
        notice = (f"{exc}; resuming from {previous} (epoch {int(state['epoch'])}) instead; "
                  f"{last.name} is replaced at the next checkpoint")
        logger.warning(notice)
        resumed = Resumed(state, previous, notice)
    _check_resume(resumed, config)
    return resumed


def no_checkpoint(run: RunDir) -> FileNotFoundError:
    """The error of a resume without a checkpoint, naming the file and what to do instead."""
    hint = (" (the run stopped before its first checkpoint: start it again without --resume "
            "to restart it in place)" if run.events_path.is_file() else "")
    return FileNotFoundError(f"cannot resume: {run.checkpoint_path('last')} does not exist{hint}")


def _resumable(path: Path, map_location: Any) -> dict[str, Any]:
    from affectlab.engine.rundir import load_checkpoint_file

    state = load_checkpoint_file(path, map_location)
    if state.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {state.get('format')!r}, not "
                              f"{FORMAT}: it was written by another affectlab version")
    missing = [k for k in RESUME_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} cannot resume a run: it has no "
                              f"{', '.join(missing)}")
    return state


def _check_resume(resumed: Resumed, config: RunConfig) -> None:
    saved = resumed.state["config"] if isinstance(resumed.state["config"], dict) else {}
    now = config.to_dict()
    # a field added since the checkpoint was written counts at its default there
    diff = [k for k in MATCH_KEYS
            if saved.get(k, RunConfig.model_fields[k].default) != now.get(k)]
    if diff:
        raise ConfigError(f"cannot resume: {', '.join(diff)} differ(s) from the config of "
                          f"{resumed.path} ({', '.join(f'{k}={saved.get(k)!r}' for k in diff)})")
