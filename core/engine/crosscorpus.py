"""Cross-corpus evaluation across label sets: a run's predictions scored on another corpus whose
classes are named or chosen differently (RAVDESS's 8 classes on EmoDB's 7, FER2013's 7 on
FER+'s 8).

Classes are matched by name through :mod:`affectlab.labelmap` (the synonym table, a user class
map first). Items whose class the run does not know are dropped; the run's distribution is cut
down to the shared classes and renormalised, the soft label likewise
(:func:`affectlab.labelmap.restrict_to_shared`); UAR, accuracy, macro-F1 and the confusion
matrix are computed on the shared classes (named as the dataset names them). The result says
which classes were kept (and under which names on each side), which dataset classes were dropped
with how many items, and which run classes went unused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from affectlab import metrics as M
from affectlab.engine.evaluate import SplitPredictions, classification_metrics
from affectlab.errors import UserDataError
from affectlab.labelmap import ClassMatch, match_classes, restrict_to_shared

__all__ = ["confusion_block", "evaluate_across_label_sets"]


def confusion_block(pred: SplitPredictions, names: Sequence[str]) -> dict[str, Any]:
    """The confusion matrix of ``pred`` (rows: true class after the tie rule, columns:
    predicted) with its class names, as JSON-ready lists."""
    matrix = M.confusion_matrix(pred.soft, pred.probs, num_classes=len(names))
    return {"classes": list(names), "rows": "true", "columns": "predicted",
            "matrix": matrix.tolist()}


def _pair_name(dataset: list[str], run: list[str]) -> str:
    """``disgusted←disgust``: the dataset's name(s), and the run's where they differ."""
    ours, theirs = "+".join(dataset), "+".join(run)
    return ours if ours == theirs else f"{ours}←{theirs}"


def _classes_report(match: ClassMatch, pred: SplitPredictions, keep: np.ndarray
                    ) -> dict[str, Any]:
    dropped_counts = np.bincount(pred.label[~keep], minlength=len(match.target))
    dropped = {match.target[i]: int(dropped_counts[i])
               for i in range(len(match.target)) if match.target[i] in match.target_only}
    shared = [{"class": name, "run": [match.source[i] for i in s_idx],
               "dataset": [match.target[i] for i in t_idx]}
              for name, s_idx, t_idx in zip(match.shared, match.source_index, match.target_index,
                                            strict=True)]
    kept_text = ", ".join(_pair_name(c["dataset"], c["run"]) for c in shared)
    dropped_text = ", ".join(f"{k} ({v} items)" for k, v in dropped.items()) or "none"
    summary = (f"classes kept: {kept_text}; dataset classes dropped: {dropped_text}; run classes "
               f"unused: {', '.join(match.source_only) or 'none'}; {int(keep.sum())} of "
               f"{len(keep)} items scored")
    return {"shared": shared, "dropped": dropped, "unused": match.source_only,
            "items_kept": int(keep.sum()), "items_dropped": int((~keep).sum()),
            "summary": summary}


def evaluate_across_label_sets(pred: SplitPredictions, run_classes: Sequence[str],
                               data_classes: Sequence[str],
                               class_map: Mapping[str, str] | None = None, seed: int = 0
                               ) -> dict[str, Any]:
    """Metrics of ``pred`` (probs over ``run_classes``, soft labels and labels over
    ``data_classes``) on the shared classes, with ``confusion_matrix`` and ``classes`` (what
    was kept and dropped; ``summary`` says it in one line). :class:`UserDataError` when the
    label sets share no class, or no item has a shared class."""
    match = match_classes(run_classes, data_classes, class_map)
    if not match.shared:
        raise UserDataError(f"the run's classes ({', '.join(run_classes)}) and the dataset's "
                            f"({', '.join(data_classes)}) share no class, even through the "
                            "synonym table; say which are the same with --class-map old=new")
    view = restrict_to_shared(match, pred.probs, pred.soft, pred.label)
    if not view.keep.any():
        raise UserDataError(f"no item of the dataset belongs to a class the run knows "
                            f"(shared: {', '.join(match.shared)})")
    keep = view.keep
    shared_pred = replace(
        pred, probs=view.probs, soft=view.soft, label=view.labels, latent=None,
        embedding=pred.embedding[keep], uncertainty=pred.uncertainty[keep],
        item_id=pred.item_id[keep], domain=pred.domain[keep], truth={},
        **{name: None if getattr(pred, name) is None else getattr(pred, name)[keep]
           for name in ("index", "label_uncertainty", "subclass")})
    out: dict[str, Any] = dict(classification_metrics(shared_pred, False, seed))
    out["confusion_matrix"] = confusion_block(
        shared_pred, ["+".join(match.target[i] for i in idx) for idx in match.target_index])
    out["classes"] = _classes_report(match, pred, keep)
    return out
