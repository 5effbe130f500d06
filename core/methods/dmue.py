"""DMUE: latent distribution mining and pairwise uncertainty estimation (SPEC §6, seed 004).

The backbone's last stage is duplicated: C auxiliary branches mine, for each item, a latent
distribution over the classes other than its label, and the target branch (the model's own
``layer4`` and head, so the trained model alone is the inference network) learns from the label,
the mined distribution and a similarity-preserving constraint::

    L = r_up(e)·CE(s_i·z_i, y_i) + r_up(e)·(w·L_soft + γ·L_sp) + r_down(e)·L_aux

- Auxiliary branch c: a deep copy of ``layer4`` → global average pool → dropout → Linear(F, C−1),
  trained (L_aux, cross-entropy, averaged over branches) only on the batch items whose label is
  not c, with labels remapped to 0..C−2 (y − [y > c]).
- Latent distribution of an item labelled y: branch y's softmax over the other C−1 classes,
  sharpened p^(1/T) / Σ p^(1/T) (T = 1.2), detached, with 0 inserted at y. This pass runs under
  ``no_grad`` on the label-y items only, without dropout (as in the authors' code).
- L_soft = mean over (B, C) of (softmax(z)·[c ≠ y] − latent)², the softmax not renormalised
  (authors' SoftLoss); weight w = 0.5.
- L_sp (supplement eq. 1–5): for each class c, G_aux = row-L2-normalised Gram matrix of branch
  c's outputs (its (C−1)-way logits, as the code takes them) and G_tar = row-normalised Gram
  matrix of the target branch's pooled features, both over the items not labelled c; mean
  squared difference, averaged over the classes that have such items. γ = 1000.
- Pairwise uncertainty s_i: cosine similarities of target features within the batch, averaged
  per class over the items of that class (the item itself included, as in the code) → (B, C);
  a class absent from the batch gets the row minimum (so 0 after scaling); min–max scaled per row
  (a constant row becomes 0); concatenated with one-hot(y) → Linear(2C, C) → PReLU →
  Linear(C, 1) → sigmoid. Trained: it is in the optimiser (the released code forgot it).
- Ramps: r_up(e) = exp(−5(1 − e/a)²) for e ≤ a else 1; r_down(e) = 1 for e < a else
  exp(−(1 − a/e)²), e the 0-based epoch as in the code. Default a = 6 (the authors' AffectNet
  setting; they use 4–14 by dataset).

Inference uses the target branch alone: ``predict`` returns the model's own probabilities. Its
uncertainty is 1 − s_i with the predicted class standing in for the label (both in one-hot(y)
and in the per-class grouping), so it needs no labels; like s_i in training, it depends on the
other items of the batch. The latent distribution is returned when the batch carries labels and
the auxiliary branches are present.

Precision of the auxiliary branches (``branch_precision``): ``auto`` (default) runs the
branches' stage convolutions in bfloat16 on a CPU that computes bfloat16 natively (AVX512-BF16
or AMX; oneDNN), and in the step's own precision elsewhere (on CUDA the trainer's float16 mixed
precision, on other CPUs float32); ``float32`` and ``bfloat16`` force one. The target branch
(the inference network), the branches' classifiers and every loss stay in float32 (losses run
with autocast off). The branches only supply detached latent targets, L_aux and L_sp, and
bfloat16 changes them by rounding: the loss parts agree with float32 branches to ~1e-2 relative,
latent distributions to 0.01, gradients to a cosine > 0.95 per tensor (tests). This is what
brings a step under 2× ce's on such a CPU (SPEC §6 fixes the arithmetic, not its precision).

Speed (what a step costs and why it is done this way): the branches run one after the other,
each on its own rows, in channels-last memory order (the same arithmetic; oneDNN skips its
layout reorders), with one host sync for all branches' row sets, and L_sp is one batched
computation over the masks of supplement eq. 4–5. On CPU the step is convolution-bound: the
branches must see Σ_c (B − n_c) = (C − 1)·B items with gradients plus B items without, i.e. six
more passes of ``layer4`` forward and backward at C = 7; in float32 those convolutions already
run at the core's peak, which puts one step at 2.0–2.3× ce's (one thread, batch 32, width 32),
and bfloat16 branches at about 1.6×. Running the branches as one grouped convolution (input
replicated, ``groups=C``) costs C·B items, not (C − 1)·B, and oneDNN's grouped kernels measured
about 40 % slower than separate ones; sharing one forward between a branch's training and latent
passes would add a backward over the label-c rows (two forwards' worth) to save one forward, and
would need two sets of batch-norm statistics per branch. Both stay as they are, so each branch's
BatchNorm sees exactly the items above. On a GPU at batch 256 the step is bound by kernel
launches (about 1,800 per step against ce's 500): 3.4–3.6× ce's on an H100 once ce runs
channels-last.

Branch layout (``branch_layout``): ``loop`` (default) runs the branches as above; ``stacked``
(:mod:`affectlab.methods.dmue_stacked`) runs both passes of every branch in the same kernels,
2C groups over the whole batch with masked BatchNorm statistics, so that each branch's
BatchNorm still sees exactly the items above: the same losses, gradients and running
statistics (tests), a third fewer operators per step (``affectlab bench``'s ``ops``), no host
sync and no shape that depends on the labels, at twice the stage's arithmetic. It is meant for
GPUs, where launches set the pace; on a CPU it is slower. The checkpoint format is the same in
both layouts.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from affectlab.losses import float32_loss, no_autocast, value_checks_on
from affectlab.methods.base import Method, Prediction, StepResult, TrainSetInfo
from affectlab.methods.dmue_stacked import stacked_branches
from affectlab.models.base import EmotionModel
from affectlab.registry import Param
from affectlab.validation import Interval, check_scalar

__all__ = [
    "DMUE",
    "AuxiliaryBranch",
    "BRANCH_LAYOUTS",
    "BRANCH_PRECISIONS",
    "branch_dtype",
    "class_masks",
    "branch_stage_precision",
    "PairwiseUncertainty",
    "class_similarity_stats",
    "latent_distribution",
    "latent_distribution_rows",
    "masked_similarity_preserving_loss",
    "mean_over_present",
    "one_hot",
    "ramp_down",
    "ramp_up",
    "remap_labels",
    "row_normalised_gram",
    "sharpen",
    "similarity_preserving_loss",
    "soft_loss",
    "stack_branch_outputs",
]


BRANCH_PRECISIONS = ("auto", "float32", "bfloat16")
_POSITIVE = Interval(0, low_open=True)
BRANCH_PRECISION = Param("branch_precision", str, "auto", choices=BRANCH_PRECISIONS,
                         help="precision of the auxiliary branches' convolutions (auto: "
                              "bfloat16 where the CPU computes it natively)")
BRANCH_LAYOUTS = ("loop", "stacked")
BRANCH_LAYOUT = Param("branch_layout", str, "loop", choices=BRANCH_LAYOUTS,
                      help="how the auxiliary branches run: one after the other on their own "
                           "rows (loop), or all in the same kernels (stacked: fewer, larger "
                           "kernel launches, for GPUs)")

# --------------------------------------------------------------------------- small pieces

def ramp_up(epoch: float, a: float) -> float:
    """exp(−5(1 − e/a)²) for e ≤ a, else 1."""
    check_scalar(a, "ramp epoch a", float, interval=_POSITIVE)
    return 1.0 if epoch > a else math.exp(-5.0 * (1.0 - epoch / a) ** 2)


def ramp_down(epoch: float, a: float) -> float:
    """1 for e < a, else exp(−(1 − a/e)²)."""
    check_scalar(a, "ramp epoch a", float, interval=_POSITIVE)
    return 1.0 if epoch < a else math.exp(-((1.0 - a / epoch) ** 2))


def sharpen(p: torch.Tensor, temperature: float) -> torch.Tensor:
    """p^(1/T) renormalised over the last axis; ``p`` (…, K) probabilities, T > 0."""
    check_scalar(temperature, "temperature", float, interval=_POSITIVE)
    q = p.clamp_min(0).pow(1.0 / temperature)
    return q / q.sum(-1, keepdim=True).clamp_min(1e-30)


def remap_labels(labels: torch.Tensor, c: int) -> torch.Tensor:
    """Labels ≠ c mapped onto 0..C−2 for branch c (y − 1 where y > c); ``labels`` (N,) ≠ c."""
    if bool((labels == c).any()):
        raise ValueError(f"labels passed to branch {c} must not contain {c}")
    return labels - (labels > c).long()


def latent_distribution(aux_logits: torch.Tensor, label: int,
                        temperature: float = 1.2) -> torch.Tensor:
    """Branch ``label``'s (N, C−1) logits → (N, C): sharpened softmax, 0 inserted at ``label``.

    Detached: the latent distribution is a target, not a path for gradients.
    """
    if aux_logits.ndim != 2:
        raise ValueError(f"aux_logits must be (N, C−1), got {tuple(aux_logits.shape)}")
    q = sharpen(aux_logits.detach().float().softmax(-1), temperature)
    n, k = q.shape
    if not 0 <= label <= k:
        raise ValueError(f"label must lie in [0, {k}], got {label}")
    # one label for all rows: a slice and a concatenation (latent_distribution_rows gathers,
    # which costs the per-branch loop several more kernels per branch)
    zero = torch.zeros(n, 1, dtype=q.dtype, device=q.device)
    return torch.cat([q[:, :label], zero, q[:, label:]], dim=1)


def latent_distribution_rows(aux_logits: torch.Tensor, labels: torch.Tensor,
                             temperature: float = 1.2) -> torch.Tensor:
    """:func:`latent_distribution` row by row in one pass: row i of ``aux_logits`` (N, C−1) is
    branch ``labels[i]``'s view of item i → (N, C), 0 inserted at each row's label. Detached."""
    if aux_logits.ndim != 2 or labels.shape != aux_logits.shape[:1]:
        raise ValueError(f"aux_logits must be (N, C−1) and labels (N,), got "
                         f"{tuple(aux_logits.shape)} and {tuple(labels.shape)}")
    q = sharpen(aux_logits.detach().float().softmax(-1), temperature)
    n, k = q.shape
    cols = torch.arange(k + 1, device=q.device).unsqueeze(0)
    y = labels.view(-1, 1)
    source = (cols - (cols > y).long()).clamp_max(k - 1)  # column j ← j, or j − 1 past the label
    return q.gather(1, source.expand(n, -1)).masked_fill(cols == y, 0.0)


@float32_loss
def soft_loss(logits: torch.Tensor, labels: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    """mean((softmax(logits) with the labelled class zeroed − latent)²); (B, C), (B,), (B, C)."""
    if logits.shape != latent.shape or labels.shape != logits.shape[:1]:
        raise ValueError(f"logits and latent must be (B, C) and labels (B,), got "
                         f"{tuple(logits.shape)}, {tuple(latent.shape)}, {tuple(labels.shape)}")
    probs = logits.float().softmax(-1)
    mask = torch.ones_like(probs).scatter_(1, labels.view(-1, 1), 0.0)
    return ((probs * mask - latent) ** 2).mean()


@float32_loss
def row_normalised_gram(f: torch.Tensor) -> torch.Tensor:
    """(N, d) → (N, N) Gram matrix f fᵀ with each row scaled to unit L2 norm."""
    if f.ndim != 2:
        raise ValueError(f"features must be (N, d), got {tuple(f.shape)}")
    f = f.float()
    return F.normalize(f @ f.t(), p=2, dim=1)


def stack_branch_outputs(aux_outputs: list[torch.Tensor | None],
                         labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-branch outputs in batch layout: ``aux_outputs[c]`` (N_c, ·), branch c's outputs for
    the items not labelled c (in batch order) or None → (P, B, K) float32 with zero rows at the
    items labelled c, and the mask (P, B) of the other items, for the P branches with items
    (K the widest output; zero columns leave a Gram matrix unchanged)."""
    n = labels.shape[0]
    n_labelled = class_masks(labels, len(aux_outputs)).sum(1).tolist()  # one host sync for all
    classes, parts = [], []
    for c, out in enumerate(aux_outputs):
        n_keep = n - n_labelled[c]
        if out is None or n_keep == 0:
            continue
        if out.ndim != 2 or out.shape[0] != n_keep:
            raise ValueError(f"aux_outputs[{c}] must have one row per item not labelled {c} "
                             f"({n_keep}), got shape {tuple(out.shape)}")
        classes.append(c)
        parts.append(out.float())
    if not parts:
        return labels.new_zeros(0, n, 1, dtype=torch.float32), labels.new_zeros(0, n, dtype=torch.bool)
    width = max(p.shape[1] for p in parts)
    parts = [F.pad(p, (0, width - p.shape[1])) for p in parts]
    keep = labels.unsqueeze(0) != torch.tensor(classes, device=labels.device).unsqueeze(1)
    aux = labels.new_zeros(len(classes), n, width, dtype=torch.float32)
    return aux.index_put((keep,), torch.cat(parts)), keep


