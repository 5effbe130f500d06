"""Read what a finished training run left for exploration.

Run directory layout (written by :mod:`affectlab.engine`)::

    <run>/config.yaml              the RunConfig (dataset, model, method, scale, ...)
    <run>/metrics.json             final metrics
    <run>/model.json               class_names, modality, scale, normalizers (engine)
    <run>/outputs/test.parquet     one row per test item
    <run>/outputs/embeddings.npy   (n_test, D) embeddings, rows in test.parquet order
    <run>/checkpoints/*.pt         model weights (used by the Live page)

``test.parquet`` columns, all optional except ``item_id``; a distribution is accepted either as
one list-valued column or as one column per class with a prefix:

    item_id, split, label                 identity and the dataset label (int class index)
    soft_label   | soft_<class>           the annotated soft label
    probs        | pred_<class>           the predicted distribution (also: pred_dist,
                                          predicted, or ``pred`` when it holds lists; the
                                          engine's ``pred`` is the argmax and is skipped)
    uncertainty                           per-item uncertainty (method specific; higher = less sure)
    latent       | latent_<class>         the latent distribution (DMUE, LDLVA's d_i, ...)

Missing columns simply leave the corresponding field None, so the explore page offers only what
a run has.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affectlab.fileio import read_json_dict, read_yaml_dict

__all__ = ["DIST_ALIASES", "RunOutputs", "RunSummary", "find_checkpoint", "list_runs",
           "load_run_outputs", "run_class_names"]

# field → (list-column names, per-class prefixes) accepted in test.parquet
DIST_ALIASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "soft": (("soft_label", "soft", "y_soft", "target"), ("soft_", "soft_label_")),
    "pred": (("probs", "pred_dist", "predicted", "pred", "prediction"), ("pred_", "prob_")),
    "latent": (("latent", "latent_dist", "latent_distribution"), ("latent_",)),
}
CHECKPOINT_CANDIDATES = ("checkpoints/best.pt", "checkpoints/last.pt", "model.pt",
                         "checkpoint.pt")


@dataclass
class RunOutputs:
    """A run's test outputs. n = number of test items, K = number of classes.

    table:       (n rows) test.parquet as read
    embeddings:  (n, D) float32 or None
    soft, pred, latent: (n, K) float64 distributions or None
    uncertainty: (n,) float64 or None
    labels:      (n,) int64 dataset labels or None
    class_names: K names (from the run, its dataset, or c0..cK-1)
    """

    run_dir: Path
    table: pd.DataFrame
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    embeddings: np.ndarray | None = None
    soft: np.ndarray | None = None
    pred: np.ndarray | None = None
    latent: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    labels: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def item_ids(self) -> np.ndarray:
        return self.table["item_id"].astype(str).to_numpy()

    @property
    def n(self) -> int:
        return len(self.table)

    @property
    def splits(self) -> list[str]:
        """The splits present (the engine saves test and val items), sorted."""
        if "split" not in self.table.columns:
            return []
        return sorted(map(str, self.table["split"].dropna().unique()))

    def take(self, rows: Any) -> RunOutputs:
        """The outputs of ``rows`` only (an index array or boolean mask over the n items)."""
        idx = np.arange(self.n)[np.asarray(rows)]

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]

        return RunOutputs(run_dir=self.run_dir, table=self.table.iloc[idx].reset_index(drop=True),
                          config=self.config, metrics=self.metrics,
                          embeddings=pick(self.embeddings), soft=pick(self.soft),
                          pred=pick(self.pred), latent=pick(self.latent),
                          uncertainty=pick(self.uncertainty), labels=pick(self.labels),
                          class_names=list(self.class_names))

    @property
    def dataset_path(self) -> Path | None:
        ds = self.config.get("dataset")
        return Path(ds) if ds else None


@dataclass(frozen=True)
class RunSummary:
    name: str
    path: Path
    method: str
    model: str
    dataset: str
    has_embeddings: bool
    modality: str | None = None


def list_runs(root: str | os.PathLike | None = None) -> list[RunSummary]:
    """Runs under ``root`` (default: the runs directory) that have ``outputs/test.parquet``,
    newest first."""
    if root is None:
        from affectlab.paths import runs_dir
        root = runs_dir()
    root = Path(root)
    found = []
    for test in root.glob("*/outputs/test.parquet"):
        run = test.parent.parent
        cfg = read_yaml_dict(run / "config.yaml")
        info = read_json_dict(run / "model.json")
        found.append((test.stat().st_mtime, RunSummary(
            name=run.name, path=run, method=str(cfg.get("method", "?")),
            model=str(cfg.get("model", "?")), dataset=Path(str(cfg.get("dataset", "?"))).name,
            has_embeddings=(run / "outputs" / "embeddings.npy").is_file(),
            modality=info.get("modality") or _run_modality(cfg))))
    return [s for _, s in sorted(found, key=lambda t: t[0], reverse=True)]


def _run_modality(cfg: dict[str, Any]) -> str | None:
    model = cfg.get("model")
    if not model:
        return None
    try:
        from affectlab.models import available
    except ImportError:
        return None
    for spec in available():
        if spec.name == model:
            return spec.modality
    return None


def _distribution(table: pd.DataFrame, key: str, class_names: list[str] | None
                  ) -> tuple[np.ndarray | None, list[str] | None]:
    """A (n, K) distribution from a list column or prefixed per-class columns, with the class
    names the prefixed columns carry (None for a list column)."""
    list_cols, prefixes = DIST_ALIASES[key]
    for col in list_cols:
        if col in table.columns:
            try:
                arr = np.stack([np.asarray(v, dtype=np.float64) for v in table[col]])
            except (TypeError, ValueError):
                continue  # a scalar column of that name (e.g. an int "pred"): not a distribution
            if arr.ndim == 2:
                return arr, None
    for prefix in prefixes:
        cols = [c for c in table.columns if isinstance(c, str) and c.startswith(prefix)
                and not any(c.startswith(p) for p in prefixes if len(p) > len(prefix))]
        if class_names:
            named = [f"{prefix}{n}" for n in class_names]
            if all(c in table.columns for c in named):
                cols = named
        if cols:
            arr = table[cols].to_numpy(dtype=np.float64)
            return arr, [c[len(prefix):] for c in cols]
    return None, None


def run_class_names(config: dict[str, Any]) -> list[str] | None:
    """Class names of a run's label scale, from its config (``class_names``) or its dataset's
    meta.json (the config's ``scale``, else the label set's); None when neither says."""
    from affectlab.data.schema import ContractError, DatasetMeta

    if config.get("class_names"):
        return [str(n) for n in config["class_names"]]
    ds = config.get("dataset")
    if not ds:
        return None
    try:
        meta = DatasetMeta.read(Path(ds) / "meta.json")
    except ContractError:  # missing or broken: the run's own outputs still show
        return None
    scale = config.get("scale") or meta.label_scale
    return meta.class_names(scale) if scale in meta.scales else meta.label_names


def load_run_outputs(run_dir: str | os.PathLike) -> RunOutputs:
    """Read a run's outputs (see the module docstring for the layout).

    Raises FileNotFoundError when ``outputs/test.parquet`` is missing and ValueError when it
    has no ``item_id`` column or the embeddings' row count differs from the table's.
    """
    run_dir = Path(run_dir)
    test_path = run_dir / "outputs" / "test.parquet"
    if not test_path.is_file():
        raise FileNotFoundError(f"run_dir {run_dir}: no outputs/test.parquet (is the run "
                                "finished?)")
    table = pd.read_parquet(test_path).reset_index(drop=True)
    if "item_id" not in table.columns:
        raise ValueError(f"{test_path}: missing column 'item_id'")
    table["item_id"] = table["item_id"].astype(str)
    config = read_yaml_dict(run_dir / "config.yaml")
    metrics = read_json_dict(run_dir / "metrics.json")
    info = read_json_dict(run_dir / "model.json")

    names = (info.get("class_names") or metrics.get("class_names")
             or run_class_names(config))
    names = [str(n) for n in names] if names else None
    dists, col_names = {}, None
    for key in DIST_ALIASES:
        dists[key], found = _distribution(table, key, names)
        col_names = col_names or found
    names = names or col_names
    k = next((d.shape[1] for d in dists.values() if d is not None), len(names or []))
    if not names or len(names) != k:
        names = [f"c{i}" for i in range(k)]

    emb = None
    emb_path = run_dir / "outputs" / "embeddings.npy"
    if emb_path.is_file():
        emb = np.load(emb_path, allow_pickle=False)
        if emb.ndim != 2 or emb.shape[0] != len(table):
            raise ValueError(f"{emb_path}: expected shape ({len(table)}, D) to match "
                             f"test.parquet, got {emb.shape}")
        emb = emb.astype(np.float32, copy=False)

    unc = (table["uncertainty"].to_numpy(dtype=np.float64) if "uncertainty" in table.columns
           else None)
    labels = None
    if "label" in table.columns:
        lab = pd.to_numeric(table["label"], errors="coerce")
        if lab.notna().all():
            labels = lab.to_numpy().astype(np.int64)
    return RunOutputs(run_dir=run_dir, table=table, config=config, metrics=metrics,
                      embeddings=emb, soft=dists["soft"], pred=dists["pred"],
                      latent=dists["latent"], uncertainty=unc, labels=labels, class_names=names)


def find_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The run's model weights file (best, else last, else any ``*.pt``), or None."""
    run_dir = Path(run_dir)
    for rel in CHECKPOINT_CANDIDATES:
        if (run_dir / rel).is_file():
            return run_dir / rel
    found = sorted(run_dir.glob("checkpoints/*.pt"))
    return found[-1] if found else None
