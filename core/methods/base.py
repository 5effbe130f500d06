"""The contract every training method follows; the engine knows nothing else about methods.

A method owns the model and any extra trainable state (LDLVA's per-item uncertainty, DMUE's
branches), decides how batches are formed when it must (balanced triplets, class-balanced
batches), computes the loss of a batch, and says what to save per item at the end.

Batches are dicts produced by ``affectlab.data.dataset.EmotionDataset`` (and its collate function):
``x`` (B, …) input, ``lengths`` (B,) for speech, ``y`` (B, K) soft label, ``label`` (B,) int
dataset label, ``index`` (B,) int item index within the training split (stable across epochs:
memory banks and per-item parameters are keyed by it), optional ``truth``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from affectlab.models.base import EmotionModel
from affectlab.registry import Param, check_values


@dataclass
class TrainSetInfo:
    """What a method may know about its training set before training starts.

    n_items:      number of training items (``index`` ranges over 0..n_items-1)
    num_classes:  K
    soft_labels:  (n_items, K) soft labels in index order (class weights, triplet sampling)
    labels:       (n_items,) int dataset labels
    aux:          (n_items, A) auxiliary per-item vectors (LDLVA's valence/arousal), or None
    ordinal:      whether the classes are ordered (EMD² is offered only then)
    aux_bounds:   (2, A) the declared low (row 0) and high (row 1) of each aux column (for
                  valence/arousal: the Likert scales' ends, e.g. 1 and 5), or None (LDLVA then
                  maps the smallest and largest aux value to −1 and 1)
    """

    n_items: int
    num_classes: int
    soft_labels: torch.Tensor
    labels: torch.Tensor
    aux: torch.Tensor | None = None
    ordinal: bool = False
    aux_bounds: torch.Tensor | None = None


class StepResult:
    """The loss to back-propagate and its named parts for the events log.

    Methods pass parts as detached 0-d tensors (or floats) and they are read back together, on
    first use: on a GPU each ``float(tensor)`` waits for the device, and one wait per step
    instead of one per part keeps the host launching kernels ahead of it.
    """

    __slots__ = ("loss", "_parts", "_floats")

    def __init__(self, loss: torch.Tensor, parts: dict[str, Any] | None = None) -> None:
        self.loss = loss
        self._parts = dict(parts or {})
        self._floats: dict[str, float] | None = None

    @property
    def parts(self) -> dict[str, float]:
        """The parts as floats."""
        return {k: v for k, v in self.logged().items() if k in self._parts}

    def logged(self) -> dict[str, float]:
        """``{"loss": …, **parts}`` as floats, read from the device in one transfer."""
        if self._floats is None:
            items = {"loss": self.loss, **self._parts}
            tensors = {k: v for k, v in items.items() if isinstance(v, torch.Tensor)}
            stacked = torch.stack([v.detach().reshape(()).to(self.loss.device, torch.float64)
                                   for v in tensors.values()])
            read = dict(zip(tensors, stacked.tolist(), strict=True))
            self._floats = {k: read[k] if k in read else float(v) for k, v in items.items()}
        return dict(self._floats)

    def __repr__(self) -> str:
        return f"StepResult(loss={self.loss!r}, parts={self._parts!r})"


@dataclass
class Prediction:
    """Per-item outputs saved for the explore page.

    probs:       (B, K) predicted distribution
    embedding:   (B, D) embedding
    uncertainty: (B,) higher = more uncertain (DMUE: 1 − s_i; LDLVA: λ_i; else entropy)
    latent:      (B, K) latent / constructed distribution, or None
    """

    probs: torch.Tensor
    embedding: torch.Tensor
    uncertainty: torch.Tensor
    latent: torch.Tensor | None = None


def adam(params, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam; its fused kernel where every parameter is on a GPU (one launch for all tensors
    instead of several per tensor, which matters for DMUE's eight copies of the last stage)."""
    params = list(params)
    on_cuda = bool(params) and all(p.is_cuda for p in params)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay,
                            fused=True if on_cuda else None)


class Method(nn.Module):
    """Base class. ``param_specs`` declares the method's hyper-parameters (type, the papers'
    default, bounds, help; see :class:`affectlab.registry.Param`); ``self.params`` holds their
    checked values, defaults filled in.

    One class may serve several registry names (``ce+fspl-kl`` … ``ce+fspl-js``): the registry
    passes ``method_name`` and the class-level hooks below take the name.
    """

    description: str = ""
    param_specs: tuple[Param, ...] = ()
    modalities: tuple[str, ...] = ("face", "speech")
    ordinal_only: bool = False
    # the latent distribution puts 0 on the item's label by construction (DMUE's): the truth
    # measures then compare it over the other classes only
    latent_excludes_label: bool = False

    @classmethod
    def default_params(cls, name: str) -> dict[str, Any]:
        return {p.name: p.default for p in cls.param_specs}

    @classmethod
    def describe(cls, name: str) -> str:
        return cls.description

    @classmethod
    def check_params(cls, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` checked against ``param_specs`` (names, types, bounds, choices), the
        defaults of the others filled in; else ParamError naming the method and parameter."""
        return check_values(f"method {name!r}", cls.param_specs, params)

    def __init__(self, model: EmotionModel, info: TrainSetInfo, method_name: str = "",
                 **params: Any) -> None:
        super().__init__()
        # the same check as a config gets, for direct construction too
        self.params = type(self).check_params(method_name or type(self).__name__, params)
        self.method_name = method_name
        self.model = model
        self.info = info

    def batch_sampler(self, batch_size: int, epoch: int, seed: int):
        """An iterable of index lists for this epoch, or None for plain shuffled batches."""
        return None

    def training_step(self, batch: dict[str, Any], epoch: int, step: int) -> StepResult:
        raise NotImplementedError

    def attach_dataset(self, dataset) -> None:
        """Engine hook, called once before training with the training dataset (``dataset[i]``
        is the item dict of training index i). Default: nothing; LDLVA's exact neighbour mode
        keeps it to re-read its neighbours' inputs."""

    def on_epoch_end(self, train_loader) -> None:
        """Engine hook, called after every training epoch (under ``torch.no_grad``) with a
        plain, unshuffled loader over the training split. Default: nothing; SGM refreshes its
        reference bank and sub-class mixtures here."""

    def label_uncertainty(self, batch: dict[str, Any], pred: Prediction) -> torch.Tensor:
        """(B,) how suspect each training item's own dataset label ``batch["label"]`` is, higher
        = more suspect, from the state after training (``pred``: :meth:`predict` of the same
        batch, eval mode). Default: the per-item training loss against that label, the
        cross-entropy −log p(label) of the predicted distribution, unweighted (class weights
        would rank items by their class); the standard small-loss baseline of flip detection.
        DMUE overrides it with 1 − s_i, LDLVA with λ_i."""
        labels = torch.as_tensor(batch["label"]).long().to(pred.probs.device)
        p = pred.probs.float().gather(1, labels.unsqueeze(1)).squeeze(1)
        return -p.clamp_min(1e-12).log()

    def train_subclasses(self) -> torch.Tensor | None:
        """(n_items,) the sub-class id of every training item where the method discovers
        sub-classes (SGM's Algorithm 2), else None."""
        return None

    def optimizers(self, lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
        """Default: one Adam over every trainable parameter of the method (model included)."""
        return [adam(self.parameters(), lr=lr, weight_decay=weight_decay)]

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> Prediction:
        out = self.model(batch["x"], batch.get("lengths"))
        probs = out.logits.softmax(-1)
        entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
        return Prediction(probs=probs, embedding=out.embedding, uncertainty=entropy)
