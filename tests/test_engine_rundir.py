"""The run directory (affectlab.engine.rundir), checkpoints without pickle, and runs that
recover: a damaged last checkpoint, a crafted pickle, a run killed before its first checkpoint."""

from __future__ import annotations

import os
import random
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from engine_helpers import (
    TINY_FAIL,
    TinyCE,
    isolated_data_env,
    make_corpus,
    registered_module_scope,
    tiny_config,
)
from typer.testing import CliRunner

from affectlab.cli import app
from affectlab.engine.callbacks import Callback
from affectlab.engine.checkpoint import check_plain, rng_state, set_rng_state
from affectlab.engine.events import EventWriter, read_events, run_status
from affectlab.engine.rundir import CheckpointError, RunDir, load_checkpoint_file
from affectlab.engine.runs import load_method, load_run
from affectlab.engine.trainer import train

runner = CliRunner()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("engine-rundir")
    mp = isolated_data_env(tmp)
    undo = registered_module_scope()
    face = make_corpus(tmp, "face", 60)
    run = train(tiny_config(face, tmp / "runs" / "base"), progress=False).run_dir
    yield {"tmp": tmp, "face": face, "run": run}
    undo()
    mp.__exit__(None, None, None)


def _copy(env, tmp_path, name="copy") -> RunDir:
    """A copy of the trained run (its config pointed at the copy)."""
    dst = tmp_path / name
    shutil.copytree(env["run"], dst)
    run = RunDir(dst)
    run.write_config(tiny_config(env["face"], dst))
    return run


