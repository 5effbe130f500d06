"""The run's event log (``RunDir.EVENTS``): one JSON object per line, appended and flushed line
by line so a reader (the app polls it) never sees half a record it would keep.

Every event has ``type`` (one of :data:`EVENT_TYPES`) and ``time`` (Unix seconds); the others
depend on the type:

    start       epochs, steps_per_epoch, start_epoch (> 0 when resumed), n_train, device, world_size
    step        epoch (1-based), step (1-based within the epoch), global_step, losses {name: v},
                samples_per_s, eta_s
    epoch       epoch, global_step, losses (epoch means), metrics {name: v} (validation),
                samples_per_s, eta_s
    checkpoint  epoch, path
    end         epoch, metrics (final)
    error       epoch, message, traceback
    cancelled   epoch (last finished epoch; its checkpoint is kept), message (optional)
    notice      message (a resume that fell back to the previous checkpoint; which classes
                a fine-tuned head mapped, with ``init`` {source, mapped, new, unused})

:func:`run_status` turns the log into queued | running | finished | failed | cancelled with a
progress fraction.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

from affectlab.engine.rundir import RunDir
from affectlab.fileio import json_safe

__all__ = ["EVENT_TYPES", "EventWriter", "RunStatus", "read_events", "run_status"]

EVENT_TYPES = ("start", "step", "epoch", "checkpoint", "end", "error", "cancelled", "notice")
TERMINAL = {"end": "finished", "error": "failed", "cancelled": "cancelled"}
STATES = ("queued", "running", "finished", "failed", "cancelled")


class EventWriter:
    """Appends events to the run's event log. ``enabled=False`` (non-zero DDP ranks) makes
    every call a no-op."""

    def __init__(self, run_dir: str | os.PathLike, enabled: bool = True) -> None:
        self.path = RunDir(run_dir).events_path
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def emit(self, type: str, **fields: Any) -> dict[str, Any] | None:
        """Append one event (``type`` ∈ EVENT_TYPES) and flush; returns the record written."""
        if type not in EVENT_TYPES:
            raise ValueError(f"type must be one of {EVENT_TYPES}, got {type!r}")
        if not self.enabled:
            return None
        record = {"type": type, "time": time.time(), **json_safe(fields)}
        line = json.dumps(record, allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
        return record


def read_events(run_dir: str | os.PathLike, since_offset: int = 0
                ) -> tuple[list[dict[str, Any]], int]:
    """Events appended after byte ``since_offset``, and the offset to pass next time.

    Only complete lines are returned: a line still being written is left for the next call.
    A missing log gives ``([], since_offset)``.
    """
    if not isinstance(since_offset, int) or since_offset < 0:
        raise ValueError(f"since_offset must be a non-negative int, got {since_offset!r}")
    path = RunDir(run_dir).events_path
    if not path.is_file():
        return [], since_offset
    with open(path, "rb") as fh:
        fh.seek(since_offset)
        data = fh.read()
    end = data.rfind(b"\n") + 1  # bytes up to the last complete line
    events = []
    for raw in data[:end].splitlines():
        if raw.strip():
            try:
                events.append(json.loads(raw))
            except json.JSONDecodeError:
                continue  # a torn line (a crash mid-write) is skipped, not fatal to the reader
    return events, since_offset + end


@dataclass(frozen=True)
class RunStatus:
    """state ∈ queued|running|finished|failed|cancelled; progress ∈ [0, 1]; epoch = epochs
    finished; message: the error message for failed runs, else ""."""

    state: str
    progress: float
    epoch: int
    epochs: int | None
    message: str = ""
    eta_s: float | None = None


def run_status(run_dir: str | os.PathLike, events: list[dict[str, Any]] | None = None) -> RunStatus:
    """Status of a run from its event log (``events``: already read, to avoid re-reading).

    No log yet → queued. The last terminal event decides finished / failed / cancelled (a
    resumed run appends a new ``start`` after it, which makes it running again).
    """
    if events is None:
        events, _ = read_events(run_dir)
    state, message, epochs, epoch, progress, eta = "queued", "", None, 0, 0.0, None
    steps_per_epoch = None
    for ev in events:
        kind = ev.get("type")
        if kind == "start":
            state, message = "running", ""
            epochs = ev.get("epochs", epochs)
            steps_per_epoch = ev.get("steps_per_epoch")
            epoch = int(ev.get("start_epoch", 0))
            progress = epoch / epochs if epochs else 0.0
        elif kind == "step" and epochs:
            done = ev.get("epoch", 1) - 1 + (ev.get("step", 0) / steps_per_epoch
                                             if steps_per_epoch else 0.0)
            progress, eta = done / epochs, ev.get("eta_s")
        elif kind == "epoch":
            epoch = int(ev.get("epoch", epoch))
            progress = epoch / epochs if epochs else progress
            eta = ev.get("eta_s")
        elif kind in TERMINAL:
            state = TERMINAL[kind]
            epoch = int(ev.get("epoch", epoch) or 0)
            message = str(ev.get("message", ""))
            eta = None
            if kind == "end":
                progress = 1.0
    return RunStatus(state, float(min(max(progress, 0.0), 1.0)), epoch, epochs, message, eta)
