"""Train: pick a dataset, scale, model and method, launch a background run and follow it live."""

import json
from pathlib import Path

import plotly.express as px
import streamlit as st

from affectlab.app.signin import owner_only, require_owner
from affectlab.data.catalog import list_datasets
from affectlab.data.schema import DatasetMeta
from affectlab.engine.config import ConfigError
from affectlab.engine.device import describe_device
from affectlab.engine.jobs import cancel, launch_background
from affectlab.engine.manage import active_runs
from affectlab.pages.train_follow import RunFollower, format_duration
from affectlab.pages.train_form import (
    build_run_config,
    changed_params,
    method_choices,
    method_param_fields,
    model_choices,
    model_param_fields,
    scale_choices,
    training_defaults,
    training_limits,
)
from affectlab.paths import NAME_RULE

RUN_KEY = "train_run_dir"  # the run this page follows (str path)
FOLLOWER_KEY = "train_follower"  # its RunFollower: keeps the read offset across reruns
DEFAULT_METRICS = ["uar", "accuracy", "macro_f1"]


@st.cache_resource
def _device() -> str:
    return describe_device()


@st.cache_data(max_entries=16)
def _meta(path: str, stamp: float) -> DatasetMeta:
    return DatasetMeta.read(Path(path) / "meta.json")


def _param_widget(field, key: str, container):
    label, tip = field.name, field.help or None
    if field.kind == "bool":
        return container.checkbox(label, value=field.default, key=key, help=tip)
    if field.kind in ("int", "float"):
        number = {"step": 1} if field.kind == "int" else {"format": "%g"}
        return container.number_input(label, min_value=field.low, max_value=field.high,
                                      value=field.default, key=key, help=tip, **number)
    if field.kind == "str" and field.choices:
        return container.selectbox(label, field.choices, key=key, help=tip,
                                   index=list(field.choices).index(field.default))
    text = field.default if field.kind == "str" else json.dumps(field.default)
    return container.text_input(label, value=text, key=key,
                                help=tip if field.kind == "str" else f"{tip or ''} (YAML value)")


def _param_widgets(fields, prefix: str) -> dict:
    cols = st.columns(3)
    return {f.name: _param_widget(f, f"{prefix}_{f.name}", cols[i % 3])
            for i, f in enumerate(fields)}


def _follower(run_dir: str) -> RunFollower:
    follower = st.session_state.get(FOLLOWER_KEY)
    if follower is None or str(follower.run_dir) != run_dir:
        follower = RunFollower(run_dir)
        st.session_state[FOLLOWER_KEY] = follower
    return follower


@owner_only
def _cancel(run_dir: str) -> None:
    cancel(run_dir, timeout=10.0, term_after=5.0)


@st.fragment(run_every=1.5)
def _follow_panel() -> None:
    run_dir = st.session_state.get(RUN_KEY)
    if not run_dir:
        st.caption("No run followed yet: launch one above, or pick a running one.")
        return
    update = _follower(run_dir).poll()
    status = update.status
    epochs = status.epochs or "?"
    speed = f" · {update.samples_per_s:.0f} samples/s" if update.samples_per_s else ""
    st.progress(status.progress,
                text=f"**{Path(run_dir).name}** · {status.state} · epoch {status.epoch}/{epochs}"
                     f" · ETA {format_duration(status.eta_s)}{speed}")
    for notice in _follower(run_dir).events:
        if notice.get("type") == "notice":  # e.g. which classes a fine-tuned head mapped
            st.info(notice.get("message", ""))
    if status.state in ("queued", "running"):
        # a callback: the run is stopped before the rerun that redraws this panel
        st.button("Cancel run", key="train_cancel", on_click=_cancel, args=(run_dir,))
    elif status.state == "finished":
        st.success("Finished. Compare it with other runs on the **Runs** page, or map its "
                   "embedding on **Explore**.")
    elif status.state == "failed":
        st.error(f"Failed: {status.message}")
    elif status.state == "cancelled":
        st.warning(f"Cancelled after epoch {status.epoch}; its last checkpoint is kept.")

    curves = update.curves
    left, right = st.columns(2)
    if len(curves.steps):
        fig = px.line(curves.steps, x="global_step", y="value", color="name",
                      title="Training loss per logged step", labels={"value": "loss"})
        left.plotly_chart(fig, key="train_loss_chart")
    else:
        left.caption("Loss curves appear after the first steps.")
    names = sorted(curves.epoch_metrics["name"].unique())
    if names:
        chosen = right.multiselect("Validation metrics", names, key="train_follow_metrics",
                                   default=[m for m in DEFAULT_METRICS if m in names])
        shown = curves.epoch_metrics[curves.epoch_metrics["name"].isin(chosen)]
        fig = px.line(shown, x="epoch", y="value", color="name", markers=True,
                      title="Validation metrics per epoch")
        right.plotly_chart(fig, key="train_metric_chart")
    else:
        right.caption("Validation metrics appear after the first epoch.")


