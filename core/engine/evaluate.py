"""Prediction passes over a dataset split and the metrics computed from them.

Shared by the training loop (validation every epoch, the final test pass) and by
:func:`affectlab.engine.runs.evaluate_run` (cross-corpus evaluation of a finished run).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from affectlab import metrics as M
from affectlab.engine.device import to_device_layout
from affectlab.engine.truth import truth_measures

logger = logging.getLogger(__name__)

__all__ = ["SplitPredictions", "classification_metrics", "compute_metrics", "move_batch",
           "predict_split", "truth_measures"]


def move_batch(batch: dict[str, Any], device: torch.device, split: str) -> dict[str, Any]:
    """Tensors of a collated batch (nested ``truth`` included) moved to ``device``.

    Adds ``split`` ("train" | "val" | "test" | …) so a method can tell whether ``index`` refers
    to its training set (per-item state such as LDLVA's λ_i) or to another split.
    """
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.to(device, non_blocking=True)
            if key == "x":
                out[key] = to_device_layout(out[key], device)
        elif isinstance(value, dict):
            out[key] = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                        for k, v in value.items()}
        else:
            out[key] = value
    out["split"] = split
    return out


@dataclass
class SplitPredictions:
    """Per-item outputs of one prediction pass, row-aligned (n items).

    probs (n, K), embedding (n, D), uncertainty (n,), latent (n, K) or None, soft (n, K) soft
    labels, label (n,) int, item_id (n,) str, domain (n,) str, truth {name: (n, …) array};
    index (n,) int the items' positions in their dataset; on the training split also
    label_uncertainty (n,) (the method's uncertainty for the label it trained on, see
    :meth:`affectlab.methods.Method.label_uncertainty`) and subclass (n,) the method's own
    sub-class ids, where it has them. ``latent_excludes_label``: the latent puts 0 on the
    item's label by construction (DMUE), so it is compared without it.
    """

    split: str
    probs: np.ndarray
    embedding: np.ndarray
    uncertainty: np.ndarray
    latent: np.ndarray | None
    soft: np.ndarray
    label: np.ndarray
    item_id: np.ndarray
    domain: np.ndarray
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    index: np.ndarray | None = None
    label_uncertainty: np.ndarray | None = None
    subclass: np.ndarray | None = None
    latent_excludes_label: bool = False

    def __len__(self) -> int:
        return int(self.probs.shape[0])


def _to_numpy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().float().cpu().numpy() if value.is_floating_point() \
            else value.detach().cpu().numpy()
    return np.asarray(value)


@torch.no_grad()
def predict_split(method, loader: DataLoader | Iterable[dict[str, Any]], device: torch.device,
                  split: str, amp: bool = False) -> SplitPredictions | None:
    """Run ``method.predict`` over every batch of ``loader`` (eval mode; the previous train/eval
    mode is restored). On the training split also the method's uncertainty for each item's
    trained label and its sub-classes. Returns None for an empty loader."""
    was_training = method.training
    method.eval()
    parts: dict[str, list] = {k: [] for k in ("probs", "embedding", "uncertainty", "latent",
                                              "soft", "label", "item_id", "domain", "index",
                                              "label_uncertainty")}
    truth: dict[str, list] = {}
    try:
        for raw in loader:
            batch = move_batch(raw, device, split)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
                pred = method.predict(batch)
            parts["probs"].append(_to_numpy(pred.probs))
            parts["embedding"].append(_to_numpy(pred.embedding))
            parts["uncertainty"].append(_to_numpy(pred.uncertainty).reshape(-1))
            parts["latent"].append(None if pred.latent is None else _to_numpy(pred.latent))
            if split == "train":
                parts["label_uncertainty"].append(
                    _to_numpy(method.label_uncertainty(batch, pred)).reshape(-1))
            parts["index"].append(_to_numpy(raw["index"]).reshape(-1))
            parts["soft"].append(_to_numpy(raw["y"]))
            parts["label"].append(_to_numpy(raw["label"]))
            parts["item_id"].append(np.asarray(raw["item_id"], dtype=object))
            parts["domain"].append(np.asarray(raw["domain"], dtype=object))
            for name, value in (raw.get("truth") or {}).items():
                # strings (e.g. subclass names) arrive as lists from default_collate
                arr = (_to_numpy(value) if isinstance(value, torch.Tensor)
                       else np.asarray(value, dtype=object))
                truth.setdefault(name, []).append(arr)
    finally:
        method.train(was_training)
    if not parts["probs"]:
        return None
    latents = parts["latent"]
    latent = None if any(x is None for x in latents) else np.concatenate(latents)
    index = np.concatenate(parts["index"]).astype(np.int64)
    return SplitPredictions(
        split=split,
        probs=np.concatenate(parts["probs"]).astype(np.float64),
        embedding=np.concatenate(parts["embedding"]).astype(np.float64),
        uncertainty=np.concatenate(parts["uncertainty"]).astype(np.float64),
        latent=None if latent is None else latent.astype(np.float64),
        soft=np.concatenate(parts["soft"]).astype(np.float64),
        label=np.concatenate(parts["label"]).astype(np.int64),
        item_id=np.concatenate(parts["item_id"]).astype(str),
        domain=np.concatenate(parts["domain"]).astype(str),
        truth={k: np.concatenate(v) for k, v in truth.items()},
        index=index,
        label_uncertainty=(np.concatenate(parts["label_uncertainty"]).astype(np.float64)
                           if parts["label_uncertainty"] else None),
        subclass=_train_subclasses(method, split, index),
        latent_excludes_label=bool(getattr(method, "latent_excludes_label", False)),
    )


def _train_subclasses(method, split: str, index: np.ndarray) -> np.ndarray | None:
    """The method's sub-class id of each training item of the pass, or None."""
    ids = method.train_subclasses() if split == "train" else None
    return None if ids is None else _to_numpy(ids).astype(np.int64)[index]


def compute_metrics(pred: SplitPredictions, ordinal: bool = False, seed: int = 0
                    ) -> dict[str, float]:
    """:func:`classification_metrics` and, on generated data, :func:`truth_measures`."""
    out = classification_metrics(pred, ordinal, seed)
    if len(pred):
        out.update(truth_measures(pred, seed))
    return out


def classification_metrics(pred: SplitPredictions, ordinal: bool = False, seed: int = 0
                           ) -> dict[str, float]:
    """The metrics of affectlab.metrics that apply to these predictions.

    Always: uar, accuracy, macro_f1 (soft labels as truth, with SPEC §2's tie rule).
    Ordered classes: aem, aeo. Enough items: nmi (k-means on the embedding, K = number of
    classes present) and recall@K for K ∈ {1, 2, 4, 8, 16, 32} up to n − 1, both scored
    against the soft-label majority (argmax of the ratings' distribution, what a real corpus
    has), not the single dataset label, whose flips would count against the embedding; against
    the truth where it is known: :func:`affectlab.engine.truth.retrieval_against_truth`.
    """
    out: dict[str, float] = {"n": float(len(pred))}
    if len(pred) == 0:
        return out
    y, p = pred.soft, pred.probs
    out["uar"] = M.uar(y, p)
    out["accuracy"] = M.accuracy(y, p)
    out["macro_f1"] = M.macro_f1(y, p)
    if ordinal:
        out["aem"] = M.aem(y, p)
        out["aeo"] = M.aeo(y, p)
    majority = y.argmax(axis=1)
    n_groups = len(np.unique(majority))
    if len(pred) > n_groups >= 2:
        out["nmi"] = M.kmeans_nmi(pred.embedding, majority, seed=seed, n_init=3)
    if len(pred) >= 2:
        ks = [k for k in M.DEFAULT_KS if k <= len(pred) - 1]
        for k, value in M.recall_at_k(pred.embedding, majority, ks).items():
            out[f"recall@{k}"] = value
    return out
