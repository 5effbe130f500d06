"""The Train and Runs pages under streamlit.testing.v1.AppTest, on a tiny generated face corpus
and two tiny finished runs (built once for the module) in a temporary data directory."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from app_support import open_page
from streamlit.testing.v1 import AppTest

from affectlab.data.synth.corpus import generate_corpus
from affectlab.engine.config import RunConfig
from affectlab.engine.device import describe_device
from affectlab.engine.trainer import train
from affectlab.pages.train_follow import RunFollower
from affectlab.pages.train_form import method_choices

RUN_KEY = "train_run_dir"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """data dir with datasets/tiny (60 faces) and runs/run-ce, runs/run-emd2 (1 epoch each)."""
    root = tmp_path_factory.mktemp("affectlab-data")
    ds = generate_corpus(modality="face", n=60, seed=0, n_domains=2, flip_rate=0.1,
                         out=root / "datasets" / "tiny", overwrite=False, progress=False)
    runs = {}
    for name, method, scale in (("run-ce", "ce", None), ("run-emd2", "ce+emd2", "intensity")):
        cfg = RunConfig(dataset=ds.root, model="resnet18", model_params={"width": 4},
                        method=method, scale=scale, epochs=1, batch_size=16, name=name,
                        out=root / "runs" / name)
        runs[name] = train(cfg, progress=False).run_dir
    return root, ds, runs


@pytest.fixture
def data_root(world, monkeypatch):
    """Point AFFECTLAB_DATA at the module's data directory (conftest points it elsewhere)."""
    monkeypatch.setenv("AFFECTLAB_DATA", str(world[0]))
    return world[0]


@pytest.fixture
def fresh_root(world, tmp_path, monkeypatch):
    """A private data directory with a copy of the dataset and runs (for tests that add or
    delete runs)."""
    root = tmp_path / "data"
    shutil.copytree(world[0], root)
    monkeypatch.setenv("AFFECTLAB_DATA", str(root))
    return root




def _by_label(widgets, label: str):
    found = [w for w in widgets if w.label == label]
    assert len(found) == 1, f"{label!r}: {[w.label for w in widgets]}"
    return found[0]


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


# -- Train ---------------------------------------------------------------------------------

def test_train_page_offers_the_registry_methods(data_root):
    at = open_page("train")
    assert any(describe_device() in c.value for c in at.caption)
    assert _by_label(at.selectbox, "Dataset").value == "tiny"
    method = _by_label(at.selectbox, "Method")
    nominal = [s.name for s in method_choices("face", False)]
    assert method.options == nominal and "emd2" not in nominal and "ce+emd2" not in nominal
    assert _by_label(at.selectbox, "Model").options == ["mini_xception", "resnet18"]

    _by_label(at.selectbox, "Scale").set_value("intensity").run()
    assert not at.exception, at.exception
    options = _by_label(at.selectbox, "Method").options
    assert options == [s.name for s in method_choices("face", True)]
    assert "emd2" in options and "ce+emd2" in options


def test_train_page_generates_parameter_widgets(data_root):
    at = open_page("train")
    _by_label(at.selectbox, "Model").set_value("mini_xception").run()
    assert _by_label(at.checkbox, "Pretrained weights").value is False  # it ships weights
    _by_label(at.selectbox, "Model").set_value("resnet18").run()
    assert not [c for c in at.checkbox if c.label == "Pretrained weights"]
    width = at.number_input(key="train_modelp_resnet18_width")
    # value, bounds and help from the model registry's declaration
    assert (width.value, width.min, width.max) == (32, 1, 128)
    assert "An integer in [1, 128]." in width.help
    _by_label(at.selectbox, "Method").set_value("ce+fspl-kl").run()
    assert not at.exception, at.exception
    alpha = at.number_input(key="train_methodp_ce+fspl-kl_alpha")
    assert (alpha.value, alpha.min, alpha.max) == (10.0, 0.0, None)
    assert "A finite number ≥ 0." in alpha.help
    assert at.checkbox(key="train_methodp_ce+fspl-kl_class_weights").value is True
    assert at.number_input(key="train_lr_ce+fspl-kl").value == pytest.approx(1e-4)
    assert at.number_input(key="train_batch_ce+fspl-kl").value == 100


