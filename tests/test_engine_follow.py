"""Core helpers of the Train and Runs pages: following a run's event log (offset tailing, curve
aggregation), comparing runs, deleting runs, the Train form's choices, the device in words."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from affectlab.data.schema import ContractError
from affectlab.engine.config import METHOD_DEFAULTS, ConfigError
from affectlab.engine.device import describe_device
from affectlab.engine.events import EventWriter, read_events
from affectlab.engine.manage import active_runs, delete_run
from affectlab.engine.rundir import RunDir
from affectlab.pages.runs_compare import compare_curves, final_metrics, final_metrics_long
from affectlab.pages.train_follow import RunFollower, curves_from_events, format_duration
from affectlab.pages.train_form import (
    ParamField,
    build_run_config,
    changed_params,
    default_scale,
    method_choices,
    method_param_fields,
    model_param_fields,
    param_fields,
    parse_param,
    scale_choices,
    scale_is_ordinal,
    training_defaults,
)
from affectlab.registry import Param

META = {
    "name": "toy", "modality": "face",
    "label_set": {"scale": "category", "names": ["a", "b", "c"], "ordinal": False},
    "scales": {"category": {"type": "nominal", "names": ["a", "b", "c"]},
               "valence": {"type": "likert", "low": 1, "high": 5},
               "intensity": {"type": "ordinal", "names": ["1", "2", "3"]}},
}


def _log_run(w: EventWriter, epochs: int = 2, steps: int = 2, start_epoch: int = 0,
             base: float = 1.0) -> None:
    """A run's events: loss of (epoch e, step s) = base / (10e + s); val uar = e / 10."""
    w.emit("start", epochs=epochs, start_epoch=start_epoch, steps_per_epoch=steps)
    g = start_epoch * steps
    for e in range(start_epoch + 1, epochs + 1):
        for s in range(1, steps + 1):
            g += 1
            w.emit("step", epoch=e, step=s, global_step=g,
                   losses={"loss": base / (10 * e + s), "ce": 0.5}, samples_per_s=10.0 * g,
                   eta_s=1.0)
        w.emit("epoch", epoch=e, global_step=g, losses={"loss": base / e},
               metrics={"n": 9.0, "uar": e / 10, "accuracy": e / 20, "auroc": None},
               eta_s=0.0)


# -- RunFollower ---------------------------------------------------------------------------

def test_follower_reads_only_new_events(tmp_path):
    w = EventWriter(tmp_path)
    f = RunFollower(tmp_path, check_worker=False)
    first = f.poll()
    assert first.new_events == [] and first.status.state == "queued" and f.offset == 0
    assert list(first.curves.steps.columns) == ["global_step", "epoch", "step", "name", "value"]
    w.emit("start", epochs=2, start_epoch=0, steps_per_epoch=2)
    w.emit("step", epoch=1, step=1, global_step=1, losses={"loss": 2.0}, eta_s=30.0)
    up = f.poll()
    assert [e["type"] for e in up.new_events] == ["start", "step"]
    assert up.status.state == "running" and up.status.progress == pytest.approx(0.25)
    assert f.offset == (tmp_path / RunDir.EVENTS).stat().st_size
    assert f.poll().new_events == []  # nothing appended: nothing new
    w.emit("step", epoch=1, step=2, global_step=2, losses={"loss": 1.0})
    up = f.poll()
    assert [e["global_step"] for e in up.new_events] == [2]
    assert up.curves.steps["value"].tolist() == [2.0, 1.0]
    assert len(f.events) == 3


def test_follower_leaves_a_half_written_line_for_later(tmp_path):
    w = EventWriter(tmp_path)
    w.emit("start", epochs=1, start_epoch=0, steps_per_epoch=1)
    line = json.dumps({"type": "step", "time": 1.0, "epoch": 1, "step": 1, "global_step": 1,
                       "losses": {"loss": 0.5}})
    with open(tmp_path / RunDir.EVENTS, "a") as fh:
        fh.write(line[:17])
    f = RunFollower(tmp_path, check_worker=False)
    assert [e["type"] for e in f.poll().new_events] == ["start"]
    assert f.poll().curves.steps.empty
    with open(tmp_path / RunDir.EVENTS, "a") as fh:
        fh.write(line[17:] + "\n")
    up = f.poll()
    assert [e["type"] for e in up.new_events] == ["step"]
    assert up.curves.steps["value"].tolist() == [0.5]


