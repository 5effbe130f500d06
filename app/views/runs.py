"""Runs: every run with its headline metrics; overlay the curves of several and compare them."""

from pathlib import Path

import plotly.express as px
import streamlit as st

from affectlab.app.signin import owner_only, require_owner
from affectlab.engine.manage import delete_run
from affectlab.engine.rundir import RunDir
from affectlab.engine.runs import runs_table
from affectlab.pages.runs_compare import (
    compare_curves,
    final_metrics,
    final_metrics_long,
    run_colours,
)

DELETE_KEY = "runs_delete_confirm"  # name of the run awaiting a delete confirmation
FLASH_KEY = "runs_flash"  # (kind, message) shown once after a delete
DEFAULT_CURVES = ["train loss", "val uar", "val accuracy"]


@owner_only
def _ask_delete(name: str) -> None:
    st.session_state[DELETE_KEY] = name


@owner_only
def _do_delete(path: str) -> None:
    try:
        delete_run(path)
    except (ValueError, RuntimeError, OSError) as exc:
        st.session_state[FLASH_KEY] = ("error", f"Not deleted: {exc}")
    else:
        st.session_state[FLASH_KEY] = ("success", f"Deleted run {Path(path).name}.")
    st.session_state.pop(DELETE_KEY, None)


@owner_only
def _open_in_explore(name: str) -> None:
    st.session_state["explore_run"] = name  # the Explore page's run selector


require_owner()
st.title("Runs")
flash = st.session_state.pop(FLASH_KEY, None)
if flash:
    getattr(st, flash[0])(flash[1])

runs = runs_table()
if runs.empty:
    st.info("No run yet: launch one on the **Train** page.")
    st.stop()

paths = dict(zip(runs["name"], runs["path"], strict=True))
st.dataframe(
    runs.drop(columns=["path"]), hide_index=True, key="runs_table",
    column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0),
        "best_val_uar": st.column_config.NumberColumn("best val UAR", format="%.3f"),
        "best_val_accuracy": st.column_config.NumberColumn("best val acc.", format="%.3f"),
        "test_uar": st.column_config.NumberColumn("test UAR", format="%.3f"),
        "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
    },
)

st.subheader("Compare")
selected = st.multiselect("Runs to compare", list(paths), key="runs_compare",
                          placeholder="pick two or more runs")
if selected:
    chosen = [paths[n] for n in selected]
    colours = run_colours(selected)  # one colour per run, the same in every chart
    curves = compare_curves(chosen)
    available = sorted(curves["curve"].unique())
    shown = st.multiselect("Curves", available, key="runs_curves",
                           default=[c for c in DEFAULT_CURVES if c in available])
    cols = st.columns(max(len(shown), 1))
    for col, curve in zip(cols, shown, strict=False):
        fig = px.line(curves[curves["curve"] == curve], x="epoch", y="value", color="run",
                      markers=True, title=curve, color_discrete_map=colours)
        fig.update_layout(legend={"orientation": "h", "y": -0.25})
        col.plotly_chart(fig, key=f"runs_curve_{curve}")

    table = final_metrics(chosen)
    st.markdown("**Final metrics** (test split when the run finished; else its last "
                "validation epoch)")
    st.dataframe(table, key="runs_final")
    long = final_metrics_long(table)
    if len(long):
        fig = px.bar(long, x="metric", y="value", color="run", barmode="group",
                     title="Final metrics", range_y=[0, 1], color_discrete_map=colours)
        st.plotly_chart(fig, key="runs_final_chart")
    if len(selected) < 2:
        st.caption("Pick a second run to overlay.")

st.subheader("Explore or delete")
c1, c2 = st.columns(2)
target = c1.selectbox("Run", list(paths), key="runs_target")
target_path = Path(paths[target])
if RunDir(target_path).has_outputs():
    if c1.button("Open in Explore", key="runs_explore", on_click=_open_in_explore,
                 args=(target,)):
        st.switch_page("views/explore.py")
else:
    c1.caption("No test outputs yet (the run has not finished): nothing to explore.")

if st.session_state.get(DELETE_KEY) == target:
    c2.warning(f"Delete run **{target}** and all its files (checkpoints, outputs)? "
               "This cannot be undone.")
    y, n = c2.columns(2)
    y.button("Yes, delete", type="primary", key="runs_delete_yes", on_click=_do_delete,
             args=(str(target_path),))
    n.button("Keep it", key="runs_delete_no", on_click=st.session_state.pop,
             args=(DELETE_KEY, None))
else:
    c2.button("Delete …", key="runs_delete", on_click=_ask_delete, args=(target,))
