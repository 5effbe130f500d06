import streamlit as st

from affectlab.app.signin import require_owner
from affectlab.data.catalog import list_datasets
from affectlab.engine.device import describe_device
from affectlab.engine.runs import runs_table
from affectlab.paths import data_dir

require_owner()
st.title("affectlab")
st.markdown(
    "A workbench for **emotion recognition with soft labels**: collect ratings from many "
    "annotators, train models with soft-label and metric-learning methods (f-SPL, EMD², SGM, "
    "LDLVA, DMUE), look inside what they learned, and demo them live."
)

col_data, col_runs, col_device = st.columns(3)
datasets = list_datasets()
runs = runs_table()
col_data.metric("Datasets", len(datasets))
col_runs.metric("Runs", len(runs))
col_device.metric("Device", describe_device())

st.subheader("Quick start")
st.markdown(
    "1. **Data** — browse the generated corpora (faces and speech whose *true* emotion "
    "distributions are known), generate more, or import a real corpus.\n"
    "2. **Train** — pick a dataset, model and method; follow the run live.\n"
    "3. **Runs** — compare runs' curves and final metrics.\n"
    "4. **Explore** — the embedding map coloured by soft label, prediction, uncertainty or sub-class.\n"
    "5. **Live** — your webcam or microphone (or an uploaded file) through a model; the shipped "
    "FER2013 face model works before anything is trained.\n"
    "6. **Annotate** — run a rating campaign and turn the ratings into soft labels."
)

st.subheader("Datasets")
if not datasets:
    st.info("No dataset yet. Generate one on the **Data** page, or run "
            "`affectlab data synth --modality face --n 2000 --out data/datasets/faces`.")
else:
    st.dataframe(
        [{"name": d.name, "modality": d.modality, "items": d.n_items,
          "classes": ", ".join(d.classes), "generated": d.generated} for d in datasets],
        hide_index=True, width="stretch",
    )

st.subheader("Runs")
if runs.empty:
    st.info("No run yet: launch one on the **Train** page or with `affectlab train`.")
else:
    st.dataframe(runs.drop(columns=["path"]), hide_index=True, width="stretch")

st.caption(f"Data directory: `{data_dir()}`")