def test_curves_hold_hand_computed_values(tmp_path):
    _log_run(EventWriter(tmp_path), epochs=2, steps=2)
    up = RunFollower(tmp_path, check_worker=False).poll()
    c = up.curves
    loss = c.steps[c.steps["name"] == "loss"]
    assert loss["global_step"].tolist() == [1, 2, 3, 4]
    assert loss["value"].tolist() == pytest.approx([1 / 11, 1 / 12, 1 / 21, 1 / 22])
    assert set(c.steps["name"]) == {"loss", "ce"}
    assert c.epoch_losses.to_dict("list") == {"epoch": [1, 2], "name": ["loss", "loss"],
                                              "value": [1.0, 0.5]}
    # "n" is a count, None is no value: neither is a curve point
    assert set(c.epoch_metrics["name"]) == {"uar", "accuracy"}
    assert c.metric("uar").to_dict("list") == {"epoch": [1, 2], "value": [0.1, 0.2]}
    assert up.samples_per_s == 40.0  # the last step's throughput
    assert up.status.state == "running" and up.status.progress == 1.0


def test_resume_drops_the_epochs_it_redoes(tmp_path):
    w = EventWriter(tmp_path)
    _log_run(w, epochs=3, steps=1, base=1.0)  # epochs 1..3 logged
    w.emit("cancelled", epoch=3)
    _log_run(w, epochs=3, steps=1, start_epoch=1, base=2.0)  # resumed from epoch 1's checkpoint
    c = RunFollower(tmp_path, check_worker=False).poll().curves
    assert c.epoch_losses["epoch"].tolist() == [1, 2, 3]
    assert c.epoch_losses["value"].tolist() == pytest.approx([1.0, 2 / 2, 2 / 3])
    assert c.steps["global_step"][c.steps["name"] == "loss"].tolist() == [1, 2, 3]
    assert c.steps["value"][c.steps["name"] == "loss"].tolist() == pytest.approx(
        [1 / 11, 2 / 21, 2 / 31])


@settings(max_examples=40)
@given(cuts=st.lists(st.integers(0, 4000), max_size=8))
def test_polling_at_any_byte_boundaries_gives_the_same_curves(tmp_path_factory, cuts):
    """Appending the log in arbitrary chunks (cut mid-line anywhere) and polling after each
    chunk ends with exactly the curves of the whole log read at once."""
    src = tmp_path_factory.mktemp("src")
    _log_run(EventWriter(src), epochs=3, steps=3)
    data = (src / RunDir.EVENTS).read_bytes()
    dst = tmp_path_factory.mktemp("dst")
    f = RunFollower(dst, check_worker=False)
    seen = []
    prev = 0
    for cut in sorted({min(c, len(data)) for c in cuts}) + [len(data)]:
        with open(dst / RunDir.EVENTS, "ab") as fh:
            fh.write(data[prev:cut])
        prev = cut
        seen += f.poll().new_events
    whole, _ = read_events(src)
    assert seen == whole
    ref = curves_from_events(whole)
    got = f.poll().curves
    for a, b in ((got.steps, ref.steps), (got.epoch_losses, ref.epoch_losses),
                 (got.epoch_metrics, ref.epoch_metrics)):
        pd.testing.assert_frame_equal(a, b)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_follower_reports_a_dead_worker_as_failed(tmp_path):
    w = EventWriter(tmp_path)
    w.emit("start", epochs=2, start_epoch=0, steps_per_epoch=1)
    (tmp_path / "worker.pid").write_text(str(_dead_pid()))
    st_ = RunFollower(tmp_path).poll().status
    assert st_.state == "failed" and "exited without finishing" in st_.message
    # without the liveness check (a run read after the fact) the log decides
    assert RunFollower(tmp_path, check_worker=False).poll().status.state == "running"
    (tmp_path / "worker.pid").write_text(str(os.getpid()))  # alive
    assert RunFollower(tmp_path).poll().status.state == "running"


