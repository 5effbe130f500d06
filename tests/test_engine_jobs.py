import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from engine_helpers import isolated_data_env, make_corpus, registered_module_scope, tiny_config

from affectlab.engine import jobs
from affectlab.engine.events import EventWriter, read_events
from affectlab.engine.rundir import RunDir

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def face(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("engine-jobs")
    mp = isolated_data_env(tmp)
    undo = registered_module_scope()
    yield tmp, make_corpus(tmp, "face", 40)
    undo()
    mp.__exit__(None, None, None)


def _wait(pred, timeout=90.0):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if pred():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_background_launch_status_cancel_and_resume(face, monkeypatch):
    tmp, data = face
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    monkeypatch.setenv("AFFECTLAB_PLUGINS", "engine_helpers")
    cfg = tiny_config(data, tmp / "bg", epochs=500, batch_size=8)
    run = jobs.launch_background(cfg)
    assert (run / "worker.pid").is_file() and (run / "config.yaml").is_file()
    assert jobs.status(run).state in ("queued", "running")
    ckpt = run / "checkpoints" / "last.pt"
    assert _wait(ckpt.exists), (run / "worker.log").read_text()
    st = jobs.status(run)
    assert st.state == "running" and 0 < st.progress < 1
    with pytest.raises(RuntimeError, match="live worker"):
        jobs.launch_background(cfg, resume=True)

    st = jobs.cancel(run, timeout=60)
    assert st.state == "cancelled", (run / "worker.log").read_text()
    assert not jobs.is_alive(jobs.read_pid(run))
    done = RunDir(run).load_checkpoint()["epoch"]
    assert done >= 1 and read_events(run)[0][-1]["type"] == "cancelled"

    # continue in the background to one more epoch
    more = cfg.model_copy(update={"epochs": done + 1})
    jobs.launch_background(more, resume=True)
    assert _wait(lambda: jobs.status(run).state not in ("queued", "running"))
    st = jobs.status(run)
    assert (st.state, st.epoch) == ("finished", done + 1), (run / "worker.log").read_text()
    assert RunDir(run).has_outputs()


@pytest.mark.slow
def test_sigterm_is_turned_into_a_cancel(face, monkeypatch):
    tmp, data = face
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    monkeypatch.setenv("AFFECTLAB_PLUGINS", "engine_helpers")
    run = jobs.launch_background(tiny_config(data, tmp / "term", epochs=500, batch_size=8))
    assert _wait(lambda: any(e["type"] == "step" for e in read_events(run)[0]))
    st = jobs.cancel(run, timeout=60, term_after=0.0)  # SIGTERM at once
    assert st.state == "cancelled", (run / "worker.log").read_text()


def test_dead_worker_without_end_event_is_failed(tmp_path):
    EventWriter(tmp_path).emit("start", epochs=3, steps_per_epoch=2)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (tmp_path / RunDir.PID).write_text(str(proc.pid))
    st = jobs.status(tmp_path)
    assert st.state == "failed" and "exited without finishing" in st.message
    (tmp_path / RunDir.PID).write_text(str(os.getpid()))  # alive: the log decides
    assert jobs.status(tmp_path).state == "running"


def test_cancel_of_missing_run_and_bad_config(tmp_path):
    with pytest.raises(FileNotFoundError):
        jobs.cancel(tmp_path / "missing")
    with pytest.raises(TypeError, match="RunConfig"):
        jobs.launch_background({"dataset": "x"})


def test_a_background_worker_leaves_the_app_a_core(face, monkeypatch):
    """The worker gets every usable core but one (the app serving the pages keeps one), or
    $AFFECTLAB_TRAIN_THREADS; the start event records what it got."""
    tmp, data = face
    started = []

    class FakePopen:
        pid = 424242

        def __init__(self, cmd, **kwargs):
            started.append(cmd)

    monkeypatch.setattr(jobs.subprocess, "Popen", FakePopen)
    monkeypatch.setattr(jobs, "_usable_cores", lambda: 16)
    monkeypatch.delenv(jobs.THREADS_ENV, raising=False)
    jobs.launch_background(tiny_config(data, tmp / "threads-a"))
    assert started[-1][started[-1].index("--threads") + 1] == "15"
    monkeypatch.setattr(jobs, "_usable_cores", lambda: 1)
    assert jobs.worker_threads() == 1
    monkeypatch.setenv(jobs.THREADS_ENV, "3")
    jobs.launch_background(tiny_config(data, tmp / "threads-b"))
    assert started[-1][started[-1].index("--threads") + 1] == "3"
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(jobs.THREADS_ENV, bad)
        with pytest.raises(ValueError, match="AFFECTLAB_TRAIN_THREADS must be a positive integer"):
            jobs.launch_background(tiny_config(data, tmp / f"threads-bad{bad}"))
    assert len(started) == 2  # a bad value starts nothing


def test_the_worker_trains_on_the_threads_it_is_given(face):
    import torch

    tmp, data = face
    cfg = tiny_config(data, tmp / "threads-run", epochs=1)
    run = RunDir(cfg.run_dir())
    run.make_dir()
    run.write_config(cfg)
    before = torch.get_num_threads()
    try:
        from affectlab.engine import worker

        assert worker.main([str(run.path), "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(before)
    start = read_events(run.path)[0][0]
    assert start["type"] == "start" and start["threads"] == 1
    with pytest.raises(SystemExit):
        worker.main([str(run.path), "--threads", "0"])
