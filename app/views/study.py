"""Study: test the seed papers' claims on the benchmark; pick claims, launch, follow, read."""

from pathlib import Path

import pandas as pd
import streamlit as st

from affectlab.app.signin import owner_only, require_owner
from affectlab.study.claims import CLAIMS, SIZES
from affectlab.study.jobs import (
    LOG_FILE,
    launch_study,
    list_studies,
    stop_study,
    study_dir,
    study_status,
)
from affectlab.study.report import REPORT_FILE, plot_path, results_frame
from affectlab.study.results import read_results

SELECTED_KEY = "study_selected"  # the study shown below the launcher


@owner_only
def _launch(name: str, claims: list[str], seeds: int, size: str, threads: int) -> None:
    try:
        out = study_dir(name)
        launch_study(out, claims, seeds, size, threads)
    except (ValueError, KeyError, RuntimeError) as exc:
        st.error(f"Not launched: {exc.args[0] if isinstance(exc, KeyError) else exc}")
    else:
        st.session_state[SELECTED_KEY] = out.name
        st.success(f"Started {out.name}: finished runs are reused, a stopped one resumes.")


@owner_only
def _stop(out: Path) -> None:
    stop_study(out)


require_owner()
st.title("Study")
st.caption("Each claim of the seed papers as a paired experiment on the generated benchmark: "
           "the method against its baseline on the same data and seeds, a paired t-test over "
           "the seeds, and a verdict (holds / not shown / reversed).")

with st.expander("The claims", expanded=False):
    st.dataframe(pd.DataFrame([{"claim": c.id, "paper": c.paper, "what": c.what,
                                "metric": f"{c.split} {c.metric}"} for c in CLAIMS.values()]),
                 hide_index=True)

with st.form("study_launch"):
    cols = st.columns([2, 1, 1, 1])
    name = cols[0].text_input("Study name", value="study-small", key="study_name")
    size = cols[1].selectbox("Size", list(SIZES), index=list(SIZES).index("small"),
                             key="study_size", help="tiny: seconds a run; small: a few minutes "
                             "a claim on a CPU; paper: the papers' sizes, for a GPU")
    seeds = cols[2].number_input("Seeds", min_value=1, max_value=100, value=3, step=1,
                                 key="study_seeds")
    threads = cols[3].number_input("CPU threads", min_value=1, max_value=64, value=1,
                                   key="study_threads")
    picked = st.multiselect("Claims", list(CLAIMS), key="study_claims",
                            placeholder="all claims")
    if st.form_submit_button("Launch", type="primary"):
        _launch(name, picked or ["all"], int(seeds), size, int(threads))

studies = list_studies()
if not studies:
    st.info("No study yet: pick claims above and launch one (or run "
            "`affectlab study all --size small --out data/studies/NAME`).")
    st.stop()
names = [p.name for p in studies]
current = st.session_state.get(SELECTED_KEY)
chosen = st.selectbox("Study", names, index=names.index(current) if current in names else 0,
                      key="study_pick")
out: Path = studies[names.index(chosen)]


@st.fragment(run_every=3.0)
def _progress(out: Path) -> None:
    status = study_status(out)
    label = f"{status.state}: {status.done}/{status.total or '?'} runs"
    if status.current:
        label += f" — {status.current}"
    st.progress(status.fraction, text=label)
    if status.message:
        (st.error if status.state == "failed" else st.caption)(status.message)
    if status.state == "running" and st.button("Stop", key="study_stop"):
        _stop(out)
        st.rerun()


_progress(out)

results = read_results(out)
if not results:
    st.caption("No results yet: they appear when the study has run its claims.")
    log = out / LOG_FILE
    if log.is_file():
        with st.expander("Worker log"):
            st.code(log.read_text(errors="replace")[-4000:])
    st.stop()

st.subheader("Results")
frame = results_frame(results)
st.dataframe(frame, hide_index=True, column_config={
    name: st.column_config.NumberColumn(name, format="%.4f")
    for name in ("baseline", "method", "mean diff", "ci low", "ci high", "p")})
report = out / REPORT_FILE
if report.is_file():
    st.download_button("Download report.md", report.read_bytes(), file_name=REPORT_FILE,
                       mime="text/markdown")

st.subheader("Plots")
cols = st.columns(3)
for i, r in enumerate(results):
    png = plot_path(out, r["claim"])
    if png.is_file():
        cols[i % 3].image(str(png), caption=f"{r['claim']}: {r.get('verdict', '')}")