def test_follower_and_curves_validate_input(tmp_path):
    with pytest.raises(TypeError, match="run_dir"):
        RunFollower(3)
    with pytest.raises(TypeError, match="events"):
        curves_from_events("not a list")
    with pytest.raises(TypeError, match="dicts"):
        curves_from_events([1])


def test_format_duration():
    assert format_duration(None) == "–"
    assert format_duration(0) == "0:00"
    assert format_duration(75) == "1:15"
    assert format_duration(59.6) == "1:00"
    assert format_duration(3725) == "1:02:05"
    with pytest.raises(ValueError, match="seconds"):
        format_duration(-1)
    with pytest.raises(TypeError, match="seconds"):
        format_duration(math.nan)


# -- compare -------------------------------------------------------------------------------

def _finished_run(root: Path, name: str, base: float, test: dict | None) -> Path:
    run = root / name
    _log_run(EventWriter(run), epochs=2, steps=1, base=base)
    (run / "config.yaml").write_text("model: resnet18\n")
    if test is not None:
        (run / "metrics.json").write_text(json.dumps({"test": test, "val": {"uar": 0.9}}))
    return run


def test_compare_curves_overlays_runs(tmp_path):
    a = _finished_run(tmp_path, "a", 1.0, {"uar": 0.5})
    b = _finished_run(tmp_path, "b", 3.0, {"uar": 0.25})
    df = compare_curves([a, b])
    assert list(df.columns) == ["run", "epoch", "curve", "value"]
    loss = df[df["curve"] == "train loss"].set_index(["run", "epoch"])["value"]
    assert loss.to_dict() == pytest.approx({("a", 1): 1.0, ("a", 2): 0.5, ("b", 1): 3.0,
                                            ("b", 2): 1.5})
    uar = df[df["curve"] == "val uar"]
    assert sorted(uar["run"].unique()) == ["a", "b"] and uar["value"].max() == 0.2
    assert compare_curves([]).empty


def test_final_metrics_prefer_test_then_last_epoch(tmp_path):
    a = _finished_run(tmp_path, "a", 1.0, {"uar": 0.5, "accuracy": 0.75, "n": 9})
    b = _finished_run(tmp_path, "b", 1.0, None)  # still running / cancelled: no metrics.json
    table = final_metrics([a, b], metrics=("uar", "accuracy", "macro_f1"))
    assert table.loc["a", "split"] == "test" and table.loc["b", "split"] == "val (epoch 2)"
    assert table.loc["a", "uar"] == 0.5 and table.loc["b", "uar"] == 0.2
    assert table.loc["b", "accuracy"] == 0.1 and np.isnan(table.loc["a", "macro_f1"])
    long = final_metrics_long(table)
    assert list(long.columns) == ["run", "split", "metric", "value"]
    assert len(long) == 4  # two runs × (uar, accuracy); the NaN macro_f1 values dropped
    pairs = set(zip(long["run"], long["metric"], strict=True))
    assert pairs == {("a", "uar"), ("a", "accuracy"), ("b", "uar"), ("b", "accuracy")}


def test_compare_validates_input(tmp_path):
    a = _finished_run(tmp_path, "a", 1.0, None)
    other = _finished_run(tmp_path / "x", "a", 1.0, None)
    with pytest.raises(ValueError, match="distinct names"):
        compare_curves([a, other])
    with pytest.raises(TypeError, match="run_dirs"):
        compare_curves(str(a))
    with pytest.raises(FileNotFoundError, match="nope"):
        final_metrics([tmp_path / "nope"])
    with pytest.raises(TypeError, match="metrics"):
        final_metrics([a], metrics="uar")
    with pytest.raises(TypeError, match="final_metrics"):
        final_metrics_long(pd.DataFrame({"x": [1]}))


# -- manage --------------------------------------------------------------------------------

