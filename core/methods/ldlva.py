"""LDLVA: uncertainty-aware label distribution learning from auxiliary-space neighbours (SPEC §5).

Each training item i gets a target distribution built from its own label and its K nearest
neighbours in an auxiliary space (valence–arousal by default)::

    a_ik  = exp(−‖aux_i − aux_k‖₁ / bandwidth)                 local similarity (fixed)
    s_ik  = g([v_i, v_k]) ∈ [sigmoid(floor), 1)                 calibration MLP on features
    c_ik  = a_ik · s_ik
    d̃_i  = Σ_k c_ik p_k / Σ_k c_ik                              neighbours' predictions
    d_i   = (1 − λ_i) l_i + λ_i d̃_i,   λ_i = sigmoid(θ_i)       one learnable θ per item
    L     = mean_i w_{y_i} CE(d_i, p_i) + γ · L_D
    L_D   = ½ mean_i (1 − λ_i) ‖v_i − μ_{y_i}‖² + Σ_{j<k} exp(−‖μ_j − μ_k‖² / D)

Choices where the paper and SPEC leave room (all follow the authors' released code unless
stated):

- The auxiliary space is [−1, 1] (SPEC §5), where the authors' bandwidth 0.5 was set: each
  column is mapped affinely from ``info.aux_bounds`` (the rating scales' ends: valence and
  arousal Likert means 1..5 → −1..1); without bounds the smallest and largest aux value over
  all columns map to −1 and 1 (one map for all columns, so their relative scale and the
  neighbour ranking stay). When there is no aux the soft labels serve, unscaled (already in
  [0, 1]). See :func:`rescale_aux`; the points are ``LDLVA.aux_space``.
- Neighbours are ranked by the same L1 distance the kernel uses (so they are the K items of
  largest a_ik), the item itself excluded, computed once at construction.
- Neighbours' p_k and v_k carry no gradient (the code computes them outside the gradient tape);
  gradients reach the network through p_i, v_i (via g) and reach θ_i through d_i.
- In L_D the weight (1 − λ_i) is detached (the code's stop_gradient): otherwise θ would be
  pushed up merely to shrink the centre term. The repulsion term depends on the centres only,
  so it carries no gradient to the network; it is reported and drives the centre update.
- Centre update (after each step, no back-propagation), the authors' rule and rate: the rows are
  the batch items and their neighbours (R = B·(1 + K) rows; in bank mode a neighbour not seen
  yet has no feature and is left out), each with its label and weight 1 − λ (detached), and
  μ_c ← μ_c + α Σ_{r: y_r = c} (1 − λ_r)(v_r − μ_c) / ((n_c + 1)·R), α = ``centre_lr`` = 0.5
  (the code's SGD step on its centre-loss gradient, which divides by n_c + 1 and by R), then one
  gradient step of size α·``repulsion_scale`` = 0.05 on the repulsion term pushes centres
  apart. The division by R (288 at the code's batch of 32 and K = 8) makes each centre a slow
  moving average, closing about α/R of its gap per step; an update without it would move the
  centres R times faster than the authors' do. Centres start at zero, as in the code. L_D
  itself stays SPEC's mean over the batch items (the code also adds the neighbours' rows, which
  carry no gradient, to its value).
- Memory bank (``neighbour_mode="bank"``, the default): each item's latest prediction and
  feature, written whenever the item is in a batch (detached, after the targets are built). An
  item not yet seen has its one-hot label as prediction and no feature; its calibration score is
  then 1 (its a_ik alone decides) until it has been seen. ``fill_bank(loader)`` does a first
  pass if wanted. ``neighbour_mode="exact"`` runs the neighbours through the network every step
  (the authors' way); it needs the training inputs, given by ``attach_dataset``.
- θ starts at −0.5 (the code's confidence logit 0.5, i.e. λ = 0.378) and has its own SGD
  optimiser with lr 10.
- Calibration MLP g: 2F → 512 → 256 → 1, batch norm and ReLU after each hidden layer, the output
  floored at −1.3 before the sigmoid; hidden weights He-normal and output weights Glorot-uniform
  with zero biases, as the code's Keras layers start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from affectlab.losses import no_autocast, value_checks_on
from affectlab.methods.base import Method, Prediction, StepResult, TrainSetInfo, adam
from affectlab.models.base import MAX_UNITS, EmotionModel
from affectlab.registry import Param
from affectlab.validation import Interval, check_scalar

__all__ = [
    "LDLVA",
    "CalibrationMLP",
    "aggregate_neighbours",
    "centre_repulsion",
    "construct_target",
    "knn_l1",
    "local_similarity",
    "rescale_aux",
    "update_centres",
]

_POSITIVE = Interval(0, low_open=True)


def _weight(name: str, default: float, help: str) -> Param:
    return Param(name, float, default, low=0, help=help)


# --------------------------------------------------------------------------- small pieces

def rescale_aux(aux: torch.Tensor, bounds: torch.Tensor | None = None) -> torch.Tensor:
    """``aux`` (N, A) mapped affinely into [−1, 1]: a ↦ 2(a − low)/(high − low) − 1.

    ``bounds`` (2, A): each column's declared low (row 0) and high (row 1), e.g. the Likert
    scale's 1 and 5; a value outside them is refused. Without bounds, low and high are the
    smallest and largest value over all of ``aux`` (one map for every column); a constant
    ``aux`` maps to zeros.
    """
    aux = torch.as_tensor(aux, dtype=torch.float32)
    if bounds is None:
        low, high = aux.min(), aux.max()
        if not bool(high > low):
            return torch.zeros_like(aux)
        return 2 * (aux - low) / (high - low) - 1
    b = torch.as_tensor(bounds, dtype=torch.float32)
    if b.shape != (2, aux.shape[1]) or not bool(torch.isfinite(b).all()):
        raise ValueError(f"info.aux_bounds must be finite (2, A={aux.shape[1]}) lows and highs, "
                         f"got shape {tuple(b.shape)}")
    low, high = b[0], b[1]
    if not bool((high > low).all()):
        raise ValueError(f"info.aux_bounds: every low must be below its high, got {b.tolist()}")
    span = high - low
    outside = ((aux < low - 1e-6 * span) | (aux > high + 1e-6 * span)).any(dim=0)
    if bool(outside.any()):
        col = int(torch.nonzero(outside)[0])
        raise ValueError(f"info.aux column {col} has values outside its bounds "
                         f"[{float(low[col]):g}, {float(high[col]):g}]: "
                         f"[{float(aux[:, col].min()):g}, {float(aux[:, col].max()):g}]")
    return (2 * (aux - low) / span - 1).clamp(-1.0, 1.0)


def knn_l1(aux: torch.Tensor, k: int, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest other rows of ``aux`` by L1 distance.

    ``aux``: (N, A) finite floats, N > k. Returns ``(index (N, k) int64, distance (N, k))``,
    nearest first; an item is never its own neighbour. Rows are processed ``chunk`` at a time,
    so memory stays O(chunk · N).
    """
    if not isinstance(aux, torch.Tensor):
        raise TypeError(f"aux must be a torch.Tensor, got {type(aux).__name__}")
    if aux.ndim != 2 or aux.shape[1] < 1:
        raise ValueError(f"aux must be (n_items, A) with A ≥ 1, got shape {tuple(aux.shape)}")
    k = check_scalar(k, "k", int, interval=Interval(1))
    n = aux.shape[0]
    if n <= k:
        raise ValueError(f"aux must have more than k={k} rows (an item is not its own "
                         f"neighbour), got {n}")
    aux = aux.detach().to(torch.float64)
    if not bool(torch.isfinite(aux).all()):
        raise ValueError("aux contains NaN or infinite values")
    idx, dist = [], []
    for start in range(0, n, chunk):
        d = torch.cdist(aux[start:start + chunk], aux, p=1.0)
        rows = torch.arange(start, min(start + chunk, n))
        d[rows - start, rows] = math.inf  # exclude self
        dk, ik = torch.topk(d, k, dim=1, largest=False)
        idx.append(ik)
        dist.append(dk)
    return torch.cat(idx), torch.cat(dist).to(torch.float32)


