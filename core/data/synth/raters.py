"""Simulated raters for the generated corpus (DESIGN.md, "The embedded benchmark corpus").

A pool of raters, each with

- a **noise level** ν ~ U(0, noise_max) ⊂ [0, 1]: Likert ratings get Gaussian noise of
  σ = 0.3 + 0.6·ν scale points; a category vote is drawn, with probability 0.2·ν (the lapse
  rate), uniformly instead of from what the rater perceives;
- a **bias**: offsets (in scale points) on valence, activation and intensity, and a per-category
  log-weight that makes the rater over- or under-use some categories;
- a **confusion tendency** κ ∈ [0, 1): the share of the item's emotion the rater perceives as a
  circumplex neighbour (anger read as fear or disgust, fear as surprise, ...);
- an **activity** weight (how often the rater is picked for an item);
- or no attention at all: **spammers** answer uniformly at random on every scale.

Ratings come in three kinds (SPEC §1 turns each into a soft label):

- ``category``: ``votes_per_item`` votes per item (FER+ style: 10), value = index into CATEGORIES;
- ``valence`` / ``activation``: ``likert_per_item`` raters per item each rate both (IEMOCAP/MSP
  style), 1..5 from the true value v ∈ [-1, 1] mapped as 3 + 2·v, plus bias and noise, rounded
  and clipped;
- ``intensity``: ``intensity_per_item`` ratings of the ordinal level, value = level − 1 ∈ 0..4
  (an ordinal scale's value is an index into its names "1".."5").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from affectlab.data.synth.truth import CATEGORIES, CIRCUMPLEX
from affectlab.validation import as_float_array, check_distribution

K = len(CATEGORIES)
LIKERT_LOW, LIKERT_HIGH = 1, 5
INTENSITY_LEVELS = 5
SCALE_ORDER = ("category", "valence", "activation", "intensity")


@dataclass(frozen=True)
class RaterConfig:
    """How the pool is drawn and how many ratings each item gets."""

    n_raters: int = 60
    n_spammers: int = 3
    votes_per_item: int = 10
    likert_per_item: int = 5
    intensity_per_item: int = 3
    bias_sd: float = 0.3            # valence / activation / intensity offsets, scale points
    category_bias_sd: float = 0.2   # per-category log-weights
    confusion_mean: float = 0.1     # mean of κ ~ Beta(2, 2/mean − 2)
    neighbour_tau: float = 0.5      # circumplex distance scale of confusions
    noise_max: float = 1.0          # noise level ν ~ U(0, noise_max)

    def __post_init__(self) -> None:
        for name in ("n_raters", "votes_per_item", "likert_per_item", "intensity_per_item"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.n_spammers, int | np.integer) or not (
                0 <= self.n_spammers < self.n_raters):
            raise ValueError(f"n_spammers must be an integer in [0, n_raters), got "
                             f"{self.n_spammers!r} with n_raters={self.n_raters}")
        most = max(self.votes_per_item, self.likert_per_item, self.intensity_per_item)
        if most > self.n_raters:
            raise ValueError(f"n_raters ({self.n_raters}) must be at least the largest number of "
                             f"raters per item ({most}): a rater rates an item at most once")
        for name in ("bias_sd", "category_bias_sd"):
            if not (np.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {getattr(self, name)!r}")
        if not (0.0 <= self.noise_max <= 1.0):
            raise ValueError(f"noise_max must be in [0, 1], got {self.noise_max!r}")
        if not (0.0 <= self.confusion_mean < 1.0):
            raise ValueError(f"confusion_mean must be in [0, 1), got {self.confusion_mean!r}")
        if not (self.neighbour_tau > 0 and np.isfinite(self.neighbour_tau)):
            raise ValueError(f"neighbour_tau must be finite and > 0, got {self.neighbour_tau!r}")


@dataclass(frozen=True)
class RaterPool:
    """R raters' hidden traits. Arrays have shape (R,) unless noted."""

    rater_ids: tuple[str, ...]
    noise: np.ndarray            # ν ∈ [0, 1]
    valence_bias: np.ndarray     # scale points
    activation_bias: np.ndarray
    intensity_bias: np.ndarray
    category_bias: np.ndarray    # (R, K) log-weights
    confusion: np.ndarray        # κ ∈ [0, 1)
    spammer: np.ndarray          # bool
    activity: np.ndarray         # selection weights, sum to 1

    def __len__(self) -> int:
        return len(self.rater_ids)

    @property
    def likert_sd(self) -> np.ndarray:
        """(R,) standard deviation of a rater's Likert noise, in scale points."""
        return 0.3 + 0.6 * self.noise

    @property
    def lapse(self) -> np.ndarray:
        """(R,) probability that a category vote is uniform instead of perceived."""
        return 0.2 * self.noise

    def summary(self) -> dict:
        """JSON-ready description for ``meta.json`` provenance (values rounded to 4 places)."""
        per_rater = [
            {
                "rater_id": rid,
                "spammer": bool(self.spammer[r]),
                "noise": round(float(self.noise[r]), 4),
                "valence_bias": round(float(self.valence_bias[r]), 4),
                "activation_bias": round(float(self.activation_bias[r]), 4),
                "intensity_bias": round(float(self.intensity_bias[r]), 4),
                "confusion": round(float(self.confusion[r]), 4),
                "activity": round(float(self.activity[r]), 4),
            }
            for r, rid in enumerate(self.rater_ids)
        ]
        return {
            "n_raters": len(self),
            "n_spammers": int(self.spammer.sum()),
            "spammers": [rid for rid, s in zip(self.rater_ids, self.spammer, strict=True) if s],
            "mean_noise": round(float(self.noise[~self.spammer].mean()), 4),
            "mean_confusion": round(float(self.confusion[~self.spammer].mean()), 4),
            "per_rater": per_rater,
        }


