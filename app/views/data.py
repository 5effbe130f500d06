"""Data: generate a corpus, import one, browse a dataset (items, media, ratings, agreement)."""

import time
from pathlib import Path

import pandas as pd
import streamlit as st

from affectlab.aggregators import AGGREGATORS, describe_aggregator
from affectlab.agreement import AnonymousRatingsError
from affectlab.app.signin import owner_only, require_owner
from affectlab.data.catalog import list_datasets
from affectlab.data.contract import ContractError, load_dataset, media_file
from affectlab.data.importers import FORMATS
from affectlab.data.jobs import start_generation, start_import
from affectlab.pages.data_browse import (
    agreement_table,
    filter_items,
    filter_options,
    item_table,
    rating_histogram,
    soft_label_frame,
)
from affectlab.paths import NAME_RULE, UnsafeNameError, child_path, datasets_dir

JOB_KEY = "data_job"


@st.cache_resource(show_spinner="Loading dataset …", max_entries=4)
def _load(path: str, stamp: float):
    """A dataset directory, reloaded when its items.parquet changes (``stamp`` = mtime)."""
    return load_dataset(path)


@st.cache_data(max_entries=8)
def _items(path: str, stamp: float, aggregator: str) -> pd.DataFrame:
    return item_table(_load(path, stamp), aggregator=aggregator)


def _aggregator_choice(ds) -> str:
    """The aggregator the page shows soft labels by (default: the dataset's own)."""
    default = ds.schema.aggregator
    return st.selectbox("Soft labels", AGGREGATORS, index=AGGREGATORS.index(default),
                        key="browse_aggregator",
                        format_func=lambda a: f"{a}: {describe_aggregator(a)}"
                        + (" (this dataset's)" if a == default else ""),
                        help="how ratings become soft labels here; training uses the "
                             "dataset's own (meta.json 'aggregator')")


def _stamp(path: Path) -> float:
    try:
        return (path / "items.parquet").stat().st_mtime
    except OSError:
        return 0.0


@st.fragment(run_every=1.0)
def _job_panel() -> None:
    job = st.session_state.get(JOB_KEY)
    if job is None:
        return
    if job.running:
        elapsed = time.time() - job.started
        st.progress(job.progress(), text=f"{job.description} … {elapsed:.0f} s")
        return
    if job.status == "done":
        result = job.result
        summary = result.summary() if hasattr(result, "summary") else f"wrote {result.root}"
        st.success(f"{job.description}: done. {summary}")
    else:
        st.error(f"{job.description} failed: {job.error}")
    if st.button("Dismiss", key="dismiss_job"):
        del st.session_state[JOB_KEY]
        st.rerun(scope="app")
    if not st.session_state.get("_job_seen_done"):
        st.session_state["_job_seen_done"] = True
        st.rerun(scope="app")  # refresh the dataset list once the job has finished


def _busy() -> bool:
    job = st.session_state.get(JOB_KEY)
    return job is not None and job.running


def _generate_tab() -> None:
    with st.form("generate"):
        c1, c2, c3 = st.columns(3)
        modality = c1.selectbox("Modality", ["face", "speech"], key="gen_modality")
        n = c2.number_input("Items", min_value=10, max_value=100_000, value=500, step=50,
                            key="gen_n")
        seed = c3.number_input("Seed", min_value=0, value=0, step=1, key="gen_seed")
        c4, c5, c6 = st.columns(3)
        domains = c4.number_input("Domains", min_value=1, max_value=4, value=2, key="gen_domains",
                                  help="rendering / recording conditions (cross-corpus work)")
        flip = c5.slider("Label flip rate", 0.0, 0.9, 0.1, 0.01, key="gen_flip",
                         help="fraction of dataset labels moved to another class")
        name = c6.text_input("Name", value="", placeholder=f"{modality}-n{n}-s{seed}",
                             key="gen_name", help=f"the dataset's folder: {NAME_RULE}")
        overwrite = st.checkbox("Overwrite an existing dataset of that name", key="gen_overwrite")
        submitted = st.form_submit_button("Generate", type="primary", disabled=_busy())
    if submitted:
        _generate(name.strip() or f"{modality}-n{int(n)}-s{int(seed)}", modality=modality,
                  n=int(n), seed=int(seed), n_domains=int(domains), flip_rate=float(flip),
                  overwrite=overwrite)


def _target(name: str) -> Path | None:
    """The dataset directory for a typed name (one contained name: affectlab.paths), or None
    after saying why the name is refused."""
    try:
        return child_path(datasets_dir(), name, "dataset name")
    except UnsafeNameError as exc:
        st.error(str(exc))
        return None


@owner_only
def _generate(name: str, **settings) -> None:
    out = _target(name)
    if out is None:
        return
    st.session_state.pop("_job_seen_done", None)
    st.session_state[JOB_KEY] = start_generation(out, **settings)


@owner_only
def _import(fmt: str, src: str, name: str, **options) -> None:
    out = _target(name)
    if out is None:
        return
    st.session_state.pop("_job_seen_done", None)
    st.session_state[JOB_KEY] = start_import(fmt, Path(src).expanduser(), out, **options)


