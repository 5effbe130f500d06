"""Housekeeping of run directories: which runs are in progress, deleting a run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from affectlab.engine.rundir import RunDir

__all__ = ["ACTIVE_STATES", "active_runs", "delete_run"]

ACTIVE_STATES = ("queued", "running")


def _root(root: str | os.PathLike | None) -> Path:
    if root is None:
        from affectlab.paths import runs_dir

        return runs_dir()
    return Path(root)


def active_runs(root: str | os.PathLike | None = None) -> list[Path]:
    """Run directories under ``root`` (default: the runs directory) that are queued or running
    (worker liveness checked), newest first."""
    return [r.path for r in RunDir.list(root, status=ACTIVE_STATES)]


def delete_run(run_dir: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Remove a run directory and everything in it; returns the path removed.

    Only a run directly inside ``root`` (default: the runs directory) is removed, and not while
    its worker is alive (cancel it first): a typo or a stale selection must not delete anything
    else or pull the files from under a training process.
    """
    if not isinstance(run_dir, str | os.PathLike):
        raise TypeError(f"run_dir must be a path, got {type(run_dir).__name__}")
    from affectlab.engine.jobs import is_alive

    run = RunDir(Path(run_dir).expanduser().resolve())
    base = _root(root).expanduser().resolve()
    if run.path.parent != base:
        raise ValueError(f"run_dir must be a run directory inside {base}, got {run.path}")
    if not run.is_run():
        raise FileNotFoundError(f"{run.path} is not a run directory (no {RunDir.CONFIG} or "
                                f"{RunDir.EVENTS})")
    pid = run.read_pid()
    if pid is not None and is_alive(pid):
        raise RuntimeError(f"run {run.path.name} is still running (worker pid {pid}); cancel it "
                           "before deleting")
    shutil.rmtree(run.path)
    return run.path