def circumplex_neighbours(tau: float = 0.5) -> np.ndarray:
    """(K, K) row-stochastic matrix, zero diagonal: P(j | i) ∝ exp(−‖c_i − c_j‖ / tau) with c
    the categories' circumplex positions, so near categories (angry/fearful) are confused often
    and far ones (happy/sad) rarely."""
    if not (np.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be finite and > 0, got {tau!r}")
    pos = np.array([CIRCUMPLEX[c] for c in CATEGORIES])
    dist = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    w = np.exp(-dist / tau)
    np.fill_diagonal(w, 0.0)
    return w / w.sum(axis=1, keepdims=True)


def make_rater_pool(rng: np.random.Generator, config: RaterConfig | None = None) -> RaterPool:
    """Draw a pool of raters. Spammers are a random subset of ``config.n_spammers`` raters."""
    config = RaterConfig() if config is None else config
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    r = config.n_raters
    width = max(3, len(str(r - 1)))
    noise = rng.uniform(0.0, config.noise_max, r)
    valence_bias = rng.normal(0.0, config.bias_sd, r)
    activation_bias = rng.normal(0.0, config.bias_sd, r)
    intensity_bias = rng.normal(0.0, config.bias_sd, r)
    category_bias = rng.normal(0.0, config.category_bias_sd, (r, K))
    if config.confusion_mean > 0:
        b = 2.0 / config.confusion_mean - 2.0
        confusion = rng.beta(2.0, b, r)
    else:
        confusion = np.zeros(r)
    spammer = np.zeros(r, dtype=bool)
    spammer[rng.choice(r, size=config.n_spammers, replace=False)] = True
    activity = rng.lognormal(0.0, 0.5, r)
    return RaterPool(
        rater_ids=tuple(f"r{i:0{width}d}" for i in range(r)),
        noise=noise, valence_bias=valence_bias, activation_bias=activation_bias,
        intensity_bias=intensity_bias, category_bias=category_bias, confusion=confusion,
        spammer=spammer, activity=activity / activity.sum(),
    )


def draw_raters(pool: RaterPool, n_items: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """(n_items, k) distinct rater indices per item, drawn without replacement with probability
    growing with each rater's activity (Gumbel top-k: sampling without replacement ∝ weights)."""
    if not (isinstance(k, int | np.integer) and 1 <= k <= len(pool)):
        raise ValueError(f"k must be an integer in [1, {len(pool)}] (the pool size), got {k!r}")
    if not (isinstance(n_items, int | np.integer) and n_items >= 0):
        raise ValueError(f"n_items must be a non-negative integer, got {n_items!r}")
    keys = np.log(pool.activity)[None, :] + rng.gumbel(size=(n_items, len(pool)))
    top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    # argpartition leaves the top k unordered; order them by key so the draw order is defined
    order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def perceived_distribution(dist: np.ndarray, raters: np.ndarray, pool: RaterPool,
                           tau: float = 0.5) -> np.ndarray:
    """What each (item, rater) pair votes from.

    dist:   (n, K) true distributions
    raters: (n, k) rater indices
    returns (n, k, K): (1 − κ)·dist + κ·dist·N (N = circumplex_neighbours(tau)), reweighted by
    the rater's category bias, then mixed with uniform at the rater's lapse rate; spammers get
    uniform.
    """
    dist = check_distribution(as_float_array(dist, "dist", ndim=2), "dist")
    raters = _check_raters(raters, dist.shape[0], pool)
    if dist.shape[1] != K:
        raise ValueError(f"dist must have {K} columns (CATEGORIES), got shape {dist.shape}")
    kappa = pool.confusion[raters][..., None]                       # (n, k, 1)
    confused = dist @ circumplex_neighbours(tau)                    # (n, K)
    p = (1.0 - kappa) * dist[:, None, :] + kappa * confused[:, None, :]
    p = p * np.exp(pool.category_bias[raters])
    p /= p.sum(axis=-1, keepdims=True)
    lapse = pool.lapse[raters][..., None]
    p = (1.0 - lapse) * p + lapse / K
    p[pool.spammer[raters]] = 1.0 / K
    return p


def simulate_votes(dist: np.ndarray, pool: RaterPool, rng: np.random.Generator,
                   votes_per_item: int = 10, tau: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """FER+-style category votes.

    dist: (n, K) true distributions. Returns (raters, votes), both (n, votes_per_item) int:
    who voted and the category index each voted for.
    """
    dist = check_distribution(as_float_array(dist, "dist", ndim=2), "dist")
    raters = draw_raters(pool, dist.shape[0], votes_per_item, rng)
    p = perceived_distribution(dist, raters, pool, tau)
    return raters, _sample_categorical(p, rng)


def simulate_likert(truth: np.ndarray, raters: np.ndarray, bias: np.ndarray, pool: RaterPool,
                    rng: np.random.Generator) -> np.ndarray:
    """1..5 Likert ratings of a quantity in [-1, 1].

    truth:  (n,) true values in [-1, 1], mapped to 3 + 2·truth
    raters: (n, k) rater indices; bias: (R,) each rater's offset in scale points
    returns (n, k) int ratings: round(3 + 2·truth + bias + σ_r·z) clipped to 1..5, uniform for
    spammers.
    """
    truth = as_float_array(truth, "truth", ndim=1)
    if (np.abs(truth) > 1.0 + 1e-9).any():
        raise ValueError(f"truth must lie in [-1, 1], got range "
                         f"[{truth.min():.3g}, {truth.max():.3g}]")
    raters = _check_raters(raters, truth.shape[0], pool)
    centre = (LIKERT_LOW + LIKERT_HIGH) / 2.0
    half = (LIKERT_HIGH - LIKERT_LOW) / 2.0
    return _noisy_levels(centre + half * truth, raters, bias, pool, rng, LIKERT_LOW, LIKERT_HIGH)


def simulate_intensity(intensity: np.ndarray, raters: np.ndarray, pool: RaterPool,
                       rng: np.random.Generator) -> np.ndarray:
    """(n, k) ordinal intensity ratings as indices 0..4 (level − 1) from true levels (n,) 1..5."""
    level = as_float_array(intensity, "intensity", ndim=1)
    if ((level < 1) | (level > INTENSITY_LEVELS) | (level != np.round(level))).any():
        raise ValueError("intensity must hold integer levels 1..5")
    raters = _check_raters(raters, level.shape[0], pool)
    return _noisy_levels(level - 1.0, raters, pool.intensity_bias, pool, rng,
                         0, INTENSITY_LEVELS - 1)


def simulate_ratings(item_ids, dist, valence, arousal, intensity, pool: RaterPool,
                     rng: np.random.Generator, config: RaterConfig | None = None) -> pd.DataFrame:
    """The long ratings table (SPEC §7) for n items.

    item_ids: (n,) str; dist: (n, K); valence, arousal: (n,) in [-1, 1]; intensity: (n,) 1..5.
    Returns columns item_id, rater_id, scale, value (float), rows ordered by item, then scale
    (category, valence, activation, intensity), then draw order. The same raters rate an item's
    valence and activation (one evaluator fills in both, as in IEMOCAP/MSP).
    """
    config = RaterConfig() if config is None else config
    item_ids = np.asarray(item_ids, dtype=object)
    dist = check_distribution(as_float_array(dist, "dist", ndim=2), "dist")
    n = dist.shape[0]
    for name, arr in (("item_ids", item_ids), ("valence", valence), ("arousal", arousal),
                      ("intensity", intensity)):
        if np.shape(arr) != (n,):
            raise ValueError(f"{name} must have shape ({n},) to match dist, got {np.shape(arr)}")
    if len(pool) != config.n_raters:
        raise ValueError(f"pool has {len(pool)} raters but config.n_raters is {config.n_raters}")

    vote_raters, votes = simulate_votes(dist, pool, rng, config.votes_per_item,
                                        config.neighbour_tau)
    va_raters = draw_raters(pool, n, config.likert_per_item, rng)
    val = simulate_likert(np.asarray(valence, float), va_raters, pool.valence_bias, pool, rng)
    act = simulate_likert(np.asarray(arousal, float), va_raters, pool.activation_bias, pool, rng)
    int_raters = draw_raters(pool, n, config.intensity_per_item, rng)
    inten = simulate_intensity(np.asarray(intensity), int_raters, pool, rng)

    blocks = [(vote_raters, votes), (va_raters, val), (va_raters, act), (int_raters, inten)]
    item_idx, scale_idx, draw_idx, rater_idx, value = [], [], [], [], []
    for s, (who, what) in enumerate(blocks):
        k = who.shape[1]
        item_idx.append(np.repeat(np.arange(n), k))
        scale_idx.append(np.full(n * k, s))
        draw_idx.append(np.tile(np.arange(k), n))
        rater_idx.append(who.ravel())
        value.append(what.ravel().astype(np.float64))
    item_idx, scale_idx, draw_idx, rater_idx, value = (
        np.concatenate(a) for a in (item_idx, scale_idx, draw_idx, rater_idx, value))
    order = np.lexsort((draw_idx, scale_idx, item_idx))
    rater_names = np.asarray(pool.rater_ids, dtype=object)
    return pd.DataFrame({
        "item_id": item_ids[item_idx[order]],
        "rater_id": rater_names[rater_idx[order]],
        "scale": np.asarray(SCALE_ORDER, dtype=object)[scale_idx[order]],
        "value": value[order],
    })


def config_summary(config: RaterConfig) -> dict:
    """The config as a JSON-ready dict."""
    return asdict(config)


# -- pieces ---------------------------------------------------------------------------------

def _check_raters(raters, n: int, pool: RaterPool) -> np.ndarray:
    raters = np.asarray(raters)
    if raters.ndim != 2 or raters.shape[0] != n:
        raise ValueError(f"raters must have shape ({n}, k), got {raters.shape}")
    if not np.issubdtype(raters.dtype, np.integer):
        raise TypeError(f"raters must hold integer rater indices, got dtype {raters.dtype}")
    if raters.size and (raters.min() < 0 or raters.max() >= len(pool)):
        raise ValueError(f"raters must index the pool (0..{len(pool) - 1}), got range "
                         f"[{raters.min()}, {raters.max()}]")
    return raters


def _noisy_levels(mean: np.ndarray, raters: np.ndarray, bias: np.ndarray, pool: RaterPool,
                  rng: np.random.Generator, low: int, high: int) -> np.ndarray:
    """round(mean + bias_r + σ_r·z) clipped to low..high; uniform low..high for spammers."""
    z = rng.standard_normal(raters.shape)
    x = mean[:, None] + bias[raters] + pool.likert_sd[raters] * z
    levels = np.clip(np.rint(x), low, high).astype(np.int64)
    uniform = rng.integers(low, high + 1, size=raters.shape)
    return np.where(pool.spammer[raters], uniform, levels)


def _sample_categorical(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of p (..., K) by inverse CDF."""
    cdf = np.cumsum(p, axis=-1)
    u = rng.random(p.shape[:-1])[..., None] * cdf[..., -1:]
    return np.minimum((cdf <= u).sum(axis=-1), p.shape[-1] - 1)
