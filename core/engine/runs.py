"""Finished and running runs: listing, loading, and cross-corpus evaluation."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from affectlab.engine.events import EVENTS_FILE, read_events
from affectlab.fileio import read_json_dict, read_yaml_dict

__all__ = ["LoadedRun", "evaluate_run", "list_runs", "load_run"]

RUN_COLUMNS = ["name", "status", "progress", "dataset", "model", "method", "epochs",
               "epochs_done", "best_val_uar", "best_val_accuracy", "test_uar", "created", "path"]


def _is_run(path: Path) -> bool:
    return path.is_dir() and ((path / "config.yaml").is_file() or (path / EVENTS_FILE).is_file())


def list_runs(root: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per run directory under ``root`` (default: the data directory's runs/), newest
    first, with columns :data:`RUN_COLUMNS`. Best validation scores come from the per-epoch
    history (metrics.json when finished, else the epoch events so far)."""
    from affectlab.engine.jobs import status

    if root is None:
        from affectlab.paths import runs_dir

        root = runs_dir()
    root = Path(root)
    rows = []
    for path in sorted(p for p in root.iterdir() if _is_run(p)) if root.is_dir() else []:
        cfg = read_yaml_dict(path / "config.yaml")
        metrics = read_json_dict(path / "metrics.json")
        events, _ = read_events(path)
        st = status(path)
        vals = [ev.get("metrics") or {} for ev in events if ev.get("type") == "epoch"]
        uars = [v["uar"] for v in vals if v.get("uar") is not None]
        accs = [v["accuracy"] for v in vals if v.get("accuracy") is not None]
        created = min((ev["time"] for ev in events if "time" in ev),
                      default=(path / "config.yaml").stat().st_mtime
                      if (path / "config.yaml").exists() else path.stat().st_mtime)
        rows.append({
            "name": path.name, "status": st.state, "progress": st.progress,
            "dataset": Path(str(cfg.get("dataset", ""))).name, "model": cfg.get("model"),
            "method": cfg.get("method"), "epochs": cfg.get("epochs"), "epochs_done": st.epoch,
            "best_val_uar": max(uars) if uars else np.nan,
            "best_val_accuracy": max(accs) if accs else np.nan,
            "test_uar": (metrics.get("test") or {}).get("uar", np.nan),
            "created": datetime.fromtimestamp(created), "path": str(path),
        })
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    return df.sort_values("created", ascending=False, ignore_index=True) if len(df) else df


@dataclass
class LoadedRun:
    """A run read back from disk.

    config: the config.yaml dict; model_info: model.json (names, params, class_names, modality,
    scale, normalizers); metrics: metrics.json ({} while running); events: the event log;
    outputs: outputs/test.parquet or None; embeddings: (n, D) or None; method: the trained
    method (model inside, eval mode, CPU) or None when no weights were saved yet.
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


def load_method(weights_path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Rebuild the trained method from ``checkpoints/{last,best}.pt`` (eval mode)."""
    from affectlab.engine.trainer import build_method, info_from_dict

    state = torch.load(weights_path, map_location=device, weights_only=False)
    info = info_from_dict(state["info"])
    params = {k: v for k, v in state["model_params"].items() if k != "num_classes"}
    method, _ = build_method(state["model"], params, state["method"], state["method_params"],
                             info, pretrained=False)
    method.load_state_dict(state["method_state"])
    return method.to(device).eval()


def load_run(run_dir: str | os.PathLike, weights: str = "last",
             device: str | torch.device = "cpu") -> LoadedRun:
    """Everything about a run: config, metrics, events, outputs and the trained method.

    weights: "last" or "best" (the epoch of best validation UAR).
    """
    if weights not in ("last", "best"):
        raise ValueError(f"weights must be 'last' or 'best', got {weights!r}")
    path = Path(run_dir)
    if not _is_run(path):
        raise FileNotFoundError(f"{path} is not a run directory (no config.yaml or events.jsonl)")
    outputs = embeddings = None
    if (path / "outputs" / "test.parquet").is_file():
        outputs = pd.read_parquet(path / "outputs" / "test.parquet")
    if (path / "outputs" / "embeddings.npy").is_file():
        embeddings = np.load(path / "outputs" / "embeddings.npy")
    wpath = path / "checkpoints" / f"{weights}.pt"
    method = load_method(wpath, device) if wpath.is_file() else None
    events, _ = read_events(path)
    return LoadedRun(path, read_yaml_dict(path / "config.yaml"), read_json_dict(path / "model.json"),
                     read_json_dict(path / "metrics.json"), events, outputs, embeddings, method)


def evaluate_run(run_dir: str | os.PathLike, dataset_dir: str | os.PathLike,
                 split: str | None = "test", weights: str = "last") -> dict[str, float]:
    """Metrics of a trained run on another dataset (cross-corpus evaluation).

    The dataset must have the run's scale with the same class names (in the same order).
    Speech features are normalised with the *target* corpus's own statistics (per domain), as
    the f-SPL paper does for cross-corpus tests. split: "train" | "val" | "test" | None (all).
    """
    from affectlab.data.contract import load_dataset
    from affectlab.data.dataset import EmotionDataset
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
    ds = EmotionDataset(data, split, scale=scale)
    if ds.class_names != run.class_names:
        raise ValueError(f"dataset {data.name!r} scale {scale!r} has classes {ds.class_names}, "
                         f"the run was trained on {run.class_names}")
    if len(ds) == 0:
        raise ValueError(f"dataset {data.name!r} has no rated items in split {split!r}")
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=False,
                                         collate_fn=ds.collate_fn)
    pred = predict_split(run.method, loader, torch.device("cpu"), split or "all")
    seed = int(run.config.get("seed", 0))
    return compute_metrics(pred, bool(run.model_info.get("ordinal", False)), seed)
