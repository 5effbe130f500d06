"""What the explore map can be coloured by, and the per-point values for each choice.

Colourings (offered only when the run / dataset has what they need):

- ``soft label`` / ``predicted`` / ``dataset label``: a class name per point (argmax; ties to
  the lowest index);
- ``uncertainty``: the run's per-item uncertainty on the one [0, 1] scale
  (:func:`affectlab.uncertainty.unit_uncertainty`; the method's raw value rides along in
  ``Colouring.raw``);
- ``latent entropy``: normalised entropy of the latent distribution, [0, 1];
- ``soft-label ambiguity``: normalised entropy of the annotated soft label, [0, 1];
- ``true ambiguity``: generated data's ``ambiguity`` truth column (the mixing weight of the
  second category), and ``true label`` / ``true sub-class`` / ``flipped`` from the truth;
- ``sub-class``: per-class Gaussian mixtures of the run's embeddings (:mod:`affectlab.subclasses`,
  the code SGM's Algorithm 2 relabels by): for an SGM run trained to level L ≥ 2 the mixture of
  its last level (L components per class, or its ``subclass_components`` rule), else 2.

Categorical colourings over the class names (soft label, predicted, dataset label, true label)
list their groups in class order (``Colouring.order``), so a class keeps its colour from one
colouring to the next; :func:`group_palette` gives each group its colour from
:func:`affectlab.palette.qualitative`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from affectlab.explore.run_outputs import RunOutputs
from affectlab.labels import entropy
from affectlab.palette import Palette, qualitative
from affectlab.subclasses import LEVEL, SubclassDiscovery, discovery_for_level
from affectlab.uncertainty import RAW_NAMES, uncertainty_kinds, unit_uncertainty

__all__ = ["Colouring", "UncertaintyScores", "colour_options", "colour_values", "group_palette",
           "join_items", "run_uncertainty", "subclass_discovery", "subclass_labels",
           "subclass_medoids"]


@dataclass(frozen=True)
class Colouring:
    """values: (n,) per point; categorical → strings, else floats (NaN = unknown).

    unit: continuous values on [0, 1] (the colour axis spans exactly that); order: for a
    categorical colouring over class names, the groups in class order; raw / raw_name: the
    method's own value behind a rescaled one (uncertainty), for the hover."""

    name: str
    values: np.ndarray
    categorical: bool
    unit: bool = False
    order: tuple[str, ...] | None = None
    raw: np.ndarray | None = None
    raw_name: str | None = None

    def take(self, rows: np.ndarray) -> Colouring:
        """The same colouring for ``rows`` only."""
        return replace(self, values=self.values[rows],
                       raw=None if self.raw is None else self.raw[rows])


@dataclass(frozen=True)
class UncertaintyScores:
    """unit: (n,) on [0, 1]; raw: (n,) as the method saved it; kinds: (n,) its kind per item
    (:data:`affectlab.uncertainty.KINDS`)."""

    unit: np.ndarray
    raw: np.ndarray
    kinds: np.ndarray

    def take(self, rows: np.ndarray) -> UncertaintyScores:
        return UncertaintyScores(self.unit[rows], self.raw[rows], self.kinds[rows])

    def raw_name(self) -> str:
        names = [RAW_NAMES[k] for k in dict.fromkeys(self.kinds.tolist())]
        return " or ".join(names) if names else RAW_NAMES["entropy"]


def run_uncertainty(outputs: RunOutputs) -> UncertaintyScores | None:
    """The run's per-item uncertainty on the one [0, 1] scale, with its raw values (None when
    the run saved none)."""
    if outputs.uncertainty is None:
        return None
    splits = (outputs.table["split"].astype(str).to_numpy() if "split" in outputs.table.columns
              else np.full(outputs.n, "test", dtype=object))
    kinds = uncertainty_kinds(outputs.config.get("method"), splits)
    k = max(len(outputs.class_names), 1)
    raw = outputs.uncertainty.astype(np.float64)
    return UncertaintyScores(unit_uncertainty(raw, kinds, k), raw, kinds)


def group_palette(groups: list[str]) -> Palette:
    """A colour (and marker symbol) per group, in the given order."""
    return qualitative(len(groups))


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
    # (the run output a colouring needs, its menu name), in menu order
    needs = ((outputs.soft, "soft label"), (outputs.pred, "predicted"),
             (outputs.labels, "dataset label"), (outputs.uncertainty, "uncertainty"),
             (outputs.latent, "latent entropy"), (outputs.soft, "soft-label ambiguity"))
    opts = [name for values, name in needs if values is not None]
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
    order = tuple(names)
    if by == "soft label" and outputs.soft is not None:
        return Colouring(by, _argmax_names(outputs.soft, names), True, order=order)
    if by == "predicted" and outputs.pred is not None:
        return Colouring(by, _argmax_names(outputs.pred, names), True, order=order)
    if by == "dataset label" and outputs.labels is not None:
        return Colouring(by, _codes_to_names(outputs.labels, names), True, order=order)
    if by == "uncertainty" and outputs.uncertainty is not None:
        scores = run_uncertainty(outputs)
        return Colouring(by, scores.unit, False, unit=True, raw=scores.raw,
                         raw_name=scores.raw_name())
    if by == "latent entropy" and outputs.latent is not None:
        return Colouring(by, _norm_entropy(outputs.latent), False, unit=True)
    if by == "soft-label ambiguity" and outputs.soft is not None:
        return Colouring(by, _norm_entropy(outputs.soft), False, unit=True)
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
                return Colouring(by, _codes_to_names(v.to_numpy(), names), True, order=order)
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
