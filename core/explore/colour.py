"""What the explore map can be coloured by, and the per-point values for each choice.

Colourings (offered only when the run / dataset has what they need):

- ``soft label`` / ``predicted`` / ``dataset label``: a class name per point (argmax; ties to
  the lowest index);
- ``uncertainty``: the run's per-item uncertainty;
- ``latent entropy``: normalised entropy of the latent distribution, [0, 1];
- ``soft-label ambiguity``: normalised entropy of the annotated soft label, [0, 1];
- ``true ambiguity``: generated data's ``ambiguity`` truth column (the mixing weight of the
  second category), and ``true label`` / ``true sub-class`` / ``flipped`` from the truth;
- ``sub-class``: per-class Gaussian mixtures of the run's embeddings (:mod:`affectlab.subclasses`,
  the code SGM's Algorithm 2 relabels by): for an SGM run trained to level L ≥ 2 the mixture of
  its last level (L components per class, or its ``subclass_components`` rule), else 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from affectlab.explore.run_outputs import RunOutputs
from affectlab.labels import entropy
from affectlab.subclasses import LEVEL, SubclassDiscovery, discovery_for_level

__all__ = ["Colouring", "colour_options", "colour_values", "join_items", "subclass_discovery",
           "subclass_labels", "subclass_medoids"]


@dataclass(frozen=True)
class Colouring:
    """values: (n,) per point; categorical → strings, else floats (NaN = unknown)."""

    name: str
    values: np.ndarray
    categorical: bool


def join_items(outputs: RunOutputs, items: pd.DataFrame | None) -> pd.DataFrame | None:
    """The dataset's items rows for the run's test items, in the run outputs' order (n rows;
    all-NaN rows for item_ids missing from ``items``)."""
    if items is None:
        return None
    if "item_id" not in items.columns:
        raise ValueError("items must have an 'item_id' column")
    idx = items.assign(item_id=items["item_id"].astype(str)).set_index("item_id")
    idx = idx[~idx.index.duplicated()]
    return idx.reindex(outputs.item_ids).reset_index()


def _argmax_names(dist: np.ndarray, names: list[str]) -> np.ndarray:
    out = np.full(len(dist), "?", dtype=object)
    ok = np.isfinite(dist).all(axis=1)
    out[ok] = np.asarray(names, dtype=object)[np.argmax(dist[ok], axis=1)]
    return out


def _norm_entropy(dist: np.ndarray) -> np.ndarray:
    out = np.full(len(dist), np.nan)
    ok = np.isfinite(dist).all(axis=1)
    if ok.any():
        d = np.clip(dist[ok], 0.0, None)
        d = d / np.maximum(d.sum(axis=1, keepdims=True), 1e-12)
        out[ok] = entropy(d, normalize=True)
    return out


def colour_options(outputs: RunOutputs, items: pd.DataFrame | None = None) -> list[str]:
    """The colourings this run (and its dataset's ``items``, when given) supports, in menu
    order."""
    opts = []
    if outputs.soft is not None:
        opts.append("soft label")
    if outputs.pred is not None:
        opts.append("predicted")
    if outputs.labels is not None:
        opts.append("dataset label")
    if outputs.uncertainty is not None:
        opts.append("uncertainty")
    if outputs.latent is not None:
        opts.append("latent entropy")
    if outputs.soft is not None:
        opts.append("soft-label ambiguity")
    if items is not None:
        joined = join_items(outputs, items)
        for col, name in (("ambiguity", "true ambiguity"), ("true_label", "true label"),
                          ("subclass", "true sub-class"), ("flipped", "flipped"),
                          ("domain", "domain")):
            if col in joined.columns and joined[col].notna().any():
                opts.append(name)
    if outputs.embeddings is not None:
        opts.append("sub-class")
    return opts


# components per class when the run says nothing (the paper's first level)
DEFAULT_COMPONENTS = 2


def subclass_discovery(outputs: RunOutputs) -> SubclassDiscovery:
    """The (unfitted) mixture the ``sub-class`` colouring fits: an SGM run trained to level
    ``subclass_levels`` L ≥ 2 gets the mixture of its last level (:func:`discovery_for_level`
    with its ``subclass_components``), any other run :data:`DEFAULT_COMPONENTS` per class."""
    names = list(outputs.class_names)
    params = outputs.config.get("method_params") or {}
    level = params.get("subclass_levels", 1) if outputs.config.get("method") == "sgm" else 1
    if isinstance(level, int) and not isinstance(level, bool) and level >= 2:
        return discovery_for_level(level, params.get("subclass_components", LEVEL),
                                   class_names=names)
    return SubclassDiscovery(DEFAULT_COMPONENTS, class_names=names)


def _fit_subclasses(outputs: RunOutputs) -> SubclassDiscovery:
    """:func:`subclass_discovery` fitted on the embeddings within each item's class (the
    dataset label, else the predicted class)."""
    if outputs.embeddings is None:
        raise ValueError("the run has no embeddings to discover sub-classes in")
    if outputs.labels is not None:
        classes = outputs.labels
    else:
        dist = outputs.pred if outputs.pred is not None else outputs.soft
        if dist is None:
            raise ValueError("the run has no labels or distributions to group items by class")
        classes = np.argmax(dist, axis=1)
    return subclass_discovery(outputs).fit(outputs.embeddings, classes)


def subclass_labels(outputs: RunOutputs) -> np.ndarray:
    """Sub-class of each item: (n,) names such as "happy / 2" (class, 1-based component)."""
    disc = _fit_subclasses(outputs)
    return np.asarray(disc.subclass_names(disc.labels_), dtype=object)


def subclass_medoids(outputs: RunOutputs, k: int = 4) -> list[tuple[str, np.ndarray]]:
    """For each discovered sub-class, its name and the rows of its up to ``k`` items nearest
    its centre, the medoid first (SPEC §4: "each sub-class shows the items nearest its
    centroid"). Sub-classes without members are left out."""
    disc = _fit_subclasses(outputs)
    return [(disc.names_[s], rows) for s, rows in disc.medoids(k).items() if len(rows)]


def colour_values(outputs: RunOutputs, by: str, items: pd.DataFrame | None = None
                  ) -> Colouring:
    """Per-point values for the colouring ``by`` (one of :func:`colour_options`)."""
    names = outputs.class_names
    if by == "soft label" and outputs.soft is not None:
        return Colouring(by, _argmax_names(outputs.soft, names), True)
    if by == "predicted" and outputs.pred is not None:
        return Colouring(by, _argmax_names(outputs.pred, names), True)
    if by == "dataset label" and outputs.labels is not None:
        return Colouring(by, _codes_to_names(outputs.labels, names), True)
    if by == "uncertainty" and outputs.uncertainty is not None:
        return Colouring(by, outputs.uncertainty.astype(np.float64), False)
    if by == "latent entropy" and outputs.latent is not None:
        return Colouring(by, _norm_entropy(outputs.latent), False)
    if by == "soft-label ambiguity" and outputs.soft is not None:
        return Colouring(by, _norm_entropy(outputs.soft), False)
    if by == "sub-class" and outputs.embeddings is not None:
        return Colouring(by, subclass_labels(outputs), True)
    truth = {"true ambiguity": ("ambiguity", False), "true label": ("true_label", True),
             "true sub-class": ("subclass", True), "flipped": ("flipped", True),
             "domain": ("domain", True)}
    if by in truth and items is not None:
        col, categorical = truth[by]
        joined = join_items(outputs, items)
        if col in joined.columns:
            v = joined[col]
            if col == "true_label":
                return Colouring(by, _codes_to_names(v.to_numpy(), names), True)
            if categorical:
                return Colouring(by, v.astype(str).to_numpy(dtype=object), True)
            return Colouring(by, pd.to_numeric(v, errors="coerce").to_numpy(np.float64), False)
    raise ValueError(f"by must be one of {colour_options(outputs, items)} for this run, "
                     f"got {by!r}")


def _codes_to_names(codes: np.ndarray, names: list[str]) -> np.ndarray:
    num = pd.to_numeric(pd.Series(codes), errors="coerce").to_numpy()
    out = np.full(len(num), "?", dtype=object)
    ok = np.isfinite(num) & (num >= 0) & (num < len(names))
    out[ok] = np.asarray(names, dtype=object)[num[ok].astype(np.int64)]
    return out
