"""Models for the live processors: the shipped pretrained face model, or a trained run's.

A run written by :mod:`affectlab.engine` (checkpoints holding ``method_state``, its model info
naming the classes, modality and speech normalisers) is rebuilt with
:func:`affectlab.engine.runs.method_from_checkpoint`; a bare state-dict checkpoint with the
network named in the run's config works too. Checkpoints are read with ``weights_only=True``
only (:func:`affectlab.engine.rundir.load_checkpoint_file`): nothing is unpickled.

:class:`LiveModel` wraps a network so that ``predict(x)`` returns class probabilities in
``class_names`` order (the pretrained mini-Xception's FER2013 outputs are reordered to the
generated corpus's categories) plus the embedding, and knows the run's map projection when the
run has one.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from affectlab.data.synth.truth import CATEGORIES
from affectlab.engine.rundir import RunDir, load_checkpoint_file
from affectlab.explore.run_outputs import run_class_names

__all__ = ["LiveModel", "load_run_model", "pretrained_face_model"]

_STATE_KEYS = ("model", "model_state", "model_state_dict", "state_dict")


@dataclass
class LiveModel:
    """A network ready for single-item inference.

    model:       an :class:`~affectlab.models.base.EmotionModel` in eval mode
    class_names: names of the K outputs, in the order ``predict`` returns them
    source:      human description ("pretrained mini_xception (FER2013)", "run <name>")
    modality:    "face" | "speech"
    fer_order:   the raw outputs are FER2013-ordered and get reordered to ``class_names``
    run_dir:     the run it came from, or None
    normalizers: speech: {domain: CorpusNormalizer state dict} saved with the run, if any
    """

    model: torch.nn.Module
    class_names: list[str]
    source: str
    modality: str
    fer_order: bool = False
    run_dir: Path | None = None
    normalizers: dict[str, Any] = field(default_factory=dict)
    method: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, lengths: torch.Tensor | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """x: one batch as the model takes it. Returns (probs (B, K) float64, embedding (B, D)).

        A trained run predicts through its method (``method.predict``), as its test outputs
        were computed (DMUE's target branch, for one); a bare model through its logits.
        """
        with self._lock:  # frame callbacks may arrive on several threads
            if self.method is not None:
                batch = {"x": x, "lengths": lengths, "index": torch.arange(x.shape[0]),
                         "split": "predict"}
                pred = self.method.predict(batch)
                probs, emb = pred.probs.float(), pred.embedding.float()
            else:
                out = self.model(x, lengths) if lengths is not None else self.model(x)
                probs, emb = out.logits.float().softmax(-1), out.embedding.float()
        if self.fer_order:
            from affectlab.models.mini_xception import fer_to_categories
            probs = fer_to_categories(probs, tuple(self.class_names))
        return probs.double().numpy(), emb.numpy()


def pretrained_face_model() -> LiveModel:
    """The shipped FER2013-trained mini-Xception; outputs in the generated corpus's order."""
    from affectlab.models import create

    model = create("mini_xception", pretrained=True).eval()
    return LiveModel(model, list(CATEGORIES), "pretrained mini_xception (FER2013)", "face",
                     fer_order=True)


def _state_dict(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    for key in _STATE_KEYS:
        if isinstance(ckpt.get(key), dict):
            return ckpt[key]
    if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt
    raise ValueError("checkpoint holds no model state dict (looked for keys "
                     f"{', '.join(_STATE_KEYS)} or a plain state dict)")


def _bare_model(name: str, cfg: dict[str, Any], names: list[str] | None,
                ckpt: dict[str, Any], ckpt_path: Path) -> torch.nn.Module:
    """The network ``name`` of the run's config with a bare state dict's weights."""
    from affectlab.models import create

    params = dict(cfg.get("model_params") or {})
    if "num_classes" not in params and names:
        params["num_classes"] = len(names)
    model = create(name, **params)
    try:
        model.load_state_dict(_state_dict(ckpt))
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {ckpt_path} does not fit {name} ({exc})") from exc
    return model.eval()


def load_run_model(run_dir: str | os.PathLike) -> LiveModel:
    """The model of a trained run: the run's config says which network (and its parameters),
    the checkpoint gives the weights, the dataset's label scale names the classes.

    Raises FileNotFoundError (no config or checkpoint), CheckpointError (a checkpoint that
    is damaged or holds more than tensors and plain data) or ValueError (unknown model,
    checkpoint that does not fit the network), naming the run or the file.
    """
    from affectlab.engine.runs import method_from_checkpoint
    from affectlab.models import available

    run = RunDir(run_dir)
    if not run.config_path.is_file():
        raise FileNotFoundError(f"run_dir {run.path}: no {RunDir.CONFIG}")
    cfg, info = run.read_config(), run.read_model_info()
    name = cfg.get("model")
    specs = {s.name: s for s in available()}
    if name not in specs:
        raise ValueError(f"run {run.name}: unknown model {name!r} in {RunDir.CONFIG}")
    ckpt_path = run.weights_path()
    if ckpt_path is None:
        raise FileNotFoundError(f"run {run.name}: no checkpoint ({RunDir.CHECKPOINTS}/*.pt)")
    names = [str(n) for n in info.get("class_names") or []] or run_class_names(cfg)
    normalizers = info.get("normalizers") or {}
    ckpt = load_checkpoint_file(ckpt_path)
    method = None
    if "method_state" in ckpt:
        # the training engine's checkpoint: the whole method (DMUE's branches, LDLVA's bank)
        method = method_from_checkpoint(ckpt, "cpu", ckpt_path)
        model = method.model.eval()
    else:
        model = _bare_model(name, cfg, names, ckpt, ckpt_path)
        normalizers = normalizers or ckpt.get("normalizers") or {}
    k = int(getattr(model, "num_classes", len(names or [])))
    if not names or len(names) != k:
        names = [f"c{i}" for i in range(k)]
    return LiveModel(model, names, f"run {run.name}", str(info.get("modality") or
                                                        specs[name].modality),
                     run_dir=run.path, normalizers=normalizers, method=method)
