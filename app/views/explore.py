"""Explore: a run's embeddings as a 2-D map (PCA at once, UMAP when its background worker is done);
filter it, select points (click, box, lasso) to see the items, and act on a selection: export it
as a dataset, or send it back to the crowd as an annotation campaign (campaign owner only)."""

from urllib.parse import urlsplit, urlunsplit

import numpy as np
import streamlit as st

from affectlab.app.signin import owner_annotate_session, owner_only, require_owner
from affectlab.data.contract import ContractError, load_dataset
from affectlab.engine.rundir import RunDir
from affectlab.explore.projection import (
    ensure_umap_async,
    load_umap,
    nearest_neighbours,
    run_projection,
    umap_info,
)
from affectlab.explore.run_outputs import load_run_outputs
from affectlab.pages.annotate_view import invite_base_url
from affectlab.pages.explore_actions import export_selection, selection_item_ids
from affectlab.pages.explore_colour import (
    colour_options,
    colour_values,
    run_uncertainty,
    subclass_medoids,
)
from affectlab.pages.explore_filters import MapFilter, filter_mask, filter_options
from affectlab.pages.explore_map import (
    ANNOTATED_COLOUR,
    PREDICTED_COLOUR,
    distribution_figure,
    map_figure,
)
from affectlab.pages.explore_selection import item_cards, selection_rows

MAX_CARDS = 24
PAGE_PATH = "/explore"  # this page's url_path (app/Home.py)
UMAP_SHOWN = "explore_umap_shown"  # the run whose UMAP layout the page has switched to
FIGURE = "explore_figure"  # what the map shows: (run, stamp, layout, colouring, filters)
SELECTED = "explore_selected"  # (run, rows of the run) last selected on the map
CHART_HAD = "explore_chart_had"  # the current figure's chart holds a selection
EXPORTED = "explore_exported"  # the last export's outcome (kind, message)
INVITED = "explore_invited"  # the last campaign's outcome (kind, message[, invite link])
FLIPPED = {"any": None, "flipped only": True, "not flipped": False}


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
    return run_projection(path).transform(_outputs(path, stamp).embeddings)


@st.cache_resource(show_spinner="Colouring …", max_entries=16)
def _colouring(path: str, stamp: float, by: str, dataset: str):
    """Of every item of the run (sub-class discovery fits Gaussian mixtures: once per run)."""
    ds = _dataset(dataset) if dataset else None
    return colour_values(_outputs(path, stamp), by, ds.items if ds is not None else None)


@st.cache_resource(show_spinner=False, max_entries=4)
def _uncertainty(path: str, stamp: float):
    return run_uncertainty(_outputs(path, stamp))


@st.cache_resource(show_spinner="Finding sub-class centres …", max_entries=4)
def _medoids(path: str, stamp: float):
    return subclass_medoids(_outputs(path, stamp), k=4)


@st.fragment(run_every=2.0)
def _umap_watch(path: str) -> None:
    """While the background worker runs: poll it (starting it again if it died), and rerun the
    page when its layout lands (the page then switches the map to it)."""
    status = ensure_umap_async(path)
    if status == "ready":
        st.rerun(scope="app")
    elif status == "running":
        st.caption("UMAP layout is being computed in the background; the map switches to it "
                   "when it is ready (about a minute for a few thousand items; large runs are "
                   "fitted on 10,000 items and the rest placed onto that map).")
    else:
        st.caption("UMAP failed for this run; see outputs/umap.error. Showing PCA.")


def _layout_choice(container, path: str, umap_ready: bool) -> str:
    """The Layout radio. Its value outlives a change of options (a keyed widget), so the page
    itself moves it to UMAP the first time this run's UMAP layout is there."""
    layouts = ["UMAP", "PCA"] if umap_ready else ["PCA"]
    if umap_ready and st.session_state.get(UMAP_SHOWN) != path:
        st.session_state[UMAP_SHOWN] = path
        st.session_state["explore_layout"] = "UMAP"
    elif st.session_state.get("explore_layout") not in layouts:
        st.session_state["explore_layout"] = layouts[0]
    return container.radio("Layout", layouts, key="explore_layout", horizontal=True)