def local_similarity(distance: torch.Tensor, bandwidth: float = 0.5) -> torch.Tensor:
    """a = exp(−distance / bandwidth), element-wise; ``distance`` (…) non-negative L1 distances."""
    check_scalar(bandwidth, "bandwidth", float, interval=_POSITIVE)
    if bool((distance < 0).any()):
        raise ValueError("distance must be non-negative")
    return torch.exp(-distance / bandwidth)


def aggregate_neighbours(p_neigh: torch.Tensor, contribution: torch.Tensor) -> torch.Tensor:
    """d̃_i = Σ_k c_ik p_k / Σ_k c_ik.

    ``p_neigh``: (B, K, C) neighbours' distributions; ``contribution``: (B, K) positive c_ik.
    Returns (B, C).
    """
    if p_neigh.ndim != 3 or contribution.shape != p_neigh.shape[:2]:
        raise ValueError(f"p_neigh must be (B, K, C) and contribution (B, K), got "
                         f"{tuple(p_neigh.shape)} and {tuple(contribution.shape)}")
    total = contribution.sum(dim=1, keepdim=True)
    if bool((total.detach() <= 0).any()):
        raise ValueError("contribution must have a positive sum in every row")
    return torch.einsum("bk,bkc->bc", contribution, p_neigh) / total