def test_train_page_reports_an_invalid_config(data_root):
    at = open_page("train")
    at.number_input(key="train_lr_ce").set_value(0.0)
    at.button(key="train_launch").click().run()
    assert not at.exception, at.exception
    assert any("lr" in e.value and "greater than 0" in e.value for e in at.error)
    assert RUN_KEY not in at.session_state


@pytest.mark.slow  # a real background worker: imports torch in a subprocess, then trains
def test_train_page_launches_and_follows_a_run(fresh_root):
    at = open_page("train")
    _by_label(at.selectbox, "Model").set_value("resnet18").run()
    at.number_input(key="train_modelp_resnet18_width").set_value(4)
    at.number_input(key="train_epochs").set_value(1)
    at.number_input(key="train_batch_ce").set_value(16)
    at.text_input(key="train_name").set_value("launched")
    at.button(key="train_launch").click().run()
    assert not at.exception, at.exception
    run_dir = Path(at.session_state[RUN_KEY])
    assert run_dir == fresh_root / "runs" / "launched" and (run_dir / "config.yaml").is_file()

    deadline = time.monotonic() + 90  # the worker imports torch, then trains 3 steps
    while time.monotonic() < deadline:
        text = at.get("progress")[0].proto.text
        if "finished" in text or "failed" in text:
            break
        time.sleep(1.0)
        at.run()
        assert not at.exception, at.exception
    progress = at.get("progress")[0].proto
    assert "finished" in progress.text, (progress.text, (run_dir / "worker.log").read_text())
    assert progress.value == 100
    titles = [c["layout"]["title"]["text"] for c in _charts(at)]
    assert "Training loss per logged step" in titles and "Validation metrics per epoch" in titles
    curves = RunFollower(run_dir, check_worker=False).poll().curves
    losses = curves.epoch_losses
    assert losses.loc[losses["name"] == "loss", "epoch"].tolist() == [1] and len(curves.steps)

    # leave the page and come back: still following the same run
    at.switch_page("views/runs.py").run()
    assert not at.exception, at.exception
    at.switch_page("views/train.py").run()
    assert not at.exception, at.exception
    assert at.session_state[RUN_KEY] == str(run_dir)
    assert "launched" in at.get("progress")[0].proto.text


def test_train_page_shows_which_classes_a_fine_tuned_head_mapped(fresh_root):
    from affectlab.engine.events import EventWriter

    run_dir = fresh_root / "runs" / "run-ce"
    message = ("initialised from the shipped mini_xception weights (7 classes): 7 class(es) "
               "mapped (neutral, happiness←happy, …); new: contempt")
    EventWriter(run_dir).emit("notice", message=message, init={"new": ["contempt"]})
    at = open_page("train")
    at.session_state[RUN_KEY] = str(run_dir)
    at.run()
    assert not at.exception, at.exception
    assert [i.value for i in at.info] == [message]
    assert "finished" in at.get("progress")[0].proto.text


# -- Runs ----------------------------------------------------------------------------------

def test_runs_page_lists_and_compares_runs(data_root, world):
    at = open_page("runs")
    table = at.dataframe[0].value
    assert set(table["name"]) == {"run-ce", "run-emd2"}
    assert set(table["status"]) == {"finished"}
    assert _charts(at) == []  # nothing picked: nothing to compare

    at.multiselect(key="runs_compare").set_value(["run-ce", "run-emd2"]).run()
    assert not at.exception, at.exception
    charts = {c["layout"]["title"]["text"]: c for c in _charts(at)}
    assert {"train loss", "val uar", "val accuracy", "Final metrics"} <= set(charts)
    for title in ("train loss", "val uar", "Final metrics"):
        assert {t["name"] for t in charts[title]["data"]} == {"run-ce", "run-emd2"}
    final = at.dataframe[1].value
    assert set(final.index) == {"run-ce", "run-emd2"} and set(final["split"]) == {"test"}
    saved = json.loads((world[2]["run-ce"] / "metrics.json").read_text())
    assert final.loc["run-ce", "uar"] == pytest.approx(saved["test"]["uar"])


