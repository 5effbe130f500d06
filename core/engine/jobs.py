"""Background training jobs: one worker process per run, followed through its run directory.

``launch_background`` writes ``<run>/config.yaml``, starts ``python -m affectlab.engine.worker <run>``
in a new session (so closing the app or terminal does not kill it), sends its output to
``<run>/worker.log`` and its pid to ``<run>/worker.pid``. ``cancel`` asks it to stop (a
``cancel.request`` file the loop checks every step; SIGTERM, which the worker turns into the
same request, when it does not stop in time). ``status`` reads the event log and checks that the
worker is still alive, so a crashed worker shows as failed instead of running forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from affectlab.engine.config import RunConfig, save_config
from affectlab.engine.events import EVENTS_FILE, RunStatus, read_events, run_status
from affectlab.engine.trainer import CANCEL_FILE

__all__ = ["PID_FILE", "LOG_FILE", "cancel", "is_alive", "launch_background", "status"]

PID_FILE = "worker.pid"
LOG_FILE = "worker.log"
_children: dict[int, subprocess.Popen] = {}  # workers started by this process (reaped on poll)


def launch_background(config: RunConfig, resume: bool = False) -> Path:
    """Start training ``config`` in a separate process; returns the run directory at once."""
    if not isinstance(config, RunConfig):
        raise TypeError(f"config must be a RunConfig, got {type(config).__name__}")
    run_dir = config.run_dir()
    if not resume and (run_dir / EVENTS_FILE).exists():
        raise FileExistsError(f"run directory {run_dir} already holds a run; pass resume=True "
                              "to continue it or choose another out")
    pid = read_pid(run_dir)
    if pid is not None and is_alive(pid):
        raise RuntimeError(f"run {run_dir} already has a live worker (pid {pid})")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.yaml")
    (run_dir / CANCEL_FILE).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "affectlab.engine.worker", str(run_dir)]
    cmd += ["--resume"] if resume else []
    with open(run_dir / LOG_FILE, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=os.getcwd(), start_new_session=True)
    _children[proc.pid] = proc
    tmp = run_dir / f".{PID_FILE}.tmp"
    tmp.write_text(str(proc.pid))
    os.replace(tmp, run_dir / PID_FILE)
    return run_dir


def read_pid(run_dir: str | os.PathLike) -> int | None:
    path = Path(run_dir) / PID_FILE
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def is_alive(pid: int) -> bool:
    """Whether process ``pid`` is running (a zombie, i.e. exited but not yet reaped, is not)."""
    proc = _children.get(pid)
    if proc is not None:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return True  # no /proc (macOS): kill(0) succeeded


def status(run_dir: str | os.PathLike) -> RunStatus:
    """The run's status from its events, corrected by the worker's liveness: a run whose log
    says running (or queued) but whose worker has exited is reported failed."""
    run_dir = Path(run_dir)
    events, _ = read_events(run_dir)
    st = run_status(run_dir, events)
    pid = read_pid(run_dir)
    if st.state in ("finished", "failed", "cancelled") and pid is not None and is_alive(pid):
        # a worker launched (to resume) after the log's last end, not started yet
        pid_time = (run_dir / PID_FILE).stat().st_mtime
        if events and pid_time > float(events[-1].get("time", 0.0)):
            return RunStatus("queued", st.progress, st.epoch, st.epochs, "", None)
    if st.state in ("queued", "running") and pid is not None and not is_alive(pid):
        # the worker may have written its last event just before exiting: read again
        st = run_status(run_dir)
        if st.state in ("queued", "running"):
            return RunStatus("failed", st.progress, st.epoch, st.epochs,
                             f"worker (pid {pid}) exited without finishing; see "
                             f"{run_dir / LOG_FILE}", None)
    return st


def cancel(run_dir: str | os.PathLike, timeout: float = 30.0, term_after: float = 10.0
           ) -> RunStatus:
    """Ask the run to stop; wait up to ``timeout`` seconds for it to end.

    The request file is seen at the next training step; if the worker has not ended after
    ``term_after`` seconds (e.g. still loading data), it gets SIGTERM, which it turns into the
    same request. The run ends with a ``cancelled`` event and keeps its last checkpoint.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    (run_dir / CANCEL_FILE).touch()
    pid = read_pid(run_dir)
    if pid is None:
        return status(run_dir)
    start, termed = time.monotonic(), False
    while is_alive(pid) and time.monotonic() - start < timeout:
        if not termed and time.monotonic() - start >= term_after:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                break
            termed = True
        time.sleep(0.1)
    return status(run_dir)