def construct_target(onehot: torch.Tensor, aggregated: torch.Tensor,
                     lam: torch.Tensor) -> torch.Tensor:
    """d_i = (1 − λ_i) l_i + λ_i d̃_i; ``onehot``, ``aggregated`` (B, C), ``lam`` (B,) in [0, 1]."""
    if onehot.shape != aggregated.shape or lam.shape != onehot.shape[:1]:
        raise ValueError(f"onehot and aggregated must be (B, C) and lam (B,), got "
                         f"{tuple(onehot.shape)}, {tuple(aggregated.shape)}, {tuple(lam.shape)}")
    lam = lam.unsqueeze(1)
    return (1 - lam) * onehot + lam * aggregated


def centre_repulsion(centres: torch.Tensor) -> torch.Tensor:
    """Σ_{j<k} exp(−‖μ_j − μ_k‖² / D) for ``centres`` (C, D); a scalar."""
    if centres.ndim != 2:
        raise ValueError(f"centres must be (C, D), got {tuple(centres.shape)}")
    sq = torch.cdist(centres, centres).pow(2)
    upper = torch.triu(torch.ones_like(sq, dtype=torch.bool), diagonal=1)
    return torch.exp(-sq[upper] / centres.shape[1]).sum()


@torch.no_grad()
def update_centres(centres: torch.Tensor, features: torch.Tensor, labels: torch.Tensor,
                   weights: torch.Tensor, lr: float = 0.5,
                   repulsion_lr: float = 0.05) -> torch.Tensor:
    """One centre update of the authors' code (in place, returned): a step toward each class's
    weighted rows, then a gradient step of ``repulsion_lr`` on :func:`centre_repulsion`.

    ``centres`` (C, D); ``features`` (R, D) the update's rows (the batch items and their
    neighbours); ``labels`` (R,) int in [0, C); ``weights`` (R,) ≥ 0.
    μ_c ← μ_c + lr · Σ_{r: y_r = c} w_r (v_r − μ_c) / ((n_c + 1) · R); classes without rows
    move only by the repulsion step.
    """
    c, rows = centres.shape[0], features.shape[0]
    if rows:
        onehot = F.one_hot(labels, c).to(features.dtype)                  # (R, C)
        diff = features.unsqueeze(1) - centres.unsqueeze(0)               # (R, C, D)
        pull = torch.einsum("rc,rcd->cd", onehot * weights.unsqueeze(1), diff)
        centres += lr * pull / ((onehot.sum(0).unsqueeze(1) + 1) * rows)
    if repulsion_lr > 0 and c > 1:
        # ∂/∂μ_j Σ_{j<k} exp(−‖μ_j − μ_k‖²/D) = Σ_k exp(·)(−2/D)(μ_j − μ_k)
        d = centres.shape[1]
        delta = centres.unsqueeze(1) - centres.unsqueeze(0)               # (C, C, D)
        e = torch.exp(-delta.pow(2).sum(-1) / d)
        e.fill_diagonal_(0)
        grad = -(2.0 / d) * torch.einsum("jk,jkd->jd", e, delta)
        centres -= repulsion_lr * grad
    return centres


