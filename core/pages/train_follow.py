"""Following a run while it trains: read only the events appended since the last look and keep
the loss and metric curves up to date (the app's Train page polls this every second or two).

Curves are long tables (one row per point) so a plot can colour by ``name``:

    steps           global_step, epoch, step, name, value   training losses of logged steps
    epoch_losses    epoch, name, value                      epoch means of the training losses
    epoch_metrics   epoch, name, value                      validation metrics after each epoch

A resumed run appends a new ``start`` event with ``start_epoch``; points of later epochs logged
before the resume (a run resumed from an older checkpoint redoes them) are dropped so each epoch
appears once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from affectlab.engine.events import RunStatus, read_events, run_status

__all__ = ["EPOCH_COLUMNS", "STEP_COLUMNS", "FollowUpdate", "RunCurves", "RunFollower",
           "curves_from_events", "format_duration"]

STEP_COLUMNS = ["global_step", "epoch", "step", "name", "value"]
EPOCH_COLUMNS = ["epoch", "name", "value"]
_SKIP_METRICS = {"n"}  # a count of items, not a score


@dataclass(frozen=True)
class RunCurves:
    """Long tables of a run's curves (columns :data:`STEP_COLUMNS` / :data:`EPOCH_COLUMNS`)."""

    steps: pd.DataFrame
    epoch_losses: pd.DataFrame
    epoch_metrics: pd.DataFrame

    def metric(self, name: str) -> pd.DataFrame:
        """(epoch, value) rows of one validation metric, in epoch order."""
        df = self.epoch_metrics
        return df.loc[df["name"] == name, ["epoch", "value"]].reset_index(drop=True)


@dataclass(frozen=True)
class FollowUpdate:
    """What one :meth:`RunFollower.poll` found.

    new_events: the events appended since the previous poll (in order)
    status:     the run's status (worker liveness checked when the follower does so)
    curves:     every point so far
    samples_per_s: the latest logged throughput, or None before the first step
    """

    new_events: list[dict[str, Any]]
    status: RunStatus
    curves: RunCurves
    samples_per_s: float | None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class _Accumulator:
    """Folds events into curve rows, one event at a time."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, int, int, str, float]] = []
        self.epoch_losses: list[tuple[int, str, float]] = []
        self.epoch_metrics: list[tuple[int, str, float]] = []
        self.samples_per_s: float | None = None

    def add(self, ev: dict[str, Any]) -> None:
        kind = ev.get("type")
        if kind == "start":
            start = int(ev.get("start_epoch", 0) or 0)
            # a resume redoes epochs after its checkpoint: forget what it will log again
            self.steps = [r for r in self.steps if r[1] <= start]
            self.epoch_losses = [r for r in self.epoch_losses if r[0] <= start]
            self.epoch_metrics = [r for r in self.epoch_metrics if r[0] <= start]
        elif kind == "step":
            epoch, step, gstep = int(ev.get("epoch", 0)), int(ev.get("step", 0)), \
                int(ev.get("global_step", 0))
            for name, value in (ev.get("losses") or {}).items():
                if (v := _number(value)) is not None:
                    self.steps.append((gstep, epoch, step, str(name), v))
            self._throughput(ev)
        elif kind == "epoch":
            epoch = int(ev.get("epoch", 0))
            for name, value in (ev.get("losses") or {}).items():
                if (v := _number(value)) is not None:
                    self.epoch_losses.append((epoch, str(name), v))
            for name, value in (ev.get("metrics") or {}).items():
                if name not in _SKIP_METRICS and (v := _number(value)) is not None:
                    self.epoch_metrics.append((epoch, str(name), v))
            self._throughput(ev)

    def _throughput(self, ev: dict[str, Any]) -> None:
        value = _number(ev.get("samples_per_s"))
        if value is not None:
            self.samples_per_s = value

    def curves(self) -> RunCurves:
        steps = pd.DataFrame(self.steps, columns=STEP_COLUMNS)
        losses = pd.DataFrame(self.epoch_losses, columns=EPOCH_COLUMNS)
        metrics = pd.DataFrame(self.epoch_metrics, columns=EPOCH_COLUMNS)
        return RunCurves(steps.astype({"global_step": int, "epoch": int, "step": int,
                                       "value": float}),
                         losses.astype({"epoch": int, "value": float}),
                         metrics.astype({"epoch": int, "value": float}))


def curves_from_events(events: list[dict[str, Any]]) -> RunCurves:
    """The curves of a complete event list (e.g. ``read_events(run_dir)[0]``)."""
    if not isinstance(events, list):
        raise TypeError(f"events must be a list of event dicts, got {type(events).__name__}")
    acc = _Accumulator()
    for ev in events:
        if not isinstance(ev, dict):
            raise TypeError(f"events must hold dicts, got {type(ev).__name__}")
        acc.add(ev)
    return acc.curves()


class RunFollower:
    """Tails the run's event log by byte offset.

    ``poll()`` reads only what was appended since the previous call (a line still being written
    is left for the next one), folds it into the curves and returns a :class:`FollowUpdate`.
    check_worker: report a run whose worker process has exited without a final event as
    failed (as :func:`affectlab.engine.jobs.status` does); off for runs read after the fact.
    """

    def __init__(self, run_dir: str | os.PathLike, check_worker: bool = True) -> None:
        if not isinstance(run_dir, str | os.PathLike):
            raise TypeError(f"run_dir must be a path, got {type(run_dir).__name__}")
        self.run_dir = Path(run_dir)
        self.check_worker = bool(check_worker)
        self.offset = 0
        self._events: list[dict[str, Any]] = []
        self._acc = _Accumulator()
        self._curves: RunCurves | None = None

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event read so far (a copy)."""
        return list(self._events)

    def _read(self) -> list[dict[str, Any]]:
        new, self.offset = read_events(self.run_dir, self.offset)
        for ev in new:
            self._acc.add(ev)
        if new or self._curves is None:
            self._events.extend(new)
            self._curves = self._acc.curves()
        return new

    def _status(self, new: list[dict[str, Any]]) -> tuple[RunStatus, list[dict[str, Any]]]:
        st = run_status(self.run_dir, self._events)
        if not self.check_worker:
            return st, new
        from affectlab.engine.jobs import dead_worker

        late: list[dict[str, Any]] = []

        def reread() -> RunStatus:  # its last events may have landed just before it exited
            late.extend(self._read())
            return run_status(self.run_dir, self._events)

        return dead_worker(self.run_dir, st, reread), new + late

    def poll(self) -> FollowUpdate:
        new = self._read()
        st, new = self._status(new)
        assert self._curves is not None
        return FollowUpdate(new, st, self._curves, self._acc.samples_per_s)


def format_duration(seconds: float | None) -> str:
    """``75`` → ``"1:15"``, ``3725`` → ``"1:02:05"``; None (unknown) → ``"–"``."""
    if seconds is None:
        return "–"
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds != seconds:
        raise TypeError(f"seconds must be a number or None, got {seconds!r}")
    if seconds < 0:
        raise ValueError(f"seconds must be ≥ 0, got {seconds}")
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
