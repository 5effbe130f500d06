"""The Explore page's plotly figures, built from numpy arrays (no per-point Python objects), so
a map of 100,000 items is built and serialised in a fraction of a second.

- :func:`map_figure`: the 2-D map, one trace per colour group (the colours of
  :func:`affectlab.pages.explore_colour.group_palette`) or one continuous trace; WebGL
  (``go.Scattergl``) past :data:`SVG_MAX_POINTS` points, SVG below. Each point carries its row in
  ``customdata[0]`` (so a selection maps back to the run's items without the trace layout), then
  its uncertainty on the [0, 1] scale and the method's raw value, for the hover.
- :func:`distribution_figure`: an item card's chart, one horizontal bar pair per class with every
  class named on the axis (annotated grey, predicted in colour; the page shows one legend for all
  cards).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from affectlab.pages.explore_colour import Colouring, UncertaintyScores, group_palette
from affectlab.pages.explore_selection import group_rows
from affectlab.palette import Palette

__all__ = ["ANNOTATED_COLOUR", "PREDICTED_COLOUR", "SVG_MAX_POINTS", "MapFigure",
           "distribution_figure", "map_figure"]

# Up to this many points the map is SVG (go.Scatter): crisp, one DOM node per point; beyond
# it WebGL (go.Scattergl) draws and pans 100,000 points smoothly.
SVG_MAX_POINTS = 2_000
UNKNOWN_COLOUR = "#B0B0B0"
ANNOTATED_COLOUR = "#9E9E9E"
PREDICTED_COLOUR = "#1F77B4"
MARKER_SIZE = {True: 4, False: 7}  # WebGL maps are dense: smaller markers


@dataclass(frozen=True)
class MapFigure:
    """figure; traces: the rows of each trace as drawn (for
    :func:`affectlab.pages.explore_selection.selection_rows`); palette: the categorical palette
    (None for a continuous colouring)."""

    figure: go.Figure
    traces: list[np.ndarray]
    palette: Palette | None
    webgl: bool


def _customdata(rows: np.ndarray, colouring: Colouring,
                uncertainty: UncertaintyScores | None) -> np.ndarray:
    """(m, 4) float32: row, the colouring's value (NaN when categorical), uncertainty on [0, 1],
    raw uncertainty (NaN when the run has none)."""
    out = np.full((len(rows), 4), np.nan, dtype=np.float32)
    out[:, 0] = rows
    if not colouring.categorical:
        out[:, 1] = colouring.values[rows]
    if uncertainty is not None:
        out[:, 2] = uncertainty.unit[rows]
        out[:, 3] = uncertainty.raw[rows]
    return out


def _hovertemplate(colouring: Colouring, uncertainty: UncertaintyScores | None,
                   finite: bool) -> str:
    parts = ["%{text}"]
    if not colouring.categorical and finite and colouring.name != "uncertainty":
        parts.append(f"{colouring.name} %{{customdata[1]:.3f}}")
    if uncertainty is not None:
        parts.append(f"uncertainty %{{customdata[2]:.2f}} ({uncertainty.raw_name()} "
                     "%{customdata[3]:.3f})")
    extra = "%{fullData.name}" if colouring.categorical else ""
    return "<br>".join(parts) + f"<extra>{extra}</extra>"


def map_figure(xy: np.ndarray, colouring: Colouring, item_ids: np.ndarray,
               uncertainty: UncertaintyScores | None = None, height: int = 560,
               revision: str = "") -> MapFigure:
    """The map of ``xy`` (n, 2) coloured by ``colouring`` (its values for the same n rows).

    item_ids: (n,) shown on hover; uncertainty: the same rows' scores (hover); revision: keeps
    zoom and pan across reruns while it stays the same (plotly ``uirevision``).
    """
    xy = np.asarray(xy, dtype=np.float32)
    n = len(xy)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"xy must be (n, 2), got shape {xy.shape}")
    if len(colouring.values) != n or len(item_ids) != n:
        raise ValueError(f"colouring values ({len(colouring.values)}) and item_ids "
                         f"({len(item_ids)}) must have one entry per point ({n})")
    webgl = n > SVG_MAX_POINTS
    scatter = go.Scattergl if webgl else go.Scatter
    ids = np.asarray(item_ids).astype(str)
    fig = go.Figure()
    traces: list[np.ndarray] = []
    palette = None

    def add(name: str, rows: np.ndarray, marker: dict, finite: bool = True) -> None:
        traces.append(rows)
        fig.add_trace(scatter(
            x=xy[rows, 0], y=xy[rows, 1], mode="markers", name=name, marker=marker,
            customdata=_customdata(rows, colouring, uncertainty), text=ids[rows],
            hovertemplate=_hovertemplate(colouring, uncertainty, finite)))

    size = MARKER_SIZE[webgl]
    if colouring.categorical:
        groups = group_rows(colouring.values, True, colouring.order)
        palette = group_palette([g for g, _ in groups])
        for (name, rows), colour, symbol in zip(groups, palette.colours, palette.symbols,
                                                strict=True):
            add(name, rows, {"size": size, "opacity": 0.8, "color": colour, "symbol": symbol})
    else:
        values = np.asarray(colouring.values, dtype=np.float64)
        finite = np.isfinite(values)
        rows = np.flatnonzero(finite)
        bar = {"title": {"text": colouring.name, "side": "right"}}
        marker = {"size": size, "opacity": 0.85, "color": values[rows].astype(np.float32),
                  "colorscale": "Viridis", "showscale": True, "colorbar": bar}
        if colouring.unit:
            marker.update(cmin=0.0, cmax=1.0)
        add(colouring.name, rows, marker)
        if not finite.all():
            add("unknown", np.flatnonzero(~finite),
                {"size": size, "opacity": 0.6, "color": UNKNOWN_COLOUR}, finite=False)
    fig.update_layout(
        height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, dragmode="pan",
        uirevision=revision or None, hovermode="closest",
        legend={"title": {"text": colouring.name}, "itemsizing": "constant"},
        showlegend=colouring.categorical or len(traces) > 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, scaleanchor="x")
    return MapFigure(fig, traces, palette, webgl)


def distribution_figure(distributions: pd.DataFrame, bar_height: int = 9) -> go.Figure:
    """One item's distributions: a (K, ≤ 2) frame indexed by class name (columns "annotated",
    "predicted", as :func:`affectlab.pages.explore_selection.item_cards` gives) as horizontal bars,
    every class named on the y axis, first class on top. No legend: the page shows one for all
    cards."""
    names = [str(c) for c in distributions.index]
    colours = {"annotated": ANNOTATED_COLOUR, "predicted": PREDICTED_COLOUR}
    fig = go.Figure()
    for col in distributions.columns:
        values = distributions[col].to_numpy(dtype=np.float64)
        fig.add_trace(go.Bar(
            x=values, y=names, orientation="h", name=str(col),
            marker={"color": colours.get(str(col), UNKNOWN_COLOUR)},
            hovertemplate=f"%{{y}}: %{{x:.2f}} ({col})<extra></extra>"))
    rows = max(len(distributions.columns), 1)
    fig.update_layout(
        barmode="group", showlegend=False, bargap=0.25, bargroupgap=0.05,
        height=30 + len(names) * rows * bar_height + len(names) * 4,
        margin={"l": 0, "r": 6, "t": 4, "b": 22})
    fig.update_yaxes(autorange="reversed", automargin=True, tickfont={"size": 11},
                     dtick=1, type="category")
    fig.update_xaxes(range=[0, 1], tickvals=[0, 0.5, 1], tickfont={"size": 9},
                     fixedrange=True)
    return fig
