"""Sub-class discovery (SPEC §4, Algorithm 2 of the SGM paper): a Gaussian mixture per class.

One piece of code for the two users of sub-classes: SGM's Algorithm 2
(:mod:`affectlab.methods.sgm`, which relabels the training items by it) and the explore map's
``sub-class`` colouring (:mod:`affectlab.pages.explore_colour`). It needs only numpy and scikit-learn
and sits in the layer of ``labels`` and ``metrics``, so either may import it.

``SubclassDiscovery().fit(embeddings, labels)`` fits, for every class present, a
``sklearn.mixture.GaussianMixture`` (EM) to that class's embeddings. Each (class, component)
pair is a sub-class with a flat integer id, numbered class by class: the components of the
first class get ids 0..m₀−1, the next class's follow (Algorithm 2's ``g + k``).

- ``n_components``: an int (the paper's first level: 2), or ``'bic'``: for each class the
  number in 1..``max_components`` with the lowest Bayesian information criterion. A class with
  fewer items than components gets as many components as it has items (at least 1; a single
  item becomes a component of covariance ``reg_covar`` around it).
  :func:`discovery_for_level` gives the mixture Algorithm 2 fits at a level l: l components per
  class (the paper), or the BIC choice among 1..l, or a fixed number.
- ``covariance_type`` defaults to ``'diag'``: a full covariance in a 64–128-d embedding has
  thousands of parameters per component, more than a class usually has items, so EM and BIC
  would be dominated by the covariance estimate; ``'full'`` is available.
- "Medoid" follows the paper's Figure 1: the member nearest the sub-class centroid (the
  component mean); ``medoids(k)`` lists each sub-class's k members nearest it, nearest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from affectlab.validation import as_float_array

if TYPE_CHECKING:  # scikit-learn is imported when a mixture is fitted, not with this module
    from sklearn.mixture import GaussianMixture

__all__ = ["LEVEL", "Subclass", "SubclassDiscovery", "discovery_for_level"]

_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

# Algorithm 2's rule for the number of components at level l: l per class
LEVEL = "level"


def _check_labels(labels, n: int) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"labels must be (n,) = ({n},) class indices (one per embedding row), "
                         f"got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind != "f" or not np.all(np.isfinite(arr)) or np.any(np.mod(arr, 1)):
            raise ValueError("labels must be integer class indices")
    if arr.size and arr.min() < 0:
        raise ValueError(f"labels must be class indices ≥ 0, got min {arr.min()}")
    return arr.astype(np.int64)


def _check_n_components(value) -> int | str:
    if value == "bic":
        return "bic"
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"n_components must be an integer ≥ 1 or 'bic', got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Subclass:
    """One sub-class: its flat id, parent class, component within the class, and name."""

    id: int
    cls: int
    component: int
    name: str


class SubclassDiscovery:
    """Per-class Gaussian mixtures over an embedding (scikit-learn style fit / predict).

    Parameters: ``n_components`` (int or 'bic'), ``max_components`` (upper bound for 'bic'),
    ``covariance_type``, ``reg_covar`` (added to covariance diagonals), ``seed``,
    ``class_names`` (optional names of the classes, indexed by class id, for sub-class names).

    Fitted attributes: ``classes_`` (C,) classes with items, ``mixtures_`` {class: fitted
    GaussianMixture}, ``subclasses_`` list of :class:`Subclass` by id, ``subclass_class_`` (S,)
    and ``subclass_component_`` (S,) ints, ``names_`` (S,) str, ``labels_`` (n,) sub-class id of
    every fitted item (within its own class), ``embeddings_`` (n, d) the fitted embeddings.
    """

    def __init__(self, n_components: int | str = 2, *, max_components: int = 5,
                 covariance_type: str = "diag", reg_covar: float = 1e-6, seed: int = 0,
                 class_names: list[str] | None = None) -> None:
        self.n_components = _check_n_components(n_components)
        if isinstance(max_components, bool) or not isinstance(max_components, int) \
                or max_components < 1:
            raise ValueError(f"max_components must be an integer ≥ 1, got {max_components!r}")
        if covariance_type not in _COVARIANCE_TYPES:
            raise ValueError(f"covariance_type must be one of {_COVARIANCE_TYPES}, got "
                             f"{covariance_type!r}")
        if not (isinstance(reg_covar, int | float) and reg_covar >= 0):
            raise ValueError(f"reg_covar must be a number ≥ 0, got {reg_covar!r}")
        self.max_components = max_components
        self.covariance_type = covariance_type
        self.reg_covar = float(reg_covar)
        self.seed = int(seed)
        self.class_names = None if class_names is None else [str(c) for c in class_names]

    # -- fitting --------------------------------------------------------------------------

    def _fit_class(self, z: np.ndarray, n_components: int | str, seed: int) -> GaussianMixture:
        from sklearn.mixture import GaussianMixture

        n = z.shape[0]
        if n == 1:  # EM needs two rows: a lone item is a one-point component
            z = np.repeat(z, 2, axis=0)
        def gmm(m: int) -> GaussianMixture:
            return GaussianMixture(m, covariance_type=self.covariance_type,
                                   reg_covar=self.reg_covar, n_init=2, random_state=seed).fit(z)

        if n_components == "bic":
            fits = [gmm(m) for m in range(1, min(self.max_components, n) + 1)]
            return min(fits, key=lambda g: g.bic(z))
        return gmm(max(1, min(int(n_components), n)))

    def fit(self, embeddings, labels, n_components: int | str | None = None,
            seed: int | None = None) -> SubclassDiscovery:
        """Fit one mixture per class. ``embeddings``: (n, d) finite floats; ``labels``: (n,)
        integer classes. ``n_components`` / ``seed`` override the constructor's. Returns self."""
        z = as_float_array(embeddings, "embeddings", ndim=2)
        if z.shape[0] < 1:
            raise ValueError("embeddings must hold at least one row")
        y = _check_labels(labels, z.shape[0])
        n_comp = self.n_components if n_components is None else _check_n_components(n_components)
        seed = self.seed if seed is None else int(seed)
        self.classes_ = np.unique(y)
        if self.class_names is not None and self.classes_.max() >= len(self.class_names):
            raise ValueError(f"class_names has {len(self.class_names)} names but labels go up to "
                             f"{self.classes_.max()}")
        self.mixtures_: dict[int, GaussianMixture] = {}
        subs: list[Subclass] = []
        for c in self.classes_.tolist():
            g = self._fit_class(z[y == c], n_comp, seed)
            self.mixtures_[c] = g
            base = self.class_names[c] if self.class_names is not None else f"class {c}"
            subs += [Subclass(len(subs), c, m, f"{base} / {m + 1}") for m in range(g.n_components)]
        self.subclasses_ = subs
        self.subclass_class_ = np.array([s.cls for s in subs], dtype=np.int64)
        self.subclass_component_ = np.array([s.component for s in subs], dtype=np.int64)
        self.names_ = [s.name for s in subs]
        self._first_id = {c: int(np.flatnonzero(self.subclass_class_ == c)[0])
                          for c in self.classes_.tolist()}
        self.embeddings_ = z
        self.labels_ = self.predict(z, y)
        return self

    @property
    def n_subclasses_(self) -> int:
        self._check_fitted()
        return len(self.subclasses_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "mixtures_"):
            raise RuntimeError("SubclassDiscovery is not fitted yet: call fit(embeddings, labels)")

    def _check_x(self, embeddings) -> np.ndarray:
        self._check_fitted()
        z = as_float_array(embeddings, "embeddings", ndim=2)
        d = self.embeddings_.shape[1]
        if z.shape[1] != d:
            raise ValueError(f"embeddings must have {d} columns (as fitted), got {z.shape[1]}")
        return z

    # -- assignment -----------------------------------------------------------------------

    def component_proba(self, embeddings) -> np.ndarray:
        """(n, S) responsibilities of each class's components, class by class: the columns of
        one class sum to 1 in every row (P(component | z, class))."""
        z = self._check_x(embeddings)
        return np.concatenate([self.mixtures_[c].predict_proba(z)
                               for c in self.classes_.tolist()], axis=1)

    def class_subclass_ids(self, embeddings) -> np.ndarray:
        """(n, C) int: column j holds, for every row, the sub-class id of the component of
        class ``classes_[j]``'s mixture most responsible for it (its hard assignment within
        that class, whether or not the row belongs to the class)."""
        z = self._check_x(embeddings)
        return np.stack([self._first_id[c] + self.mixtures_[c].predict(z)
                         for c in self.classes_.tolist()], axis=1).astype(np.int64)

    def predict(self, embeddings, labels=None) -> np.ndarray:
        """(n,) sub-class ids. With ``labels`` (n,): the most responsible component of each
        item's own class (how training items are relabelled). Without: the sub-class of highest
        weighted likelihood over all classes (equal class priors), for unlabelled items."""
        z = self._check_x(embeddings)
        if labels is not None:
            y = _check_labels(labels, z.shape[0])
            unknown = sorted(set(np.unique(y).tolist()) - set(self.classes_.tolist()))
            if unknown:
                raise ValueError(f"labels contain classes {unknown} that had no items in fit")
            column = np.searchsorted(self.classes_, y)
            return self.class_subclass_ids(z)[np.arange(z.shape[0]), column]
        # log w_m + log N(z | μ_m, Σ_m) per component, all classes side by side
        # (public API: log p(z) + log P(m | z) = log w_m N(z | m))
        scores = np.concatenate([self._weighted_log_prob(self.mixtures_[c], z)
                                 for c in self.classes_.tolist()], axis=1)
        return scores.argmax(axis=1).astype(np.int64)

    @staticmethod
    def _weighted_log_prob(g: GaussianMixture, z: np.ndarray) -> np.ndarray:
        resp = np.clip(g.predict_proba(z), 1e-300, None)
        return g.score_samples(z)[:, None] + np.log(resp)

    def transform(self, embeddings, labels=None) -> np.ndarray:
        """(n, 2) int (class, component) per item, as :meth:`predict` assigns them."""
        ids = self.predict(embeddings, labels)
        return np.stack([self.subclass_class_[ids], self.subclass_component_[ids]], axis=1)

    def subclass_names(self, ids) -> list[str]:
        """Names of sub-class ids, e.g. ``'happy / 2'`` (class name, 1-based component)."""
        self._check_fitted()
        arr = np.asarray(ids)
        if arr.ndim != 1 or arr.dtype.kind not in "iu" or (arr.size and (
                arr.min() < 0 or arr.max() >= len(self.names_))):
            raise ValueError(f"ids must be a 1-D array of sub-class ids in [0, "
                             f"{len(self.names_) - 1}]")
        return [self.names_[i] for i in arr.tolist()]

    def centroids(self) -> np.ndarray:
        """(S, d) component means, by sub-class id."""
        self._check_fitted()
        return np.concatenate([self.mixtures_[c].means_ for c in self.classes_.tolist()], axis=0)

    def medoids(self, k: int = 8) -> dict[int, np.ndarray]:
        """{sub-class id: indices (into the fitted rows) of its up to ``k`` members nearest its
        centroid, nearest (the medoid) first}; members are the items in ``labels_``. A sub-class
        with no member maps to an empty array."""
        self._check_fitted()
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be an integer ≥ 1, got {k!r}")
        means = self.centroids()
        out: dict[int, np.ndarray] = {}
        for s in range(len(self.subclasses_)):
            members = np.flatnonzero(self.labels_ == s)
            dist = np.linalg.norm(self.embeddings_[members] - means[s], axis=1)
            out[s] = members[np.argsort(dist, kind="stable")[:k]]
        return out


def discovery_for_level(level: int, components: int | str = LEVEL, *, seed: int = 0,
                        class_names: list[str] | None = None) -> SubclassDiscovery:
    """The (unfitted) discovery Algorithm 2 runs at ``level`` l ≥ 2 on each original class.

    ``components``: ``'level'`` (the paper: l components per class, K·l sub-classes), ``'bic'``
    (per class, the number in 1..l with the lowest BIC) or an int m (m per class at every
    level).
    """
    if isinstance(level, bool) or not isinstance(level, int | np.integer) or level < 2:
        raise ValueError(f"level must be an integer ≥ 2 (level 1 is the original classes), "
                         f"got {level!r}")
    level = int(level)
    if components == LEVEL:
        return SubclassDiscovery(level, seed=seed, class_names=class_names)
    if components == "bic":
        return SubclassDiscovery("bic", max_components=level, seed=seed, class_names=class_names)
    return SubclassDiscovery(_check_n_components(components), seed=seed, class_names=class_names)
