"""How well each crowd aggregator recovers a generated corpus's known truth.

A generated corpus knows each item's true emotion distribution (``true_dist_<class>``); its
ratings come from simulated raters (bias, noise, confusions, spammers:
:mod:`affectlab.data.synth.raters`). For every aggregator of :mod:`affectlab.aggregators` this
module turns the ratings into soft labels and scores them against the truth, per item:

- ``correct``: the soft label's argmax (lowest index on a tie) is the true dominant class;
- ``kl``: KL(truth ‖ soft label) in nats, the soft label smoothed by ``eps``
  (q ← (q + eps)/Σ(q + eps), :func:`affectlab.metrics.kl_divergence`): a posterior that puts
  all its mass on one class would otherwise score ∞ wherever the truth has any elsewhere;
- ``tv``: total variation ½·Σ|truth − soft label| (no smoothing, in [0, 1]).

:func:`measure_aggregators` scores one corpus (its items and ratings tables);
:func:`run_aggregation_study` generates the tables of several seeds (no media:
:func:`~affectlab.data.synth.corpus.corpus_tables`) and scores each; its ``table`` pools the
seeds and compares each aggregator with a baseline by paired tests on the same items
(:func:`mcnemar_p` on correctness, :func:`wilcoxon_p` on per-item KL). ``affectlab data
aggregators`` prints that table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from affectlab.aggregators import AGGREGATORS, DEFAULT_AGGREGATOR, aggregate_soft_labels
from affectlab.data.synth import raters as _raters
from affectlab.data.synth.corpus import corpus_tables
from affectlab.data.synth.truth import CATEGORIES
from affectlab.metrics import kl_divergence
from affectlab.scales import NominalScale

__all__ = ["KL_EPS", "AggregationStudy", "AggregatorScore", "mcnemar_p", "measure_aggregators",
           "run_aggregation_study", "true_distributions", "wilcoxon_p"]

KL_EPS = 1e-3


@dataclass(frozen=True)
class AggregatorScore:
    """One aggregator on one corpus: per-item arrays over the scored items (``item_ids``)."""

    aggregator: str
    item_ids: np.ndarray    # (n,)
    correct: np.ndarray     # (n,) bool
    kl: np.ndarray          # (n,) nats
    tv: np.ndarray          # (n,)

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean()) if len(self.correct) else float("nan")

    @property
    def mean_kl(self) -> float:
        return float(self.kl.mean()) if len(self.kl) else float("nan")

    @property
    def mean_tv(self) -> float:
        return float(self.tv.mean()) if len(self.tv) else float("nan")


def true_distributions(items: pd.DataFrame, class_names: Sequence[str]) -> np.ndarray:
    """(n, K) true distributions from the ``true_dist_<class>`` columns, in ``class_names``
    order; a ValueError names the columns a table lacks (it is not a generated corpus)."""
    if not isinstance(items, pd.DataFrame):
        raise TypeError(f"items must be a pandas DataFrame, got {type(items).__name__}")
    cols = [f"true_dist_{c}" for c in class_names]
    missing = [c for c in cols if c not in items.columns]
    if missing:
        raise ValueError(f"items lack the truth column(s) {missing}: aggregators are measured "
                         "on a generated corpus, whose items know their true distribution")
    return items[cols].to_numpy(dtype=np.float64)


def measure_aggregators(items: pd.DataFrame, ratings: pd.DataFrame,
                        class_names: Sequence[str] = CATEGORIES, *, scale: str = "category",
                        aggregators: Sequence[str] = AGGREGATORS, eps: float = KL_EPS
                        ) -> dict[str, AggregatorScore]:
    """Score each aggregator's soft labels of ``scale`` against the items' true distributions.

    items: with ``item_id`` and ``true_dist_<class>`` per class; ratings: the long table
    (item_id, rater_id, scale, value). Items without a rating on ``scale`` are left out (of
    every aggregator alike, so the arrays stay paired). Returns {aggregator: score}.
    """
    truth = true_distributions(items, class_names)
    ids = items["item_id"].to_numpy()
    meta = NominalScale(names=list(class_names))
    soft = {name: aggregate_soft_labels(ratings, ids, scale, meta, name) for name in aggregators}
    rated = np.ones(len(ids), dtype=bool)
    for y in soft.values():
        rated &= ~np.isnan(y).any(axis=1)
    truth, dominant = truth[rated], truth[rated].argmax(axis=1)
    out = {}
    for name, y in soft.items():
        y = y[rated]
        out[name] = AggregatorScore(
            aggregator=name, item_ids=ids[rated], correct=y.argmax(axis=1) == dominant,
            kl=np.asarray(kl_divergence(truth, y, eps=eps)),
            tv=0.5 * np.abs(truth - y).sum(axis=1))
    return out


def mcnemar_p(a_correct, b_correct) -> float:
    """Exact two-sided McNemar test of paired correctness: the binomial test of the discordant
    items (a right and b wrong vs. a wrong and b right) against ½. 1.0 with no discordant
    item."""
    a, b = np.asarray(a_correct, dtype=bool), np.asarray(b_correct, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a_correct and b_correct must be paired 1-D arrays, got "
                         f"{a.shape} and {b.shape}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def wilcoxon_p(x, y) -> float:
    """Two-sided Wilcoxon signed-rank test of paired per-item values; 1.0 when every pair is
    equal."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be paired 1-D arrays, got {x.shape} and {y.shape}")
    if not np.any(x != y):
        return 1.0
    return float(stats.wilcoxon(x, y).pvalue)


