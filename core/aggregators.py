"""Crowd aggregators: many raters' ratings of an item → one soft label (pure numpy / scipy).

Named aggregators (:data:`AGGREGATORS`), each a choice wherever ratings become soft labels (a
dataset's ``meta.json`` ``aggregator``, a campaign's soft labels and export):

- ``votes`` (the default): SPEC §1, the vote histogram normalised (Likert: the mean rating's
  two-class soft label). It estimates the *distribution* of what raters perceive.
- ``ds``: Dawid & Skene (1979), one confusion matrix per rater.
- ``one-coin``: one-coin Dawid–Skene (Zhang et al. 2016): a rater is right with probability
  s_r, otherwise says one of the K − 1 other classes uniformly.
- ``glad``: GLAD (Whitehill et al. 2009): P(right) = σ(α_r·e^{β_i}), rater ability α_r, item
  easiness e^{β_i}.
- ``mace``: MACE (Hovy et al. 2013) with its variational-Bayes training: rater r is spamming
  with probability 1 − θ_r and then answers from its own strategy ξ_r.

The four models return the posterior over the item's *one* true class, so their soft labels
are sharper than the votes; on the generated corpus the votes are the better soft label at the
default rater settings (see the README's aggregation table and
:mod:`affectlab.data.synth.aggregation`, which measures it). One-coin DS, GLAD and MACE follow
crowd-kit's implementations (same updates, priors and stopping rules; tests compare outputs).

On a Likert scale every aggregator other than ``votes`` uses :func:`bias_corrected_means` (the
one per-rater model for Likert ratings here). The per-rater models refuse anonymous votes
(``rater_id`` null, e.g. FER+'s) and ignore the optional ``weight`` column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import digamma, log_expit, logsumexp

from affectlab.agreement import require_rater_ids
from affectlab.labels import likert_to_soft, soft_labels_from_ratings
from affectlab.scales import as_scale

__all__ = [
    "AGGREGATORS",
    "DEFAULT_AGGREGATOR",
    "CrowdFit",
    "DawidSkeneResult",
    "aggregate_soft_labels",
    "bias_corrected_means",
    "check_aggregator",
    "dawid_skene",
    "describe_aggregator",
    "fit_categorical",
    "glad",
    "mace",
    "one_coin_dawid_skene",
    "vote_distribution",
]

DEFAULT_AGGREGATOR = "votes"
_MODEL_NAMES = {"ds": "Dawid–Skene", "one-coin": "one-coin Dawid–Skene", "glad": "GLAD",
                "mace": "MACE"}
_DESCRIPTIONS = {
    "votes": "vote fractions / mean Likert rating (SPEC §1)",
    "ds": "Dawid–Skene posterior (a confusion matrix per rater)",
    "one-coin": "one-coin Dawid–Skene posterior (one accuracy per rater)",
    "glad": "GLAD posterior (rater ability × item easiness)",
    "mace": "MACE posterior (each rater's spamming probability)",
}
AGGREGATORS: tuple[str, ...] = tuple(_DESCRIPTIONS)
_EPS = 1e-10  # crowd-kit's floor on probabilities


def check_aggregator(name: Any) -> str:
    """``name`` if it is one of :data:`AGGREGATORS`, else a ValueError listing them."""
    if not isinstance(name, str) or name not in _DESCRIPTIONS:
        raise ValueError(f"unknown aggregator {name!r}; known: {', '.join(AGGREGATORS)}")
    return name


def describe_aggregator(name: str) -> str:
    """One line saying what the aggregator's soft label is."""
    return _DESCRIPTIONS[check_aggregator(name)]


# --------------------------------------------------------------------------- codes


def _check_codes(x, name: str, upper: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr.astype(np.float64))) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must hold integer codes")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= upper):
        raise ValueError(f"{name} must lie in 0..{upper - 1}, found {arr.min()}..{arr.max()}")
    return arr


def _check_sizes(**sizes: Any) -> None:
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if sizes.get("n_classes", 2) < 2:
        raise ValueError(f"n_classes must be at least 2, got {sizes['n_classes']}")


