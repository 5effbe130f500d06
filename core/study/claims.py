"""The claims the study tests: what each seed paper says, as a paired experiment on the benchmark.

An :class:`Experiment` is a setting (a generated corpus, a scale, what the methods train on, the
domain protocol) with its *arms* (an engine run each, or a peer computed from engine runs); a
:class:`Claim` compares two arms of one experiment on one metric of one split, in a claimed
direction. Claims that share an experiment share its runs (the CE baseline of the five f-SPL
claims is trained once per seed).

Sizes (:data:`SIZES`): ``tiny`` for the tests (seconds a run), ``small`` for a laptop (a few
minutes a claim on 2 CPU cores: corpora of a few hundred items, narrow models, few epochs, 3
seeds), ``paper`` with the papers' model widths, batch sizes, learning rates and epochs (meant
for a GPU). Every arm of an experiment gets the same data, seed, model and schedule; only the
method differs. Where a setting of the papers would leave ``small`` untrainable (f-SPL's lr
1e-4 at batch 100 on a hundred-odd items is two steps an epoch) ``small`` uses lr 1e-3 and
batch 32 for both arms, and says so here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["CLAIMS", "EXPERIMENTS", "SIZES", "Arm", "Claim", "Experiment", "Size", "claim",
           "experiment", "resolve_claims"]


@dataclass(frozen=True)
class Size:
    """How big every run of a study is. ``face_width``: resnet18's width; ``convpool``: its
    params; ``n_per_class``: SGM's and the triplet peer's items per class in a batch;
    ``lr``/``batch_size``: None = each method's default (the papers')."""

    name: str
    face_n: int
    speech_n: int
    epochs: int
    face_width: int
    convpool: dict[str, int]
    n_per_class: int
    seeds: int
    lr: float | None = None
    batch_size: int | None = None


SIZES: dict[str, Size] = {
    "tiny": Size("tiny", face_n=140, speech_n=120, epochs=2, face_width=4,
                 convpool={"channels": 16, "hidden": 16}, n_per_class=4, seeds=2, lr=1e-3,
                 batch_size=32),
    "small": Size("small", face_n=800, speech_n=500, epochs=8, face_width=8,
                  convpool={"channels": 32, "hidden": 32}, n_per_class=10, seeds=3, lr=1e-3,
                  batch_size=32),
    # ResNet-18 at full width, the f-SPL paper's Conv-Pool (128/128), lr and batch of each
    # method's paper (None: METHOD_DEFAULTS), SGM's n = 30, 10 seeds
    "paper": Size("paper", face_n=10_000, speech_n=2_000, epochs=40, face_width=64,
                  convpool={}, n_per_class=30, seeds=10),
}

ParamsOf = Callable[[Size], dict[str, Any]]


def _none(size: Size) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Arm:
    """One side of a comparison. ``kind``: ``run`` (an engine run of ``method`` with
    ``params(size)`` as method_params), ``cleanlab`` (cleanlab's self-confidence on
    out-of-sample probabilities of ``method``, from two engine runs on the two halves of the
    training split) or ``aggregator`` (the crowd aggregator ``method`` of
    :mod:`affectlab.aggregators` turning the corpus's ratings into soft labels, scored against
    the truth by :func:`affectlab.data.synth.aggregation.measure_aggregators`; split ``all``).
    ``needs``: optional packages it imports."""

    name: str
    method: str
    params: ParamsOf = _none
    kind: Literal["run", "cleanlab", "aggregator"] = "run"
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Experiment:
    """A setting shared by its arms. ``cross_domain``: train (and validate) on synth-A, test on
    every item of synth-B (the other corpus, never trained on)."""

    id: str
    modality: Literal["face", "speech"]
    scale: str | None
    arms: tuple[Arm, ...]
    flip_rate: float = 0.1
    target: Literal["soft", "label"] = "soft"
    cross_domain: bool = False

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise KeyError(f"experiment {self.id!r} has no arm {name!r}")


@dataclass(frozen=True)
class Claim:
    """``method`` beats ``baseline`` (two arms of ``experiment``) on ``metric`` of ``split``
    (``baseline_metric`` when the baseline's counterpart has another name), ``direction``
    saying which way is better."""

    id: str
    paper: str
    what: str
    experiment: str
    method: str
    baseline: str
    metric: str
    split: str = "test"
    direction: Literal["higher", "lower"] = "higher"
    baseline_metric: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def metric_of_baseline(self) -> str:
        return self.baseline_metric or self.metric

    def line(self) -> str:
        """One line for ``affectlab study --list``."""
        better = "↑" if self.direction == "higher" else "↓"
        metric = self.metric if self.baseline_metric is None else \
            f"{self.metric} vs {self.baseline_metric}"
        return f"{self.id:<28} {self.paper:<9} {self.what}  [{self.split} {metric} {better}]"


DIVERGENCES = ("kl", "rkl", "pearson", "hellinger", "js")
_PML = ("pytorch_metric_learning",)


def _embedding(levels: int) -> ParamsOf:
    def params(size: Size) -> dict[str, Any]:
        out: dict[str, Any] = {"n_per_class": size.n_per_class}
        if levels > 1:  # Algorithm 2: the second half of training on 2 sub-classes per class
            out |= {"subclass_levels": levels, "subclass_every": max(1, size.epochs // 2)}
        return out
    return params


def _dmue(size: Size) -> dict[str, Any]:
    # the ramps reach 1 half-way (the authors' a = 6 of 40 epochs is kept at paper size)
    return {} if size.name == "paper" else {"ramp_epoch": max(1, size.epochs // 2)}


EXPERIMENTS: dict[str, Experiment] = {e.id: e for e in (
    Experiment("speech-cross-domain", "speech", "activation", cross_domain=True,
               arms=(Arm("ce", "ce"), *(Arm(f"ce+fspl-{d}", f"ce+fspl-{d}")
                                        for d in DIVERGENCES))),
    Experiment("face-intensity", "face", "intensity",
               arms=(Arm("ce", "ce"), Arm("emd2", "emd2"))),
    Experiment("face-embedding", "face", "category",
               arms=(Arm("sgm", "sgm", _embedding(2)),
                     Arm("triplet", "triplet", _embedding(1), needs=_PML))),
    Experiment("crowd-aggregation", "face", "category",
               arms=tuple(Arm(a, a, kind="aggregator") for a in ("votes", "ds", "mace"))),
    Experiment("face-flips", "face", "category", flip_rate=0.3, target="label",
               arms=(Arm("ce", "ce"), Arm("ldlva", "ldlva"), Arm("dmue", "dmue", _dmue),
                     Arm("cleanlab", "ce", kind="cleanlab", needs=("cleanlab",)))),
)}

_FLIPS = ("trained on the single dataset label with 30 % of the labels flipped; the score is "
          "each method's per-item uncertainty for that label on the training items")
CLAIMS: dict[str, Claim] = {c.id: c for c in (
    *(Claim(f"fspl-{d}-cross-domain", "f-SPL", f"CE+f-SPL ({d}) beats CE across corpora: "
            "speech activation, train synth-A, test synth-B", "speech-cross-domain",
            f"ce+fspl-{d}", "ce", "uar") for d in DIVERGENCES),
    Claim("emd2-exact", "EMD²", "EMD² beats CE on exact accuracy of ordinal intensity (faces)",
          "face-intensity", "emd2", "ce", "aem"),
    Claim("emd2-off-by-one", "EMD²", "EMD² beats CE on off-by-one accuracy of ordinal "
          "intensity (faces)", "face-intensity", "emd2", "ce", "aeo"),
    Claim("sgm-nmi", "SGM", "SGM's embedding clusters the true classes better than a "
          "triplet loss with a semi-hard miner (k-means NMI)", "face-embedding", "sgm",
          "triplet", "nmi_truth"),
    Claim("sgm-recall", "SGM", "SGM's embedding retrieves the true class better than the "
          "triplet peer (Recall@1)", "face-embedding", "sgm", "triplet", "recall@1_truth"),
    Claim("sgm-subclasses", "SGM", "SGM's sub-classes (Algorithm 2) recover the hidden "
          "sub-class factor (the faces' visible style) better than the same mixtures on the "
          "triplet embedding (within-class NMI)", "face-embedding", "sgm", "triplet",
          "style_nmi", split="train", baseline_metric="style_nmi_gmm",
          notes=("the corpus's `subclass` column is identity × style (48 values); two "
                 "components per class can only match its binary part, the style, so the "
                 "claim scores that (subclass_nmi against the full factor is in the runs' "
                 "metrics)",)),
    Claim("crowd-ds-accuracy", "crowd", "Dawid–Skene's soft labels find the true class more "
          "often than the raters' vote shares (every item of the corpus)", "crowd-aggregation",
          "ds", "votes", "accuracy", split="all"),
    Claim("crowd-ds-kl", "crowd", "Dawid–Skene's soft labels are closer to the true "
          "distributions than the vote shares (KL, ε = 10⁻³)", "crowd-aggregation", "ds",
          "votes", "kl", split="all", direction="lower"),
    Claim("crowd-mace-tv", "crowd", "MACE's soft labels are closer to the true distributions "
          "than the vote shares (total variation)", "crowd-aggregation", "mace", "votes", "tv",
          split="all", direction="lower"),
    Claim("ldlva-label-noise", "LDLVA", "LDLVA beats CE under label noise (30 % flipped, "
          "trained on the single label)", "face-flips", "ldlva", "ce", "uar"),
    Claim("dmue-latent", "DMUE", "DMUE's latent distributions approach the truth (over the "
          "classes other than the label) better than CE's softmax does", "face-flips", "dmue",
          "ce", "kl_latent_truth", direction="lower", baseline_metric="kl_nonlabel_truth"),
    Claim("dmue-flips", "DMUE", "DMUE's uncertainty 1 − s_i finds flipped labels better than "
          "CE's training loss", "face-flips", "dmue", "ce", "auroc_flipped", split="train",
          notes=(_FLIPS,)),
    Claim("ldlva-flips", "LDLVA", "LDLVA's uncertainty λ_i finds flipped labels better than "
          "CE's training loss", "face-flips", "ldlva", "ce", "auroc_flipped", split="train",
          notes=(_FLIPS,)),
    Claim("cleanlab-flips", "baseline", "cleanlab's self-confidence on out-of-sample CE "
          "probabilities (2-fold) finds flipped labels better than CE's in-sample loss",
          "face-flips", "cleanlab", "ce", "auroc_flipped", split="train", notes=(_FLIPS,)),
    Claim("dmue-vs-cleanlab", "DMUE", "DMUE's uncertainty finds flipped labels better than "
          "the peer to beat, cleanlab's self-confidence", "face-flips", "dmue", "cleanlab",
          "auroc_flipped", split="train", notes=(_FLIPS,)),
)}


def experiment(claim_or_id: Claim | str) -> Experiment:
    c = claim(claim_or_id) if isinstance(claim_or_id, str) else claim_or_id
    return EXPERIMENTS[c.experiment]


def claim(claim_id: str) -> Claim:
    """The claim ``claim_id``; KeyError listing the known ones."""
    if claim_id not in CLAIMS:
        raise KeyError(f"unknown claim {claim_id!r}; known claims: {', '.join(CLAIMS)} (or all)")
    return CLAIMS[claim_id]


def resolve_claims(ids: list[str] | tuple[str, ...]) -> list[Claim]:
    """The claims named (``all``: every claim), in registry order, each once."""
    if not ids:
        raise ValueError("name at least one claim (or all); affectlab study --list lists them")
    wanted = set(CLAIMS) if "all" in ids else {claim(i).id for i in ids}
    return [c for c in CLAIMS.values() if c.id in wanted]
