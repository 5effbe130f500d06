"""Input checks shared by every public function (scikit-learn style: name the argument and
what was expected).

:func:`check_scalar` is the one check of a scalar argument (type, bounds, allowed values): the
parameter declarations of the registries (:class:`affectlab.registry.Param`) and the functions'
own scalar arguments both go through it, and it raises :class:`ParamError`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Interval", "ParamError", "as_float_array", "check_distribution", "check_same_shape",
           "check_scalar", "expected_scalar"]


class ParamError(ValueError):
    """A parameter (of a model, loss, method, or a function's scalar argument) is unknown or
    has a bad value; the message names where, the parameter, what was expected and what was
    given. A ValueError, so existing ``except ValueError`` handlers keep working."""


def _num(x: float) -> str:
    return str(x) if isinstance(x, numbers.Integral) else f"{x:g}"


@dataclass(frozen=True)
class Interval:
    """Bounds of a number: ``low``/``high`` (None: unbounded), each closed unless ``*_open``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __post_init__(self) -> None:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"interval low {self.low} > high {self.high}")

    def __contains__(self, x: float) -> bool:
        if self.low is not None and (x <= self.low if self.low_open else x < self.low):
            return False
        return self.high is None or (x < self.high if self.high_open else x <= self.high)

    def __str__(self) -> str:
        """'> 0', '≥ 1', '≤ 4', 'in [0, 1)'; '' when unbounded."""
        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}"
                    f"{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{'>' if self.low_open else '≥'} {_num(self.low)}"
        if self.high is not None:
            return f"{'<' if self.high_open else '≤'} {_num(self.high)}"
        return ""


_KIND_WORDS = {bool: "true or false", int: "an integer", float: "a finite number", str: "text",
               object: "any value"}


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type (True is not 1, 2.0 is not 2 for choices)."""
    return type(a) is type(b) and a == b


def expected_scalar(kind: type, interval: Interval | None = None, choices: tuple = (),
                    also: tuple = ()) -> str:
    """What :func:`check_scalar` asks for, in words: 'an integer ≥ 1 or 'bic''."""
    if choices:
        text = "one of " + ", ".join(map(str, choices))
    else:
        text = _KIND_WORDS[kind]
        if interval is not None and str(interval) and kind in (int, float):
            text += " " + str(interval)
    if also:
        text += " or " + " or ".join(map(repr, also))
    return text


def _kind_ok(value: Any, kind: type) -> bool:
    if kind is object:
        return True
    if kind is bool:
        return isinstance(value, bool | np.bool_)
    if isinstance(value, bool | np.bool_):
        return False
    if kind is int:
        return isinstance(value, numbers.Integral)
    if kind is float:
        try:
            return isinstance(value, numbers.Real) and math.isfinite(value)
        except OverflowError:  # an int beyond float range
            return False
    return isinstance(value, kind)


def check_scalar(value: Any, name: str, kind: type, *, interval: Interval | None = None,
                 choices: tuple = (), also: tuple = (), where: str = "") -> Any:
    """``value`` if it is of ``kind`` (bool, int, float: finite, ints accepted; str; object:
    anything), lies in ``interval`` and, with ``choices``, is one of them; values in ``also``
    pass as they are (SGM's ``'bic'`` beside an integer). Integers come back as int, numbers
    of a float parameter as float. Else :class:`ParamError`: "``where``: ``name`` must be …,
    got …"."""
    if any(_same(value, a) for a in also):
        return value
    ok = _kind_ok(value, kind)
    if ok and choices:
        ok = any(_same(value, c) for c in choices)
    if ok and interval is not None and kind in (int, float):
        ok = value in interval
    if not ok:
        prefix = f"{where}: " if where else ""
        raise ParamError(f"{prefix}{name} must be {expected_scalar(kind, interval, choices, also)}"
                         f", got {value!r}")
    if kind is int:
        return int(value)
    if kind is float:
        return float(value)
    if kind is bool:
        return bool(value)
    return value


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


def check_same_shape(a, b, name_a: str, name_b: str) -> None:
    """``a`` and ``b`` (numpy arrays or torch tensors) have the same shape."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
