"""Where a run's weights start: fresh, the shipped weights (``--pretrained``) or a trained run's
(``--init-from RUN``), on the dataset's own label set either way.

:func:`weight_init` gives the trainer a function that initialises the freshly built model
(before the method wraps it, so a method that copies parts of the model — DMUE's branches —
copies the initialised ones) and returns the :class:`~affectlab.models.finetune.HeadInit` that
says which classes were mapped and which are new; the trainer logs it and emits it as a
``notice`` event (the Train page shows it). A run's weights are read with
:func:`~affectlab.engine.rundir.load_checkpoint_file` (``weights_only=True``): nothing is
unpickled.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from affectlab.engine.config import ConfigError, RunConfig
from affectlab.engine.rundir import RunDir, load_checkpoint_file
from affectlab.models.finetune import HeadInit, init_from_shipped, init_head_from

__all__ = ["WeightInit", "init_from_run", "run_weights_file", "weight_init"]

class WeightInit:
    """Initialises a freshly built model (``init(model)``); ``report`` then holds the
    :class:`HeadInit` (None before the call)."""

    def __init__(self, initialise: Callable[[Any], HeadInit]) -> None:
        self._initialise = initialise
        self.report: HeadInit | None = None

    def __call__(self, model) -> HeadInit:
        self.report = self._initialise(model)
        return self.report


def weight_init(config: RunConfig, class_names: Sequence[str]) -> WeightInit | None:
    """The initialiser ``config`` asks for (None: the model's own random initialisation)."""
    names = list(class_names)
    if config.init_from is not None:
        run = Path(config.init_from)
        return WeightInit(lambda model: init_from_run(run, config.model, model, names,
                                                      config.class_map))
    if config.pretrained:
        def shipped(model) -> HeadInit:
            try:
                return init_from_shipped(config.model, model, names, config.class_map)
            except ValueError as exc:
                raise ConfigError(f"pretrained: {exc}") from exc
        return WeightInit(shipped)
    return None


def run_weights_file(run_dir: str | os.PathLike) -> Path:
    """The checkpoint a run is fine-tuned from: its best (the epoch of best validation UAR;
    every epoch's when the run had no validation split), else its last, else its previous."""
    run = RunDir(run_dir)
    for which in ("best", "last", "previous"):
        if run.checkpoint_path(which).is_file():
            return run.checkpoint_path(which)
    raise FileNotFoundError(f"init_from: run {run.path} has no saved weights "
                            f"({RunDir.CHECKPOINTS}/best.pt, last.pt or previous.pt)")


def _read_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], Path]:
    run = RunDir(run_dir)
    if not run.model_info_path.is_file():
        raise FileNotFoundError(f"init_from: {run.path} is not a trained run (no "
                                f"{run.model_info_path.name})")
    info = run.read_model_info()
    path = run_weights_file(run_dir)
    state = load_checkpoint_file(path)  # weights_only=True; CheckpointError naming the file
    weights = state.get("model_state")
    if not isinstance(weights, dict) or not isinstance(info.get("class_names"), list):
        raise ConfigError(f"init_from: {path} holds no model_state, or "
                          f"{run.model_info_path} no class_names")
    return info, weights, path


def init_from_run(run_dir: str | os.PathLike, model_name: str, model, class_names: Sequence[str],
                  class_map: Mapping[str, str] | None = None) -> HeadInit:
    """Initialise ``model`` from the trained run in ``run_dir`` (same model name; classes
    mapped by name, the others new)."""
    run_dir = Path(run_dir)
    info, weights, path = _read_run(run_dir)
    if info.get("model") != model_name:
        raise ConfigError(f"init_from: run {run_dir.name} trained {info.get('model')!r}; this "
                          f"run's model is {model_name!r} (fine-tuning needs the same model)")
    try:
        return init_head_from(model, weights, info["class_names"], class_names, class_map,
                              source=f"run {run_dir.name} ({path.name})")
    except ValueError as exc:
        raise ConfigError(f"init_from: {exc}") from exc
