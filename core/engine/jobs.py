"""Background training jobs: one worker process per run, followed through its run directory.

``launch_background`` writes the run's config, starts ``python -m affectlab.engine.worker <run>``
in a new session (so closing the app or terminal does not kill it), sends its output to the
run's worker log and its pid to the pid file (:class:`~affectlab.engine.rundir.RunDir` names
them). ``cancel`` asks it to stop (a cancel request file the loop checks every step; SIGTERM,
which the worker turns into the same request, when it does not stop in time). ``status`` reads
the event log and checks that the worker is still alive, so a crashed worker shows as failed
instead of running forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from affectlab.engine.config import RunConfig
from affectlab.engine.events import RunStatus, read_events, run_status
from affectlab.engine.rundir import RunDir

__all__ = ["cancel", "dead_worker", "is_alive", "launch_background", "read_pid", "status",
           "worker_threads"]

THREADS_ENV = "AFFECTLAB_TRAIN_THREADS"

_children: dict[int, subprocess.Popen] = {}  # workers started by this process (reaped on poll)


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may run on (a container's share)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_threads() -> int:
    """torch's CPU threads for a background worker: ``$AFFECTLAB_TRAIN_THREADS`` when set,
    else every usable core but one (at least one), so that the app serving the pages, the
    rating page included, keeps a core while a run trains."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return max(1, _usable_cores() - 1)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"${THREADS_ENV} must be a positive integer (torch threads per "
                         f"background run), got {value!r}")
    return int(value)


def launch_background(config: RunConfig, resume: bool = False) -> Path:
    """Start training ``config`` in a separate process; returns the run directory at once.

    Without ``resume`` the directory must hold no results yet (a run killed before its first
    checkpoint may be started again in place). The worker computes on :func:`worker_threads`
    torch threads."""
    if not isinstance(config, RunConfig):
        raise TypeError(f"config must be a RunConfig, got {type(config).__name__}")
    run = RunDir(config.run_dir())
    if not resume and run.has_results():
        raise FileExistsError(f"run directory {run.path} already holds a run; pass resume=True "
                              "to continue it or choose another out")
    pid = run.read_pid()
    if pid is not None and is_alive(pid):
        raise RuntimeError(f"run {run.path} already has a live worker (pid {pid})")
    threads = worker_threads()  # a bad $AFFECTLAB_TRAIN_THREADS fails here, not in the worker
    run.make_dir()  # marked as affectlab's when new
    run.write_config(config)
    run.clear_cancel()
    cmd = [sys.executable, "-m", "affectlab.engine.worker", str(run.path)]
    cmd += ["--threads", str(threads), *(["--resume"] if resume else [])]
    with open(run.log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=os.getcwd(), start_new_session=True)
    _children[proc.pid] = proc
    run.write_pid(proc.pid)
    return run.path


def read_pid(run_dir: str | os.PathLike) -> int | None:
    """The pid the launcher recorded for the run's worker, or None."""
    return RunDir(run_dir).read_pid()


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


def dead_worker(run_dir: str | os.PathLike, st: RunStatus,
                reread: Callable[[], RunStatus] | None = None) -> RunStatus:
    """``st`` corrected for the worker's liveness: a queued or running run whose worker has
    exited is failed (after ``reread()`` gave the status again: the worker may have written its
    last event just before exiting)."""
    run = RunDir(run_dir)
    pid = run.read_pid()
    if st.state not in ("queued", "running") or pid is None or is_alive(pid):
        return st
    st = reread() if reread is not None else run_status(run.path)
    if st.state in ("queued", "running"):
        return RunStatus("failed", st.progress, st.epoch, st.epochs,
                         f"worker (pid {pid}) exited without finishing; see {run.log_path}", None)
    return st


def status(run_dir: str | os.PathLike, events: list[dict[str, Any]] | None = None) -> RunStatus:
    """The run's status from its events (``events``: already read), corrected by the worker's
    liveness: a run whose log says running (or queued) but whose worker has exited is reported
    failed."""
    run = RunDir(run_dir)
    if events is None:
        events, _ = read_events(run.path)
    st = run_status(run.path, events)
    pid = run.read_pid()
    if st.state in ("finished", "failed", "cancelled") and pid is not None and is_alive(pid):
        # a worker launched (to resume) after the log's last end, not started yet
        if events and run.pid_path.stat().st_mtime > float(events[-1].get("time", 0.0)):
            return RunStatus("queued", st.progress, st.epoch, st.epochs, "", None)
    return dead_worker(run.path, st)


def cancel(run_dir: str | os.PathLike, timeout: float = 30.0, term_after: float = 10.0
           ) -> RunStatus:
    """Ask the run to stop; wait up to ``timeout`` seconds for it to end.

    The request file is seen at the next training step; if the worker has not ended after
    ``term_after`` seconds (e.g. still loading data), it gets SIGTERM, which it turns into the
    same request. The run ends with a ``cancelled`` event and keeps its last checkpoint.
    """
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise FileNotFoundError(f"run directory {run.path} does not exist")
    run.request_cancel()
    pid = run.read_pid()
    if pid is None:
        return status(run.path)
    start, termed = time.monotonic(), False
    while is_alive(pid) and time.monotonic() - start < timeout:
        if not termed and time.monotonic() - start >= term_after:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                break
            termed = True
        time.sleep(0.1)
    return status(run.path)