@st.cache_resource(show_spinner=False, max_entries=4)
def _filter_options(path: str, stamp: float, dataset: str):
    ds = _dataset(dataset) if dataset else None
    return filter_options(_outputs(path, stamp), ds.items if ds is not None else None)


def _filters(opts) -> MapFilter:
    splits = ()
    if len(opts.splits) > 1:
        default = ["test"] if "test" in opts.splits else opts.splits
        splits = tuple(st.multiselect("Splits", opts.splits, default=default,
                                      key="explore_splits"))
    with st.expander("Filter the map (class, domain, uncertainty, truth, item id)"):
        c1, c2, c3 = st.columns(3)
        class_of = c1.selectbox("Class by", opts.class_sources or ["soft label"],
                                key="explore_f_class_of")
        classes = c1.multiselect("Classes", opts.classes, key="explore_f_classes")
        domains = c2.multiselect("Domains", opts.domains, key="explore_f_domains")
        ids = c2.text_input("Item ids", key="explore_f_ids",
                            placeholder="ids or parts of ids, comma-separated")
        unc = (0.0, 1.0)
        if opts.has_uncertainty:
            unc = c3.slider("Uncertainty (0 certain – 1 uniform)", 0.0, 1.0, (0.0, 1.0), 0.01,
                            key="explore_f_unc")
        flipped = None
        if opts.has_flipped:
            flipped = FLIPPED[c3.radio("Flipped label (generated data)", list(FLIPPED),
                                       horizontal=True, key="explore_f_flipped")]
        true = ()
        if opts.true_labels:
            true = tuple(c3.multiselect("True label", opts.true_labels, key="explore_f_true"))
    return MapFilter(splits=splits, class_of=class_of, classes=tuple(classes),
                     domains=tuple(domains), uncertainty=tuple(unc), flipped=flipped,
                     true_labels=true, item_ids=ids)


def _legend() -> None:
    st.html('<div style="font-size:0.85rem">'
            f'<span style="color:{ANNOTATED_COLOUR}">■</span> annotated soft label &nbsp; '
            f'<span style="color:{PREDICTED_COLOUR}">■</span> predicted</div>')


def _cards(cards, modality: str, key: str, per_row: int = 4) -> None:
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
                    st.plotly_chart(distribution_figure(card.distributions),
                                    key=f"{key}_{card.row}", config={"displayModeBar": False})


def _show_outcome(key: str) -> None:
    """The outcome an action's callback left under ``key``: (kind, message[, code])."""
    outcome = st.session_state.get(key)
    if outcome:
        getattr(st, outcome[0])(outcome[1])
        if len(outcome) > 2:
            st.code(outcome[2], language=None)


def _export(outputs, rows, filt: MapFilter) -> None:
    """Callback of Export: runs before the page, so no rerun can cut it short."""
    try:
        ds = export_selection(outputs, rows, st.session_state.get("explore_export_name", ""),
                              filters=filt)
    except (ValueError, FileExistsError, ContractError, OSError) as exc:
        st.session_state[EXPORTED] = ("error", f"Not exported: {exc}")
    else:
        st.session_state[EXPORTED] = (
            "success", f"Exported {len(ds.items)} items to {ds.root}: it is in the catalog "
                       "(Data, Train, Annotate).")


def _export_tab(outputs, rows, filt: MapFilter) -> None:
    st.text_input("Dataset name", value=f"{outputs.name}-selection", key="explore_export_name")
    st.button("Export as a dataset", key="explore_export", on_click=_export,
              args=(outputs, rows, filt))
    _show_outcome(EXPORTED)


@owner_only
def _create_campaign(outputs, ids: list[str], base_url: str) -> None:
    """Callback of Create campaign: an owner action (the grant is checked again when it runs)."""
    state = st.session_state
    try:
        invite = owner_annotate_session().create_campaign(
            state.get("explore_campaign_name", ""), outputs.dataset_path,
            scales=list(state.get("explore_campaign_scales") or []) or None,
            ratings_per_item=int(state.get("explore_campaign_n", 3)), item_ids=ids)
    except (ValueError, TypeError, ContractError, OSError) as exc:
        state[INVITED] = ("error", f"Campaign not created: {exc}")
        return
    state[INVITED] = ("success", f"Campaign {invite.name!r} created with {len(ids)} items. Send "
                      "raters this invite link (shown here only; the Annotate page follows its "
                      "progress and exports the new soft labels):", invite.link(base_url))


