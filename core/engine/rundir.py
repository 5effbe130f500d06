"""The run directory: one class knows its layout, writes it atomically and reads it back.

Layout (written by rank 0 of the trainer, the background launcher and the map caches)::

    config.yaml                     the RunConfig with method defaults filled in
    events.jsonl                    the event log (:mod:`affectlab.engine.events`)
    model.json                      model/method names and params, class names, modality,
                                    scale, speech normalisers (for loading the run)
    metrics.json                    final val/test metrics, best epoch, per-epoch history
    checkpoints/last.pt             the latest resumable checkpoint
    checkpoints/previous.pt         the one before it: a resume falls back to it when
                                    last.pt is damaged
    checkpoints/best.pt             weights at the best validation UAR
    outputs/<split>.parquet         one row per item of the split: predictions, uncertainty,
                                    latent, truth (the trainer writes test, val and train;
                                    train adds label_uncertainty, the score of each item's
                                    trained label that auroc_flipped ranks, and subclass_id)
    outputs/<split>.embeddings.npy  (n, D) embeddings, row-aligned with <split>.parquet
    outputs/pca.npz, umap.*         the Explore page's map caches
    worker.pid, worker.log          the background worker (:mod:`affectlab.engine.jobs`)
    cancel.request                  asks the training loop to stop at its next step

Runs written before per-split outputs hold one ``outputs/test.parquet`` with the test and val
rows and one ``outputs/embeddings.npy``; they read the same.

Checkpoints hold tensors and plain data only and are always read with
``torch.load(weights_only=True)``: nothing is unpickled, and a file that needs more (an older
checkpoint, a foreign or crafted one) is refused with a :class:`CheckpointError`.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import yaml

from affectlab.fileio import atomic_write, json_safe, read_json_dict, read_yaml_dict
from affectlab.paths import make_product_dir

if TYPE_CHECKING:
    from affectlab.engine.config import RunConfig
    from affectlab.engine.events import RunStatus

__all__ = ["CheckpointError", "RunDir", "RunSummary", "load_checkpoint_file"]


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: empty, truncated or damaged, or holding more than
    tensors and plain data (an older or foreign file). The message names the file."""


