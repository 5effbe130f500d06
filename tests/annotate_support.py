"""Shared helpers for the tests/test_annotate_*.py modules (not a test module itself)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from affectlab.annotate import Store, ensure_admin_password, join_campaign, open_owner
from affectlab.data.contract import DatasetDir, write_dataset

PASSWORD = "correct horse battery staple"
CATS = ["calm", "glad", "cross"]
SCALES = {"category": {"type": "nominal", "names": CATS},
          "valence": {"type": "likert", "low": 1, "high": 5}}


def tiny_dataset(root: Path, n: int = 6, seed: int = 0) -> DatasetDir:
    """n 8×8 PNG faces with a 3-class category scale and a 1..5 valence scale, no ratings."""
    rng = np.random.default_rng(seed)
    staging = root / "staging"
    (staging / "media").mkdir(parents=True)
    ids = [f"it{i:03d}" for i in range(n)]
    for iid in ids:
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(
            staging / "media" / f"{iid}.png")
    items = pd.DataFrame({"item_id": ids, "media": [f"media/{i}.png" for i in ids],
                          "modality": "face", "split": "train", "domain": "d0",
                          "true_label": rng.integers(0, 3, n)})
    ratings = pd.DataFrame(columns=["item_id", "rater_id", "scale", "value"])
    meta = {"name": "tiny", "modality": "face",
            "label_set": {"scale": "category", "names": CATS, "ordinal": False},
            "scales": SCALES}
    return write_dataset(root / "tiny", items, ratings, meta, media_dir=staging)


def owner_for(url: str, monkeypatch=None):
    """(store, owner session) for a fresh database, admin password from the environment."""
    if monkeypatch is not None:
        monkeypatch.setenv("AFFECTLAB_ADMIN_PASSWORD", PASSWORD)
        store = Store(url)
        return store, open_owner(store, PASSWORD)
    store = Store(url)
    password = ensure_admin_password(store)
    return store, open_owner(store, password)


def rate_item(session, item, values=None) -> None:
    """Submit every pending scale of ``item`` (default values: class 0, valence 3)."""
    values = values or {"category": 0, "valence": 3}
    for scale in item.pending:
        session.submit(item.item_id, scale, values[scale], time_spent=1.0)


def at_once(call: Callable[[], object], n: int) -> tuple[list, list[Exception]]:
    """Run ``call`` in ``n`` threads released together; (results, exceptions raised)."""
    barrier, results, errors = threading.Barrier(n), [], []

    def go():
        barrier.wait()
        try:
            results.append(call())
        except Exception as exc:  # collected for the caller to assert on
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


__all__ = ["CATS", "PASSWORD", "SCALES", "at_once", "join_campaign", "owner_for", "rate_item",
           "tiny_dataset"]
