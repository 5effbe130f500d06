"""Comparing runs: their curves overlaid and their final metrics side by side (the app's Runs
page). Tables are long (one row per point / value) so a plot can colour by run."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from affectlab.engine.rundir import RunDir
from affectlab.pages.train_follow import RunFollower
from affectlab.palette import qualitative

__all__ = ["CURVE_COLUMNS", "DEFAULT_METRICS", "FINAL_COLUMNS", "compare_curves",
           "final_metrics", "final_metrics_long", "run_colours"]

CURVE_COLUMNS = ["run", "epoch", "curve", "value"]
FINAL_COLUMNS = ["run", "split", "metric", "value"]
DEFAULT_METRICS = ("uar", "accuracy", "macro_f1", "nmi")


def _run_dirs(run_dirs: Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(run_dirs, str | os.PathLike) or not isinstance(run_dirs, Sequence):
        raise TypeError("run_dirs must be a list of run directories, got "
                        f"{type(run_dirs).__name__}")
    paths = [Path(p) for p in run_dirs]
    names = [p.name for p in paths]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"run_dirs must have distinct names (runs are labelled by name), "
                         f"repeated: {dupes}")
    missing = [str(p) for p in paths if not p.is_dir()]
    if missing:
        raise FileNotFoundError(f"run directories not found: {missing}")
    return paths


def compare_curves(run_dirs: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Per-epoch curves of several runs, columns :data:`CURVE_COLUMNS`.

    ``curve`` is ``"train <loss name>"`` (epoch mean of a training loss, e.g. ``train loss``)
    or ``"val <metric>"`` (e.g. ``val uar``, ``val accuracy``); ``run`` is the directory name.
    """
    frames = []
    for path in _run_dirs(run_dirs):
        curves = RunFollower(path, check_worker=False).poll().curves
        for prefix, df in (("train", curves.epoch_losses), ("val", curves.epoch_metrics)):
            if len(df):
                frames.append(pd.DataFrame({"run": path.name, "epoch": df["epoch"],
                                            "curve": prefix + " " + df["name"],
                                            "value": df["value"]}))
    if not frames:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[CURVE_COLUMNS]


def _final_of(path: Path) -> tuple[str, dict]:
    """(split, metrics): the final test (else val) metrics; for a run without final metrics
    (running, cancelled, failed) the last epoch's validation metrics, split "val (epoch e)"."""
    saved = RunDir(path).read_metrics()
    for split in ("test", "val"):
        if saved.get(split):
            return split, saved[split]
    curves = RunFollower(path, check_worker=False).poll().curves
    if len(curves.epoch_metrics):
        last = int(curves.epoch_metrics["epoch"].max())
        rows = curves.epoch_metrics[curves.epoch_metrics["epoch"] == last]
        return f"val (epoch {last})", dict(zip(rows["name"], rows["value"], strict=True))
    return "", {}


def final_metrics(run_dirs: Sequence[str | os.PathLike],
                  metrics: Sequence[str] = DEFAULT_METRICS) -> pd.DataFrame:
    """One row per run (index: run name): column ``split`` says where the numbers come from
    (see :func:`_final_of`), then one column per metric (NaN where the run has none)."""
    if isinstance(metrics, str) or not all(isinstance(m, str) for m in metrics):
        raise TypeError(f"metrics must be a list of metric names, got {metrics!r}")
    rows = []
    for path in _run_dirs(run_dirs):
        split, values = _final_of(path)
        row = {"run": path.name, "split": split}
        for m in metrics:
            v = values.get(m)
            row[m] = float(v) if isinstance(v, int | float) and not isinstance(v, bool) \
                else float("nan")
        rows.append(row)
    return pd.DataFrame(rows, columns=["run", "split", *metrics]).set_index("run")


def final_metrics_long(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`final_metrics`'s table as long rows (columns :data:`FINAL_COLUMNS`), NaN dropped:
    the input of a grouped bar chart (x = metric, colour = run)."""
    if not isinstance(table, pd.DataFrame) or "split" not in table.columns:
        raise TypeError("table must be the DataFrame returned by final_metrics")
    long = table.reset_index().melt(id_vars=["run", "split"], var_name="metric",
                                    value_name="value")
    return long.dropna(subset=["value"]).reset_index(drop=True)[FINAL_COLUMNS]


def run_colours(names: Sequence[str]) -> dict[str, str]:
    """A distinct colour per run name, in the given order (the same in every chart of a
    comparison: pass it as plotly's ``color_discrete_map``)."""
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"names must be a list of run names, got {names!r}")
    unique = list(dict.fromkeys(names))
    return dict(zip(unique, qualitative(len(unique)).colours, strict=True))