@float32_loss
def masked_similarity_preserving_loss(aux: torch.Tensor, keep: torch.Tensor,
                                      target_features: torch.Tensor) -> torch.Tensor:
    """L_sp with the masks M_c of supplement eq. 4–5: ``aux`` (P, B, K) branch outputs for every
    batch row, ``keep`` (P, B) the rows of each branch's M_c (the items not labelled c),
    ``target_features`` (B, d). Rows outside M_c are zeroed, so both Gram matrices are zero
    outside M_c and row-normalising the masked B×B matrices equals row-normalising the
    restrictions. The mean over the branches whose M_c is not empty (0 when none is)."""
    if aux.ndim != 3 or keep.shape != aux.shape[:2] or target_features.shape[:1] != aux.shape[1:2]:
        raise ValueError(f"aux must be (P, B, K), keep (P, B) and target_features (B, d), got "
                         f"{tuple(aux.shape)}, {tuple(keep.shape)}, {tuple(target_features.shape)}")
    if aux.shape[0] == 0:
        return target_features.new_zeros((), dtype=torch.float32)
    m = keep.float()                                                      # (P, B)
    a = aux.float() * m.unsqueeze(2)
    f = target_features.float()
    g_tar = (f @ f.t()).unsqueeze(0) * (m.unsqueeze(2) * m.unsqueeze(1))  # (P, B, B)
    g_aux = a @ a.transpose(1, 2)                                         # (P, B, B)
    diff = F.normalize(g_aux, p=2, dim=2) - F.normalize(g_tar, p=2, dim=2)
    n_keep = m.sum(1)
    return mean_over_present((diff ** 2).sum(dim=(1, 2)) / n_keep.clamp_min(1) ** 2, n_keep)


