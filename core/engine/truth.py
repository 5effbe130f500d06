"""What the truth-known benchmark measures (SPEC §9), defined in one place.

The generated corpus knows, for every item, its true emotion distribution (``true_dist``), its
true class (``true_label``), whether its single dataset label was flipped (``flipped``) and its
hidden sub-class (``subclass``: identity + visible style). Each function below says what it
compares; :func:`truth_measures` applies the ones that fit a prediction pass.

Distances between distributions are KL(reference ‖ model) in nats, the model's side smoothed
with ε = 1e-6 (a model may put exactly 0 on a class the truth gives weight to), the same ε on
every side, so the numbers are comparable with each other and with the floor.

Which score finds flipped labels: each method's per-item uncertainty **for the label it trained
on**, on the training split (:meth:`affectlab.methods.Method.label_uncertainty`): DMUE 1 − s_i,
LDLVA λ_i, otherwise the item's loss against its dataset label. Validation and test labels are
never trained on, and no method's test-time uncertainty depends on the label, so an AUROC there
is 0.5 in expectation for every method; it is not computed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from affectlab import metrics as M

if TYPE_CHECKING:
    from affectlab.engine.evaluate import SplitPredictions

__all__ = ["KL_EPS", "auroc_flipped", "gmm_subclasses", "kl_latent_truth", "kl_nonlabel_truth",
           "kl_ratings_truth", "HIDDEN_FACTORS", "kl_truth", "retrieval_against_truth", "subclass_recovery",
           "truth_measures", "without_label"]

KL_EPS = 1e-6


def _mean_kl(reference: np.ndarray, model: np.ndarray) -> float:
    return float(M.kl_divergence(reference, model, eps=KL_EPS, reduction="mean"))


def without_label(dist: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row of ``dist`` (n, K) with its ``label`` (n,) entry set to 0 and renormalised;
    and the (n,) mask of rows that keep some mass (a row with all its mass on the label has no
    distribution over the other classes and is left out by the callers)."""
    out = np.asarray(dist, dtype=np.float64).copy()
    out[np.arange(out.shape[0]), np.asarray(label, dtype=np.int64)] = 0.0
    mass = out.sum(axis=1)
    keep = mass > 1e-12
    out[keep] /= mass[keep, None]
    return out, keep


def kl_truth(true_dist: np.ndarray, probs: np.ndarray) -> float:
    """Mean KL(true distribution ‖ predicted distribution): how close the model's output comes
    to the truth. Every method (the predicted distribution, never a latent one)."""
    return _mean_kl(true_dist, probs)


def kl_ratings_truth(true_dist: np.ndarray, ratings: np.ndarray) -> float:
    """The floor: mean KL(true distribution ‖ the ratings' own distribution), i.e. the simulated
    raters' noise. A perfect learner of the ratings reaches this, no learner of them is
    expected to go below it."""
    return _mean_kl(true_dist, ratings)


def kl_nonlabel_truth(true_dist: np.ndarray, dist: np.ndarray, label: np.ndarray) -> float:
    """Mean KL between the truth and ``dist`` over the classes other than the item's dataset
    label: both zeroed at the label and renormalised (the DMUE supplement's comparison). For a
    plain classifier's probs this is its counterpart of DMUE's latent distribution (what its
    softmax says about the other classes)."""
    ref, keep = without_label(true_dist, label)
    model, _ = without_label(dist, label)
    if not keep.any():
        return float("nan")
    return _mean_kl(ref[keep], model[keep])


def kl_latent_truth(true_dist: np.ndarray, latent: np.ndarray, label: np.ndarray,
                    excludes_label: bool) -> float:
    """Mean KL(truth ‖ latent distribution) for methods with a latent or constructed one.

    ``excludes_label`` (DMUE: the latent puts exactly 0 on the item's label): the truth is
    zeroed at the label and renormalised (:func:`kl_nonlabel_truth`); otherwise (LDLVA's
    constructed d_i, which includes the label) the full truth.
    """
    if excludes_label:
        return kl_nonlabel_truth(true_dist, latent, label)
    return _mean_kl(true_dist, latent)


def auroc_flipped(scores: np.ndarray, flipped: np.ndarray) -> float | None:
    """AUROC of per-item scores (higher = more suspect) for finding the flipped dataset labels;
    None unless both flipped and kept labels occur."""
    flags = np.asarray(flipped).astype(bool)
    if not 0 < flags.sum() < flags.size:
        return None
    return M.uncertainty_auroc(np.asarray(scores, dtype=np.float64), flags)


def subclass_recovery(subclass_ids: np.ndarray, hidden: np.ndarray, classes: np.ndarray) -> float:
    """How well discovered sub-classes recover the hidden sub-class factor: the NMI between the
    discovered ids and the hidden ``subclass`` values within each class, averaged over the
    classes weighted by their size (classes of one item carry no information and are skipped).
    NaN when no class has two items."""
    ids, hidden, classes = np.asarray(subclass_ids), np.asarray(hidden).astype(str), \
        np.asarray(classes)
    total, weight = 0.0, 0
    for c in np.unique(classes):
        rows = classes == c
        if rows.sum() < 2:
            continue
        total += rows.sum() * M.nmi(hidden[rows], ids[rows])
        weight += int(rows.sum())
    return total / weight if weight else float("nan")


