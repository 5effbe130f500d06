"""A study in the background (the app's Study view): launch, follow, stop, list.

``launch_study`` starts ``python -m affectlab.study.worker`` in its own session, output to
``<study>/study.log``, its pid in ``<study>/study.pid``; the worker writes
``<study>/progress.json`` ({state, done, total, current, message}) after every run, so the app
follows it without reading the engine's logs. A stopped study (``stop_study``: SIGTERM to the
worker's process group) is continued by launching it again: finished runs are reused, the one
that was stopped resumes from its last checkpoint.

Studies live under ``<data>/studies/<name>``; a name becomes a path only through
:func:`study_dir` (letters, digits and ``. _ + -``, no separators).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectlab.fileio import atomic_write, read_json_dict

__all__ = ["LOG_FILE", "PID_FILE", "PROGRESS_FILE", "StudyStatus", "launch_study",
           "list_studies", "stop_study", "studies_dir", "study_dir", "study_status",
           "write_progress"]

PROGRESS_FILE, PID_FILE, LOG_FILE = "progress.json", "study.pid", "study.log"
_children: dict[int, subprocess.Popen] = {}


def studies_dir() -> Path:
    from affectlab.paths import data_dir

    return data_dir() / "studies"


def study_dir(name: str, root: Path | None = None) -> Path:
    """The directory of study ``name`` under ``root`` (default :func:`studies_dir`), through
    the one contained helper every typed name goes through (:func:`affectlab.paths.child_path`:
    a safe single name, and no link out of the root); UnsafeNameError (a ValueError) names
    what is wrong."""
    from affectlab.paths import child_path

    return child_path(root or studies_dir(), name, "study name")


def write_progress(out: Path, **fields: Any) -> None:
    """Merge ``fields`` into ``<out>/progress.json`` (atomically)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = read_json_dict(out / PROGRESS_FILE) | fields
    atomic_write(out / PROGRESS_FILE, lambda f: f.write(json.dumps(data).encode()))


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        _children.pop(pid, None)  # reaped: a finished child of this process
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _pid(out: Path) -> int | None:
    try:
        return int((Path(out) / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class StudyStatus:
    """state: running | finished | failed | stopped | new; done/total runs; current run."""

    state: str
    done: int
    total: int
    current: str
    message: str

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


def study_status(out: Path) -> StudyStatus:
    """Where the study in ``out`` stands (a worker that died while running shows failed)."""
    p = read_json_dict(Path(out) / PROGRESS_FILE)
    state = str(p.get("state", "new"))
    if state == "running" and not _alive(_pid(out)):
        state = "failed" if not p.get("stopped") else "stopped"
    elif p.get("stopped") and state == "running":
        state = "stopped"
    return StudyStatus(state, int(p.get("done", 0)), int(p.get("total", 0)),
                       str(p.get("current", "")), str(p.get("message", "")))


def launch_study(out: Path, claims: list[str], seeds: int | None, size: str,
                 threads: int | None = None) -> int:
    """Start the study in the background; returns the worker's pid. RuntimeError when one is
    already running in ``out``. ``threads``: torch's CPU threads in the worker."""
    from affectlab.study.claims import SIZES, resolve_claims

    if _alive(_pid(out)):
        raise RuntimeError(f"a study is already running in {out}")
    resolve_claims(claims)  # a bad name fails here, not in the worker
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_progress(out, state="running", done=0, total=0, current="starting", message="",
                   stopped=False)
    cmd = [sys.executable, "-m", "affectlab.study.worker", "--out", str(out), "--size", size,
           *(["--seeds", str(int(seeds))] if seeds else []),
           *(["--threads", str(int(threads))] if threads else []), *claims]
    with open(out / LOG_FILE, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    _children[proc.pid] = proc
    (out / PID_FILE).write_text(str(proc.pid))
    return proc.pid


def stop_study(out: Path) -> bool:
    """Stop the study's worker (and the run it is training); False when none is running."""
    pid = _pid(out)
    if not _alive(pid):
        return False
    write_progress(out, stopped=True, state="stopped")
    os.killpg(pid, signal.SIGTERM)
    return True


def list_studies(root: Path | None = None) -> list[Path]:
    """Study directories under ``root`` (default :func:`studies_dir`), newest first."""
    root = root or studies_dir()
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and ((p / PROGRESS_FILE).is_file()
                                                          or (p / "results.json").is_file())]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