def _import_tab() -> None:
    with st.form("import"):
        fmt = st.selectbox("Format", sorted(FORMATS), key="imp_format",
                           format_func=lambda f: f"{f}: {FORMATS[f].description}")
        src = st.text_input("Source directory (the corpus as published)", key="imp_src")
        name = st.text_input("Output name", key="imp_name", placeholder=fmt,
                             help=f"the dataset's folder: {NAME_RULE}")
        c1, c2 = st.columns(2)
        skip_bad = c1.checkbox("Skip malformed rows / unreadable media", key="imp_skip")
        overwrite = c2.checkbox("Overwrite an existing dataset of that name", key="imp_overwrite")
        submitted = st.form_submit_button("Import", type="primary", disabled=_busy())
    if submitted:
        if not src.strip():
            st.error("Enter the corpus's source directory.")
            return
        _import(fmt, src.strip(), name.strip() or fmt, skip_bad=skip_bad, overwrite=overwrite)


def _gallery(ds, rows: pd.DataFrame, soft: pd.DataFrame) -> None:
    per_row = 6 if ds.modality == "face" else 3
    for start in range(0, len(rows), per_row):
        cols = st.columns(per_row)
        for col, (_, row) in zip(cols, rows.iloc[start:start + per_row].iterrows(), strict=False):
            with col:
                path = media_file(ds.root, row["media"])  # validated when loaded
                if ds.modality == "face":
                    st.image(str(path), caption=f"{row['item_id']} · {row['label']}",
                             width="stretch")
                else:
                    st.caption(f"{row['item_id']} · {row['label']}")
                    st.audio(str(path))
                dist = soft.loc[row["item_id"]]
                if dist.notna().all():
                    st.bar_chart(dist, height=110, horizontal=True)
                else:
                    st.caption("no ratings")


def _browse_tab() -> None:
    datasets = list_datasets()
    if not datasets:
        st.info("No dataset yet: generate one in the **Generate** tab.")
        return
    names = [d.name for d in datasets]
    by_name = {d.name: d for d in datasets}
    choice = st.selectbox("Dataset", names, key="browse_dataset")
    summary = by_name[choice]
    stamp = _stamp(summary.path)
    try:
        ds = _load(str(summary.path), stamp)
    except ContractError as exc:
        st.error(f"{choice} cannot be read: {exc}")
        return
    aggregator = _aggregator_choice(ds)
    try:
        table = _items(str(summary.path), stamp, aggregator)
    except AnonymousRatingsError as exc:
        st.warning(f"{aggregator} needs rater identities: {exc}. Showing votes instead.")
        aggregator = "votes"
        table = _items(str(summary.path), stamp, aggregator)
    st.caption(f"{len(table)} items · {ds.modality} · classes: {', '.join(ds.class_names)}"
               + (" · generated" if summary.generated else
                  f" · from {summary.source}" if summary.source else "")
               + (" (hidden truth available)" if summary.has_truth else ""))

    opts = filter_options(table)
    c1, c2, c3 = st.columns(3)
    split = c1.multiselect("Split", opts["split"], key="browse_split")
    domain = c2.multiselect("Domain", opts["domain"], key="browse_domain")
    label = c3.multiselect("Label", opts["label"], key="browse_label")
    shown = filter_items(table, split=split, domain=domain, label=label)
    st.dataframe(shown, hide_index=True, width="stretch", height=280,
                 column_config={"soft_top_p": st.column_config.NumberColumn(format="%.2f"),
                                "ambiguity": st.column_config.ProgressColumn(
                                    min_value=0.0, max_value=1.0, format="%.2f")})

    st.subheader("Gallery")
    n_show = st.slider("Items shown", 3, 48, 12, step=3, key="browse_gallery_n")
    if shown.empty:
        st.info("No item matches the filters.")
    else:
        _gallery(ds, shown.head(n_show), soft_label_frame(ds, aggregator=aggregator))

    st.subheader("Ratings")
    scales = list(ds.schema.scales)
    hist_cols = st.columns(max(1, min(len(scales), 4)))
    ids = shown["item_id"].tolist()
    for i, scale in enumerate(scales):
        hist = rating_histogram(ds, scale, item_ids=ids)
        with hist_cols[i % len(hist_cols)]:
            st.markdown(f"**{scale}** ({int(hist['count'].sum())} ratings)")
            st.bar_chart(hist.set_index("name")["count"], height=180)
    st.markdown("**Agreement (Krippendorff's α, all items)**")
    st.dataframe(agreement_table(ds), hide_index=True, width="stretch",
                 column_config={"alpha": st.column_config.NumberColumn(format="%.3f")})


require_owner()
st.title("Data")
_job_panel()
browse, generate, import_ = st.tabs(["Browse", "Generate", "Import"])
with browse:
    _browse_tab()
with generate:
    _generate_tab()
with import_:
    _import_tab()
