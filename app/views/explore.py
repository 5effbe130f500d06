"""Explore: a run's test embeddings as a 2-D map; select points to see and hear the items."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from affectlab.app.signin import require_owner
from affectlab.data.contract import ContractError, load_dataset
from affectlab.engine.rundir import RunDir
from affectlab.explore.colour import colour_options, colour_values, subclass_medoids
from affectlab.explore.projection import (
    ensure_umap_async,
    load_umap,
    nearest_neighbours,
    run_projection,
    umap_status,
)
from affectlab.explore.run_outputs import load_run_outputs
from affectlab.explore.selection import group_rows, item_cards, selection_rows

MAX_CARDS = 24
# Up to this many points the map is SVG (go.Scatter): crisp, and drawn without WebGL (which a
# browser may lack, e.g. a VM without GPU); beyond it WebGL (go.Scattergl) keeps panning fast.
SVG_MAX_POINTS = 5_000


def _stamp(run_path) -> float:
    try:
        return RunDir(run_path).outputs_stamp()
    except OSError:
        return 0.0


@st.cache_resource(show_spinner="Loading run outputs …", max_entries=4)
def _outputs(path: str, stamp: float):
    return load_run_outputs(path)


@st.cache_resource(show_spinner=False, max_entries=4)
def _dataset(path: str):
    try:
        return load_dataset(path, validate=False)
    except (ContractError, OSError):
        return None


@st.cache_resource(show_spinner="Fitting PCA …", max_entries=4)
def _pca(path: str, stamp: float) -> np.ndarray:
    outputs = _outputs(path, stamp)
    return run_projection(path, outputs.embeddings).transform(outputs.embeddings)


@st.cache_resource(show_spinner="Colouring …", max_entries=16)
def _colouring(path: str, stamp: float, keep: tuple[int, ...], by: str, dataset: str):
    """Cached: sub-class discovery fits Gaussian mixtures, the rest is cheap but repeated on
    every selection."""
    ds = _dataset(dataset) if dataset else None
    out = _outputs(path, stamp).take(np.asarray(keep, dtype=np.int64))
    return colour_values(out, by, ds.items if ds is not None else None)


@st.cache_resource(show_spinner="Finding sub-class centres …", max_entries=8)
def _medoids(path: str, stamp: float, keep: tuple[int, ...]):
    return subclass_medoids(_outputs(path, stamp).take(np.asarray(keep, dtype=np.int64)), k=4)


@st.fragment(run_every=2.0)
def _umap_watch(path: str, was_ready: bool) -> None:
    """Poll the background UMAP worker; rerun the page once its layout lands on disk."""
    status = umap_status(path)
    if status == "ready" and not was_ready:
        st.rerun(scope="app")
    elif status == "running":
        st.caption("UMAP layout is being computed in the background; the map switches when "
                   "it is ready (the first time takes about a minute).")
    elif status == "failed":
        st.caption("UMAP failed for this run; see outputs/umap.error. Showing PCA.")


def _figure(xy: np.ndarray, colouring, traces, hover: np.ndarray) -> go.Figure:
    fig = go.Figure()
    trace_type = go.Scatter if len(xy) <= SVG_MAX_POINTS else go.Scattergl
    for name, rows in traces:
        marker = {"size": 6, "opacity": 0.8}
        if not colouring.categorical:
            marker.update(color=colouring.values[rows], colorscale="Viridis", showscale=True,
                          colorbar={"title": colouring.name})
        fig.add_trace(trace_type(
            x=xy[rows, 0], y=xy[rows, 1], mode="markers", name=name, marker=marker,
            customdata=rows, text=hover[rows],
            hovertemplate="%{text}<extra>%{fullData.name}</extra>"))
    fig.update_layout(height=560, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      dragmode="lasso", legend={"title": colouring.name},
                      showlegend=colouring.categorical)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, scaleanchor="x")
    return fig


def _cards(cards, modality: str, per_row: int = 4) -> None:
    for start in range(0, len(cards), per_row):
        cols = st.columns(per_row)
        for col, card in zip(cols, cards[start:start + per_row], strict=False):
            with col:
                if card.media is not None and card.media.is_file():
                    if modality == "speech":
                        st.audio(str(card.media))
                    else:
                        st.image(str(card.media), width=96)
                st.caption(card.caption)
                if not card.distributions.empty and card.distributions.shape[1]:
                    st.bar_chart(card.distributions, height=150, horizontal=True, stack=False)


require_owner()
st.title("Explore")
runs = [r.summary() for r in RunDir.list(has_outputs=True)]
if not runs:
    st.info("No finished run with test outputs yet. Train one on the **Train** page; its test "
            "embeddings appear here as a map.")
    st.stop()

by_name = {r.name: r for r in runs}
run_name = st.selectbox("Run", list(by_name), key="explore_run",
                        format_func=lambda n: f"{n} · {by_name[n].method} · {by_name[n].model} "
                                              f"· {by_name[n].dataset}")
run = by_name[run_name]
path, stamp = str(run.path), _stamp(run.path)
outputs = _outputs(path, stamp)
if outputs.embeddings is None:
    st.warning(f"Run {run_name} saved no embeddings; nothing to map.")
    st.stop()

full_xy_pca = _pca(path, stamp)  # fitted on every saved item, persisted with the run
if len(outputs.splits) > 1:
    default = ["test"] if "test" in outputs.splits else outputs.splits
    splits = st.multiselect("Splits", outputs.splits, default=default, key="explore_splits")
    keep = np.flatnonzero(outputs.table["split"].astype(str).isin(splits or outputs.splits))
else:
    keep = np.arange(outputs.n)
full_embeddings = outputs.embeddings
outputs = outputs.take(keep)
ds = _dataset(str(outputs.dataset_path)) if outputs.dataset_path else None
items = ds.items if ds is not None else None
modality = ds.modality if ds is not None else (run.modality or "face")

c1, c2, c3 = st.columns([2, 1, 1])
colour_by = c1.selectbox("Colour by", colour_options(outputs, items), key="explore_colour")
status = ensure_umap_async(path)
umap_xy = load_umap(path, full_embeddings) if status == "ready" else None
layouts = ["UMAP", "PCA"] if umap_xy is not None else ["PCA"]
layout = c2.radio("Layout", layouts, key="explore_layout", horizontal=True)
k = c3.number_input("Neighbours", 1, 50, 8, key="explore_k")
_umap_watch(path, umap_xy is not None)

xy = (umap_xy if layout == "UMAP" and umap_xy is not None else full_xy_pca)[keep]
colouring = _colouring(path, stamp, tuple(keep.tolist()), colour_by,
                       str(outputs.dataset_path) if ds is not None else "")
traces = group_rows(colouring.values, colouring.categorical)
hover = np.array([f"{iid}: {v}" if colouring.categorical else f"{iid}: {float(v):.3f}"
                  for iid, v in zip(outputs.item_ids, colouring.values, strict=True)])
event = st.plotly_chart(_figure(xy, colouring, traces, hover), key="explore_map",
                        on_select="rerun", selection_mode=("box", "lasso", "points"))
st.caption(f"{outputs.n} items · {layout} of {outputs.embeddings.shape[1]}-d embeddings. "
           "Box or lasso to select; click one point for its neighbours.")

# dict access: the event is a dict subclass (AttributeDictionary) in the app, a dict in tests
points = ((event or {}).get("selection") or {}).get("points") or []
rows = selection_rows(points, [r for _, r in traces])
root = ds.root if ds is not None else None
if len(rows):
    st.subheader(f"Selected: {len(rows)} item{'s' if len(rows) != 1 else ''}"
                 + (f" (first {MAX_CARDS} shown)" if len(rows) > MAX_CARDS else ""))
    _cards(item_cards(outputs, rows[:MAX_CARDS], items, root), modality)
    anchor = int(rows[0])
    st.subheader(f"Nearest neighbours of {outputs.item_ids[anchor]}")
    nn, dist = nearest_neighbours(outputs.embeddings, anchor, int(k))
    _cards(item_cards(outputs, [anchor, *nn.tolist()], items, root), modality)
    st.caption("distances: " + ", ".join(f"{d:.3f}" for d in dist))
else:
    st.info("Select points on the map (box, lasso or click) to see the items behind them.")

if colour_by == "sub-class":
    st.subheader("Sub-classes: the items nearest each centre (medoid first)")
    for name, medoid_rows in _medoids(path, stamp, tuple(keep.tolist())):
        st.markdown(f"**{name}**")
        _cards(item_cards(outputs, medoid_rows.tolist(), items, root), modality)
