"""The paired statistic of a claim: method vs baseline, one pair of values per seed.

Test: the two-sided **paired t-test** on the per-seed differences d_s = method_s − baseline_s
(``scipy.stats.ttest_rel``), with the 95 % confidence interval of the mean difference from the
t distribution with n − 1 degrees of freedom. The t-test is used rather than the Wilcoxon
signed-rank test because with the handful of seeds a study runs (3 by default) the signed-rank
test cannot reach p < 0.05 at all (its smallest two-sided p with 3 pairs is 0.25).

Verdict (``direction``: whether the claim says the method's value is ``higher`` or ``lower``):
*holds* when the mean difference lies in the claimed direction and p < 0.05, *reversed* when it
lies in the opposite direction and p < 0.05, *not shown* otherwise (including fewer than two
seeds, or differences that are all zero).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy import stats

__all__ = ["ALPHA", "HOLDS", "NOT_SHOWN", "REVERSED", "TEST_NAME", "PairedResult", "paired_test",
           "verdict"]

ALPHA = 0.05
TEST_NAME = "paired t-test (two-sided), CI from the t distribution"
HOLDS, NOT_SHOWN, REVERSED = "holds", "not shown", "reversed"
Direction = Literal["higher", "lower"]


@dataclass(frozen=True)
class PairedResult:
    """mean_diff = mean(method − baseline); ci95 = (low, high) of that mean; p_value of the
    paired t-test (None when it is undefined); n pairs."""

    mean_diff: float
    ci95: tuple[float, float]
    p_value: float | None
    n: int

    def to_dict(self) -> dict:
        out = asdict(self)
        out["ci95"] = list(self.ci95)
        return out


def paired_test(method: list[float], baseline: list[float]) -> PairedResult:
    """The paired t-test of ``method`` against ``baseline`` (same seeds, same order). NaN pairs
    (a metric a seed could not compute) are dropped."""
    a, b = np.asarray(method, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"method and baseline need one value per seed each, got {a.shape} and "
                         f"{b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    n = int(d.size)
    if n == 0:
        return PairedResult(float("nan"), (float("nan"), float("nan")), None, 0)
    mean = float(d.mean())
    if n < 2:
        return PairedResult(mean, (float("nan"), float("nan")), None, n)
    sd = float(d.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(mean)):
        # every seed gives the same difference (to rounding): no variance to test, and a
        # constant 0 is no effect
        p = None if mean == 0.0 else 0.0
        return PairedResult(mean, (mean, mean), p, n)
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    p = float(stats.ttest_rel(a[keep], b[keep]).pvalue)
    return PairedResult(mean, (mean - half, mean + half), p, n)


def verdict(result: PairedResult, direction: Direction) -> str:
    """holds / reversed / not shown (module docstring)."""
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    if result.p_value is None or not math.isfinite(result.mean_diff) or result.mean_diff == 0:
        return NOT_SHOWN
    claimed = result.mean_diff > 0 if direction == "higher" else result.mean_diff < 0
    if result.p_value < ALPHA:
        return HOLDS if claimed else REVERSED
    return NOT_SHOWN
