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


def make_dataset(root: Path, name: str = "tiny-faces", modality: str = "face", n: int = 24):
    """A generated dataset under ``root/datasets/name``."""
    return generate_corpus(modality, n=n, seed=3, out=root / "datasets" / name, name=name)


def make_fake_run(root: Path, ds, name: str = "fake-run", dim: int = 6, seed: int = 0,
                  prefixed: bool = False, with_latent: bool = True) -> Path:
    """A run directory ``root/runs/name`` over every item of ``ds`` (the engine saves test and
    val items; here all splits, so the split filter has something to do): config.yaml,
    model.json, metrics.json, outputs/test.parquet and embeddings.npy.

    prefixed: distributions as soft_<class> / pred_<class> columns instead of list columns.
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
    run = root / "runs" / name
    (run / "outputs").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(table).to_parquet(run / "outputs" / "test.parquet", index=False)
    # two well-separated groups so neighbour and layout checks have structure to find
    emb = rng.normal(size=(n, dim)).astype(np.float32)
    emb[: n // 2, 0] += 5.0
    np.save(run / "outputs" / "embeddings.npy", emb)
    (run / "config.yaml").write_text(yaml.safe_dump({
        "dataset": str(ds.root), "model": "mini_xception", "method": "ce", "scale": "category"}))
    (run / "metrics.json").write_text('{"test": {"accuracy": 0.5}}')
    (run / "model.json").write_text(json.dumps({"class_names": list(CATEGORIES),
                                                "modality": ds.modality, "scale": "category"}))
    return run