@dataclass(frozen=True)
class AggregationStudy:
    """Scores per seed: ``scores[seed][aggregator]``; the corpus settings they came from."""

    seeds: tuple[int, ...]
    n_items: int
    rater_config: _raters.RaterConfig
    scores: Mapping[int, Mapping[str, AggregatorScore]]

    @property
    def aggregators(self) -> list[str]:
        return list(self.scores[self.seeds[0]]) if self.seeds else []

    def pooled(self, aggregator: str) -> AggregatorScore:
        """One score over the items of every seed (seed-major order, so pooled arrays of two
        aggregators are paired)."""
        parts = [self.scores[s][aggregator] for s in self.seeds]
        return AggregatorScore(
            aggregator=aggregator,
            item_ids=np.concatenate([[f"{s}/{i}" for i in p.item_ids]
                                     for s, p in zip(self.seeds, parts, strict=True)]),
            correct=np.concatenate([p.correct for p in parts]),
            kl=np.concatenate([p.kl for p in parts]), tv=np.concatenate([p.tv for p in parts]))

    def table(self, baseline: str = DEFAULT_AGGREGATOR) -> pd.DataFrame:
        """One row per aggregator: accuracy (mean over seeds, and its SD), mean KL, mean TV,
        and paired tests on the pooled items against ``baseline``: McNemar p (accuracy) and
        Wilcoxon p (per-item KL)."""
        if baseline not in self.aggregators:
            raise ValueError(f"baseline {baseline!r} is not among the measured aggregators "
                             f"{self.aggregators}")
        base = self.pooled(baseline)
        rows = []
        for name in self.aggregators:
            per_seed = np.array([self.scores[s][name].accuracy for s in self.seeds])
            pooled = self.pooled(name)
            same = name == baseline
            rows.append({
                "aggregator": name, "accuracy": float(per_seed.mean()),
                "accuracy_sd": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else 0.0,
                "kl": pooled.mean_kl, "tv": pooled.mean_tv,
                f"p_mcnemar_vs_{baseline}": np.nan if same else mcnemar_p(pooled.correct,
                                                                          base.correct),
                f"p_wilcoxon_kl_vs_{baseline}": np.nan if same else wilcoxon_p(pooled.kl,
                                                                               base.kl),
            })
        return pd.DataFrame(rows)


def run_aggregation_study(seeds: Sequence[int] = (0, 1, 2), n: int = 2000, *,
                          rater_config: _raters.RaterConfig | None = None,
                          aggregators: Sequence[str] = AGGREGATORS, eps: float = KL_EPS
                          ) -> AggregationStudy:
    """Generate the tables of a corpus of ``n`` items per seed (the ratings of
    ``rater_config``, default :class:`~affectlab.data.synth.raters.RaterConfig`) and score
    every aggregator on each (:func:`measure_aggregators`)."""
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds must name at least one corpus seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {list(seeds)}")
    rater_config = _raters.RaterConfig() if rater_config is None else rater_config
    scores = {}
    for seed in seeds:
        tables = corpus_tables("face", n, seed, rater_config=rater_config)
        scores[seed] = measure_aggregators(tables.items, tables.ratings, CATEGORIES,
                                           aggregators=aggregators, eps=eps)
    return AggregationStudy(seeds=seeds, n_items=n, rater_config=rater_config, scores=scores)


def _format(table: pd.DataFrame) -> str:
    return table.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def aggregator_report(seeds: Sequence[int] = (0, 1, 2), n: int = 2000, *, n_spammers: int = 3,
                      n_raters: int = 60, dataset=None) -> str:
    """The text ``affectlab data aggregators`` prints: the study table over generated corpora
    (``n`` items per seed; ``n_raters`` raters of whom ``n_spammers`` spam, the other rater
    settings at their defaults), or, with ``dataset`` (a generated dataset directory), the
    scores on its label scale."""
    if dataset is not None:
        from affectlab.data.contract import load_dataset

        ds = load_dataset(dataset)
        scores = measure_aggregators(ds.items, ds.ratings, ds.class_names,
                                     scale=ds.schema.label_scale)
        rows = [{"aggregator": s.aggregator, "accuracy": s.accuracy, "kl": s.mean_kl,
                 "tv": s.mean_tv} for s in scores.values()]
        return (f"{ds.name}: {len(next(iter(scores.values())).correct)} rated items, "
                f"KL eps {KL_EPS:g}\n" + _format(pd.DataFrame(rows)))
    config = _raters.RaterConfig(n_raters=n_raters, n_spammers=n_spammers)
    study = run_aggregation_study(seeds, n, rater_config=config)
    return (f"{len(study.seeds)} corpora (seeds {', '.join(map(str, study.seeds))}) of {n} "
            f"items, {n_raters} raters ({n_spammers} spammers), KL eps {KL_EPS:g}; p: paired "
            f"tests on the pooled items\n" + _format(study.table()))