class _Bomb:
    """Unpickling it creates ``marker`` (as a crafted checkpoint could run any command)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant_bomb(path, marker) -> None:
    torch.save({"format": 2, "epoch": 1, "method_state": {"w": _Bomb(marker)}}, path)


# -- the layout ------------------------------------------------------------------------------

def test_a_finished_run_has_every_file_where_rundir_says(env):
    run = RunDir(env["run"])
    assert run.is_run() and run.has_checkpoint() and run.has_results()
    for path in (run.config_path, run.events_path, run.model_info_path, run.metrics_path,
                 run.checkpoint_path("last"), run.checkpoint_path("previous"),
                 run.checkpoint_path("best")):
        assert path.is_file(), path
    assert run.output_splits() == ["test", "val", "train"] and run.has_embeddings()
    assert run.weights_path() == run.checkpoint_path("best")
    assert run.load_config().epochs == 2 and run.read_config()["method"] == "tiny-ce"
    assert run.status().state == "finished"
    summary = run.summary()
    assert (summary.status, summary.epochs_done, summary.modality) == ("finished", 2, "face")
    assert summary.has_outputs and summary.has_weights
    assert summary.test_uar == run.read_metrics()["test"]["uar"]
    with pytest.raises(ValueError, match="checkpoint must be one of"):
        run.checkpoint_path("middle")
    with pytest.raises(ValueError, match="split must be one of"):
        run.outputs_path("holdout")
    with pytest.raises(TypeError, match="path"):
        RunDir(3)


def test_atomic_writes_leave_the_old_file_whole_when_a_write_fails(tmp_path):
    run = RunDir(tmp_path)
    run.write_metrics({"test": {"uar": 0.5, "bad": float("nan")}})
    assert run.read_metrics() == {"test": {"uar": 0.5, "bad": None}}  # JSON has no NaN
    frame = pd.DataFrame({"item_id": ["a"]})
    with pytest.raises(ValueError, match=r"shape \(1, D\)"):
        run.write_outputs("test", frame, np.zeros((2, 3)))
    assert not run.has_outputs()

    class Unwritable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle this")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        run.save_checkpoint({"x": Unwritable()}, "best")
    assert not run.checkpoint_path("best").exists()
    assert [p.name for p in run.path.rglob("*.tmp")] == []  # no temporary file left behind


def test_saving_last_keeps_the_one_it_replaces_as_previous(tmp_path):
    run = RunDir(tmp_path)
    for epoch in (1, 2, 3):
        run.save_checkpoint({"epoch": epoch})
    assert run.load_checkpoint()["epoch"] == 3 and run.load_checkpoint("previous")["epoch"] == 2
    run.save_checkpoint({"epoch": 4}, keep_previous=False)
    assert run.load_checkpoint()["epoch"] == 4 and run.load_checkpoint("previous")["epoch"] == 2


# -- checkpoints are plain data --------------------------------------------------------------

def test_checkpoints_hold_tensors_and_plain_data_only(env):
    run = RunDir(env["run"])
    for which in ("last", "previous", "best"):
        state = torch.load(run.checkpoint_path(which), weights_only=True)  # no pickle needed
        assert state["format"] == 2 and state["method_state"].keys()
        check_plain(state)
    rng = run.load_checkpoint()["rng"]
    assert len(rng["python"]["internal"]) == 625 and len(rng["numpy"]["keys"]) == 624
    assert all(type(w) is int for w in rng["numpy"]["keys"])
    assert run.load_checkpoint()["config"] == run.load_config().to_dict()
    with pytest.raises(TypeError, match=r"checkpoint\.history\[0\]\.uar is a numpy"):
        check_plain({"history": [{"uar": np.float64(0.5)}]})


def test_rng_states_survive_a_weights_only_round_trip(tmp_path):
    random.seed(1)
    np.random.seed(2)  # noqa: NPY002
    torch.manual_seed(3)
    random.gauss(0, 1)  # python keeps a cached gaussian: part of its state
    state = rng_state()
    torch.save(state, tmp_path / "rng.pt")
    first = (random.random(), np.random.rand(), torch.rand(1).item())  # noqa: NPY002
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first  # noqa: NPY002


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"PK\x03\x04 half a zip", "truncated or damaged"),
    (b"garbage that is no checkpoint", "damaged"),
])
def test_unreadable_checkpoints_are_named_in_the_error(tmp_path, content, message):
    path = tmp_path / "last.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as err:
        load_checkpoint_file(path)
    assert str(path) in str(err.value)
    torch.save([1, 2], path)
    with pytest.raises(CheckpointError, match="holds a list"):
        load_checkpoint_file(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint_file(tmp_path / "missing.pt")


def test_a_truncated_copy_of_a_real_checkpoint_is_refused(env, tmp_path):
    data = RunDir(env["run"]).checkpoint_path("last").read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or damaged"):
        load_checkpoint_file(path)


# -- a crafted pickle never runs ---------------------------------------------------------------

def test_the_crafted_checkpoint_would_run_when_unpickled(tmp_path):
    """The bomb is live: only weights_only=True keeps it from running."""
    marker = tmp_path / "ran"
    _plant_bomb(tmp_path / "bomb.pt", marker)
    torch.load(tmp_path / "bomb.pt", weights_only=False)
    assert marker.exists()


def test_load_run_and_load_method_refuse_a_pickled_checkpoint(env, tmp_path):
    run = _copy(env, tmp_path)
    marker = tmp_path / "ran"
    _plant_bomb(run.checkpoint_path("last"), marker)
    with pytest.raises(CheckpointError, match="not unpickled") as err:
        load_run(run)
    assert str(run.checkpoint_path("last")) in str(err.value) and "open" in str(err.value)
    with pytest.raises(CheckpointError):
        load_method(run.checkpoint_path("last"))
    assert not marker.exists()


def test_predict_refuses_a_pickled_checkpoint(env, tmp_path):
    run = _copy(env, tmp_path)
    marker = tmp_path / "ran"
    _plant_bomb(run.checkpoint_path("last"), marker)
    items = pd.read_parquet(env["face"] / "items.parquet")
    res = runner.invoke(app, ["predict", str(env["face"] / items.media.iloc[0]), "--model",
                              str(run.path)])
    assert res.exit_code == 2 and "not unpickled" in res.output
    assert str(run.checkpoint_path("last")) in res.output.replace("\n", "")
    assert not marker.exists()


def test_the_live_loader_refuses_a_pickled_checkpoint(env, tmp_path):
    from affectlab.live.models import load_run_model

    run = _copy(env, tmp_path)
    marker = tmp_path / "ran"
    _plant_bomb(run.checkpoint_path("best"), marker)  # the one the Live page takes first
    with pytest.raises(CheckpointError, match="not unpickled"):
        load_run_model(run)
    bare = RunDir(tmp_path / "bare")  # a hand-placed bare state dict
    bare.path.mkdir()
    bare.config_path.write_text("model: resnet18\n")
    _plant_bomb(bare.path / RunDir.FOREIGN_WEIGHTS[0], marker)
    with pytest.raises(CheckpointError, match="not unpickled"):
        load_run_model(bare)
    assert not marker.exists()


def test_resume_refuses_pickled_checkpoints(env, tmp_path):
    run = _copy(env, tmp_path)
    marker = tmp_path / "ran"
    _plant_bomb(run.checkpoint_path("last"), marker)
    _plant_bomb(run.checkpoint_path("previous"), marker)
    with pytest.raises(CheckpointError, match="cannot resume") as err:
        train(tiny_config(env["face"], run.path, epochs=3), progress=False, resume=True)
    for which in ("last", "previous"):
        assert str(run.checkpoint_path(which)) in str(err.value)
    assert not marker.exists()
    assert read_events(run)[0][-1]["type"] == "error"


def test_embeddings_are_never_unpickled(env, tmp_path):
    from affectlab.explore.projection import run_projection
    from affectlab.explore.run_outputs import load_run_outputs

    run = _copy(env, tmp_path)
    marker = tmp_path / "ran"
    np.save(run.embeddings_path("test"), np.array([_Bomb(marker)], dtype=object),
            allow_pickle=True)
    for read in (run.read_outputs, run.read_embeddings, lambda: load_run_outputs(run),
                 lambda: run_projection(run)):
        with pytest.raises(ValueError, match="allow_pickle"):
            read()
    assert not marker.exists()


# -- recovery ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def full_run(env):
    """Three epochs without a stop: the weights a recovered run must end with."""
    return train(tiny_config(env["face"], env["tmp"] / "full", epochs=3), progress=False)


def _cut_after_two_epochs(env, out):
    cfg = tiny_config(env["face"], out, epochs=3)
    spe = read_events(env["run"])[0][0]["steps_per_epoch"]
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 2 * spe

    assert train(cfg, progress=False, should_stop=stop).epochs_done == 2
    return cfg


def test_a_truncated_last_checkpoint_resumes_from_the_previous_one(env, full_run, tmp_path):
    cfg = _cut_after_two_epochs(env, tmp_path / "cut")
    run = RunDir(cfg.run_dir())
    data = run.checkpoint_path("last").read_bytes()
    run.checkpoint_path("last").write_bytes(data[: len(data) // 3])
    resumed = train(cfg, progress=False, resume=True)
    assert (resumed.status, resumed.epochs_done) == ("finished", 3)
    events = read_events(run)[0]
    notice = [e for e in events if e["type"] == "notice"]
    assert len(notice) == 1 and str(run.checkpoint_path("last")) in notice[0]["message"]
    assert "truncated or damaged" in notice[0]["message"]
    assert [e["start_epoch"] for e in events if e["type"] == "start"] == [0, 1]
    # epochs 2 and 3 redone from epoch 1's state: the same weights as the unbroken run
    a = RunDir(full_run.run_dir).load_checkpoint()["method_state"]
    b = run.load_checkpoint()["method_state"]
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert resumed.metrics["test"] == full_run.metrics["test"]
    # the damaged file was replaced, not kept as previous: previous is epoch 2's
    assert run.load_checkpoint("previous")["epoch"] == 2


def test_an_empty_last_checkpoint_without_a_previous_one_is_a_clear_cli_error(env, tmp_path):
    run = _copy(env, tmp_path)
    run.checkpoint_path("previous").unlink()
    run.checkpoint_path("last").write_bytes(b"")
    res = runner.invoke(app, ["train", str(run.config_path), "--resume"])
    assert res.exit_code == 2, res.output
    flat = res.output.replace("\n", "")
    assert "is empty" in flat and str(run.checkpoint_path("last")) in flat
    assert "Aborted" not in res.output


def test_an_empty_last_checkpoint_falls_back_through_the_cli(env, tmp_path):
    run = _copy(env, tmp_path)
    run.checkpoint_path("last").write_bytes(b"")
    res = runner.invoke(app, ["train", str(run.config_path), "--resume"])
    assert res.exit_code == 0, res.output
    assert "finished" in res.output and run.load_checkpoint()["epoch"] == 2
    assert any(e["type"] == "notice" and "is empty" in e["message"] for e in read_events(run)[0])


def _killed_in_epoch_one(env, out):
    """What a worker killed during epoch 1 leaves: config and a log of start and steps."""
    cfg = tiny_config(env["face"], out)
    run = RunDir(out)
    run.path.mkdir(parents=True)
    run.write_config(cfg)
    log = EventWriter(run.path)
    log.emit("start", epochs=2, start_epoch=0, steps_per_epoch=3)
    log.emit("step", epoch=1, step=1, global_step=1, losses={"loss": 2.0})
    return cfg, run


def test_a_run_killed_before_its_first_checkpoint_restarts_in_place(env, tmp_path):
    cfg, run = _killed_in_epoch_one(env, tmp_path / "killed")
    assert run.is_run() and not run.has_results()
    with pytest.raises(FileNotFoundError, match="restart it in place") as err:
        train(cfg, progress=False, resume=True)
    assert str(run.checkpoint_path("last")) in str(err.value)
    result = train(cfg, progress=False)
    assert (result.status, result.epochs_done) == ("finished", 2)
    assert run_status(run.path).state == "finished" and run.has_outputs()
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(cfg, progress=False)  # now it has results: restarting would overwrite them


def test_cancelled_and_failed_first_epochs_restart_in_place(env, tmp_path):
    cfg = tiny_config(env["face"], tmp_path / "cancelled")
    assert train(cfg, progress=False, should_stop=lambda: True).status == "cancelled"
    assert train(cfg, progress=False).status == "finished"
    failing = tiny_config(env["face"], tmp_path / "failed", method=TINY_FAIL)
    with pytest.raises(RuntimeError, match="boom"):
        train(failing, progress=False)
    assert train(tiny_config(env["face"], tmp_path / "failed"), progress=False).epochs_done == 2


def test_the_background_launcher_restarts_a_killed_run_in_place(env, tmp_path, monkeypatch):
    from affectlab.engine import jobs

    cfg, run = _killed_in_epoch_one(env, tmp_path / "killed-bg")
    started = []
    monkeypatch.setattr(jobs.subprocess, "Popen", lambda cmd, **kw: started.append(cmd) or
                        type("P", (), {"pid": os.getpid(), "poll": lambda self: None})())
    assert jobs.launch_background(cfg) == run.path and "--resume" not in started[0]
    assert run.read_pid() == os.getpid()
    jobs._children.clear()
    with pytest.raises(FileExistsError):
        jobs.launch_background(tiny_config(env["face"], env["run"]))


# -- the loop's stages and hooks --------------------------------------------------------------

class _Recorder(Callback):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_start(self, trainer):
        self.calls.append(f"start@{trainer.start_epoch}")

    def on_epoch_start(self, trainer, epoch, n_batches):
        self.calls.append(f"epoch_start {epoch}")

    def on_step_end(self, trainer, step):
        if step.last_of_epoch:
            self.calls.append(f"last step {step.epoch}")

    def on_evaluate(self, trainer, split, pred, metrics):
        assert "kl_truth" in metrics  # the TruthMeasures callback ran first
        self.calls.append(f"evaluate {split}")

    def on_epoch_end(self, trainer, record):
        self.calls.append(f"epoch_end {record['epoch']}")

    def on_end(self, trainer, final):
        self.calls.append("end")


def test_stages_call_hooks_in_order_and_method_hooks_run(env, tmp_path, monkeypatch):
    seen = {"attach": 0, "epoch_end": 0}
    monkeypatch.setattr(TinyCE, "attach_dataset",
                        lambda self, ds: seen.__setitem__("attach", seen["attach"] + len(ds)))

    def on_epoch_end(self, loader):
        assert not torch.is_grad_enabled()
        seen["epoch_end"] += sum(len(b["y"]) for b in loader)

    monkeypatch.setattr(TinyCE, "on_epoch_end", on_epoch_end)
    recorder = _Recorder()
    result = train(tiny_config(env["face"], tmp_path / "hooks"), progress=False,
                   callbacks=[recorder])
    n_train = read_events(result.run_dir)[0][0]["n_train"]
    assert seen == {"attach": n_train, "epoch_end": 2 * n_train}
    assert recorder.calls == ["start@0", "epoch_start 0", "last step 0", "evaluate val",
                              "epoch_end 1", "epoch_start 1", "last step 1", "evaluate val",
                              "epoch_end 2", "evaluate test", "evaluate val", "evaluate train",
                              "end"]
