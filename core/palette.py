"""Qualitative colours sized to the number of groups, for every categorical plot (the Explore map,
the Runs comparison).

:func:`qualitative` picks the smallest of three well-known palettes that has a colour per group:
D3's Category10 (≤ 10 groups), plotly's Dark24 (≤ 24), Alphabet (≤ 26, Green-Armytage's 26
maximally distinct colours). Beyond 26 no palette keeps every colour apart, so groups reuse the
26 colours with a different marker symbol per round, and :attr:`Palette.note` says so (the page
shows it).
"""

from __future__ import annotations

from dataclasses import dataclass

from plotly.colors import qualitative as _q

__all__ = ["MAX_DISTINCT_COLOURS", "SYMBOLS", "Palette", "qualitative"]

# (largest group count, colours), smallest first
_PALETTES: tuple[tuple[int, tuple[str, ...]], ...] = (
    (10, tuple(_q.D3)), (24, tuple(_q.Dark24)), (26, tuple(_q.Alphabet)))
MAX_DISTINCT_COLOURS = _PALETTES[-1][0]
# marker symbols WebGL (Scattergl) draws as well as SVG, one per round of 26 colours
SYMBOLS = ("circle", "square", "diamond", "cross", "x", "triangle-up", "triangle-down", "star")


@dataclass(frozen=True)
class Palette:
    """colours[i] and symbols[i] for group i; note: None, or why colour alone cannot separate
    the groups."""

    colours: tuple[str, ...]
    symbols: tuple[str, ...]
    note: str | None = None


def qualitative(n: int) -> Palette:
    """A colour (and marker symbol) for each of ``n`` groups; (colour, symbol) pairs are
    distinct for up to 26 × 8 = 208 groups."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    for size, colours in _PALETTES:
        if n <= size:
            return Palette(colours[:n], ("circle",) * n)
    colours = _PALETTES[-1][1]
    k = len(colours)
    note = (f"{n} groups: more than colour alone can tell apart ({k} distinct colours), so "
            f"groups after the {k}th repeat a colour with another marker symbol"
            + (" (and beyond 208 the pairs repeat too)" if n > k * len(SYMBOLS) else "")
            + ". Hover names a point's group; filter to fewer classes to compare them.")
    return Palette(tuple(colours[i % k] for i in range(n)),
                   tuple(SYMBOLS[(i // k) % len(SYMBOLS)] for i in range(n)), note)