def retrieval_against_truth(embedding: np.ndarray, true_label: np.ndarray, seed: int = 0
                            ) -> dict[str, float]:
    """NMI of k-means clusters and Recall@K of the embedding scored against the true classes
    (``nmi_truth``, ``recall@K_truth``): what the embedding separates, free of label noise."""
    out: dict[str, float] = {}
    n, groups = len(true_label), len(np.unique(true_label))
    if n > groups >= 2:
        out["nmi_truth"] = M.kmeans_nmi(embedding, true_label, seed=seed, n_init=3)
    if n >= 2:
        ks = [k for k in M.DEFAULT_KS if k <= n - 1]
        for k, value in M.recall_at_k(embedding, true_label, ks).items():
            out[f"recall@{k}_truth"] = value
    return out


def _distribution_measures(pred: SplitPredictions, true_dist: np.ndarray) -> dict[str, float]:
    out = {"kl_truth": kl_truth(true_dist, pred.probs),
           "kl_nonlabel_truth": kl_nonlabel_truth(true_dist, pred.probs, pred.label)}
    if not np.isnan(pred.soft).any():
        out["kl_ratings_truth"] = kl_ratings_truth(true_dist, pred.soft)
    if pred.latent is not None:
        out["kl_latent_truth"] = kl_latent_truth(true_dist, pred.latent, pred.label,
                                                 pred.latent_excludes_label)
    return out


def truth_measures(pred: SplitPredictions, seed: int = 0) -> dict[str, float]:
    """The measures that the truth columns of ``pred`` allow ({} for data without truth).

    - ``true_dist`` with K classes: kl_truth, kl_nonlabel_truth, kl_ratings_truth (the
      floor), kl_latent_truth (methods with a latent distribution);
    - ``true_label``: nmi_truth and recall@K_truth of the embedding;
    - ``flipped`` and a per-item uncertainty for the trained label (training split only):
      auroc_flipped;
    - ``subclass`` and ``style`` (training split only): subclass_nmi_gmm / style_nmi_gmm, the
      recovery of that hidden factor by the discovery of SGM's Algorithm 2 (two Gaussian
      components per class) run on this method's embedding, the same procedure for every
      method; subclass_nmi / style_nmi for a method's own sub-classes (SGM). ``subclass`` has
      dozens of values (identity × style), so with two components per class its NMI mostly
      reflects the split's balance; ``style`` is the factor two components can recover.
    """
    out: dict[str, float] = {}
    if not len(pred):
        return out
    true_dist = pred.truth.get("true_dist")
    if true_dist is not None and true_dist.shape == pred.probs.shape:
        out.update(_distribution_measures(pred, true_dist.astype(np.float64)))
    true_label = pred.truth.get("true_label")
    if true_label is not None:
        out.update(retrieval_against_truth(pred.embedding, np.asarray(true_label).astype(np.int64),
                                           seed))
    flipped = pred.truth.get("flipped")
    if flipped is not None and pred.label_uncertainty is not None:
        value = auroc_flipped(pred.label_uncertainty, flipped)
        if value is not None:
            out["auroc_flipped"] = value
    if pred.split == "train":
        out.update(_subclass_measures(pred, seed))
    return out


# hidden factors a sub-class may recover: the generated corpus's ``subclass`` (identity + visible
# style, dozens of values) and ``style`` alone (glasses / plain faces, breathy / modal voices:
# the binary factor two components per class can match)
HIDDEN_FACTORS = ("subclass", "style")


def _subclass_measures(pred: SplitPredictions, seed: int) -> dict[str, float]:
    """<factor>_nmi_gmm (the discovery on this method's embedding) and, for a method with its
    own sub-classes, <factor>_nmi, for each hidden factor the truth has."""
    factors = {f: pred.truth[f] for f in HIDDEN_FACTORS if f in pred.truth}
    if not factors:
        return {}
    classes = pred.soft.argmax(axis=1)
    gmm = gmm_subclasses(pred.embedding, classes, seed)
    out = {}
    for name, hidden in factors.items():
        out[f"{name}_nmi_gmm"] = subclass_recovery(gmm, hidden, classes)
        if pred.subclass is not None:
            out[f"{name}_nmi"] = subclass_recovery(pred.subclass, hidden, classes)
    return out


def gmm_subclasses(embedding: np.ndarray, classes: np.ndarray, seed: int = 0,
                   components: int = 2) -> np.ndarray:
    """(n,) sub-class ids from SGM's Algorithm-2 discovery (``components`` Gaussian components
    per class, hard assignment within the item's own class) on any embedding."""
    from affectlab.subclasses import discovery_for_level

    disc = discovery_for_level(components, seed=seed)
    disc.fit(embedding, classes)
    return disc.labels_
