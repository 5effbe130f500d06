"""Where a run's weights start: fresh, the shipped weights (``--pretrained``) or a trained run's
(``--init-from RUN``), on the dataset's own label set either way.

:func:`weight_init` gives the trainer a function that initialises the freshly built model
(before the method wraps it, so a method that copies parts of the model — DMUE's branches —
copies the initialised ones) and returns the :class:`~affectlab.models.finetune.HeadInit` that
says which classes were mapped and which are new; the trainer logs it and emits it as a
``notice`` event (the Train page shows it). A run's weights are read with
``torch.load(weights_only=True)`` only: nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from affectlab.engine.config import ConfigError, RunConfig
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


def run_weights_file(run_dir: Path) -> Path:
    """The checkpoint a run is fine-tuned from: ``checkpoints/best.pt`` (the epoch of best
    validation UAR; every epoch's when the run had no validation split), else ``last.pt``."""
    for name in ("best.pt", "last.pt"):
        path = run_dir / "checkpoints" / name
        if path.is_file():
            return path
    raise FileNotFoundError(f"init_from: run {run_dir} has no saved weights "
                            "(checkpoints/best.pt or last.pt)")


def _read_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], Path]:
    info_path = run_dir / "model.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"init_from: {run_dir} is not a trained run (no model.json)")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"init_from: cannot read {info_path} ({exc})") from exc
    path = run_weights_file(run_dir)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling refused, truncated, damaged: one message
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"init_from: cannot read {path} with weights_only=True ({first})"
                          ) from None
    weights = state.get("model_state") if isinstance(state, dict) else None
    if not isinstance(weights, dict) or not isinstance(info.get("class_names"), list):
        raise ConfigError(f"init_from: {path} holds no model_state, or {info_path} no "
                          "class_names")
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