def _categorical_codes(item, rater, label, n_items: int, n_raters: int, n_classes: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked (item, rater, label) code arrays of R single categorical ratings."""
    _check_sizes(n_items=n_items, n_raters=n_raters, n_classes=n_classes)
    i = _check_codes(item, "item", n_items)
    r = _check_codes(rater, "rater", n_raters)
    lab = _check_codes(label, "label", n_classes)
    if not (len(i) == len(r) == len(lab)):
        raise ValueError(f"item, rater and label must have the same length, got "
                         f"{len(i)}, {len(r)}, {len(lab)}")
    return i, r, lab


def _per_item(item: np.ndarray, values: np.ndarray, n_items: int) -> np.ndarray:
    """(N, K) sums over each item's ratings of ``values`` (R, K)."""
    return np.stack([np.bincount(item, weights=values[:, j], minlength=n_items)
                     for j in range(values.shape[1])], axis=1)


def _softmax_rows(log_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norm = logsumexp(log_t, axis=1, keepdims=True)
    return np.exp(log_t - norm), norm


def vote_distribution(item, label, *, n_items: int, n_classes: int) -> np.ndarray:
    """(N, K) vote fractions per item (majority vote's soft form); uniform for unrated items."""
    i = _check_codes(item, "item", n_items)
    lab = _check_codes(label, "label", n_classes)
    votes = np.zeros((n_items, n_classes))
    np.add.at(votes, (i, lab), 1.0)
    count = votes.sum(axis=1, keepdims=True)
    return np.where(count > 0, votes / np.maximum(count, 1), 1.0 / n_classes)


# --------------------------------------------------------------------------- Dawid–Skene


@dataclass(frozen=True)
class DawidSkeneResult:
    """posterior (N, K): P(true class | ratings) per item; confusion (M, K, K): rater m's
    P(says l | true j) at [m, j, l]; prior (K,); n_iter; log_likelihood (final, marginal);
    converged."""

    posterior: np.ndarray
    confusion: np.ndarray
    prior: np.ndarray
    n_iter: int
    log_likelihood: float
    converged: bool


def dawid_skene(item: Sequence[int], rater: Sequence[int], label: Sequence[int], *,
                n_items: int, n_raters: int, n_classes: int, max_iter: int = 200,
                tol: float = 1e-7, smoothing: float = 0.01) -> DawidSkeneResult:
    """Dawid–Skene EM over R single ratings (vectorised: one bincount per class per step).

    Parameters
    ----------
    item, rater, label : int arrays, shape (R,)
        Rating r says rater ``rater[r]`` gave item ``item[r]`` class ``label[r]``.
    n_items, n_raters, n_classes : sizes N, M, K
    smoothing : pseudo-count added to every confusion cell and class count (keeps log finite
        for raters who never used a class)

    Starts from the per-item vote fractions (soft majority vote), then alternates the M-step
    (priors, confusion matrices from the posteriors) and the E-step
    log T_ij = log p_j + Σ_{ratings of i} log π_{r, j, l} until the log likelihood changes by
    less than ``tol`` (relative). Items without ratings get the prior.
    """
    i, r, lab = _categorical_codes(item, rater, label, n_items, n_raters, n_classes)
    if smoothing < 0 or not np.isfinite(smoothing):
        raise ValueError(f"smoothing must be a finite number >= 0, got {smoothing!r}")
    k = n_classes
    post = vote_distribution(i, lab, n_items=n_items, n_classes=k)
    ll_old = -np.inf
    converged = False
    n_iter = 0
    cell = r * k + lab  # (R,) flat index of (rater, observed label)
    for step in range(1, max_iter + 1):
        n_iter = step
        # M-step
        prior = (post.sum(axis=0) + smoothing) / (n_items + k * smoothing)
        conf = np.stack([np.bincount(cell, weights=post[i, j], minlength=n_raters * k)
                         for j in range(k)], axis=0).reshape(k, n_raters, k)  # (j, m, l)
        conf = conf.transpose(1, 0, 2) + smoothing                             # (m, j, l)
        conf /= conf.sum(axis=2, keepdims=True)
        # E-step
        post, norm = _softmax_rows(_per_item(i, np.log(conf)[r, :, lab], n_items)
                                   + np.log(prior))
        ll = float(norm.sum())
        if abs(ll - ll_old) <= tol * max(1.0, abs(ll)):
            converged = True
            break
        ll_old = ll
    return DawidSkeneResult(post, conf, prior, n_iter, ll, converged)


# --------------------------------------------------------------------------- one-coin, GLAD, MACE


@dataclass(frozen=True)
class CrowdFit:
    """A fitted crowd model. posterior (N, K): P(true class | ratings) (items without ratings
    get the prior); rater (M,): one reliability per rater (one-coin: accuracy s_r; GLAD:
    ability α_r; MACE: P(not spamming)); item (N,): GLAD's easiness e^{β_i}, else empty;
    n_iter; converged (False when the iteration cap stopped it; MACE runs a fixed count)."""

    posterior: np.ndarray
    rater: np.ndarray
    item: np.ndarray
    n_iter: int
    converged: bool


def _rated_prior(post: np.ndarray, rated: np.ndarray) -> np.ndarray:
    prior = post[rated].mean(axis=0) if rated.any() else np.full(post.shape[1], 1 / post.shape[1])
    return np.clip(prior, _EPS, None)


def one_coin_dawid_skene(item, rater, label, *, n_items: int, n_raters: int, n_classes: int,
                         max_iter: int = 100, tol: float = 1e-5) -> CrowdFit:
    """One-coin Dawid–Skene EM (crowd-kit's ``OneCoinDawidSkene``): π_r[j, l] = s_r if l = j,
    else (1 − s_r)/(K − 1).

    Starts from the vote fractions; M-step: prior = mean posterior, s_r = mean over r's
    ratings of the posterior of the label given; E-step log T_ij = log p_j + Σ log π_r[j, l]
    (π clipped to [1e-10, 1 − 1e-10]); stops when the evidence lower bound per rating grows by
    less than ``tol``. Shapes as :func:`dawid_skene`.
    """
    i, r, lab = _categorical_codes(item, rater, label, n_items, n_raters, n_classes)
    k = n_classes
    rated = np.bincount(i, minlength=n_items) > 0
    n_rater = np.maximum(np.bincount(r, minlength=n_raters), 1)
    hit = np.arange(k)[None, :] == lab[:, None]                               # (R, K)

    def m_step(post: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        skill = np.bincount(r, weights=post[i, lab], minlength=n_raters) / n_rater
        right = np.clip(skill, _EPS, 1 - _EPS)[r, None]
        wrong = np.clip((1 - skill) / (k - 1), _EPS, 1 - _EPS)[r, None]
        return _rated_prior(post, rated), skill, np.log(np.where(hit, right, wrong))

    post = vote_distribution(i, lab, n_items=n_items, n_classes=k)
    prior, skill, log_pi = m_step(post)
    elbo_old, converged, n_iter = -np.inf, False, 0
    for step in range(1, max_iter + 1):
        n_iter = step
        post, _ = _softmax_rows(_per_item(i, log_pi, n_items) + np.log(prior))
        post[~rated] = prior
        prior, skill, log_pi = m_step(post)
        q = post[rated]
        elbo = ((post[i] * (log_pi + np.log(prior))).sum()
                - (np.clip(q, _EPS, None) * np.log(np.clip(q, _EPS, None))).sum()) / max(len(i), 1)
        if elbo - elbo_old < tol:
            converged = True
            break
        elbo_old = elbo
    return CrowdFit(post, skill, np.empty(0), n_iter, converged)


def _glad_terms(i, r, alpha, beta, k):
    """Per rating: log σ(α_r e^{β_i}) and log((1 − σ)/(K − 1)), and α_r e^{β_i}'s factor e^β."""
    e_beta = np.exp(beta[i])
    ab = alpha[r] * e_beta
    return log_expit(ab), log_expit(-ab) - np.log(k - 1), ab, e_beta


def _glad_posterior(i, r, lab, alpha, beta, k, n_items, log_prior):
    log_right, log_wrong, _, _ = _glad_terms(i, r, alpha, beta, k)
    log_t = np.bincount(i, weights=log_wrong, minlength=n_items)[:, None] + log_prior
    np.add.at(log_t, (i, lab), log_right - log_wrong)
    return _softmax_rows(log_t)[0]


def _glad_objective(x, i, r, q, k, n_raters):
    """−Q(α, β) and its gradient: Q = Σ_ratings [q log σ + (1 − q) log((1 − σ)/(K − 1))]
    + log N(α; 1, 1) + log N(β; 1, 1), q = the posterior of the label given."""
    alpha, beta = x[:n_raters], x[n_raters:]
    log_right, log_wrong, ab, e_beta = _glad_terms(i, r, alpha, beta, k)
    prior_a, prior_b = alpha - 1.0, beta - 1.0
    value = ((q * log_right + (1 - q) * log_wrong).sum()
             - 0.5 * (prior_a @ prior_a + prior_b @ prior_b)
             - 0.5 * np.log(2 * np.pi) * len(x))
    resid = q - np.exp(log_expit(ab))
    d_alpha = np.bincount(r, weights=resid * e_beta, minlength=n_raters) - prior_a
    d_beta = np.bincount(i, weights=resid * ab, minlength=len(beta)) - prior_b
    return -value, -np.concatenate([d_alpha, d_beta])


def glad(item, rater, label, *, n_items: int, n_raters: int, n_classes: int,
         max_iter: int = 100, tol: float = 1e-5, m_step_max_iter: int = 25,
         m_step_tol: float = 1e-2) -> CrowdFit:
    """GLAD EM (crowd-kit's ``GLAD``): P(rater r right on item i) = σ(α_r·e^{β_i}), a wrong
    answer uniform over the K − 1 others; uniform class prior; α, β ~ N(1, 1).

    E-step: the posterior T_ij; M-step: conjugate gradients (``m_step_max_iter`` steps,
    ``m_step_tol``) on the expected log likelihood Q plus the priors; stops when Q per
    (rating, class) pair grows by less than ``tol``. ``item`` of the result is e^{β_i}.
    """
    i, r, lab = _categorical_codes(item, rater, label, n_items, n_raters, n_classes)
    k = n_classes
    log_prior = np.full(k, -np.log(k))
    x = np.ones(n_raters + n_items)
    q_total, converged, n_iter = -np.inf, False, 0
    for step in range(1, max_iter + 1):
        n_iter = step
        post = _glad_posterior(i, r, lab, x[:n_raters], x[n_raters:], k, n_items, log_prior)
        q = post[i, lab]
        res = minimize(_glad_objective, x, args=(i, r, q, k, n_raters), jac=True, method="CG",
                       tol=m_step_tol, options={"maxiter": m_step_max_iter})
        x = res.x
        q_new = -float(res.fun) / max(len(i) * k, 1)
        if q_new - q_total < tol:
            converged = True
            break
        q_total = q_new
    return CrowdFit(post, x[:n_raters].copy(), np.exp(x[n_raters:]), n_iter, converged)


def _mace_e_step(i, r, lab, spam, strategy, k, n_items):
    """Posterior (N, K), log marginal likelihood, and per rating P(rater was spamming)."""
    a = spam[r, 0] * strategy[r, lab]            # P(says l | spamming) · P(spamming)
    b = a + spam[r, 1]                           # … + P(knowing): when l is the true class
    log_gold = np.bincount(i, weights=np.log(a), minlength=n_items)[:, None] - np.log(k)
    log_gold = np.repeat(log_gold, k, axis=1)
    np.add.at(log_gold, (i, lab), np.log(b) - np.log(a))
    post, norm = _softmax_rows(log_gold)
    t_true = post[i, lab]
    spamming = (1 - t_true) + t_true * a / b
    return post, float(norm.sum()), spamming, t_true * spam[r, 1] / b


def mace(item, rater, label, *, n_items: int, n_raters: int, n_classes: int, n_iter: int = 50,
         alpha: float = 0.5, beta: float = 0.5, strategy_prior: float = 10.0,
         default_noise: float = 0.5, random_state: int = 0) -> CrowdFit:
    """MACE with variational Bayes (crowd-kit's ``MACE``, method "vb"): the true class is
    uniform; rater r spams with probability 1 − θ_r and then says class l with probability
    ξ_r[l]; Beta(alpha, beta) prior on (spamming, knowing), Dirichlet(strategy_prior) on ξ_r.

    One start from crowd-kit's initialisation (uniform draws in [1, 2 + default_noise] from
    ``RandomState(random_state)``, normalised; crowd-kit's restarts all reuse that seed, so
    they repeat this one start), then ``n_iter`` (M-step, E-step) rounds.
    """
    i, r, lab = _categorical_codes(item, rater, label, n_items, n_raters, n_classes)
    k = n_classes
    draw = np.random.RandomState(random_state)
    spam = 1.0 + (1.0 + default_noise) * draw.random_sample((n_raters, 2))
    spam /= spam.sum(axis=1, keepdims=True)
    draw = np.random.RandomState(random_state)   # crowd-kit draws both from the same seed
    strategy = 1.0 + (1.0 + default_noise) * draw.random_sample((n_raters, k))
    strategy /= strategy.sum(axis=1, keepdims=True)
    post, _, spamming, knowing = _mace_e_step(i, r, lab, spam, strategy, k, n_items)
    for _ in range(n_iter):
        counts = np.stack([np.bincount(r, weights=spamming, minlength=n_raters),
                           np.bincount(r, weights=knowing, minlength=n_raters)], axis=1)
        spam = np.exp(digamma(counts + [alpha, beta])
                      - digamma((counts + [alpha, beta]).sum(axis=1, keepdims=True)))
        used = np.zeros((n_raters, k))
        np.add.at(used, (r, lab), spamming)
        strategy = np.exp(digamma(used + strategy_prior)
                          - digamma((used + strategy_prior).sum(axis=1, keepdims=True)))
        post, _, spamming, knowing = _mace_e_step(i, r, lab, spam, strategy, k, n_items)
    return CrowdFit(post, spam[:, 1] / spam.sum(axis=1), np.empty(0), n_iter, False)


# --------------------------------------------------------------------------- Likert


def bias_corrected_means(item: Sequence[int], rater: Sequence[int], value: Sequence[float], *,
                         n_items: int, n_raters: int, low: float | None = None,
                         high: float | None = None, n_iter: int = 50, shrinkage: float = 1.0,
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item means with each rater's bias removed and noisy raters down-weighted.

    Model v_ir = μ_i + b_r + ε_ir, ε_ir ~ N(0, σ_r²), fitted by alternating weighted least
    squares: μ_i = Σ_r w_r (v_ir − b_r) / Σ_r w_r with w_r = 1/σ_r²;
    b_r = Σ_i (v_ir − μ_i) / (n_r + shrinkage) (shrunk towards 0 for raters with few items),
    then centred so that the biases average 0 over the ratings (the model fixes μ only up to a
    shift; this keeps the overall mean level); σ_r² from the residuals with a pooled prior of
    two pseudo-ratings.

    Parameters
    ----------
    item, rater : int arrays (R,); value : float array (R,)
    low, high : optional scale end points; the means are clipped to them

    Returns
    -------
    means (N,) — NaN for items without ratings; bias (M,); weight (M,) = 1/σ_r²
    """
    i = _check_codes(item, "item", n_items)
    r = _check_codes(rater, "rater", n_raters)
    v = np.asarray(value, dtype=np.float64)
    if v.shape != i.shape or r.shape != i.shape:
        raise ValueError(f"item, rater and value must have the same shape (R,), got "
                         f"{i.shape}, {r.shape}, {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("value must be finite (no NaN or inf)")
    if shrinkage < 0:
        raise ValueError(f"shrinkage must be >= 0, got {shrinkage!r}")
    n_item = np.bincount(i, minlength=n_items).astype(np.float64)
    n_rater = np.bincount(r, minlength=n_raters).astype(np.float64)
    bias = np.zeros(n_raters)
    weight = np.ones(n_raters)
    pooled = max(float(np.var(v)) if v.size > 1 else 1.0, 1e-6)
    for _ in range(n_iter):
        mean = _weighted_item_means(i, v - bias[r], weight[r], n_items)
        new_bias = np.bincount(r, weights=v - mean[i], minlength=n_raters) / (n_rater + shrinkage)
        new_bias -= new_bias[r].mean() if v.size else 0.0
        resid = v - mean[i] - new_bias[r]
        # a rater alone on an item has residual 0 there; the prior keeps σ² away from 0
        var = ((np.bincount(r, weights=resid**2, minlength=n_raters) + 2.0 * pooled)
               / (n_rater + 2.0))
        new_weight = 1.0 / var
        done = np.allclose(new_bias, bias, atol=1e-9) and np.allclose(new_weight, weight,
                                                                      rtol=1e-9)
        bias, weight = new_bias, new_weight
        if done:
            break
    mean = _weighted_item_means(i, v - bias[r], weight[r], n_items)
    mean[n_item == 0] = np.nan
    if low is not None or high is not None:
        mean = np.clip(mean, low, high)
    return mean, bias, weight


def _weighted_item_means(i: np.ndarray, v: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.bincount(i, weights=w * v, minlength=n)
                / np.bincount(i, weights=w, minlength=n))


# --------------------------------------------------------------------------- long ratings table


_MODELS: dict[str, Callable[..., Any]] = {
    "ds": dawid_skene, "one-coin": one_coin_dawid_skene, "glad": glad, "mace": mace,
}


def fit_categorical(aggregator: str, item, rater, label, *, n_items: int, n_raters: int,
                    n_classes: int, **kwargs) -> np.ndarray:
    """(N, K) soft labels of categorical ratings given as codes, by ``aggregator``; keyword
    arguments go to the model function."""
    name = check_aggregator(aggregator)
    if name == "votes":
        if kwargs:
            raise ValueError(f"aggregator 'votes' takes no options, got {sorted(kwargs)}")
        return vote_distribution(item, label, n_items=n_items, n_classes=n_classes)
    return _MODELS[name](item, rater, label, n_items=n_items, n_raters=n_raters,
                         n_classes=n_classes, **kwargs).posterior


def _scale_table(ratings: pd.DataFrame, item_ids, scale: str
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Index, pd.Index]:
    """Codes of one scale's ratings: (item positions in item_ids, rater codes, values, items,
    raters). Ratings of items outside ``item_ids`` are ignored."""
    if not isinstance(ratings, pd.DataFrame):
        raise TypeError(f"ratings must be a pandas DataFrame, got {type(ratings).__name__}")
    missing = [c for c in ("item_id", "rater_id", "scale", "value") if c not in ratings.columns]
    if missing:
        raise ValueError(f"ratings is missing column(s) {missing}; "
                         "expected the long table item_id, rater_id, scale, value")
    items = pd.Index(item_ids)
    if items.has_duplicates:
        raise ValueError("item_ids must be unique")
    rows = ratings[ratings["scale"] == scale]
    pos = items.get_indexer(rows["item_id"])
    rows = rows[pos >= 0]
    pos = pos[pos >= 0]
    rater_codes, raters = pd.factorize(rows["rater_id"], sort=True)
    values = pd.to_numeric(rows["value"], errors="coerce").to_numpy(np.float64)
    if np.isnan(values).any():
        raise ValueError(f"ratings['value'] of scale {scale!r} has missing or non-numeric entries")
    return pos.astype(np.int64), rater_codes.astype(np.int64), values, items, pd.Index(raters)


def aggregate_soft_labels(ratings: pd.DataFrame, item_ids, scale: str, scale_meta: Any,
                          aggregator: str = DEFAULT_AGGREGATOR, **kwargs) -> np.ndarray:
    """One soft label per item for one scale of the long ratings table, by ``aggregator``.

    ``votes``: :func:`affectlab.labels.soft_labels_from_ratings` (SPEC §1). The others:
    categorical scales get the model's posterior, shape (n, K); Likert scales get
    ``likert_to_soft`` of :func:`bias_corrected_means`, shape (n, 2). Items without ratings on
    ``scale`` get NaN rows. Extra keyword arguments go to the model function. Raises
    :class:`~affectlab.agreement.AnonymousRatingsError` for anonymous votes under a per-rater
    model.
    """
    name = check_aggregator(aggregator)
    typed = as_scale(scale_meta, "scale_meta")
    if name == "votes":
        if kwargs:
            raise ValueError(f"aggregator 'votes' takes no options, got {sorted(kwargs)}")
        return soft_labels_from_ratings(ratings, item_ids, scale, typed)
    pos, rater, values, items, raters = _scale_table(ratings, item_ids, scale)
    require_rater_ids(ratings, scale, _MODEL_NAMES[name] if typed.categorical
                      else "bias-corrected means")
    typed.check_values(values, f"ratings['value'] (scale {scale!r})")
    n = len(items)
    k = typed.num_classes if typed.categorical else 2
    out = np.full((n, k), np.nan)
    if len(values) == 0:
        return out
    rated = np.bincount(pos, minlength=n) > 0
    n_raters = max(len(raters), 1)
    if typed.categorical:
        post = fit_categorical(name, pos, rater, values.astype(np.int64), n_items=n,
                               n_raters=n_raters, n_classes=k, **kwargs)
        out[rated] = post[rated]
        return out
    lo, hi = typed.value_range()
    mean, _, _ = bias_corrected_means(pos, rater, values, n_items=n, n_raters=n_raters,
                                      low=lo, high=hi, **kwargs)
    out[rated] = likert_to_soft(mean[rated, None], lo, hi)
    return out
