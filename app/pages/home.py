import streamlit as st

from core.data.catalog import list_datasets
from core.paths import data_dir

st.title("affectlab")
st.markdown(
    "A workbench for **emotion recognition with soft labels**: collect ratings from many "
    "annotators, train models with soft-label and metric-learning methods (f-SPL, EMD², SGM, "
    "LDLVA, DMUE), look inside what they learned, and demo them live."
)

datasets = list_datasets()
st.subheader(f"Datasets in `{data_dir()}`")
if not datasets:
    st.info("No dataset yet. Generate one on the **Data** page, or run "
            "`affectlab data synth --modality face --n 2000 --out data/datasets/faces`.")
else:
    st.dataframe(
        [{"name": d.name, "modality": d.modality, "items": d.n_items,
          "classes": ", ".join(d.classes), "generated": d.generated} for d in datasets],
        hide_index=True, use_container_width=True,
    )
