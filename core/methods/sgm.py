"""SGM: Structured Gaussian Manifold loss with k-NN prediction and sub-classes (seed 002, SPEC §4).

Embedding (SPEC §4: linear, d = 32 or 64). With ``embedding="linear"`` (the default) the method
owns a linear layer z = W·v + b of ``embedding_dim`` outputs (64, the paper's Figure 7) on the
model's backbone features v (``ModelOutput.features``), with no ReLU after it, so z ranges over
all of R^d as in the paper's code. The model's own embedding and classifier are left unused, and
other methods' embeddings are untouched (f-SPL keeps its ReLU-ed, L2-normalised layer).
``embedding="model"`` uses the model's embedding layer as it is (e.g. 128-d after a ReLU).

Training: class-balanced batches (``n_per_class`` items of every class, the paper's n = 30;
an item's class is the argmax of its soft label), loss = mean ‖P(w | z) − y‖² (+
``norm_weight``·mean ‖z‖, default 0) with Gaussian posteriors around the batch's soft-weighted
class means, σ = 0.5. The engine's ``batch_size`` is not used: a batch is n_per_class × (number
of classes) items, as in the paper.

Prediction: k-nearest neighbours (k = 11, Euclidean) among the training embeddings; probs =
mean of the neighbours' soft labels, uncertainty = entropy of that. The method keeps the
reference bank as buffers (``bank_z`` (n_items, d), ``bank_y`` (n_items, K), ``bank_filled``
(n_items,)), so it is saved and restored with the method's state_dict. Two ways to fill it:

- ``on_epoch_end(train_loader)``: the engine calls it after every epoch (under no_grad) with a
  plain loader over the training split; it embeds every item in eval mode and stores it by
  ``batch["index"]``.
- ``fit_reference(embeddings, labels=None, index=None)``: give the embeddings directly.

When ``batch["split"] == "train"`` an item is not its own neighbour (leave-one-out), so the
training-set predictions and uncertainties are honest.

Sub-classes (Algorithm 2, SPEC §4). ``subclass_levels`` is the paper's L: level 1 trains on the
original K classes; every ``subclass_every`` epochs ``on_epoch_end`` moves to the next level l
(up to L), fits a Gaussian mixture with l components to each ORIGINAL class's bank embeddings
(:func:`affectlab.subclasses.discovery_for_level`; the class of an item is the argmax of its
soft label), relabels every item by hard assignment (class j, component g → sub-class k_j + g,
K·l sub-classes) and training continues from the current weights on the finer labels.
``subclass_components`` = ``'level'`` is that rule; ``'bic'`` lets BIC choose 1..l components
per class, an int fixes the number at every level. ``refine_labels(info, embeddings, level)``
is the same step as a function.

Soft labels of the sub-classes: an item's mass y_j for class j goes whole to its hard component
within j, y'_(j,g) = y_j·[g = argmax_m P(m | z, j)]. Hard (one-hot) labels therefore give one-hot
sub-class labels, the paper's relabelling, and a soft label keeps the annotators' split over the
original classes (Σ_g y'_(j,g) = y_j) instead of being hardened to one class: sub-classes refine
the classes, they do not re-annotate the items. No mixture responsibilities enter the labels.
(A class that is nobody's argmax has no mixture; its mass moves to the item's own class.)

Predictions stay over the original K classes: the k-NN vote averages the neighbours' original
soft labels (the bank keeps them), which is the vote over their sub-class labels summed over
each class's sub-classes, since Σ_g y'_(j,g) = y_j. ``subclass_of`` gives the sub-class ids.
The refinement state is part of the state_dict (``_extra_state``, plain data: the epochs
counted, the level and each refinement's labels, parent classes and sub-class names), so a run
resumed from a checkpoint trains on the same finer labels and at the same schedule as one that
never stopped, and a rebuilt run still has its sub-classes. The fitted mixtures are not saved
(``Refinement.discovery`` is None after a restore): nothing reads them after the relabelling.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from affectlab.losses import ClassBalancedBatchSampler, sgm_loss
from affectlab.losses.sgm import NORM_WEIGHT, SIGMA
from affectlab.methods.base import Method, Prediction, StepResult, TrainSetInfo
from affectlab.methods.softlabel import check_method_inputs
from affectlab.models.base import MAX_UNITS, EmotionModel
from affectlab.registry import Param
from affectlab.subclasses import LEVEL, SubclassDiscovery, discovery_for_level
from affectlab.validation import Interval, check_scalar

__all__ = ["EmbeddingKnnMethod", "Refinement", "SGMMethod", "knn_soft_vote", "refine_labels"]


def knn_soft_vote(query: torch.Tensor, ref_z: torch.Tensor, ref_y: torch.Tensor, k: int,
                  exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Mean soft label of the ``k`` nearest reference embeddings (Euclidean).

    ``query`` (B, D), ``ref_z`` (M, D), ``ref_y`` (M, K); ``exclude`` optional (B,) reference
    row per query that may not be its neighbour (−1: none). Returns (B, K). Uses min(k, M
    available) neighbours.
    """
    if query.ndim != 2 or ref_z.ndim != 2 or query.shape[1] != ref_z.shape[1]:
        raise ValueError(f"query (B, D) and ref_z (M, D) must share D, got {tuple(query.shape)} "
                         f"and {tuple(ref_z.shape)}")
    if ref_y.ndim != 2 or ref_y.shape[0] != ref_z.shape[0]:
        raise ValueError(f"ref_y must be (M, K) with M = {ref_z.shape[0]}, got "
                         f"{tuple(ref_y.shape)}")
    k = check_scalar(k, "k", int, interval=Interval(1))
    dist = torch.cdist(query.float(), ref_z.float())
    m = ref_z.shape[0]
    if exclude is not None:
        rows = torch.nonzero(exclude >= 0).flatten()
        dist[rows, exclude[rows]] = float("inf")
        m -= 1 if rows.numel() else 0
    k = max(1, min(k, m))
    nn_idx = dist.topk(k, dim=1, largest=False).indices  # (B, k)
    # at least float32: under autocast the query embeddings are float16
    return ref_y[nn_idx].to(torch.promote_types(query.dtype, torch.float32)).mean(dim=1)


