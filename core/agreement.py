"""Inter-rater agreement from the long ratings table (SPEC §1, §7).

- :func:`krippendorff_alpha`: Krippendorff's α through the ``krippendorff`` package, for one
  scale, at the nominal, ordinal, interval or ratio level.
- :func:`rater_agreement`: one number per rater, that rater against the leave-one-out consensus
  of the other raters on the items it rated (finds careless raters and spammers).
- :func:`reliability_matrix`: the raters × items matrix (NaN = not rated) behind α.

Every function takes the contract's long table (columns ``item_id``, ``rater_id``, ``value`` and,
when it holds several scales, ``scale``); a rater rates an item at most once per scale
(``duplicates="last"`` keeps the later row instead of raising).

Anonymous votes (``rater_id`` null, the contract's mark for sources that publish vote counts,
not raters: FER+, CREMA-D's tabulated votes) count for α, which needs only how often each value
was given to each item; per-rater statistics (:func:`rater_agreement`,
:func:`reliability_matrix`, Dawid–Skene in :mod:`affectlab.annotate.aggregate`) refuse them
through :func:`require_rater_ids` (:class:`AnonymousRatingsError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import krippendorff
import numpy as np
import pandas as pd

from affectlab.scales import as_scale

__all__ = [
    "LEVELS",
    "AnonymousRatingsError",
    "anonymous_mask",
    "default_level",
    "krippendorff_alpha",
    "rater_agreement",
    "reliability_matrix",
    "require_rater_ids",
]

LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")

_STATISTIC = {
    "nominal": "accuracy vs leave-one-out plurality (ties: 1/m credit)",
    "ordinal": "Spearman rho vs leave-one-out mean",
    "interval": "Pearson r vs leave-one-out mean",
    "ratio": "Pearson r vs leave-one-out mean",
}


def default_level(scale_meta: Any) -> str:
    """The level of measurement of a scale (a typed scale or its entry of meta['scales']).

    nominal → "nominal", ordinal → "ordinal", likert / interval → "interval": soft labels treat
    a Likert rating as a point on a line ((r − low)/(high − low)), so its agreement is measured
    the same way.
    """
    return as_scale(scale_meta, "scale_meta").level


class AnonymousRatingsError(ValueError):
    """Per-rater statistics asked of ratings without rater identities."""


def anonymous_mask(ratings: pd.DataFrame) -> np.ndarray:
    """(R,) bool: rows without a rater (``rater_id`` null: an anonymous vote)."""
    return ratings["rater_id"].isna().to_numpy()


def require_rater_ids(ratings: pd.DataFrame, scale: str | None = None,
                      what: str | None = None) -> None:
    """Raise :class:`AnonymousRatingsError` when a rating (of ``scale``, if given) has no rater;
    ``what`` names the statistic in the message. A table without ``rater_id`` passes (the
    column check belongs to the caller)."""
    if not isinstance(ratings, pd.DataFrame) or "rater_id" not in ratings.columns:
        return
    if scale is not None and "scale" in ratings.columns:
        ratings = ratings.loc[ratings["scale"] == scale]
    anonymous = anonymous_mask(ratings)
    if anonymous.any():
        which = f"scale {scale!r}" if scale is not None else "these ratings"
        raise AnonymousRatingsError(
            f"ratings of {which} are anonymous vote counts ({int(anonymous.sum())} of "
            f"{len(anonymous)} have no rater_id, as FER+ and CREMA-D's tabulated votes publish "
            f"them); per-rater statistics{f' ({what})' if what else ''} need rater identities")


@dataclass(frozen=True)
class _Coded:
    """One scale's ratings as integer codes: row r is rater ``rater[r]`` on item ``item[r]``."""

    item: np.ndarray      # (R,) int codes into item_ids
    rater: np.ndarray     # (R,) int codes into rater_ids
    value: np.ndarray     # (R,) float
    item_ids: pd.Index    # (N,) sorted
    rater_ids: pd.Index   # (M,) sorted


def _check_level(level: str) -> str:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    return level