def _invite_base() -> str:
    """The rating page's address on this server: this page's address (…/explore) with the
    Annotate page's path instead."""
    try:
        parts = urlsplit(st.context.url)
        path = parts.path.rstrip("/")
        path = path[: -len(PAGE_PATH)] if path.endswith(PAGE_PATH) else path
        return invite_base_url(urlunsplit((parts.scheme, parts.netloc, path, "", "")))
    except (ValueError, AttributeError, TypeError):
        return invite_base_url(None)


def _campaign_tab(outputs, ds, ids: list[str]) -> None:
    scales = list(ds.schema.scales)
    default = [ds.schema.label_scale] if ds.schema.label_scale in scales else scales[:1]
    c1, c2 = st.columns([2, 1])
    c1.text_input("Campaign name", value=f"{outputs.name}-rerate", key="explore_campaign_name")
    c2.number_input("Ratings per item", 1, 50, 3, key="explore_campaign_n")
    st.multiselect("Scales", scales, default=default, key="explore_campaign_scales")
    st.button("Create campaign", key="explore_campaign", type="primary",
              on_click=_create_campaign, args=(outputs, ids, _invite_base()))
    _show_outcome(INVITED)


def _actions(outputs, ds, rows, n_shown: int, filt: MapFilter) -> None:
    st.subheader("Act on the selection")
    choices = ([f"the {len(rows)} selected"] if len(rows) else []) + [f"all {n_shown} on the map"]
    # a keyed radio keeps its value when its options change: a new selection is what to act on
    signature = (len(rows), int(rows[0]) if len(rows) else -1, n_shown)
    if st.session_state.get("explore_act_sig") != signature:
        st.session_state["explore_act_sig"] = signature
        st.session_state["explore_act_on"] = choices[0]
        for outcome in (EXPORTED, INVITED):  # they were about other items
            st.session_state.pop(outcome, None)
    target = st.radio("Items", choices, horizontal=True, key="explore_act_on")
    chosen = rows if len(rows) and target == choices[0] else np.arange(outputs.n)
    if ds is None:
        st.caption("The run's dataset cannot be read: nothing to export or rate.")
        return
    export, crowd = st.tabs(["Export as a dataset", "Send to the crowd"])
    with export:
        _export_tab(outputs, chosen, filt)
    with crowd:
        _campaign_tab(outputs, ds, selection_item_ids(outputs, chosen))


def _held_selection(keep: np.ndarray, rows: np.ndarray, figure: tuple
                    ) -> tuple[np.ndarray, bool]:
    """The selection to show, as rows of the drawn items, and whether it was kept from an
    earlier map. A new figure (layout, colouring, filters: the UMAP switch too) resets the
    chart's own selection; the page keeps the last one (as the run's rows) until the user
    selects again or clears it (an empty selection on the same figure)."""
    held = st.session_state.get(SELECTED)
    chart_had = st.session_state.get(FIGURE) == figure and st.session_state.get(CHART_HAD)
    st.session_state[FIGURE] = figure
    st.session_state[CHART_HAD] = bool(len(rows))
    if len(rows):
        st.session_state[SELECTED] = (figure[0], keep[rows])
        return rows, False
    if chart_had:  # this chart had a selection and now has none: the user cleared it
        st.session_state[SELECTED] = None
        return rows, False
    if held is None or held[0] != figure[0]:  # nothing held, or another run's
        return rows, False
    position = np.full(int(max(keep.max(initial=-1), held[1].max(initial=-1))) + 1, -1)
    position[keep] = np.arange(len(keep))
    shown = position[held[1]]
    return shown[shown >= 0], True