@owner_only
def _launch(config) -> None:
    try:
        run_dir = launch_background(config)
    except (FileExistsError, RuntimeError, OSError) as exc:
        st.error(f"Could not start the run: {exc}")
        return
    st.session_state[RUN_KEY] = str(run_dir)
    st.session_state.pop(FOLLOWER_KEY, None)


require_owner()
st.title("Train")
st.caption(f"Device: **{_device()}**")

datasets = [d for d in list_datasets() if d.error is None]
if not datasets:
    st.info("No dataset yet: generate one on the **Data** page.")
else:
    by_name = {d.name: d for d in datasets}
    c1, c2 = st.columns(2)
    ds_name = c1.selectbox("Dataset", list(by_name), key="train_dataset",
                           format_func=lambda n: f"{n} ({by_name[n].modality}, "
                                                 f"{by_name[n].n_items} items)")
    summary = by_name[ds_name]
    meta_path = summary.path / "meta.json"
    meta = _meta(str(summary.path), meta_path.stat().st_mtime)
    modality = summary.modality
    scales = {s.name: s for s in scale_choices(meta)}
    scale_name = c2.selectbox("Scale", list(scales), key=f"train_scale_{ds_name}",
                              format_func=lambda n: scales[n].describe(),
                              help="the ratings the soft labels come from; EMD² methods need "
                                   "an ordered scale")
    scale = scales[scale_name]

    c1, c2 = st.columns(2)
    models = {m.name: m for m in model_choices(modality)}
    model_name = c1.selectbox("Model", list(models), key=f"train_model_{modality}",
                              help="\n\n".join(f"**{m.name}**: {m.description}"
                                               for m in models.values()))
    model = models[model_name]
    methods = {m.name: m for m in method_choices(modality, scale.ordinal)}
    method_name = c2.selectbox("Method", list(methods),
                               key=f"train_method_{modality}_{int(scale.ordinal)}",
                               help="\n\n".join(f"**{m.name}**: {m.description}"
                                                for m in methods.values()))
    method = methods[method_name]
    c2.caption(method.description)
    pretrained = (c1.checkbox("Pretrained weights", key=f"train_pretrained_{model_name}",
                              help="start from the shipped weights on this dataset's classes: "
                                   "those that match the shipped classes by name (happiness = "
                                   "happy, anger = angry, …) keep their head rows, the others "
                                   "start fresh; the run says which")
                  if model.has_pretrained else False)

    model_fields = model_param_fields(model)
    method_fields = method_param_fields(method)
    with st.expander(f"Model parameters ({model_name})"):
        model_values = _param_widgets(model_fields, f"train_modelp_{model_name}")
    with st.expander(f"Method parameters ({method_name})", expanded=bool(method_fields)):
        if method_fields:
            method_values = _param_widgets(method_fields, f"train_methodp_{method_name}")
        else:
            st.caption("This method has no hyper-parameters.")
            method_values = {}

    defaults = training_defaults(method_name)
    limits = training_limits()
    cols = st.columns(6)
    epochs = cols[0].number_input("Epochs", *limits["epochs"], defaults["epochs"],
                                  key="train_epochs")
    batch = cols[1].number_input("Batch size", *limits["batch_size"], defaults["batch_size"],
                                 key=f"train_batch_{method_name}")
    lr = cols[2].number_input("Learning rate", *limits["lr"], value=defaults["lr"],
                              step=defaults["lr"] / 10, format="%g", key=f"train_lr_{method_name}",
                              help="> 0")
    wd = cols[3].number_input("Weight decay", *limits["weight_decay"],
                              value=defaults["weight_decay"], step=1e-5, format="%g",
                              key="train_wd")
    seed = cols[4].number_input("Seed", *limits["seed"], defaults["seed"], key="train_seed")
    name = cols[5].text_input("Run name", key="train_name", placeholder="automatic",
                              help=f"the run's folder: {NAME_RULE}")

    if st.button("Launch", type="primary", key="train_launch"):
        try:
            config = build_run_config(
                summary.path, meta, model=model_name, method=method_name, scale=scale_name,
                pretrained=pretrained, model_params=changed_params(model_fields, model_values),
                method_params=changed_params(method_fields, method_values),
                epochs=int(epochs), batch_size=int(batch), lr=float(lr),
                weight_decay=float(wd), seed=int(seed), name=name.strip() or None)
        except ConfigError as exc:
            st.error(f"The run cannot start: {exc}")
        else:
            _launch(config)

st.subheader("Follow")
current = st.session_state.get(RUN_KEY)
running = [str(p) for p in active_runs()]
options = list(dict.fromkeys(([current] if current else []) + running))
if options:
    pick = st.selectbox("Run to follow", options, index=0, format_func=lambda p: Path(p).name,
                        help="the run launched last, or any run in progress")
    if pick != current:
        st.session_state[RUN_KEY] = pick
_follow_panel()