def test_delete_run_guards(tmp_path):
    root = tmp_path / "runs"
    run = _finished_run(root, "a", 1.0, {"uar": 0.5})
    with pytest.raises(ValueError, match="inside"):
        delete_run(root, root=tmp_path / "elsewhere")
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        (root / "empty").mkdir()
        delete_run(root / "empty", root=root)
    (run / "worker.pid").write_text(str(os.getpid()))  # a live worker
    with pytest.raises(RuntimeError, match="still running"):
        delete_run(run, root=root)
    assert run.is_dir()
    (run / "worker.pid").write_text(str(_dead_pid()))
    assert delete_run(run, root=root) == run.resolve()
    assert not run.exists() and (root / "empty").is_dir()
    with pytest.raises(TypeError, match="run_dir"):
        delete_run(None, root=root)


def test_active_runs(tmp_path):
    done = _finished_run(tmp_path, "done", 1.0, None)
    EventWriter(done).emit("end", epoch=2)
    live = tmp_path / "live"
    EventWriter(live).emit("start", epochs=2, start_epoch=0, steps_per_epoch=1)
    (live / "worker.pid").write_text(str(os.getpid()))
    dead = tmp_path / "dead"
    EventWriter(dead).emit("start", epochs=2, start_epoch=0, steps_per_epoch=1)
    (dead / "worker.pid").write_text(str(_dead_pid()))
    assert active_runs(tmp_path) == [live]
    assert active_runs(tmp_path / "missing") == []


# -- Train form ----------------------------------------------------------------------------

def test_scales_and_their_order():
    assert default_scale(META) == "category"
    choices = scale_choices(META)
    assert [c.name for c in choices][0] == "category" and choices[0].label_set
    by = {c.name: c for c in choices}
    assert not by["category"].ordinal and by["intensity"].ordinal and by["valence"].ordinal
    assert by["valence"].classes == ("low", "high") and len(by["intensity"].classes) == 3
    with pytest.raises(ValueError, match="scale"):
        scale_is_ordinal(META, "arousal")
    with pytest.raises(ContractError, match=r"meta\.json: modality: missing"):
        scale_choices({"name": "x"})
    with pytest.raises(TypeError, match="meta"):
        scale_choices("x")


def test_scale_order_agrees_with_the_trainer():
    from affectlab.engine.trainer import _is_ordinal

    ordinal_label_set = {**META, "label_set": {**META["label_set"], "ordinal": True}}
    for meta in (META, ordinal_label_set):
        for scale in meta["scales"]:
            assert scale_is_ordinal(meta, scale) == _is_ordinal(scale, meta)


def test_method_choices_follow_the_registry():
    from affectlab.methods import available

    registry = available()
    ordinal_only = {s.name for s in registry if s.ordinal_only}
    assert {"emd2", "ce+emd2"} <= ordinal_only
    nominal = {s.name for s in method_choices("face", False)}
    ordered = {s.name for s in method_choices("face", True)}
    assert not nominal & ordinal_only and ordinal_only <= ordered
    assert ordered == {s.name for s in registry if "face" in s.modalities}
    speech = {s.name for s in method_choices("speech", True)}
    assert speech == {s.name for s in registry if "speech" in s.modalities}
    assert "dmue" not in speech  # DMUE is for faces only
    with pytest.raises(ValueError, match="modality"):
        method_choices("video", False)
    with pytest.raises(TypeError, match="ordinal"):
        method_choices("face", 1)


def test_param_fields_and_values():
    fields = param_fields([
        Param("flag", bool, True, help="a flag"),
        Param("k", int, 3, low=1, high=9),
        Param("alpha", float, 0.5, low=0, low_open=True, help="a weight"),
        Param("mode", str, "bank", choices=("bank", "exact")),
        Param("x", object, None),
        Param("comp", int, 2, low=1, also=("bic",)),
    ])
    assert [(f.name, f.kind) for f in fields] == [("flag", "bool"), ("k", "int"),
                                                  ("alpha", "float"), ("mode", "str"),
                                                  ("x", "yaml"), ("comp", "yaml")]
    assert fields[3].choices == ("bank", "exact")
    # bounds and help come from the declaration (number inputs get them as limits)
    assert (fields[1].low, fields[1].high) == (1, 9) and isinstance(fields[1].low, int)
    assert (fields[2].low, fields[2].high) == (0.0, None) and isinstance(fields[2].low, float)
    assert fields[2].help == "a weight. A finite number > 0."
    assert fields[0].help == "a flag." and fields[5].help == "An integer ≥ 1 or 'bic'."
    values = {"flag": True, "k": 3, "alpha": 0.25, "mode": "bank", "x": "[1, 2]",
              "comp": "bic"}
    assert changed_params(fields, values) == {"alpha": 0.25, "x": [1, 2], "comp": "bic"}
    assert parse_param(ParamField("x", "yaml", None), "") is None
    with pytest.raises(ConfigError, match="x"):
        parse_param(ParamField("x", "yaml", None), "[1,")
    with pytest.raises(TypeError, match="params"):
        param_fields([1, 2])
    with pytest.raises(TypeError, match="params"):
        param_fields({"k": 3})