def similarity_preserving_loss(aux_outputs: list[torch.Tensor | None],
                               target_features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_sp (supplement eq. 4): mean over classes c of mean((G_tar[M_c] − G_aux^c)²).

    ``aux_outputs[c]``: (N_c, ·) outputs of branch c for the items not labelled c (in batch
    order), or None when there are none; ``target_features`` (B, d); ``labels`` (B,). G_tar is
    restricted to those items before its rows are normalised (as the authors' code does). All
    classes in one batched computation (:func:`masked_similarity_preserving_loss`).
    """
    if target_features.ndim != 2 or labels.shape != target_features.shape[:1]:
        raise ValueError(f"target_features must be (B, d) and labels (B,), got "
                         f"{tuple(target_features.shape)} and {tuple(labels.shape)}")
    aux, keep = stack_branch_outputs(aux_outputs, labels)
    return masked_similarity_preserving_loss(aux, keep, target_features)


def class_masks(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B,) ints → (C, B) bool: row c marks the batch items labelled c (its negation, those a
    branch c trains on). No host sync; a label outside [0, C) is in no row."""
    return labels.unsqueeze(0) == torch.arange(num_classes, device=labels.device).unsqueeze(1)


def one_hot(labels: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """(B,) ints → (B, C) one-hot rows in ``dtype``, without F.one_hot's range check (it reads
    the labels' minimum and maximum back from the GPU: two host syncs per call). A label
    outside [0, C) gives a zero row; the step checks its labels where value checks are on."""
    return class_masks(labels, num_classes).t().to(dtype)


def mean_over_present(values: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` (P,) over the entries whose ``counts`` (P,) are positive (0 when
    none is), without indexing (no host sync)."""
    present = (counts > 0).to(values.dtype)
    return (values * present).sum() / present.sum().clamp_min(1)


@float32_loss
def class_similarity_stats(features: torch.Tensor, labels: torch.Tensor,
                           num_classes: int) -> torch.Tensor:
    """(B, C): mean cosine similarity of each item to the batch items of each class, min–max
    scaled per row. ``features`` (B, d); ``labels`` (B,) in [0, C).

    A class with no item in the batch gets the row's minimum (0 after scaling); a row whose
    values are all equal becomes 0.
    """
    f = F.normalize(features.float(), p=2, dim=1)
    cos = f @ f.t()                                                       # (B, B)
    onehot = one_hot(labels, num_classes, cos.dtype)                      # (B, C)
    counts = onehot.sum(0)
    present = counts > 0
    means = (cos @ onehot) / counts.clamp_min(1)
    # absent classes take the row's minimum over present ones (masked, not indexed: no host sync)
    row_min = means.masked_fill(~present.unsqueeze(0), float("inf")).min(dim=1, keepdim=True).values
    means = torch.where(present.unsqueeze(0), means, row_min)
    lo = means.min(dim=1, keepdim=True).values
    hi = means.max(dim=1, keepdim=True).values
    return (means - lo) / (hi - lo).clamp_min(1e-12)


class PairwiseUncertainty(nn.Module):
    """s_i = sigmoid(Linear(C, 1)(PReLU(Linear(2C, C)([stats_i, one-hot(y_i)])))).

    ``forward(features (B, d), labels (B,)) → (B,)`` in (0, 1); low = ambiguous.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.net = nn.Sequential(nn.Linear(2 * num_classes, num_classes), nn.PReLU(),
                                 nn.Linear(num_classes, 1))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        stats = class_similarity_stats(features, labels, self.num_classes)
        onehot = one_hot(labels, self.num_classes, stats.dtype)
        return torch.sigmoid(self.net(torch.cat([stats, onehot], dim=1)).squeeze(-1))


class AuxiliaryBranch(nn.Module):
    """A copy of the last stage → global average pool → dropout → Linear(F, C−1).

    ``forward(h, dropout=True) → (pooled features (N, F), logits (N, C−1))``.
    """

    def __init__(self, stage: nn.Module, feature_dim: int, num_classes: int,
                 dropout: float) -> None:
        super().__init__()
        self.stage = stage
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(feature_dim, num_classes - 1)

    def forward(self, h: torch.Tensor, dropout: bool = True,
                stage_precision: Callable[[], AbstractContextManager] = contextlib.nullcontext):
        """``stage_precision()`` is entered around the stage's convolutions only (e.g. a
        bfloat16 autocast); the pooled features come out in float32 at least and the
        classifier runs in the caller's precision."""
        with stage_precision():
            f = self.stage(h).mean(dim=(2, 3))
        f = f.to(torch.promote_types(f.dtype, torch.float32))
        return f, self.classifier(self.dropout(f) if dropout else f)


@functools.cache
def cpu_computes_bfloat16() -> bool:
    """Whether oneDNN runs bfloat16 convolutions natively on this CPU (AVX512-BF16 or AMX);
    elsewhere they are emulated and slower than float32. Asked once per process."""
    try:
        return bool(torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def branch_dtype(choice: str, device: torch.device) -> torch.dtype | None:
    """The dtype of the auxiliary branches' stage convolutions on ``device``: float32,
    bfloat16, or None for the step's own precision.

    ``float32`` and ``bfloat16`` are what they say. ``auto``: bfloat16 on a CPU that computes it
    natively, else None (on CUDA the trainer's float16 mixed precision; on other CPUs float32).
    """
    if BRANCH_PRECISION.check(choice) == "float32":
        return torch.float32
    if choice == "bfloat16" or (device.type == "cpu" and cpu_computes_bfloat16()):
        return torch.bfloat16
    return None


def branch_stage_precision(choice: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """:func:`branch_dtype` as a context factory: autocast off for float32, a bfloat16
    autocast on ``device`` for bfloat16, nothing for the step's own precision."""
    dtype = branch_dtype(choice, device)
    if dtype is None:
        return contextlib.nullcontext
    if dtype == torch.float32:
        return no_autocast
    return functools.partial(torch.autocast, device.type, dtype=dtype)


def _channels_last(h: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in channels-last memory order: the same values, laid out so that oneDNN's
    convolutions skip their layout reorders (the branches' stages run about 7 % faster on CPU);
    row indexing keeps the layout."""
    return h.contiguous(memory_format=torch.channels_last) if h.ndim == 4 else h


# --------------------------------------------------------------------------- the method

class DMUE(Method):
    """Latent distribution mining (C auxiliary branches) + pairwise uncertainty (s_i).

    Needs a model split as :class:`affectlab.models.resnet.SmallResNet18` is: ``forward_early(x)``,
    ``layer4`` and ``forward_head(h)``.
    """

    description = ("DMUE: auxiliary branches mine latent distributions, pairwise similarity "
                   "estimates per-item uncertainty (CVPR 2021)")
    param_specs = (
        Param("temperature", float, 1.2, low=0, low_open=True,
              help="T of the sharpened latent distributions"),
        Param("soft_weight", float, 0.5, low=0, help="weight of the soft (latent) loss"),
        Param("sp_weight", float, 1000.0, low=0, help="weight of the similarity-preserving loss"),
        Param("ramp_epoch", int, 6, low=1, high=10_000,
              help="epoch a where the ramp-up reaches 1 and the ramp-down starts"),
        Param("aux_dropout", float, 0.5, low=0, high=1, high_open=True,
              help="dropout of the auxiliary branches"),
        BRANCH_PRECISION,
        BRANCH_LAYOUT,
    )
    modalities = ("face",)
    latent_excludes_label = True

    def __init__(self, model: EmotionModel, info: TrainSetInfo, method_name: str = "dmue",
                 **params: Any) -> None:
        super().__init__(model, info, method_name=method_name, **params)
        params = self.params
        missing = [a for a in ("forward_early", "layer4", "forward_head")
                   if not hasattr(model, a)]
        if missing:
            raise TypeError(f"DMUE needs a model split into forward_early → layer4 → "
                            f"forward_head (e.g. 'resnet18'); {type(model).__name__} lacks "
                            f"{', '.join(missing)}")
        c = int(info.num_classes)
        if c < 3:
            raise ValueError(f"DMUE needs at least 3 classes (its auxiliary branches are "
                             f"(C−1)-way classifiers), got num_classes={c}")
        self.num_classes = c
        self.aux_branches = nn.ModuleList(
            AuxiliaryBranch(copy.deepcopy(model.layer4), int(model.feature_dim), c,
                            float(params["aux_dropout"])) for _ in range(c))
        self.aux_branches.to(memory_format=torch.channels_last)
        self.uncertainty = PairwiseUncertainty(c)

    # ----------------------------------------------------------------- pieces of a step

    def _labels(self, batch: dict[str, Any], device) -> torch.Tensor:
        y = torch.as_tensor(batch["label"]).long().to(device)
        if y.ndim != 1 or (value_checks_on() and bool(((y < 0) | (y >= self.num_classes)).any())):
            raise ValueError(f"batch['label'] must be (B,) ints in [0, {self.num_classes}), got "
                             f"{y.tolist()[:8]}")
        return y

    def _branch_rows(self, labels: torch.Tensor, own: bool) -> list[torch.Tensor]:
        """Per class c, the batch indices labelled c (``own``) or not labelled c (else)."""
        match = class_masks(labels, self.num_classes)
        match = match if own else ~match
        counts = match.sum(1).tolist()  # one host sync instead of one per branch
        rows = match.nonzero(as_tuple=True)[1]
        return list(torch.split(rows, counts))

    def _stacked(self) -> bool:
        return self.params["branch_layout"] == "stacked"

    def _mine_latent(self, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, C) latent distributions: branch y_i's sharpened view of item i."""
        latent = torch.zeros(h.shape[0], self.num_classes, device=h.device)
        precision = branch_stage_precision(self.params["branch_precision"], h.device)
        h = _channels_last(h)
        with torch.no_grad():
            for c, (branch, rows) in enumerate(zip(self.aux_branches,
                                                   self._branch_rows(labels, own=True),
                                                   strict=True)):
                if rows.numel():
                    _, z = branch(h[rows], dropout=False, stage_precision=precision)
                    latent[rows] = latent_distribution(z, c, float(self.params["temperature"]))
        return latent

    def _branches_stacked(self, h: torch.Tensor, labels: torch.Tensor):
        """Both passes of every branch in one stacked pass (:mod:`dmue_stacked`): groups 0..C−1
        are the training passes (branch c over the items not labelled c, with dropout), groups
        C..2C−1 the latent passes (branch c over the items labelled c, detached). Returns L_aux,
        the training logits (C, B, C−1), their rows (C, B) and the latent distributions (B, C)."""
        c, b = self.num_classes, labels.shape[0]
        classes = torch.arange(c, device=labels.device).unsqueeze(1)
        own = class_masks(labels, c)                                                 # (C, B)
        keep = ~own
        mask = torch.cat([keep, own]).t().float()                                    # (B, 2C)
        precision = branch_stage_precision(self.params["branch_precision"], h.device)
        z = stacked_branches(self.aux_branches, h, mask, passes=2, dropout_groups=c,
                             stage_precision=precision)
        latent = latent_distribution_rows(z[c + labels, torch.arange(b, device=h.device)], labels,
                                          float(self.params["temperature"]))
        z = z[:c]
        with no_autocast():
            # labels ≠ c remapped onto 0..C−2; the masked rows' targets only need to be valid
            target = (labels.unsqueeze(0) - (labels.unsqueeze(0) > classes).long()).clamp_max(c - 2)
            ce = F.cross_entropy(z.float().reshape(c * b, c - 1), target.reshape(-1),
                                 reduction="none").view(c, b)
            m = keep.float()
            n_rows = m.sum(1)
            l_aux = mean_over_present((ce * m).sum(1) / n_rows.clamp_min(1), n_rows)
        return l_aux, z, keep, latent

    def _auxiliary(self, h: torch.Tensor, labels: torch.Tensor):
        """L_aux (mean CE over branches with items), the branches' outputs (P, B, K) in batch
        layout and the mask (P, B) of each branch's rows."""
        losses, outputs = [], []
        precision = branch_stage_precision(self.params["branch_precision"], h.device)
        h = _channels_last(h)
        for c, (branch, rows) in enumerate(zip(self.aux_branches,
                                               self._branch_rows(labels, own=False),
                                               strict=True)):
            if rows.numel() == 0:
                outputs.append(None)
                continue
            _, z = branch(h[rows], stage_precision=precision)
            # labels ≠ c remapped onto 0..C−2 (remap_labels without its check: rows exclude c)
            target = labels[rows]
            with no_autocast():
                losses.append(F.cross_entropy(z.float(), target - (target > c).long()))
            outputs.append(z)
        l_aux = torch.stack(losses).mean() if losses else h.new_zeros(())
        return (l_aux, *stack_branch_outputs(outputs, labels))

    def training_step(self, batch: dict[str, Any], epoch: int, step: int) -> StepResult:
        x = batch["x"]
        labels = self._labels(batch, x.device)
        h = self.model.forward_early(x)
        out = self.model.forward_head(self.model.layer4(h))
        if self._stacked():
            l_aux, aux_out, aux_rows, latent = self._branches_stacked(h, labels)
        else:
            l_aux, aux_out, aux_rows = self._auxiliary(h, labels)
            latent = self._mine_latent(h, labels)
        with no_autocast():  # the losses in float32 whatever precision the networks ran in
            features = out.features.float()
            s = self.uncertainty(features, labels)
            ce = F.cross_entropy(out.logits.float() * s.unsqueeze(1), labels)
            l_soft = soft_loss(out.logits, labels, latent)
            l_sp = masked_similarity_preserving_loss(aux_out, aux_rows, features)
        a = float(self.params["ramp_epoch"])
        up, down = ramp_up(epoch, a), ramp_down(epoch, a)
        loss = (up * ce + up * (float(self.params["soft_weight"]) * l_soft
                                + float(self.params["sp_weight"]) * l_sp) + down * l_aux)
        parts = {"ce_scaled": ce, "soft": l_soft, "sp": l_sp, "aux": l_aux, "s_mean": s.mean()}
        return StepResult(loss, {k: v.detach() for k, v in parts.items()}
                          | {"ramp_up": up, "ramp_down": down})

    # ----------------------------------------------------------------- inference

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> Prediction:
        """Target branch only. probs (B, C) from the unscaled logits; uncertainty 1 − s_i with
        the predicted class in place of the label; latent (B, C) mined by the auxiliary
        branches when ``batch`` has ``label`` and the branches exist, else None."""
        x = batch["x"]
        out = self.model(x, batch.get("lengths"))
        probs = out.logits.float().softmax(-1)
        with no_autocast():
            s = self.uncertainty(out.features.float(), probs.argmax(-1))
        latent = None
        branches = getattr(self, "aux_branches", None)
        if "label" in batch and branches is not None and len(branches) == self.num_classes:
            latent = self._mine_latent(self.model.forward_early(x), self._labels(batch, x.device))
        return Prediction(probs=probs, embedding=out.embedding, uncertainty=1 - s, latent=latent)

    @torch.no_grad()
    def label_uncertainty(self, batch: dict[str, Any], pred: Prediction) -> torch.Tensor:
        """1 − s_i with the item's own dataset label (as in training: one-hot(y) and the
        per-class grouping of the batch), target-branch features in eval mode."""
        x = batch["x"]
        out = self.model(x, batch.get("lengths"))
        with no_autocast():
            return 1 - self.uncertainty(out.features.float(), self._labels(batch, x.device))