def load_checkpoint_file(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """The dict saved in checkpoint ``path``, read with ``weights_only=True`` only.

    FileNotFoundError when it does not exist; :class:`CheckpointError` when it is empty,
    truncated, damaged, not a dict, or needs unpickling of anything but tensors and plain data.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (its write was cut short)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if refused:
            raise CheckpointError(
                f"checkpoint {path} holds objects other than tensors and plain data "
                f"({refused.group(1)}): an older affectlab checkpoint or a foreign file. It is "
                "not unpickled; retrain the run or use a checkpoint written by this version"
            ) from None
        raise CheckpointError(f"checkpoint {path} is damaged (not a readable checkpoint)") from None
    except Exception as exc:  # noqa: BLE001 - zip/EOF/IO errors of every kind mean "damaged"
        raise CheckpointError(f"checkpoint {path} is truncated or damaged "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                              ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not the dict "
                              "of a checkpoint")
    return state


@dataclass(frozen=True)
class RunSummary:
    """One run as the listings show it (every field read tolerantly; NaN when unknown)."""

    name: str
    path: Path
    status: str
    progress: float
    dataset: str
    model: str | None
    method: str | None
    epochs: int | None
    epochs_done: int
    best_val_uar: float
    best_val_accuracy: float
    test_uar: float
    created: datetime
    modality: str | None
    has_outputs: bool
    has_embeddings: bool
    has_weights: bool


class RunDir:
    """A run directory: its file names, atomic writes, tolerant and strict reads, listing.

    ``RunDir(path)`` only names the directory; nothing is read or created until asked. It is
    path-like (``os.fspath(run)``), so it can be passed wherever a run path is taken.
    """

    CONFIG = "config.yaml"
    EVENTS = "events.jsonl"
    MODEL = "model.json"
    METRICS = "metrics.json"
    CHECKPOINTS = "checkpoints"
    CHECKPOINT_FILES = {"last": "last.pt", "previous": "previous.pt", "best": "best.pt"}
    FOREIGN_WEIGHTS = ("model.pt", "checkpoint.pt")  # bare state dicts placed by hand
    OUTPUTS = "outputs"
    SPLITS = ("test", "val", "train")  # the order outputs are read (and concatenated) in
    LEGACY_EMBEDDINGS = "embeddings.npy"  # before per-split outputs: rows of test.parquet
    PCA = "pca.npz"
    UMAP = "umap.npy"
    UMAP_META = "umap.json"
    UMAP_LOCK = "umap.lock"
    UMAP_ERROR = "umap.error"
    PID = "worker.pid"
    LOG = "worker.log"
    CANCEL = "cancel.request"

    def __init__(self, path: str | os.PathLike) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"a run directory must be a path, got {type(path).__name__}")
        self.path = Path(path)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunDir) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def make_dir(self) -> RunDir:
        """Make the directory (and its parents); a new or empty one gets affectlab's product
        marker (:func:`affectlab.paths.make_product_dir`), a folder that held files does not."""
        make_product_dir(self.path)
        return self

    @property
    def name(self) -> str:
        return self.path.name

    # -- where things are ------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def events_path(self) -> Path:
        return self.path / self.EVENTS

    @property
    def model_info_path(self) -> Path:
        return self.path / self.MODEL

    @property
    def metrics_path(self) -> Path:
        return self.path / self.METRICS

    @property
    def pid_path(self) -> Path:
        return self.path / self.PID

    @property
    def log_path(self) -> Path:
        return self.path / self.LOG

    @property
    def cancel_path(self) -> Path:
        return self.path / self.CANCEL

    @property
    def outputs_dir(self) -> Path:
        return self.path / self.OUTPUTS

    def checkpoint_path(self, which: str = "last") -> Path:
        """``checkpoints/{last,previous,best}.pt``."""
        if which not in self.CHECKPOINT_FILES:
            raise ValueError(f"checkpoint must be one of {', '.join(self.CHECKPOINT_FILES)}, "
                             f"got {which!r}")
        return self.path / self.CHECKPOINTS / self.CHECKPOINT_FILES[which]

    def outputs_path(self, split: str) -> Path:
        return self.outputs_dir / f"{self._split(split)}.parquet"

    def embeddings_path(self, split: str) -> Path:
        return self.outputs_dir / f"{self._split(split)}.embeddings.npy"

    def cache_path(self, name: str) -> Path:
        """A map cache in outputs/ (one of PCA, UMAP, UMAP_META, UMAP_LOCK, UMAP_ERROR)."""
        if name not in (self.PCA, self.UMAP, self.UMAP_META, self.UMAP_LOCK, self.UMAP_ERROR):
            raise ValueError(f"{name!r} is not a map cache of a run")
        return self.outputs_dir / name

    def _split(self, split: str) -> str:
        if split not in self.SPLITS:
            raise ValueError(f"split must be one of {', '.join(self.SPLITS)}, got {split!r}")
        return split

    # -- what is there ---------------------------------------------------------------------

    def is_run(self) -> bool:
        """A directory holding a config or an event log."""
        return self.path.is_dir() and (self.config_path.is_file() or self.events_path.is_file())

    def has_checkpoint(self) -> bool:
        """A resumable checkpoint (last, or the previous one) exists."""
        return any(self.checkpoint_path(w).is_file() for w in ("last", "previous"))

    def has_results(self) -> bool:
        """Something a fresh start would overwrite: a checkpoint, final metrics or outputs. A
        run killed before its first checkpoint has none and can be started again in place."""
        return self.has_checkpoint() or self.metrics_path.is_file() or self.has_outputs()

    def output_splits(self) -> list[str]:
        """The splits with saved outputs, in :data:`SPLITS` order."""
        return [s for s in self.SPLITS if self.outputs_path(s).is_file()]

    def has_outputs(self) -> bool:
        return bool(self.output_splits())

    def has_embeddings(self) -> bool:
        return self._embedding_files(self.output_splits()) is not None

    def _embedding_files(self, splits: list[str]) -> list[Path] | None:
        """Every split's embeddings file; else, for a run written before per-split outputs,
        the one legacy file (rows of its table); else None."""
        per_split = [self.embeddings_path(s) for s in splits]
        if splits and all(p.is_file() for p in per_split):
            return per_split
        legacy = self.outputs_dir / self.LEGACY_EMBEDDINGS
        if splits and not any(p.is_file() for p in per_split) and legacy.is_file():
            return [legacy]
        return None

    def outputs_stamp(self) -> float:
        """Latest modification time of the saved outputs (0.0 when none): a cache key."""
        splits = self.output_splits()
        files = [self.outputs_path(s) for s in splits] + (self._embedding_files(splits) or [])
        return max((p.stat().st_mtime for p in files if p.is_file()), default=0.0)

    def weights_path(self) -> Path | None:
        """The file to take model weights from: best, else last, else previous, else a bare
        state dict placed by hand (model.pt, checkpoint.pt, any checkpoints/*.pt), or None."""
        for which in ("best", "last", "previous"):
            if self.checkpoint_path(which).is_file():
                return self.checkpoint_path(which)
        for name in self.FOREIGN_WEIGHTS:
            if (self.path / name).is_file():
                return self.path / name
        found = sorted((self.path / self.CHECKPOINTS).glob("*.pt"))
        return found[-1] if found else None

    # -- tolerant reads (listings: a broken file reads as empty) ----------------------------

    def read_config(self) -> dict[str, Any]:
        return read_yaml_dict(self.config_path)

    def read_model_info(self) -> dict[str, Any]:
        return read_json_dict(self.model_info_path)

    def read_metrics(self) -> dict[str, Any]:
        return read_json_dict(self.metrics_path)

    def read_events(self) -> list[dict[str, Any]]:
        from affectlab.engine.events import read_events

        return read_events(self.path)[0]

    def read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def cancel_requested(self) -> bool:
        return self.cancel_path.exists()

    def status(self, events: list[dict[str, Any]] | None = None) -> RunStatus:
        """The run's status, the worker's liveness checked (:func:`affectlab.engine.jobs.status`)."""
        from affectlab.engine.jobs import status

        return status(self.path, events)

    def created(self) -> datetime:
        """When the run started (its first event), else when its config was written."""
        try:
            with open(self.events_path, "rb") as fh:
                first = json.loads(fh.readline())
            return datetime.fromtimestamp(float(first["time"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        stamp = self.config_path if self.config_path.exists() else self.path
        try:
            return datetime.fromtimestamp(stamp.stat().st_mtime)
        except OSError:
            return datetime.fromtimestamp(0)

    def summary(self) -> RunSummary:
        """The run's headline facts; best validation scores from the epoch events so far."""
        cfg, metrics = self.read_config(), self.read_metrics()
        events = self.read_events()
        st = self.status(events)
        vals = [ev.get("metrics") or {} for ev in events if ev.get("type") == "epoch"]
        uars = [v["uar"] for v in vals if isinstance(v.get("uar"), int | float)]
        accs = [v["accuracy"] for v in vals if isinstance(v.get("accuracy"), int | float)]
        test_uar = (metrics.get("test") or {}).get("uar")
        return RunSummary(
            name=self.name, path=self.path, status=st.state, progress=st.progress,
            dataset=Path(str(cfg.get("dataset", ""))).name, model=cfg.get("model"),
            method=cfg.get("method"), epochs=cfg.get("epochs"), epochs_done=st.epoch,
            best_val_uar=max(uars) if uars else np.nan,
            best_val_accuracy=max(accs) if accs else np.nan,
            test_uar=test_uar if isinstance(test_uar, int | float) else np.nan,
            created=self.created(), modality=self._modality(cfg),
            has_outputs=self.has_outputs(), has_embeddings=self.has_embeddings(),
            has_weights=self.weights_path() is not None)

    def _modality(self, cfg: dict[str, Any]) -> str | None:
        modality = self.read_model_info().get("modality")
        if modality or not cfg.get("model"):
            return modality
        from affectlab.models import available

        return next((s.modality for s in available() if s.name == cfg["model"]), None)

    # -- strict reads (loaders: a missing or broken file is an error naming it) -------------

    def load_config(self) -> RunConfig:
        from affectlab.engine.config import load_config

        return load_config(self.config_path)

    def load_checkpoint(self, which: str = "last", map_location: Any = "cpu") -> dict[str, Any]:
        """A checkpoint of this run (see :func:`load_checkpoint_file`)."""
        return load_checkpoint_file(self.checkpoint_path(which), map_location)

    def read_outputs(self) -> tuple[pd.DataFrame | None, np.ndarray | None]:
        """Every saved split's table, concatenated in :data:`SPLITS` order, and the embeddings
        row-aligned with it (None when not every split has them); (None, None) without
        outputs. ValueError when an embeddings file does not match its table."""
        splits = self.output_splits()
        if not splits:
            return None, None
        tables = [pd.read_parquet(self.outputs_path(s)).reset_index(drop=True) for s in splits]
        table = tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True)
        files = self._embedding_files(splits)
        if files is None:
            return table, None
        names = [self.outputs_path(s).name for s in splits]
        if len(files) != len(tables):  # the legacy file: rows of every table
            tables, names = [table], [" + ".join(names)]
        arrays = [_load_rows(f, len(t), n) for f, t, n in zip(files, tables, names, strict=True)]
        return table, _stack(arrays, files)

    def read_embeddings(self) -> np.ndarray:
        """The embeddings of :meth:`read_outputs` (without reading the tables);
        FileNotFoundError when there are none."""
        files = self._embedding_files(self.output_splits())
        if files is None:
            raise FileNotFoundError(f"run_dir {self.path}: no saved embeddings (outputs/"
                                    f"<split>.embeddings.npy)")
        return _stack([_load_rows(f, None, None) for f in files], files)

    # -- writes (atomic) --------------------------------------------------------------------

    def write_config(self, config: RunConfig) -> Path:
        text = yaml.safe_dump(config.to_dict(), sort_keys=False)
        atomic_write(self.config_path, lambda f: f.write(text.encode()))
        return self.config_path

    def write_model_info(self, info: dict[str, Any]) -> None:
        _write_json(self.model_info_path, info)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        _write_json(self.metrics_path, metrics)

    def write_outputs(self, split: str, table: pd.DataFrame, embeddings: np.ndarray) -> None:
        """``outputs/<split>.parquet`` and its row-aligned (n, D) embeddings."""
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2 or embeddings.shape[0] != len(table):
            raise ValueError(f"embeddings of split {split!r} must have shape ({len(table)}, D), "
                             f"got {embeddings.shape}")
        atomic_write(self.embeddings_path(split),
                     lambda f: np.save(f, embeddings, allow_pickle=False))
        atomic_write(self.outputs_path(split), lambda f: table.to_parquet(f, index=False))
        (self.outputs_dir / self.LEGACY_EMBEDDINGS).unlink(missing_ok=True)  # superseded

    def save_checkpoint(self, state: dict[str, Any], which: str = "last",
                        keep_previous: bool = True) -> Path:
        """Write a checkpoint atomically; the last one, when replaced, becomes ``previous``
        (unless ``keep_previous`` is False: a resume from previous.pt past a damaged last)."""
        path = self.checkpoint_path(which)
        backup = self.checkpoint_path("previous") if which == "last" and keep_previous else None
        atomic_write(path, lambda f: torch.save(state, f), backup=backup)
        return path

    def write_pid(self, pid: int) -> None:
        atomic_write(self.pid_path, lambda f: f.write(str(int(pid)).encode()))

    def request_cancel(self) -> None:
        self.cancel_path.touch()

    def clear_cancel(self) -> None:
        self.cancel_path.unlink(missing_ok=True)

    # -- listing ----------------------------------------------------------------------------

    @classmethod
    def list(cls, root: str | os.PathLike | None = None, *, has_outputs: bool | None = None,
             status: str | Iterable[str] | None = None) -> list[RunDir]:
        """The runs directly under ``root`` (default: the data directory's runs/), newest
        first. has_outputs: only runs with (True) or without (False) saved outputs; status: only
        runs in this state or these states (queued, running, finished, failed, cancelled;
        the worker's liveness checked)."""
        if root is None:
            from affectlab.paths import runs_dir

            root = runs_dir()
        root = Path(root)
        states = _states(status)
        runs = [cls(p) for p in sorted(root.iterdir())] if root.is_dir() else []
        runs = [r for r in runs if r.is_run()]
        if has_outputs is not None:
            runs = [r for r in runs if r.has_outputs() == bool(has_outputs)]
        if states is not None:
            runs = [r for r in runs if r.status().state in states]
        return sorted(runs, key=lambda r: r.created(), reverse=True)


def _states(status: str | Iterable[str] | None) -> set[str] | None:
    from affectlab.engine.events import STATES

    if status is None:
        return None
    states = {status} if isinstance(status, str) else set(status)
    unknown = sorted(states - set(STATES))
    if unknown:
        raise ValueError(f"status must be among {', '.join(STATES)}, got {unknown}")
    return states


def _write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(json_safe(data), indent=2)
    atomic_write(path, lambda f: f.write(text.encode()))


def _load_rows(path: Path, n: int | None, table_name: str | None) -> np.ndarray:
    """A 2-D array from ``path`` (no pickles); ValueError naming it when it is not 2-D or its
    row count is not ``n`` (the rows of ``table_name``)."""
    arr = np.load(path, allow_pickle=False)
    if arr.ndim != 2 or (n is not None and arr.shape[0] != n):
        raise ValueError(f"{path}: expected shape ({'n' if n is None else n}, D)"
                         + (f" to match {table_name}" if table_name else "") + f", got {arr.shape}")
    return arr


def _stack(arrays: list[np.ndarray], files: list[Path]) -> np.ndarray:
    if len(arrays) == 1:
        return arrays[0]
    dims = {a.shape[1] for a in arrays}
    if len(dims) > 1:
        raise ValueError(f"embeddings of different widths {sorted(dims)} in "
                         f"{', '.join(map(str, files))}")
    return np.concatenate(arrays)