def test_registry_fields_carry_the_declared_bounds():
    from affectlab.methods import available as methods
    from affectlab.models import available as models

    resnet = {f.name: f for f in model_param_fields(
        next(s for s in models() if s.name == "resnet18"))}
    assert "num_classes" not in resnet  # the engine sets it
    assert (resnet["width"].low, resnet["width"].high, resnet["width"].default) == (1, 128, 32)
    assert (resnet["dropout"].low, resnet["dropout"].high) == (0.0, 1.0)
    dmue = {f.name: f for f in method_param_fields(
        next(s for s in methods() if s.name == "dmue"))}
    assert dmue["branch_precision"].choices == ("auto", "float32", "bfloat16")
    assert dmue["branch_layout"].choices == ("loop", "stacked") and dmue["branch_layout"].default == "loop"
    assert "in [0, 1)" in dmue["aux_dropout"].help
    sgm = {f.name: f for f in method_param_fields(next(s for s in methods() if s.name == "sgm"))}
    assert sgm["subclass_components"].kind == "yaml" and "'bic'" in sgm["subclass_components"].help


def test_training_defaults_come_from_the_engine():
    fspl = training_defaults("ce+fspl-kl")
    assert (fspl["lr"], fspl["batch_size"]) == (METHOD_DEFAULTS["ce+fspl-kl"]["lr"],
                                                METHOD_DEFAULTS["ce+fspl-kl"]["batch_size"])
    ce = training_defaults("ce")
    assert set(ce) == {"epochs", "batch_size", "lr", "weight_decay", "seed"}
    assert ce["lr"] != fspl["lr"]


def test_build_run_config_checks_what_the_trainer_would(tmp_path):
    cfg = build_run_config(tmp_path, META, model="resnet18", method="ce", scale="category",
                           epochs=2, name="")
    assert cfg.scale is None and cfg.epochs == 2 and cfg.name  # default scale; automatic name
    cfg = build_run_config(tmp_path, META, model="resnet18", method="emd2", scale="intensity",
                           model_params={"width": 4})
    assert cfg.scale == "intensity" and cfg.model_params == {"width": 4}
    with pytest.raises(ConfigError, match="ordered classes"):
        build_run_config(tmp_path, META, model="resnet18", method="emd2")
    with pytest.raises(ConfigError, match="not a face model"):
        build_run_config(tmp_path, META, model="convpool", method="ce")
    with pytest.raises(ConfigError, match="pretrained"):
        build_run_config(tmp_path, META, model="resnet18", method="ce", pretrained=True)
    with pytest.raises(ConfigError, match="scale"):
        build_run_config(tmp_path, META, model="resnet18", method="ce", scale="arousal")
    with pytest.raises(ConfigError, match="lr"):
        build_run_config(tmp_path, META, model="resnet18", method="ce", lr=0.0)
    speech = {**META, "modality": "speech"}
    with pytest.raises(ConfigError, match="dmue.*face"):
        build_run_config(tmp_path, speech, model="convpool", method="dmue")


# -- device --------------------------------------------------------------------------------

def test_describe_device(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert describe_device() == "CPU"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: f"Fake GPU {i}")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert describe_device() == "CUDA: Fake GPU 0"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert describe_device() == "CUDA: 4 × Fake GPU 0"
