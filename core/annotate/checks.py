"""Input checks shared by the rater and owner sides: scale definitions, rating values, names,
times. Each raises ValueError / TypeError naming the argument and the problem."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from typing import Any

import numpy as np

from affectlab.data.contract import SCALE_TYPES
from affectlab.scales import as_scale

__all__ = ["MAX_NAME_LEN", "DuplicateRatingError", "check_name", "check_scales",
           "check_time_spent", "check_value", "name_skeleton", "normal_name"]

MAX_NAME_LEN = 64


class DuplicateRatingError(ValueError):
    """The rater already rated this item on this scale with a different value."""


def check_scales(scales: Any, name: str = "scales") -> dict[str, dict[str, Any]]:
    """Validate scale definitions (typed scales or the contract's dicts, checked by
    :func:`affectlab.scales.as_scale`); return them as plain dicts, as the store keeps them.
    A campaign's nominal / ordinal scale needs at least two classes (one button is no choice)."""
    if not isinstance(scales, Mapping) or not scales:
        raise ValueError(f"{name} must be a non-empty dict {{scale: definition}}, got {scales!r}")
    out = {}
    for s, meta in scales.items():
        if not isinstance(s, str) or not s or len(s) > 64:
            raise ValueError(f"{name}: scale names must be non-empty strings ≤ 64 chars, got {s!r}")
        try:
            typed = as_scale(meta, f"{name}[{s!r}]")
        except TypeError as exc:  # not a dict: still a bad value, not a bad type of argument
            raise ValueError(f"{exc}; expected a 'type' in {SCALE_TYPES}") from exc
        if typed.categorical and typed.num_classes < 2:
            raise ValueError(f"{name}[{s!r}]: {typed.type} needs a 'names' list of ≥ 2 classes")
        out[s] = typed.to_json()
    return out


def check_value(scales: Mapping[str, Any], scale: str, value: Any) -> float:
    """A rating value as stored: a float in the scale's range.

    nominal / ordinal: a class index 0..K−1 (int, or a float with an integer value) or the class
    name; likert: a number in [low, high]. Raises ValueError / TypeError naming the problem.
    """
    if scale not in scales:
        raise ValueError(f"scale must be one of {sorted(scales)}, got {scale!r}")
    typed = as_scale(scales[scale], f"scales[{scale!r}]")
    if typed.categorical and isinstance(value, str):
        names = typed.class_names
        if value not in names:
            raise ValueError(f"value for scale {scale!r} must be one of {names}, got {value!r}")
        return float(names.index(value))
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"value for scale {scale!r} must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"value for scale {scale!r} must be finite, got {v}")
    lo, hi = typed.value_range()
    if not lo <= v <= hi:
        raise ValueError(f"value for scale {scale!r} must lie in [{lo:g}, {hi:g}], got {v:g}")
    if typed.categorical and v != round(v):
        raise ValueError(f"value for scale {scale!r} must be a class index, got {v:g}")
    return v


# bidi controls (embeddings, overrides, isolates) and marks: they reorder what the owner sees
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                  "\u200e\u200f\u061c")
_NOT_IN_NAMES = frozenset({"Cc", "Cs", "Co", "Cn", "Zl", "Zp"})
_INVISIBLE = frozenset({"Cf", "Mn", "Me"})  # format (zero-width …) and combining marks


def normal_name(name: str) -> str:
    """A name as :func:`check_name` stores it: NFKC-normalised, white space collapsed (no
    checks)."""
    return " ".join(unicodedata.normalize("NFKC", name).split())


def check_name(name: Any) -> str:
    """A rater's name as stored: NFKC-normalised (fullwidth and styled letters become plain
    ones), white space collapsed. Refuses control, private-use and unassigned characters,
    bidi controls anywhere, and a name of only format (zero-width) characters or marks."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    clean = normal_name(name)
    if not clean:
        raise ValueError("name must not be empty")
    if any(ch in _BIDI for ch in clean):
        raise ValueError(f"name must not contain text-direction controls, got {name!r}")
    if len(clean) > MAX_NAME_LEN or any(unicodedata.category(ch) in _NOT_IN_NAMES
                                        for ch in clean):
        raise ValueError(f"name must be ≤ {MAX_NAME_LEN} printable characters, got {name!r}")
    if not name_skeleton(clean).strip():
        raise ValueError(f"name must contain visible characters, got {name!r}")
    return clean


# Look-alikes of Latin letters, after the TR39 confusables (https://www.unicode.org/reports/
# tr39/#Confusable_Detection): a small hand-kept table of the common ones (Cyrillic, Greek,
# Armenian, dotless i), not the whole confusables.txt (no library for it is installed). Upper
# case first (casefolding Greek Eta gives eta, which looks like n, not h), then lower case.
_UPPER_LOOKALIKES = str.maketrans({
    **dict(zip("АВЕКМНОРСТХЅІЈ", "ABEKMHOPCTXSIJ", strict=True)),     # Cyrillic
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX", strict=True)),     # Greek
})
_LOWER_LOOKALIKES = str.maketrans({
    **dict(zip("аеорсухіјѕԁһԛԝӏьѵ", "aeopcyxijsdhqwlbv", strict=True)),  # Cyrillic
    **dict(zip("αορνικυχγ", "aopvikuxy", strict=True)),                # Greek
    **dict(zip("օսոհ", "ouuh", strict=True)),                          # Armenian
    "ı": "i", "ȷ": "j", "ℓ": "l", "ɑ": "a", "ɡ": "g",  # Latin
})


def name_skeleton(name: str) -> str:
    """What a name looks like, for telling look-alike names apart (after TR39's skeleton):
    compatibility-decomposed (fullwidth → ASCII), format characters (zero-width joiners,
    spaces …) and combining marks dropped, common look-alikes mapped to Latin, casefolded.
    Two names with one skeleton read the same to the owner."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in _INVISIBLE)
    text = text.translate(_UPPER_LOOKALIKES).casefold().translate(_LOWER_LOOKALIKES)
    return " ".join(text.split())


def check_time_spent(t: Any) -> float | None:
    if t is None:
        return None
    if isinstance(t, bool) or not isinstance(t, int | float | np.integer | np.floating):
        raise TypeError(f"time_spent must be seconds (a number) or None, got {type(t).__name__}")
    t = float(t)
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"time_spent must be a finite number of seconds >= 0, got {t}")
    return t