def _code(ratings: pd.DataFrame, scale: str | None, duplicates: str) -> _Coded:
    if not isinstance(ratings, pd.DataFrame):
        raise TypeError(f"ratings must be a pandas DataFrame, got {type(ratings).__name__}")
    if duplicates not in ("raise", "last"):
        raise ValueError(f"duplicates must be 'raise' or 'last', got {duplicates!r}")
    need = ["item_id", "rater_id", "value"] + (["scale"] if scale is not None else [])
    missing = [c for c in need if c not in ratings.columns]
    if missing:
        raise ValueError(f"ratings is missing column(s) {missing}; "
                         "expected the long table item_id, rater_id, scale, value")
    if scale is not None:
        ratings = ratings.loc[ratings["scale"] == scale]
    elif "scale" in ratings.columns and ratings["scale"].nunique() > 1:
        present = ", ".join(map(str, ratings["scale"].unique()))
        raise ValueError(f"ratings holds several scales ({present}); pass scale= to pick one")
    if ratings.empty:
        raise ValueError(f"ratings has no rows{f' for scale {scale!r}' if scale else ''}")
    values = pd.to_numeric(ratings["value"], errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        row = int(np.argmax(~np.isfinite(values)))
        raise ValueError(f"ratings['value'] must be numeric and finite; row {row} is "
                         f"{ratings['value'].iloc[row]!r}")
    # Anonymous votes are distinct raters by definition, never duplicates of each other.
    dup = ratings.duplicated(["rater_id", "item_id"], keep="last").to_numpy() \
        & ~anonymous_mask(ratings)
    if dup.any():
        if duplicates == "raise":
            first = ratings.loc[dup].iloc[0]
            raise ValueError(f"ratings has more than one rating by rater {first['rater_id']!r} "
                             f"for item {first['item_id']!r}; pass duplicates='last' to keep the "
                             "later one")
        ratings, values = ratings.loc[~dup], values[~dup]
    item, item_ids = pd.factorize(ratings["item_id"], sort=True)
    rater, rater_ids = pd.factorize(ratings["rater_id"], sort=True)  # anonymous: code −1
    return _Coded(item, rater, values, pd.Index(item_ids), pd.Index(rater_ids))


def reliability_matrix(ratings: pd.DataFrame, scale: str | None = None, *,
                       duplicates: str = "raise") -> tuple[np.ndarray, pd.Index, pd.Index]:
    """The raters × items reliability matrix of one scale.

    Parameters
    ----------
    ratings : DataFrame with columns item_id, rater_id, value (and scale when ``scale`` is given)
    scale : which scale to use; None when the table holds one scale only

    Returns
    -------
    matrix : np.ndarray, shape (M raters, N items); NaN where a rater did not rate an item
    rater_ids : pd.Index, shape (M,), sorted, labelling the rows
    item_ids : pd.Index, shape (N,), sorted, labelling the columns

    Raises :class:`AnonymousRatingsError` for anonymous votes (a matrix needs raters).
    """
    require_rater_ids(ratings, scale, "the raters × items matrix")
    coded = _code(ratings, scale, duplicates)
    matrix = np.full((len(coded.rater_ids), len(coded.item_ids)), np.nan)
    matrix[coded.rater, coded.item] = coded.value
    return matrix, coded.rater_ids, coded.item_ids


def krippendorff_alpha(ratings: pd.DataFrame, scale: str | None = None, level: str = "nominal",
                       *, value_domain=None, duplicates: str = "raise") -> float:
    """Krippendorff's α of one scale, computed by the ``krippendorff`` package.

    The package gets the items × values count table (``krippendorff.alpha(value_counts=...)``:
    the same numbers as the raters × items reliability matrix, without building it, so memory
    stays O(items × values) for any number of raters). It needs no rater identities:
    anonymous votes (``rater_id`` null) count like any other rating.

    Parameters
    ----------
    ratings : DataFrame with columns item_id, rater_id, value (and scale when ``scale`` is given)
    scale : which scale to use; None when the table holds one scale only
    level : "nominal" (categories), "ordinal", "interval" (Likert) or "ratio"
    value_domain : optional sequence of the possible values (e.g. 1..5); every observed value
        must be in it. Unobserved values do not change α at any level.

    Returns
    -------
    float
        α ≤ 1 (1 = perfect agreement, 0 = chance). NaN when α is undefined: no item has two or
        more ratings, or all paired ratings carry one and the same value.
    """
    _check_level(level)
    coded = _code(ratings, scale, duplicates)
    observed = np.unique(coded.value)
    if value_domain is None:
        domain = observed
    else:
        domain = np.unique(np.asarray(value_domain, dtype=np.float64))
        outside = ~np.isin(observed, domain)
        if outside.any():
            raise ValueError(f"value_domain must contain every rating value; "
                             f"{observed[outside][0]:g} is not in it")
    value_code = np.searchsorted(domain, coded.value)
    n_items, n_values = len(coded.item_ids), len(domain)
    counts = np.bincount(coded.item * n_values + value_code,
                         minlength=n_items * n_values).reshape(n_items, n_values)
    pairable = counts.sum(axis=1) >= 2
    if not pairable.any() or np.count_nonzero(counts[pairable].sum(axis=0)) < 2:
        return float("nan")
    return float(krippendorff.alpha(value_counts=counts[pairable], value_domain=domain,
                                    level_of_measurement=level))


def _grouped_pearson(group: np.ndarray, x: np.ndarray, y: np.ndarray, n_groups: int
                     ) -> np.ndarray:
    """Pearson r of x and y within each group (NaN where either is constant)."""
    count = np.bincount(group, minlength=n_groups).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.bincount(group, weights=x, minlength=n_groups) / count
        my = np.bincount(group, weights=y, minlength=n_groups) / count
        dx, dy = x - mx[group], y - my[group]
        sxy = np.bincount(group, weights=dx * dy, minlength=n_groups)
        sxx = np.bincount(group, weights=dx * dx, minlength=n_groups)
        syy = np.bincount(group, weights=dy * dy, minlength=n_groups)
        # Relative tolerance: a constant group's centred sums are rounding noise, not variance.
        scale_x = np.bincount(group, weights=x * x, minlength=n_groups)
        scale_y = np.bincount(group, weights=y * y, minlength=n_groups)
        flat = (sxx <= 1e-12 * np.maximum(scale_x, 1e-300)) | \
               (syy <= 1e-12 * np.maximum(scale_y, 1e-300))
        r = np.where(flat, np.nan, sxy / np.sqrt(sxx * syy))
    return np.clip(r, -1.0, 1.0)


def _nominal_credit(coded: _Coded) -> tuple[np.ndarray, np.ndarray]:
    """Per rating: whether others rated the item, and the credit for matching their plurality."""
    values, value_code = np.unique(coded.value, return_inverse=True)
    n_items, n_values = len(coded.item_ids), len(values)
    counts = np.bincount(coded.item * n_values + value_code,
                         minlength=n_items * n_values).reshape(n_items, n_values)
    rows = np.arange(len(value_code))
    others = counts[coded.item]            # (R, V): the item's votes ...
    others[rows, value_code] -= 1           # ... minus this rating's own
    scored = others.sum(axis=1) > 0
    top = others.max(axis=1)
    n_top = (others == top[:, None]).sum(axis=1)
    # A tie among m classes gives 1/m: the expected accuracy if the tie were broken at random.
    credit = (others[rows, value_code] == top) / n_top
    return scored, credit


def _loo_mean(coded: _Coded) -> tuple[np.ndarray, np.ndarray]:
    """Per rating: whether others rated the item, and the mean of the others' ratings."""
    n_items = len(coded.item_ids)
    count = np.bincount(coded.item, minlength=n_items)[coded.item]
    total = np.bincount(coded.item, weights=coded.value, minlength=n_items)[coded.item]
    scored = count > 1
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(scored, (total - coded.value) / (count - 1), np.nan)
    return scored, mean


def rater_agreement(ratings: pd.DataFrame, scale: str | None = None, level: str = "nominal",
                    *, min_items: int = 3, duplicates: str = "raise") -> pd.DataFrame:
    """Each rater against the leave-one-out consensus of the other raters.

    Only items the rater rated and at least one other rater rated count. The statistic follows
    the level of measurement:

    - nominal: accuracy against the plurality vote of the other raters; when m classes tie for
      the plurality and the rater chose one of them, the item scores 1/m (0 otherwise).
    - ordinal: Spearman ρ (average ranks for ties) between the rater's ratings and the mean of
      the other raters' ratings on the same items.
    - interval / ratio: Pearson r between the rater's ratings and the others' mean.

    A correlation is NaN when the rater (or the consensus) is constant over its items; it lies
    in [−1, 1], accuracy in [0, 1].

    Parameters
    ----------
    ratings : DataFrame with columns item_id, rater_id, value (and scale when ``scale`` is given)
    scale : which scale to use; None when the table holds one scale only
    level : one of :data:`LEVELS`
    min_items : raters with fewer scored items get NaN agreement

    Returns
    -------
    DataFrame with one row per rater (sorted by rater_id): ``rater_id``, ``n_items`` (scored
    items), ``agreement``. ``df.attrs["statistic"]`` names the statistic.
    """
    _check_level(level)
    if isinstance(min_items, bool) or not isinstance(min_items, int | np.integer) or min_items < 1:
        raise ValueError(f"min_items must be a positive integer, got {min_items!r}")
    require_rater_ids(ratings, scale, "each rater against the others")
    coded = _code(ratings, scale, duplicates)
    n_raters = len(coded.rater_ids)
    if level == "nominal":
        scored, credit = _nominal_credit(coded)
        rater = coded.rater[scored]
        n_items = np.bincount(rater, minlength=n_raters)
        with np.errstate(invalid="ignore", divide="ignore"):
            agreement = np.bincount(rater, weights=credit[scored], minlength=n_raters) / n_items
    else:
        scored, consensus = _loo_mean(coded)
        rater, x, y = coded.rater[scored], coded.value[scored], consensus[scored]
        n_items = np.bincount(rater, minlength=n_raters)
        if level == "ordinal":
            ranks = pd.DataFrame({"rater": rater, "x": x, "y": y}).groupby("rater")[["x", "y"]]
            ranked = ranks.rank(method="average")
            x, y = ranked["x"].to_numpy(), ranked["y"].to_numpy()
        agreement = _grouped_pearson(rater, x, y, n_raters)
    agreement = np.where(n_items >= min_items, agreement, np.nan)
    out = pd.DataFrame({"rater_id": coded.rater_ids, "n_items": n_items.astype(np.int64),
                        "agreement": agreement.astype(np.float64)})
    out.attrs["statistic"] = _STATISTIC[level]
    return out