class CalibrationMLP(nn.Module):
    """g([v_i, v_k]): Linear(2F, 512) → BatchNorm → ReLU → Linear(512, 256) → BatchNorm → ReLU →
    Linear(256, 1) (``hidden`` gives other widths), the output floored at ``floor`` before the
    sigmoid (so s ≥ sigmoid(floor); gradient is zero below).

    ``forward(v_i (B, F), v_k (B, K, F)) → (B, K)``.
    """

    def __init__(self, feature_dim: int, hidden: tuple[int, ...] = (512, 256),
                 floor: float = -1.3) -> None:
        super().__init__()
        self.floor = float(floor)
        layers: list[nn.Module] = []
        width = 2 * feature_dim
        for units in hidden:
            linear = nn.Linear(width, units)
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")  # Keras HeNormal
            nn.init.zeros_(linear.bias)
            layers += [linear, nn.BatchNorm1d(units), nn.ReLU(inplace=True)]
            width = units
        out = nn.Linear(width, 1)
        nn.init.xavier_uniform_(out.weight)  # Keras' default Dense initialisation
        nn.init.zeros_(out.bias)
        self.net = nn.Sequential(*layers, out)

    def score_pairs(self, pairs: torch.Tensor) -> torch.Tensor:
        """(P, 2F) concatenated pairs → (P,) scores."""
        return torch.sigmoid(self.net(pairs).squeeze(-1).clamp_min(self.floor))

    def forward(self, v_i: torch.Tensor, v_k: torch.Tensor) -> torch.Tensor:
        b, k, f = v_k.shape
        pairs = torch.cat([v_i.unsqueeze(1).expand(b, k, f), v_k], dim=-1)
        return self.score_pairs(pairs.reshape(b * k, 2 * f)).reshape(b, k)


# --------------------------------------------------------------------------- the method

class _Targets(NamedTuple):
    """A batch's constructed targets and the neighbours they came from."""

    d: torch.Tensor            # (B, C) target distributions
    lam: torch.Tensor          # (B,) λ_i
    d_tilde: torch.Tensor      # (B, C) aggregated neighbour distributions
    neighbours: torch.Tensor   # (B, K) neighbour indices
    v_k: torch.Tensor          # (B, K, F) their features
    known: torch.Tensor        # (B, K) bool: the feature is known (seen, or exact mode)


