"""Finished and running runs: the runs table, loading a run, and cross-corpus evaluation.

Every file is found and read through :class:`~affectlab.engine.rundir.RunDir`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from affectlab.engine.rundir import CheckpointError, RunDir

__all__ = ["RUN_COLUMNS", "LoadedRun", "evaluate_run", "load_method", "load_run",
           "method_from_checkpoint", "runs_table"]

RUN_COLUMNS = ["name", "status", "progress", "dataset", "model", "method", "epochs",
               "epochs_done", "best_val_uar", "best_val_accuracy", "test_uar", "created", "path"]


def runs_table(root: str | os.PathLike | None = None, **filters: Any) -> pd.DataFrame:
    """One row per run under ``root`` (default: the data directory's runs/), newest first,
    with columns :data:`RUN_COLUMNS` (``filters``: those of :meth:`RunDir.list`). Best
    validation scores come from the epoch events so far."""
    rows = []
    for run in RunDir.list(root, **filters):
        summary = asdict(run.summary())
        summary["path"] = str(summary["path"])
        rows.append({k: summary[k] for k in RUN_COLUMNS})
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


@dataclass
class LoadedRun:
    """A run read back from disk.

    config: the run's config (a dict); model_info: names, params, class_names, modality,
    scale, normalizers; metrics: the final metrics ({} while running); events: the event log;
    outputs: the saved splits' outputs (test then val rows) or None; embeddings: (n, D),
    row-aligned with them, or None; method: the trained method (model inside, eval mode, CPU)
    or None when no weights were saved yet.
    """

    path: Path
    config: dict[str, Any]
    model_info: dict[str, Any]
    metrics: dict[str, Any]
    events: list[dict[str, Any]]
    outputs: pd.DataFrame | None = None
    embeddings: np.ndarray | None = None
    method: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return list(self.model_info.get("class_names", []))

    @property
    def model(self):
        """The trained EmotionModel (None before the first weights are written)."""
        return None if self.method is None else self.method.model

    def normalizer(self, domain: str | None = None):
        """Speech: the training normaliser of ``domain`` (default: the first one), or None."""
        from affectlab.features.fbank import CorpusNormalizer

        norms = self.model_info.get("normalizers") or {}
        if not norms:
            return None
        key = domain if domain in norms else next(iter(norms))
        return CorpusNormalizer.from_dict(norms[key])


def method_from_checkpoint(state: dict[str, Any], device: str | torch.device = "cpu",
                           path: str | os.PathLike = "checkpoint"):
    """Rebuild the trained method from a loaded engine checkpoint (eval mode);
    CheckpointError naming ``path`` when the checkpoint lacks what rebuilding needs."""
    from affectlab.engine.checkpoint import info_from_dict
    from affectlab.engine.trainer import build_method

    try:
        info = info_from_dict(state["info"])
        params = {k: v for k, v in state["model_params"].items() if k != "num_classes"}
        with warnings.catch_warnings():
            # the training set's warnings (a class with no mass, ...) were given when it
            # trained; rebuilding from the same set would repeat them at every prediction
            warnings.simplefilter("ignore", RuntimeWarning)
            method, _ = build_method(state["model"], params, state["method"],
                                     state["method_params"], info, pretrained=False)
        method.load_state_dict(state["method_state"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path} cannot rebuild its method "
                              f"({type(exc).__name__}: {exc})") from exc
    return method.to(device).eval()


def load_method(weights_path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Rebuild the trained method from a run's checkpoint file (eval mode); read with
    ``weights_only=True`` (see :func:`affectlab.engine.rundir.load_checkpoint_file`)."""
    from affectlab.engine.rundir import load_checkpoint_file

    return method_from_checkpoint(load_checkpoint_file(weights_path, device), device,
                                  weights_path)


def load_run(run_dir: str | os.PathLike, weights: str = "last",
             device: str | torch.device = "cpu") -> LoadedRun:
    """Everything about a run: config, metrics, events, outputs and the trained method.

    weights: "last" or "best" (the epoch of best validation UAR). FileNotFoundError when the
    directory is not a run; CheckpointError when its checkpoint cannot be read.
    """
    if weights not in ("last", "best"):
        raise ValueError(f"weights must be 'last' or 'best', got {weights!r}")
    run = RunDir(run_dir)
    if not run.is_run():
        raise FileNotFoundError(f"{run.path} is not a run directory (no {RunDir.CONFIG} or "
                                f"{RunDir.EVENTS})")
    outputs, embeddings = run.read_outputs()
    wpath = run.checkpoint_path(weights)
    method = load_method(wpath, device) if wpath.is_file() else None
    return LoadedRun(run.path, run.read_config(), run.read_model_info(), run.read_metrics(),
                     run.read_events(), outputs, embeddings, method)


def evaluate_run(run_dir: str | os.PathLike, dataset_dir: str | os.PathLike,
                 split: str | None = "test", weights: str = "last",
                 class_map: dict[str, str] | None = None,
                 domains: list[str] | None = None) -> dict[str, Any]:
    """Metrics of a trained run on another dataset (cross-corpus evaluation), with the
    ``confusion_matrix`` (class names, rows true, columns predicted).

    The dataset must have the run's scale. When its classes differ from the run's (another
    corpus's label set), they are matched by name (:mod:`affectlab.labelmap`, ``class_map``
    first) and scored on the shared classes only; ``classes`` then says which were kept and
    dropped (:func:`affectlab.engine.crosscorpus.evaluate_across_label_sets`).
    Speech features are normalised with the *target* corpus's own statistics (per domain), as
    the f-SPL paper does for cross-corpus tests. split: "train" | "val" | "test" | None (all).
    domains: the items' domains to evaluate on; None: the run's ``test_domains`` when the
    dataset has every one of them (the run's own protocol), else all of its items.
    """
    from affectlab.data.contract import load_dataset
    from affectlab.data.dataset import EmotionDataset
    from affectlab.engine.crosscorpus import confusion_block, evaluate_across_label_sets
    from affectlab.engine.evaluate import compute_metrics, predict_split

    run = load_run(run_dir, weights=weights)
    if run.method is None:
        raise FileNotFoundError(f"run {run.path} has no saved weights yet")
    data = load_dataset(dataset_dir)
    if data.modality != run.model_info.get("modality", data.modality):
        raise ValueError(f"dataset {data.name!r} is {data.modality} data; the run's model is "
                         f"for {run.model_info['modality']}")
    scale = run.model_info["scale"]
    if scale not in data.meta.get("scales", {}):
        raise ValueError(f"dataset {data.name!r} has no scale {scale!r} (the run's label scale)")
    ds = EmotionDataset(data, split, scale=scale,
                        domains=_eval_domains(data, domains, run.config.get("test_domains")))
    if len(ds) == 0:
        raise ValueError(f"dataset {data.name!r} has no rated items in split {split!r}")
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=False,
                                         collate_fn=ds.collate_fn)
    pred = predict_split(run.method, loader, torch.device("cpu"), split or "all")
    seed = int(run.config.get("seed", 0))
    if ds.class_names != run.class_names:
        return evaluate_across_label_sets(pred, run.class_names, ds.class_names, class_map, seed)
    out: dict[str, Any] = dict(compute_metrics(pred, bool(run.model_info.get("ordinal", False)),
                                               seed))
    out["confusion_matrix"] = confusion_block(pred, ds.class_names)
    return out


def _eval_domains(data, asked: list[str] | None, run_test_domains: list[str] | None
                  ) -> list[str] | None:
    """The domains :func:`evaluate_run` keeps (see there); ValueError for an unknown one."""
    from affectlab.data.dataset import check_domains

    if asked is not None:
        return check_domains(data, asked)
    if run_test_domains and set(run_test_domains) <= set(data.items["domain"].astype(str)):
        return list(run_test_domains)
    return None