def test_runs_page_opens_a_run_in_explore(data_root, monkeypatch):
    monkeypatch.setattr("affectlab.explore.projection.ensure_umap_async", lambda path: "running")
    at = open_page("runs")
    at.selectbox(key="runs_target").set_value("run-emd2").run()
    at.button(key="runs_explore").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="explore_run").value == "run-emd2"


def test_runs_page_deletes_after_confirmation(fresh_root):
    at = open_page("runs")
    at.selectbox(key="runs_target").set_value("run-ce").run()
    at.button(key="runs_delete").click().run()
    assert any("cannot be undone" in w.value for w in at.warning)
    assert (fresh_root / "runs" / "run-ce").is_dir()  # asked, not yet done
    at.button(key="runs_delete_no").click().run()
    assert not at.warning and (fresh_root / "runs" / "run-ce").is_dir()

    at.button(key="runs_delete").click().run()
    at.button(key="runs_delete_yes").click().run()
    assert not at.exception, at.exception
    assert not (fresh_root / "runs" / "run-ce").exists()
    assert any("Deleted run run-ce" in s.value for s in at.success)
    assert set(at.dataframe[0].value["name"]) == {"run-emd2"}


_FAKE_WORKER = """
import json, pathlib, sys, time
run = pathlib.Path(sys.argv[1])
end = time.monotonic() + 60
while not (run / "cancel.request").exists() and time.monotonic() < end:
    time.sleep(0.05)
with open(run / "events.jsonl", "a") as fh:
    fh.write(json.dumps({"type": "cancelled", "time": time.time(), "epoch": 0}) + "\\n")
"""


@pytest.fixture
def fake_live_run(fresh_root):
    """A run in progress whose 'worker' is a tiny process that ends the run with a cancelled
    event once it sees the cancel request (the engine's protocol), without torch."""
    import subprocess
    import sys

    from affectlab.engine.events import EventWriter

    run = fresh_root / "runs" / "in-progress"
    EventWriter(run).emit("start", epochs=5, start_epoch=0, steps_per_epoch=4)
    (run / "config.yaml").write_text("model: resnet18\nmethod: ce\nepochs: 5\n")
    proc = subprocess.Popen([sys.executable, "-c", _FAKE_WORKER, str(run)])
    (run / "worker.pid").write_text(str(proc.pid))
    yield run
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_train_page_follows_a_picked_running_run_and_cancels_it(fake_live_run):
    at = open_page("train")  # nothing launched from this session: the running run is followed
    pick = _by_label(at.selectbox, "Run to follow")
    assert pick.options == ["in-progress"]  # shown by name; the running run is offered
    assert at.session_state[RUN_KEY] == str(fake_live_run)
    assert "**in-progress** · running · epoch 0/5" in at.get("progress")[0].proto.text

    at.button(key="train_cancel").click().run()
    assert not at.exception, at.exception
    assert (fake_live_run / "cancel.request").is_file()
    assert any("Cancelled" in w.value for w in at.warning)
    assert "cancelled" in at.get("progress")[0].proto.text


def test_pages_render_with_no_data():
    """conftest's empty data directory: both pages say what to do instead of failing."""
    at = open_page("train")
    assert any("No dataset yet" in i.value for i in at.info)
    assert any("No run followed yet" in c.value for c in at.caption)
    at.switch_page("views/runs.py").run()
    assert not at.exception, at.exception
    assert any("No run yet" in i.value for i in at.info)