def _selection(outputs, rows, items, root, modality: str, k: int) -> None:
    st.subheader(f"Selected: {len(rows)} item{'s' if len(rows) != 1 else ''}"
                 + (f" (first {MAX_CARDS} shown)" if len(rows) > MAX_CARDS else ""))
    _legend()
    _cards(item_cards(outputs, rows[:MAX_CARDS], items, root), modality, "explore_card")
    anchor = int(rows[0])
    st.subheader(f"Nearest neighbours of {outputs.item_ids[anchor]}")
    nn, dist = nearest_neighbours(outputs.embeddings, anchor, k)
    _cards(item_cards(outputs, [anchor, *nn.tolist()], items, root), modality, "explore_nn")
    st.caption("distances: " + ", ".join(f"{d:.3f}" for d in dist))


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
everything = _outputs(path, stamp)
if everything.embeddings is None:
    st.warning(f"Run {run_name} saved no embeddings; nothing to map.")
    st.stop()
dataset = str(everything.dataset_path) if everything.dataset_path else ""
ds = _dataset(dataset) if dataset else None
items = ds.items if ds is not None else None
modality = ds.modality if ds is not None else (run.modality or "face")

filt = _filters(_filter_options(path, stamp, dataset))
try:
    keep = np.flatnonzero(filter_mask(everything, items, filt))
except ValueError as exc:
    st.error(f"Filter not applied: {exc}")
    keep = np.arange(everything.n)
outputs = everything.take(keep)

c1, c2, c3 = st.columns([2, 1, 1])
colour_by = c1.selectbox("Colour by", colour_options(everything, items), key="explore_colour")
status = ensure_umap_async(path)
umap_xy = load_umap(path) if status == "ready" else None
layout = _layout_choice(c2, path, umap_xy is not None)
k = c3.number_input("Neighbours", 1, 50, 8, key="explore_k")
if status == "running" or (status == "failed" and umap_xy is None):
    _umap_watch(path)

full_xy = umap_xy if layout == "UMAP" and umap_xy is not None else _pca(path, stamp)
scores = _uncertainty(path, stamp)
drawn = map_figure(full_xy[keep], _colouring(path, stamp, colour_by, dataset).take(keep),
                   outputs.item_ids, scores.take(keep) if scores is not None else None,
                   revision=f"{path}:{layout}")
event = st.plotly_chart(drawn.figure, key="explore_map", on_select="rerun",
                        selection_mode=("points", "box", "lasso"))
info = umap_info(path) if layout == "UMAP" else {}
fitted = (f" (fitted on {info['fit_on']:,}, the rest placed by transform)"
          if info.get("fit_on", outputs.n) < info.get("n", 0) else "")
st.caption(f"{outputs.n:,} of {everything.n:,} items · {layout}{fitted} of "
           f"{everything.embeddings.shape[1]}-d embeddings · "
           f"{'WebGL' if drawn.webgl else 'SVG'}. Click a point to select it; Box or Lasso "
           "select (chart toolbar) for many; double-click clears.")
if drawn.palette is not None and drawn.palette.note:
    st.caption(drawn.palette.note)

# dict access: the event is a dict subclass (AttributeDictionary) in the app, a dict in tests
points = ((event or {}).get("selection") or {}).get("points") or []
rows = selection_rows(points, drawn.traces)
rows, kept = _held_selection(keep, rows[rows < outputs.n],
                             (path, stamp, layout, colour_by, filt))
root = ds.root if ds is not None else None
if len(rows):
    if kept:
        st.caption("The selection is kept from the map before it changed (layout, colouring or "
                   "filters); select again on this map to replace it.")
    _selection(outputs, rows, items, root, modality, int(k))
else:
    st.info("Select points on the map (click, box or lasso) to see the items behind them.")
if len(rows) or filt.active():
    _actions(outputs, ds, rows, outputs.n, filt)

if colour_by == "sub-class":
    st.subheader("Sub-classes: the items nearest each centre (medoid first)")
    for name, medoid_rows in _medoids(path, stamp):
        st.markdown(f"**{name}**")
        _cards(item_cards(everything, medoid_rows.tolist(), items, root), modality,
               f"explore_sub_{name}")
