"""A tiny generated dataset and a fake run directory in the engine's layout, for the explore,
live and app-page tests (no training needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from affectlab.data.synth.corpus import generate_corpus
from affectlab.data.synth.truth import CATEGORIES
from affectlab.engine.rundir import RunDir


def make_dataset(root: Path, name: str = "tiny-faces", modality: str = "face", n: int = 24):
    """A generated dataset under ``root/datasets/name``."""
    return generate_corpus(modality, n=n, seed=3, out=root / "datasets" / name, name=name)


def make_fake_run(root: Path, ds, name: str = "fake-run", dim: int = 6, seed: int = 0,
                  prefixed: bool = False, with_latent: bool = True, legacy: bool = False) -> Path:
    """A run directory ``root/runs/name`` over every item of ``ds`` (the engine saves test and
    val items; here all splits, so the split filter has something to do): config, model info,
    final metrics, and per-split outputs with their embeddings written through RunDir.

    prefixed: distributions as soft_<class> / pred_<class> columns instead of list columns.
    legacy: the layout of runs written before per-split outputs (one test table holding every
    row, one embeddings file).
    """
    rng = np.random.default_rng(seed)
    items = ds.items
    k = len(CATEGORIES)
    n = len(items)
    soft = rng.dirichlet(np.ones(k), size=n)
    pred = rng.dirichlet(np.ones(k), size=n)
    latent = rng.dirichlet(np.ones(k), size=n)
    table = {"item_id": items["item_id"].astype(str).to_numpy(),
             "split": items["split"].to_numpy(), "label": items["label"].to_numpy()}
    if prefixed:
        for j, c in enumerate(CATEGORIES):
            table[f"soft_{c}"] = soft[:, j]
            table[f"pred_{c}"] = pred[:, j]
    else:  # the engine's layout: list columns, ``pred`` the argmax class index
        table["soft_label"] = list(soft)
        table["probs"] = list(pred)
        table["pred"] = pred.argmax(axis=1)
    table["uncertainty"] = rng.uniform(0, 1, n)
    if with_latent:
        table["latent"] = list(latent)
    run = RunDir(root / "runs" / name)
    # two well-separated groups so neighbour and layout checks have structure to find
    emb = rng.normal(size=(n, dim)).astype(np.float32)
    emb[: n // 2, 0] += 5.0
    frame = pd.DataFrame(table)
    if legacy:
        run.outputs_dir.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(run.outputs_path("test"), index=False)
        np.save(run.outputs_dir / RunDir.LEGACY_EMBEDDINGS, emb)
    else:  # rows grouped by split, in the order RunDir reads them back
        order = np.concatenate([np.flatnonzero(frame["split"] == s) for s in RunDir.SPLITS])
        assert len(order) == n, "every item's split must be one of RunDir.SPLITS"
        frame, emb = frame.iloc[order].reset_index(drop=True), emb[order]
        for split in RunDir.SPLITS:
            rows = np.flatnonzero(frame["split"] == split)
            if len(rows):
                run.write_outputs(split, frame.iloc[rows].reset_index(drop=True), emb[rows])
    run.config_path.write_text(yaml.safe_dump({
        "dataset": str(ds.root), "model": "mini_xception", "method": "ce", "scale": "category"}))
    run.metrics_path.write_text('{"test": {"accuracy": 0.5}}')
    run.model_info_path.write_text(json.dumps({"class_names": list(CATEGORIES),
                                               "modality": ds.modality, "scale": "category"}))
    return run.path
