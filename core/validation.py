"""Input checks shared by every public function (scikit-learn style: name the argument and
what was expected)."""

from __future__ import annotations

import numpy as np


def as_float_array(x, name: str, *, ndim: int | tuple[int, ...] | None = None,
                   allow_nan: bool = False) -> np.ndarray:
    """``x`` as a float64 array, checked for dimensionality and NaN."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric, got {type(x).__name__}") from exc
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            want = " or ".join(f"{n}-D" for n in allowed)
            raise ValueError(f"{name} must be {want}, got shape {arr.shape}")
    if not allow_nan and np.isnan(arr).any():
        idx = tuple(int(i) for i in np.argwhere(np.isnan(arr))[0])
        raise ValueError(f"{name} contains NaN (first at index {idx})")
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains infinite values")
    return arr


def check_distribution(p: np.ndarray, name: str, *, atol: float = 1e-4) -> np.ndarray:
    """Rows of ``p`` (last axis) must be non-negative and sum to 1 within ``atol``."""
    if p.shape[-1] < 1:
        raise ValueError(f"{name} must have at least one class on its last axis, got {p.shape}")
    if (p < -atol).any():
        raise ValueError(f"{name} has negative entries (min {p.min():.4g}); expected probabilities")
    sums = p.sum(axis=-1)
    bad = np.abs(sums - 1.0) > atol
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0]) if sums.ndim else ()
        raise ValueError(
            f"{name} rows must sum to 1 (±{atol}); row {idx} sums to {float(sums[idx]):.6g}"
        )
    return p


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {a.shape} and {b.shape}")