@dataclass
class Refinement:
    """One level of Algorithm 2: the finer training set and how it maps to the original one.

    level:      l (2..L)
    info:       TrainSetInfo over the S sub-classes (soft_labels (n, S), labels (n,) sub-class
                ids, ordinal False; aux kept)
    discovery:  the fitted SubclassDiscovery (names, centroids, medoids); None when the
                refinement was restored from a checkpoint (the mixtures are not saved)
    parent:     (S,) int64 original class of each sub-class
    names:      (S,) sub-class names, e.g. ``'class 0 / 2'``
    """

    level: int
    info: TrainSetInfo
    discovery: SubclassDiscovery | None
    parent: torch.Tensor
    names: list[str]

    def to_state(self) -> dict[str, Any]:
        """Plain data for a checkpoint (tensors on the CPU; the mixtures left out)."""
        return {"level": int(self.level), "soft_labels": self.info.soft_labels.detach().cpu(),
                "labels": self.info.labels.detach().cpu(), "parent": self.parent.cpu(),
                "names": [str(n) for n in self.names]}

    @classmethod
    def from_state(cls, state: dict[str, Any], original: TrainSetInfo) -> Refinement:
        """The refinement of :meth:`to_state` over the ORIGINAL training set ``original``;
        ValueError when its shapes do not fit that set."""
        soft, labels = state["soft_labels"].float(), state["labels"].long()
        parent, names = state["parent"].long(), [str(n) for n in state["names"]]
        n, s = original.n_items, int(parent.shape[0])
        if (soft.shape != (n, s) or labels.shape != (n,) or len(names) != s
                or (s and (int(parent.min()) < 0 or int(parent.max()) >= original.num_classes))):
            raise ValueError(f"sub-class refinement (level {state['level']}) does not fit a "
                             f"training set of {n} items and {original.num_classes} classes")
        info = replace(original, num_classes=s, soft_labels=soft, labels=labels, ordinal=False)
        return cls(int(state["level"]), info, None, parent, names)