class LDLVA(Method):
    """Label distribution learning with auxiliary-space neighbours and per-item uncertainty.

    Extra state: ``theta`` (n_items,) learnable (λ = sigmoid(θ)), the calibration MLP, class
    centres (C, F), the neighbour table and the memory bank (buffers, saved in checkpoints).
    """

    description = ("LDLVA: targets built from K neighbours in valence–arousal space with "
                   "calibrated similarity and per-item uncertainty λ (WACV 2023)")
    # num_neighbors must also be below the number of training items: knn_l1 checks that
    param_specs = (
        Param("num_neighbors", int, 8, low=1, high=1000,
              help="K: neighbours in the auxiliary space"),
        Param("bandwidth", float, 0.5, low=0, low_open=True,
              help="of the local similarity exp(−L1 distance / bandwidth)"),
        _weight("gamma", 0.01, "weight γ of the centre/repulsion loss L_D"),
        Param("lambda_lr", float, 10.0, low=0, low_open=True,
              help="SGD learning rate of the per-item uncertainty θ"),
        Param("theta_init", float, -0.5, help="initial θ (λ = sigmoid(θ))"),
        Param("calib_hidden", int, 512, low=1, high=MAX_UNITS,
              help="units of the calibration MLP's first hidden layer (the code: 512)"),
        Param("calib_hidden2", int, 256, low=1, high=MAX_UNITS,
              help="units of the calibration MLP's second hidden layer (the code: 256)"),
        Param("calib_floor", float, -1.3, help="floor of the calibration output before sigmoid"),
        _weight("centre_lr", 0.5, "step α of the class-centre update"),
        _weight("repulsion_scale", 0.1, "repulsion step as a fraction of centre_lr"),
        Param("class_weights", bool, True, help="balanced class weights n / (C·n_c)"),
        Param("neighbour_mode", str, "bank", choices=("bank", "exact"),
              help="bank: neighbours' latest outputs; exact: run them through the network"),
    )

    def __init__(self, model: EmotionModel, info: TrainSetInfo, method_name: str = "ldlva",
                 **params: Any) -> None:
        super().__init__(model, info, method_name=method_name, **params)
        params = self.params
        feature_dim = getattr(model, "feature_dim", None)
        if not isinstance(feature_dim, int) or feature_dim < 1:
            raise TypeError("LDLVA needs a model with an int feature_dim (ModelOutput.features)")
        n, c = int(info.n_items), int(info.num_classes)
        labels = torch.as_tensor(info.labels).long().reshape(-1)
        if labels.shape != (n,) or bool(((labels < 0) | (labels >= c)).any()):
            raise ValueError(f"info.labels must be ({n},) ints in [0, {c}), got shape "
                             f"{tuple(labels.shape)}")
        self.neighbour_mode = params["neighbour_mode"]
        self.k = int(params["num_neighbors"])
        self.aux_source = "aux"
        aux = info.aux
        if aux is None:
            # no valence–arousal: the soft labels are the auxiliary space
            aux = torch.as_tensor(info.soft_labels, dtype=torch.float32)
            self.aux_source = "soft_labels"
        aux = torch.as_tensor(aux, dtype=torch.float32)
        if aux.ndim != 2 or aux.shape[0] != n:
            raise ValueError(f"info.aux must be ({n}, A), got shape {tuple(aux.shape)}")
        if self.aux_source == "aux":
            aux = rescale_aux(aux, info.aux_bounds)
        # the space neighbours and a_ik are computed in (not saved: its table is)
        self.aux_space = aux
        idx, dist = knn_l1(aux, self.k)
        self.register_buffer("neighbour_index", idx)          # (N, K)
        self.register_buffer("neighbour_distance", dist)      # (N, K) L1
        self.register_buffer("labels", labels)
        if params["class_weights"]:
            counts = torch.bincount(labels, minlength=c).float()
            # balanced weights n / (C · n_c); an absent class multiplies nothing
            w = torch.where(counts > 0, n / (c * counts.clamp_min(1)), torch.zeros_like(counts))
        else:
            w = torch.ones(c)
        self.register_buffer("class_weight", w)
        self.theta = nn.Parameter(torch.full((n,), float(params["theta_init"])))
        self.calibration = CalibrationMLP(
            feature_dim, (int(params["calib_hidden"]), int(params["calib_hidden2"])),
            float(params["calib_floor"]))
        self.register_buffer("centres", torch.zeros(c, feature_dim))
        self.register_buffer("bank_probs", F.one_hot(labels, c).float())
        self.register_buffer("bank_features", torch.zeros(n, feature_dim))
        self.register_buffer("bank_seen", torch.zeros(n, dtype=torch.bool))
        self.register_buffer("targets", torch.full((n, c), float("nan")))
        self._fetch: Callable[[torch.Tensor], dict[str, Any]] | None = None

    # ----------------------------------------------------------------- public helpers

    @property
    def neighbour_similarity(self) -> torch.Tensor:
        """(N, K) a_ik of each item's neighbours."""
        return local_similarity(self.neighbour_distance, float(self.params["bandwidth"]))

    def lambdas(self) -> np.ndarray:
        """(n_items,) λ_i = sigmoid(θ_i), the uncertainty of each training item's label."""
        return torch.sigmoid(self.theta.detach()).cpu().numpy()

    def constructed_distributions(self) -> np.ndarray:
        """(n_items, C) the target d_i used at each item's latest training step; NaN rows for
        items not trained on yet."""
        return self.targets.detach().cpu().numpy().copy()

    def attach_dataset(self, dataset, collate_fn: Callable | None = None) -> None:
        """Give the exact mode access to training inputs: ``dataset[i]`` must return an item
        dict (``x``, …) for training index i; ``collate_fn`` batches a list of them (default:
        the dataset's ``collate_fn`` if it has one, else torch's default collate)."""
        if collate_fn is None:
            collate_fn = getattr(dataset, "collate_fn", None) or torch.utils.data.default_collate

        def fetch(indices: torch.Tensor) -> dict[str, Any]:
            return collate_fn([dataset[int(i)] for i in indices.tolist()])

        self._fetch = fetch

    @torch.no_grad()
    def fill_bank(self, loader: Iterable[dict[str, Any]]) -> None:
        """Write every batch's predictions and features into the bank (in the current mode)."""
        for batch in loader:
            out = self.model(batch["x"], batch.get("lengths"))
            self._write_bank(self._indices(batch), out.logits.softmax(-1), out.features)

    def optimizers(self, lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
        """[Adam(model + calibration MLP), SGD(θ, lr=lambda_lr)]."""
        main = [p for n, p in self.named_parameters() if n != "theta" and p.requires_grad]
        return [adam(main, lr=lr, weight_decay=weight_decay),
                torch.optim.SGD([self.theta], lr=float(self.params["lambda_lr"]))]

    # ----------------------------------------------------------------- training

    def _indices(self, batch: dict[str, Any]) -> torch.Tensor:
        idx = torch.as_tensor(batch["index"]).long().to(self.theta.device)
        n = self.theta.shape[0]
        if idx.ndim != 1 or (value_checks_on() and bool(((idx < 0) | (idx >= n)).any())):
            raise ValueError(f"batch['index'] must be (B,) training indices in [0, {n}), got "
                             f"{idx.tolist()[:8]}")
        return idx

    def _write_bank(self, idx: torch.Tensor, probs: torch.Tensor, feats: torch.Tensor) -> None:
        self.bank_probs[idx] = probs.detach().float()
        self.bank_features[idx] = feats.detach().float()
        self.bank_seen[idx] = True

    @torch.no_grad()
    def _exact_neighbours(self, neigh: torch.Tensor, like: torch.Tensor):
        if self._fetch is None:
            raise RuntimeError("neighbour_mode='exact' needs the training inputs: call "
                               "attach_dataset(train_dataset) first")
        flat = neigh.reshape(-1)
        nb = self._fetch(flat.cpu())
        lengths = nb.get("lengths")
        out = self.model(nb["x"].to(like.device),
                         None if lengths is None else lengths.to(like.device))
        b, k = neigh.shape
        return (out.logits.softmax(-1).float().reshape(b, k, -1),
                out.features.float().reshape(b, k, -1), torch.ones_like(neigh, dtype=torch.bool))

    def _neighbours(self, idx: torch.Tensor, like: torch.Tensor):
        """Neighbours' (p (B, K, C), v (B, K, F), known (B, K)) for batch items ``idx``."""
        neigh = self.neighbour_index[idx]
        if self.neighbour_mode == "exact":
            return self._exact_neighbours(neigh, like)
        return self.bank_probs[neigh], self.bank_features[neigh], self.bank_seen[neigh]

    def _calibration(self, v: torch.Tensor, v_k: torch.Tensor, known: torch.Tensor):
        """s_ik (B, K); 1 where the neighbour's feature is unknown (never seen)."""
        if bool(known.all()):
            return self.calibration(v, v_k)
        s = torch.ones(known.shape, dtype=v.dtype, device=v.device)
        rows = known.nonzero(as_tuple=True)
        # BatchNorm in training mode needs at least two pairs
        if rows[0].numel() > (1 if self.calibration.training else 0):
            pairs = torch.cat([v[rows[0]], v_k[rows]], dim=-1)
            s = s.index_put(rows, self.calibration.score_pairs(pairs).to(s.dtype))
        return s

    def _targets(self, idx, labels, v) -> _Targets:
        """d (B, C), λ (B,), d̃ (B, C) and the neighbours used, for the batch (v: the batch's
        features (B, F))."""
        p_k, v_k, known = self._neighbours(idx, v)
        s = self._calibration(v.float(), v_k, known)
        # a_ik rescaled per row by exp(+min distance / bandwidth): identical d̃ (the factor
        # cancels in the normalisation), no underflow when all neighbours are far away
        dist = self.neighbour_distance[idx]
        a = local_similarity(dist - dist[:, :1], float(self.params["bandwidth"]))
        d_tilde = aggregate_neighbours(p_k, a * s)
        lam = torch.sigmoid(self.theta[idx])
        onehot = F.one_hot(labels, self.info.num_classes).to(d_tilde.dtype)
        return _Targets(construct_target(onehot, d_tilde, lam), lam, d_tilde,
                        self.neighbour_index[idx], v_k, known)

    def training_step(self, batch: dict[str, Any], epoch: int, step: int) -> StepResult:
        idx = self._indices(batch)
        labels = self.labels[idx]
        out = self.model(batch["x"], batch.get("lengths"))
        with no_autocast():  # the network ran in the step's precision; the rest in float32
            return self._step_from_outputs(idx, labels, out)

    def _step_from_outputs(self, idx, labels, out) -> StepResult:
        v = out.features.float()
        t = self._targets(idx, labels, v)
        logp = out.logits.float().log_softmax(-1)
        ce = -(t.d * logp).sum(-1)
        l_cls = (self.class_weight[labels] * ce).mean()
        conf = (1 - t.lam).detach()
        centre = 0.5 * (conf * (v - self.centres[labels]).pow(2).sum(-1)).mean()
        repulsion = centre_repulsion(self.centres)
        l_d = centre + repulsion
        loss = l_cls + float(self.params["gamma"]) * l_d
        with torch.no_grad():
            self.targets[idx] = t.d.detach().float()
            if self.neighbour_mode == "bank":
                self._write_bank(idx, out.logits.softmax(-1), v)
            self._update_centres(v.detach(), labels, conf, t)
        return StepResult(loss, {"cls": l_cls.detach(), "centre": centre.detach(),
                                 "repulsion": repulsion.detach(), "lambda": t.lam.detach().mean()})

    def _update_centres(self, v: torch.Tensor, labels: torch.Tensor, conf: torch.Tensor,
                        t: _Targets) -> None:
        """The authors' centre update over the batch items and their known neighbours."""
        rows = t.known.reshape(-1)
        neigh = t.neighbours.reshape(-1)[rows]
        feats = torch.cat([v.float(), t.v_k.reshape(-1, v.shape[1])[rows].to(v.device)])
        weights = torch.cat([conf, 1 - torch.sigmoid(self.theta.detach()[neigh])])
        lr = float(self.params["centre_lr"])
        update_centres(self.centres, feats, torch.cat([labels, self.labels[neigh]]), weights,
                       lr, lr * float(self.params["repulsion_scale"]))

    # ----------------------------------------------------------------- inference

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> Prediction:
        """probs (B, C); embedding; uncertainty λ_i for training items (``batch['split'] ==
        'train'``), the entropy of probs for any other split (λ exists only for training
        items); latent: d_i rebuilt from the current state for training items, else None."""
        out = self.model(batch["x"], batch.get("lengths"))
        probs = out.logits.float().softmax(-1)
        if batch.get("split") == "train":
            idx = self._indices(batch)
            with no_autocast():
                t = self._targets(idx, self.labels[idx], out.features.float())
            return Prediction(probs=probs, embedding=out.embedding, uncertainty=t.lam,
                              latent=t.d)
        entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
        return Prediction(probs=probs, embedding=out.embedding, uncertainty=entropy)

    def label_uncertainty(self, batch: dict[str, Any], pred: Prediction) -> torch.Tensor:
        """λ_i = sigmoid(θ_i), the learnt uncertainty of training item i's label."""
        return torch.sigmoid(self.theta.detach()[self._indices(batch)])
