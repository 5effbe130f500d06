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