def _own_class_mass(y: np.ndarray, hard: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """``y`` with the mass of classes that have no mixture (``~covered``) moved to each row's
    own class ``hard``, so rows stay distributions over the covered classes."""
    if covered.all():
        return y
    lost = y[:, ~covered].sum(axis=1)
    y = y * covered
    y[np.arange(y.shape[0]), hard] += lost
    return y


def refine_labels(info: TrainSetInfo, embeddings, level: int = 2,
                  components: int | str = LEVEL, seed: int = 0,
                  class_names: list[str] | None = None) -> Refinement:
    """Algorithm 2 at ``level`` l: relabel every training item as (original class, component).

    ``info``: the ORIGINAL training set (class of an item = argmax of its soft label);
    ``embeddings``: (n_items, d) their embeddings, in index order; ``components``: see
    :func:`affectlab.subclasses.discovery_for_level` (``'level'``: l per class). An item's mass
    for class j goes whole to its hard component within j (module note): one-hot labels give
    one-hot sub-class labels.
    """
    z = torch.as_tensor(embeddings).detach().cpu().double().numpy()
    if z.ndim != 2 or z.shape[0] != info.n_items:
        raise ValueError(f"embeddings must be (n_items={info.n_items}, d), got shape {z.shape}")
    y = info.soft_labels.detach().cpu().double().numpy()
    hard = y.argmax(axis=1)
    disc = discovery_for_level(level, components, seed=seed, class_names=class_names)
    disc.fit(z, hard)
    covered = np.zeros(y.shape[1], dtype=bool)
    covered[disc.classes_] = True
    y = _own_class_mass(y, hard, covered)
    ids = disc.class_subclass_ids(z)  # (n, C): each row's hard component within every class
    fine = np.zeros((info.n_items, disc.n_subclasses_))
    rows = np.arange(info.n_items)
    for col, cls in enumerate(disc.classes_.tolist()):
        fine[rows, ids[:, col]] += y[:, cls]
    new_info = replace(info, num_classes=disc.n_subclasses_,
                       soft_labels=torch.as_tensor(fine, dtype=torch.float32),
                       labels=torch.as_tensor(disc.labels_), ordinal=False)
    return Refinement(int(level), new_info, disc, torch.as_tensor(disc.subclass_class_),
                      list(disc.names_))


_EMBEDDING_PARAMS = (
    Param("n_per_class", int, 30, low=1, high=10_000,
          help="items of every class in a batch (the paper: 30)"),
    Param("k", int, 11, low=1, high=1000, help="neighbours of the k-NN prediction"),
    Param("embedding", str, "linear", choices=("linear", "model"),
          help="linear: a d-dim linear layer on the backbone features (the paper); "
               "model: the model's own embedding layer"),
    Param("embedding_dim", int, 64, low=1, high=MAX_UNITS,
          help="d of the linear embedding (the paper: 64; SPEC: 32 or 64)"),
    Param("subclass_levels", int, 1, low=0, high=8,
          help="L of Algorithm 2: level l = 2..L splits each class into l sub-classes; "
               "0 or 1: none"),
    Param("subclass_components", int, LEVEL, low=1, high=50, also=(LEVEL, "bic"),
          help="components per class at a level: 'level' (l at level l, the paper), "
               "'bic' (BIC's choice in 1..l) or a fixed number"),
    Param("subclass_every", int, 10, low=1, high=10_000, help="epochs per sub-class level"),
)


class EmbeddingKnnMethod(Method):
    """What SGM shares with any metric-learning loss: the embedding (a linear layer on the
    backbone features, or the model's own), class-balanced batches, the training-embedding
    bank with k-NN prediction and Algorithm 2's sub-classes. A subclass supplies
    :meth:`embedding_loss`. Params: ``n_per_class``, ``k``, ``embedding``, ``embedding_dim``,
    ``subclass_levels``, ``subclass_components``, ``subclass_every`` (see SGMMethod)."""

    param_specs = _EMBEDDING_PARAMS

    def __init__(self, model: EmotionModel, info: TrainSetInfo, method_name: str = "",
                 **params: Any) -> None:
        check_method_inputs(model, info)
        super().__init__(model, info, method_name=method_name, **params)
        p = self.params
        self.n_per_class, self.k = p["n_per_class"], p["k"]
        self.subclass_levels, self.subclass_every = p["subclass_levels"], p["subclass_every"]
        self.subclass_components = p["subclass_components"]
        if p["embedding"] == "linear":
            self.head: nn.Linear | None = nn.Linear(int(model.feature_dim), p["embedding_dim"])
            d = p["embedding_dim"]
        else:
            self.head = None
            d = int(model.embedding_dim)
        n = info.n_items
        self.register_buffer("bank_z", torch.zeros(n, d))
        self.register_buffer("bank_y", info.soft_labels.detach().float().clone())
        self.register_buffer("bank_filled", torch.zeros(n, dtype=torch.uint8))
        # training targets (original labels at level 1, finer ones after each refinement)
        self.targets: torch.Tensor | None = None
        self.level = 1
        self.refinements: list[Refinement] = []
        self._epochs_done = 0

    # -- the refinement state in the state_dict (module note) --------------------------------

    def get_extra_state(self) -> dict[str, Any]:
        return {"epochs_done": int(self._epochs_done), "level": int(self.level),
                "refinements": [r.to_state() for r in self.refinements]}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        refinements = [Refinement.from_state(r, self.info) for r in state["refinements"]]
        level, epochs = int(state["level"]), int(state["epochs_done"])
        if ([r.level for r in refinements] != list(range(2, level + 1)) or epochs < 0
                or level > max(1, self.subclass_levels)):
            raise ValueError(f"sub-class state (level {level}, refinements at levels "
                             f"{[r.level for r in refinements]}, {epochs} epochs) does not fit "
                             f"subclass_levels = {self.subclass_levels}")
        self._epochs_done, self.level, self.refinements = epochs, level, refinements
        self.targets = (refinements[-1].info.soft_labels.to(self.bank_z.device)
                        if refinements else None)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # a checkpoint written before the refinement state was saved starts at level 1
        state_dict.setdefault(prefix + "_extra_state",
                              {"epochs_done": 0, "level": 1, "refinements": []})
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def embedding_loss(self, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, str]:
        """The loss of embeddings ``z`` (B, d) with (soft) targets ``y`` (B, S), and its name
        for the events log."""
        raise NotImplementedError

    def training_step(self, batch: dict[str, Any], epoch: int, step: int) -> StepResult:
        z = self.embed(batch["x"], batch.get("lengths"))
        if self.targets is None:
            y = batch["y"]
        else:
            y = self.targets.to(z.device)[batch["index"].to(z.device)]
        loss, name = self.embedding_loss(z, y.to(z.device))
        return StepResult(loss, {name: loss.detach(), "level": float(self.level)})

    @property
    def embedding_dim(self) -> int:
        """d of the embedding SGM trains and predicts with."""
        return int(self.bank_z.shape[1])

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, d) embedding z: the linear layer on the backbone features, or the model's
        embedding (``embedding="model"``)."""
        out = self.model(x, lengths)
        return out.embedding if self.head is None else self.head(out.features)

    # -- batches and loss -----------------------------------------------------------------

    def _train_soft_labels(self) -> torch.Tensor:
        return self.info.soft_labels if self.targets is None else self.targets

    def batch_sampler(self, batch_size: int, epoch: int, seed: int) -> list[list[int]]:
        """Class-balanced index lists for this epoch (classes = argmax of the current training
        labels); ``batch_size`` is ignored (module note)."""
        labels = self._train_soft_labels().detach().cpu().double().numpy()
        sampler = ClassBalancedBatchSampler(labels, n_per_class=self.n_per_class, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    # -- reference bank -------------------------------------------------------------------

    def fit_reference(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None,
                      index: torch.Tensor | None = None) -> None:
        """Store training embeddings for k-NN. ``embeddings`` (m, D); ``index`` (m,) training
        indices (default: all items in order, m = n_items); ``labels`` (m, K) soft labels
        (default: the training soft labels)."""
        z = torch.as_tensor(embeddings).detach()
        d = self.bank_z.shape[1]
        if z.ndim != 2 or z.shape[1] != d:
            raise ValueError(f"embeddings must be (m, {d}), got shape {tuple(z.shape)}")
        if not bool(torch.isfinite(z).all()):
            raise ValueError("embeddings contain NaN or infinite values")
        if index is None:
            if z.shape[0] != self.info.n_items:
                raise ValueError(f"without index, embeddings must have n_items = "
                                 f"{self.info.n_items} rows, got {z.shape[0]}")
            index = torch.arange(z.shape[0])
        index = torch.as_tensor(index).long().to(self.bank_z.device)
        if index.shape != (z.shape[0],) or (index.numel() and (
                int(index.min()) < 0 or int(index.max()) >= self.info.n_items)):
            raise ValueError(f"index must be ({z.shape[0]},) training indices in "
                             f"[0, {self.info.n_items - 1}]")
        self.bank_z[index] = z.to(self.bank_z)
        if labels is not None:
            y = torch.as_tensor(labels).detach()
            if y.shape != (z.shape[0], self.bank_y.shape[1]):
                raise ValueError(f"labels must be ({z.shape[0]}, {self.bank_y.shape[1]}), got "
                                 f"{tuple(y.shape)}")
            self.bank_y[index] = y.to(self.bank_y)
        self.bank_filled[index] = 1

    @torch.no_grad()
    def embed_all(self, loader) -> tuple[torch.Tensor, torch.Tensor]:
        """(index (m,), embeddings (m, D)) of every item of ``loader``, model in eval mode."""
        device = self.bank_z.device
        was_training = self.model.training
        self.model.eval()
        idx, embs = [], []
        try:
            for batch in loader:
                lengths = batch.get("lengths")
                z = self.embed(batch["x"].to(device),
                               None if lengths is None else lengths.to(device))
                idx.append(batch["index"].to(device))
                embs.append(z.float())
        finally:
            self.model.train(was_training)
        return torch.cat(idx), torch.cat(embs)

    @torch.no_grad()
    def on_epoch_end(self, train_loader) -> None:
        """Engine hook: refresh the bank from ``train_loader`` (a plain loader over the
        training split); at the scheduled epochs, move one sub-class level down."""
        index, z = self.embed_all(train_loader)
        self.fit_reference(z, index=index)
        self._epochs_done += 1
        if (self.level < self.subclass_levels and self._epochs_done % self.subclass_every == 0
                and bool(self.bank_filled.all())):
            self.refine()

    def refine(self, embeddings: torch.Tensor | None = None) -> Refinement:
        """The next level of Algorithm 2 on ``embeddings`` (n_items, d) (default: the bank):
        mixtures on each original class, hard relabelling; the next training steps use the
        finer labels."""
        z = self.bank_z if embeddings is None else embeddings
        ref = refine_labels(self.info, z, self.level + 1, self.subclass_components,
                            seed=self.level + 1)
        self.targets = ref.info.soft_labels.to(self.bank_z.device)
        self.refinements.append(ref)
        self.level = ref.level
        return ref

    def train_subclasses(self) -> torch.Tensor | None:
        """The sub-class ids of :meth:`subclass_of` once Algorithm 2 has refined the classes,
        else None."""
        return self.subclass_of() if self.refinements else None

    def subclass_of(self) -> torch.Tensor:
        """(n_items,) sub-class id of every training item at the current level (level 1:
        the class, the argmax of its soft label)."""
        if self.refinements:
            return self.refinements[-1].info.labels.clone()
        return self.info.soft_labels.argmax(dim=1)

    # -- prediction -----------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> Prediction:
        if not bool(self.bank_filled.any()):
            raise RuntimeError("SGM predicts by k-NN over training embeddings, but none are "
                               "stored: call on_epoch_end(train_loader) or fit_reference first")
        z = self.embed(batch["x"], batch.get("lengths"))
        filled = torch.nonzero(self.bank_filled).flatten()
        exclude = None
        if batch.get("split") == "train" and "index" in batch:
            # position of each query item in the filled bank rows, −1 if absent
            pos = torch.full((self.info.n_items,), -1, dtype=torch.long, device=z.device)
            pos[filled] = torch.arange(filled.numel(), device=z.device)
            exclude = pos[batch["index"].to(z.device).long()]
        probs = knn_soft_vote(z, self.bank_z[filled], self.bank_y[filled], self.k, exclude)
        probs = probs / probs.sum(dim=1, keepdim=True)
        entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
        return Prediction(probs=probs, embedding=z, uncertainty=entropy)


class SGMMethod(EmbeddingKnnMethod):
    """SGM loss on class-balanced batches, k-NN prediction over a training-embedding bank.

    Params: ``sigma`` (0.5), ``norm_weight`` (0: the authors' code), ``n_per_class`` (30; a
    class with fewer items repeats some), ``k`` (11 neighbours), ``embedding`` ('linear': the
    method's linear layer on the backbone features; 'model': the model's embedding layer),
    ``embedding_dim`` (d = 64), ``subclass_levels`` (L = 1: no sub-classes),
    ``subclass_components`` ('level', 'bic' or an int), ``subclass_every`` (epochs per level,
    10). Parts logged: ``sgm``; ``level`` (current level, 1 = the original classes).
    """

    description = "Structured Gaussian Manifold loss on class-balanced batches; k-NN prediction"
    # ceilings: a batch holds n_per_class × classes items; every level adds K sub-classes
    param_specs = (SIGMA, NORM_WEIGHT, *_EMBEDDING_PARAMS)

    def __init__(self, model: EmotionModel, info: TrainSetInfo, method_name: str = "",
                 **params: Any) -> None:
        super().__init__(model, info, method_name=method_name, **params)
        self.sigma, self.norm_weight = self.params["sigma"], self.params["norm_weight"]

    def embedding_loss(self, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, str]:
        return sgm_loss(z, y, sigma=self.sigma, norm_weight=self.norm_weight), "sgm"
