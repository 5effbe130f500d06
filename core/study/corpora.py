"""The study's data: one generated corpus per (modality, size, flip rate, seed), and the derived
datasets two protocols need, all under ``<out>/data/`` and made once (a resumed study reuses
them; each appears only when complete).

- The cross-domain protocol tests on *every* item of the held-out corpus (synth-B), as the
  f-SPL paper tests on a whole other corpus: :func:`held_out_domain` re-splits synth-B's items
  into ``test`` (synth-A keeps its splits).
- cleanlab's out-of-sample probabilities come from two runs, each trained on one half of the
  training split and tested on the other: :func:`training_fold` makes fold f's dataset (the
  training items of fold f become its ``test`` split; the original test items are left out).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from affectlab.data.contract import DatasetDir, load_dataset, media_file, write_dataset
from affectlab.data.synth.corpus import domain_name, generate_corpus

__all__ = ["TRAIN_DOMAIN", "TEST_DOMAIN", "corpus", "held_out_domain", "training_fold"]

TRAIN_DOMAIN, TEST_DOMAIN = domain_name(0), domain_name(1)


def _ready(path: Path) -> bool:
    return (path / "meta.json").is_file() and (path / "items.parquet").is_file()


def corpus(data_dir: Path, modality: str, n: int, flip_rate: float, seed: int) -> Path:
    """The generated corpus of these arguments (two domains), made on first use."""
    path = Path(data_dir) / f"{modality}-n{n}-flip{flip_rate:g}-s{seed}"
    if not _ready(path):
        generate_corpus(modality=modality, n=n, seed=seed, n_domains=2, flip_rate=flip_rate,
                        out=path, overwrite=True, workers=1, name=path.name)
    return path


def _derive(src: Path, out: Path, splits: Callable[[pd.DataFrame], np.ndarray]) -> Path:
    """``src`` with the split column from ``splits(items)`` (an empty string drops the item),
    media copied, written whole or not at all."""
    if _ready(out):
        return out
    data: DatasetDir = load_dataset(src)
    items = data.items.copy()
    items["split"] = splits(items)
    items = items[items["split"] != ""].reset_index(drop=True)
    ratings = data.ratings[data.ratings["item_id"].isin(items["item_id"])]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.media.", dir=out.parent))
    try:
        for rel in items["media"]:
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(media_file(data.root, rel), target)
        meta = dict(data.meta)
        meta["name"] = out.name
        meta["provenance"] = {**meta.get("provenance", {}), "derived_from": src.name}
        write_dataset(out, items, ratings, meta, media_dir=staging, overwrite=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def held_out_domain(src: Path) -> Path:
    """``src`` with every synth-B item in the test split (synth-A's items keep theirs)."""
    def splits(items: pd.DataFrame) -> np.ndarray:
        split = items["split"].to_numpy(dtype=object).copy()
        split[items["domain"].to_numpy() == TEST_DOMAIN] = "test"
        return split
    return _derive(src, src.with_name(src.name + "-heldout-B"), splits)


def fold_of_training_items(items: pd.DataFrame, seed: int, n_folds: int = 2) -> np.ndarray:
    """(n,) the fold 0..n_folds−1 of every training item (a seeded permutation dealt in turn),
    −1 for the other items."""
    fold = np.full(len(items), -1)
    train = np.flatnonzero(items["split"].to_numpy() == "train")
    order = np.random.default_rng(seed).permutation(train)
    fold[order] = np.arange(order.size) % n_folds
    return fold


def training_fold(src: Path, fold: int, seed: int, n_folds: int = 2) -> Path:
    """Fold ``fold``'s dataset: trains on the other folds' training items, tests on its own,
    validates on the original validation items (the original test items are left out)."""
    def splits(items: pd.DataFrame) -> np.ndarray:
        folds = fold_of_training_items(items, seed, n_folds)
        split = np.where(items["split"].to_numpy() == "val", "val", "").astype(object)
        split[(folds >= 0) & (folds != fold)] = "train"
        split[folds == fold] = "test"
        return split
    return _derive(src, src.with_name(f"{src.name}-fold{fold}of{n_folds}"), splits)
