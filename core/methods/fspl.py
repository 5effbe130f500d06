"""CE + f-SPL on balanced triplets (seed 000, SPEC §2): ``ce+fspl-{kl,rkl,pearson,hellinger,js}``.

Batches come from :meth:`CEFSPL.batch_sampler`: the epoch's balanced triplets
(:class:`affectlab.losses.BalancedTripletSampler`, every item an anchor once per epoch, new triplets
every epoch) cut into batches of B triplets, each batch one index list
``[anchors (B)..., similar (B)..., dissimilar (B)...]`` of length 3B. The training step splits
it in three and computes, per triplet,

    L = CE_w(anchor) + α·(f-SPL(S_s, C_s) + f-SPL(S_d, C_d)),   batch mean, α = 10,

with g = ReLU(embedding) (the model's embedding layer is already a ReLU output in the
registry's models; the extra ReLU is a no-op there and keeps S in [0, 2] for any model),
S = 2 − √2·‖ĝ_a − ĝ_p‖ and C = 2 − Σ|y_a − y_p| from the batch's soft labels. The engine's
``batch_size`` is the number of triplets B (the paper: 100); lr 1e-4 and the weight decay are
the engine config's.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from affectlab.losses import (
    DIVERGENCES,
    MAX_DECIMALS,
    BalancedTripletSampler,
    FSPLLoss,
    class_weights_from_soft_labels,
    soft_cross_entropy,
    torch_label_similarity,
)
from affectlab.losses.fspl import ALPHA
from affectlab.methods.base import Method, StepResult, TrainSetInfo
from affectlab.methods.softlabel import CLASS_WEIGHTS, check_method_inputs
from affectlab.models.base import EmotionModel
from affectlab.registry import Param

__all__ = ["CEFSPL", "split_triplet_batch"]

_PREFIX = "ce+fspl-"
_NAMES = {"kl": "KL", "rkl": "reverse KL", "pearson": "Pearson χ²",
          "hellinger": "squared Hellinger", "js": "Jensen–Shannon"}


def _divergence_of(name: str) -> str:
    div = name.removeprefix(_PREFIX) if name.startswith(_PREFIX) else ""
    if div not in DIVERGENCES:
        raise ValueError(f"method_name must be one of "
                         f"{', '.join(_PREFIX + d for d in DIVERGENCES)}; got {name!r}")
    return div


def split_triplet_batch(n: int) -> int:
    """B for a triplet batch of ``n`` items (n = 3B, B ≥ 1); ValueError otherwise."""
    if n < 3 or n % 3:
        raise ValueError(f"an f-SPL batch must hold 3·B items [anchors, similar, dissimilar] "
                         f"(from CEFSPL.batch_sampler), got {n} items")
    return n // 3


class CEFSPL(Method):
    """Soft CE on the anchors + α·f-SPL on balanced triplets; one class for five divergences.

    Params: ``alpha`` (10), ``class_weights`` (True: CE weights N/(K·Σy)), ``decimals`` (2:
    rounding of the similarity keys), ``max_candidates`` (256: items compared per anchor when
    the labels have many distinct values; see BalancedTripletSampler). The divergence comes
    from the registry name. Parts logged: ``ce`` (anchors), ``fspl`` (mean of
    f-SPL(S_s, C_s) + f-SPL(S_d, C_d), before α), ``balance`` (mean of C − 1 over the batch's
    2B pairs; 0 for a balanced batch up to the key rounding).
    """

    description = "cross-entropy + α·f-SPL (f-similarity preservation) on balanced triplets"
    param_specs = (
        ALPHA,
        CLASS_WEIGHTS,
        Param("decimals", int, 2, low=0, high=MAX_DECIMALS,
              help="rounding of the label-similarity keys of the triplet sampler"),
        # the sampler keeps max_candidates similarities per anchor: bounded for memory
        Param("max_candidates", int, 256, low=1, high=100_000,
              help="items compared per anchor when the labels have many distinct values"),
    )

    @classmethod
    def describe(cls, name: str) -> str:
        div = _divergence_of(name)
        return (f"cross-entropy + α·f-SPL ({_NAMES[div]}) on balanced triplets, "
                "similarity of embeddings matched to similarity of soft labels")

    def __init__(self, model: EmotionModel, info: TrainSetInfo, method_name: str = "",
                 **params: Any) -> None:
        check_method_inputs(model, info)
        divergence = _divergence_of(method_name)
        super().__init__(model, info, method_name=method_name, **params)
        self.divergence = divergence
        self.alpha = self.params["alpha"]
        w = (class_weights_from_soft_labels(info.soft_labels) if self.params["class_weights"]
             else torch.ones(info.num_classes, dtype=torch.float64))
        self.register_buffer("class_weight", w.to(torch.float32))
        # α is applied here, not in the loss, so the unweighted f-SPL can be logged
        self.fspl = FSPLLoss(divergence=divergence, alpha=1.0)
        self._samplers: dict[int, BalancedTripletSampler] = {}

    def triplet_sampler(self, seed: int) -> BalancedTripletSampler:
        """The sampler for ``seed`` (built once: its label grouping is reused every epoch)."""
        if seed not in self._samplers:
            self._samplers[seed] = BalancedTripletSampler(
                self.info.soft_labels.detach().cpu().double().numpy(),
                max_candidates=self.params["max_candidates"], decimals=self.params["decimals"],
                seed=seed)
        return self._samplers[seed]

    def batch_sampler(self, batch_size: int, epoch: int, seed: int) -> list[list[int]]:
        """This epoch's batches: lists [anchors..., similar..., dissimilar...] of 3·B indices,
        B = ``batch_size`` triplets (the last batch may be smaller). A function of
        (seed, epoch)."""
        out = []
        for t in self.triplet_sampler(int(seed)).batches(batch_size, epoch):
            out.append([*t.anchor.tolist(), *t.similar.tolist(), *t.dissimilar.tolist()])
        return out

    def training_step(self, batch: dict[str, Any], epoch: int, step: int) -> StepResult:
        b = split_triplet_batch(int(batch["y"].shape[0]))
        out = self.model(batch["x"], batch.get("lengths"))
        g = F.relu(out.embedding)
        y = batch["y"].to(out.logits.device)
        ce = soft_cross_entropy(out.logits[:b], y[:b], self.class_weight)
        c_s = torch_label_similarity(y[:b], y[b:2 * b])
        c_d = torch_label_similarity(y[:b], y[2 * b:])
        f = self.fspl(g[:b], g[b:2 * b], g[2 * b:], c_s, c_d)
        loss = ce + self.alpha * f
        balance = torch.cat([c_s, c_d]).detach().sub(1.0).mean()
        return StepResult(loss, {"ce": ce.detach(), "fspl": f.detach(),
                                 "balance": balance})
