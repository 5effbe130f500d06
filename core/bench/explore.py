"""``affectlab bench --what explore``: how soon a run's map is on screen, and its UMAP layout.

For each size a synthetic run is written the way the engine writes one (through
:class:`~affectlab.engine.rundir.RunDir`: the test split's table with list-valued
distributions and its float32 (n, D) embeddings with a cluster per class, the config and the
model info), then the Explore page's path is timed step by step, with the
functions the page calls:

- ``load_s``: :func:`~affectlab.explore.run_outputs.load_run_outputs`;
- ``pca_s``: :func:`~affectlab.explore.projection.run_projection` (fit and save on first open)
  and the 2-D transform;
- ``colour_s``: the colouring (predicted class) and the uncertainty scores;
- ``figure_s``: :func:`~affectlab.pages.explore_map.map_figure`;
- ``json_s``: ``plotly.io.to_json``, what ``st.plotly_chart`` sends (``json_mb`` its size);
- ``first_map_s``: their sum, the server's time from choosing the run to sending the map;
  ``reopen_s``: the same once the PCA is saved; ``meets``: ``first_map_s`` ≤ 2 s;
- ``umap_s``: from starting the background worker (``ensure_umap_async``) until its layout is
  ready, as the page waits for it (a new process: imports, numba compilation when its cache is
  cold, the fit on ``umap_fit_on`` items and ``transform`` of the rest).

The browser's drawing time is not in these numbers (the browser test measures a 20,000-point
map; WebGL draws 100,000 points in well under a second on a GPU, longer under SwiftShader).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from affectlab.engine.rundir import RunDir
from affectlab.explore.projection import (
    PCA_FILE,
    UMAP_ERROR,
    UMAP_FIT_MAX,
    ensure_umap_async,
    forget_fingerprints,
    run_projection,
    umap_info,
    umap_status,
)
from affectlab.explore.run_outputs import load_run_outputs
from affectlab.pages.explore_colour import colour_values, run_uncertainty
from affectlab.pages.explore_map import map_figure

__all__ = ["TARGET_FIRST_MAP_S", "bench_explore", "explore_summary", "synthetic_run",
           "time_first_map"]

TARGET_FIRST_MAP_S = 2.0
CLASSES = ("neutral", "happy", "sad", "surprised", "afraid", "disgusted", "angry")
UMAP_TIMEOUT_S = 3600.0


def synthetic_run(root: str | Path, n: int, dim: int = 128, seed: int = 0) -> Path:
    """A run directory ``root/explore-<n>`` in the engine's layout with n test items whose
    embeddings form one cluster per class."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 4:
        raise ValueError(f"n must be an integer >= 4, got {n!r}")
    rng = np.random.default_rng(seed)
    k = len(CLASSES)
    label = rng.integers(0, k, n)
    centres = rng.normal(size=(k, dim)) * 4.0
    emb = (centres[label] + rng.normal(size=(n, dim))).astype(np.float32)
    logits = rng.normal(size=(n, k)) + 3.0 * np.eye(k)[label]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    soft = rng.dirichlet(np.ones(k) * 0.5, n) * 0.5 + 0.5 * np.eye(k)[label]
    entropy = -(probs * np.log(probs)).sum(1)
    run = RunDir(Path(root) / f"explore-{n}")
    run.write_outputs("test", pd.DataFrame({
        "item_id": [f"item{i:07d}" for i in range(n)], "split": "test", "domain": "synthetic",
        "label": label, "pred": probs.argmax(1), "uncertainty": entropy,
        "probs": list(probs.astype(np.float32)), "soft_label": list(soft.astype(np.float32)),
    }), emb)
    run.config_path.write_text(yaml.safe_dump({"method": "ce", "model": "resnet18"}))
    run.model_info_path.write_text(json.dumps({"class_names": list(CLASSES)}))
    return run.path


def time_first_map(run_dir: str | Path, colour_by: str = "predicted") -> dict[str, float]:
    """Seconds per step of the Explore page's path to the map of ``run_dir`` (see the module
    docstring), and the JSON's size in MB."""
    import plotly.io as pio

    times: dict[str, float] = {}
    t = time.perf_counter()
    outputs = load_run_outputs(run_dir)
    times["load_s"], t = time.perf_counter() - t, time.perf_counter()
    xy = run_projection(run_dir).transform(outputs.embeddings)
    times["pca_s"], t = time.perf_counter() - t, time.perf_counter()
    colouring = colour_values(outputs, colour_by)
    scores = run_uncertainty(outputs)
    times["colour_s"], t = time.perf_counter() - t, time.perf_counter()
    fig = map_figure(xy, colouring, outputs.item_ids, scores, revision=str(run_dir)).figure
    times["figure_s"], t = time.perf_counter() - t, time.perf_counter()
    spec = pio.to_json(fig, validate=False)
    times["json_s"] = time.perf_counter() - t
    times["first_map_s"] = sum(times.values())
    times["json_mb"] = len(spec) / 1e6
    return times


def _time_umap(run_dir: Path, timeout: float = UMAP_TIMEOUT_S) -> float:
    t = time.perf_counter()
    status = ensure_umap_async(run_dir)
    while status == "running" and time.perf_counter() - t < timeout:
        time.sleep(0.5)
        status = umap_status(run_dir)
    if status != "ready":
        error = RunDir(run_dir).cache_path(UMAP_ERROR)
        raise RuntimeError(f"UMAP of {run_dir} ended {status!r}"
                           + (f": {error.read_text()}" if error.is_file() else ""))
    return time.perf_counter() - t


def _first_open(run: Path) -> dict[str, float]:
    """:func:`time_first_map` as on a run never opened: no saved PCA, no remembered
    fingerprint."""
    RunDir(run).cache_path(PCA_FILE).unlink(missing_ok=True)
    forget_fingerprints()
    return time_first_map(run)


def _median(trials: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.median([t[k] for t in trials])) for k in trials[0]}


def bench_explore(sizes: Sequence[int] = (10_000, 100_000), dim: int = 128,
                  umap: bool = True, repeats: int = 3) -> pd.DataFrame:
    """One row per size: the steps of :func:`time_first_map` on first open (the median of
    ``repeats`` tries: a shared machine's load comes and goes), ``reopen_s``, ``meets`` and,
    with ``umap``, ``umap_s`` and ``umap_fit_on``."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="affectlab-bench-explore-") as tmp:
        time_first_map(synthetic_run(tmp, 200, dim))  # imports and first calls: not timed
        for n in sizes:
            run = synthetic_run(tmp, int(n), dim)
            first = _median([_first_open(run) for _ in range(repeats)])
            again = _median([time_first_map(run) for _ in range(repeats)])
            row = {"items": int(n), "dim": dim, **{k: first[k] for k in (
                "load_s", "pca_s", "colour_s", "figure_s", "json_s", "json_mb", "first_map_s")},
                "reopen_s": again["first_map_s"],
                "meets": first["first_map_s"] <= TARGET_FIRST_MAP_S}
            if umap:
                row["umap_s"] = _time_umap(run)
                row["umap_fit_on"] = int(umap_info(run).get("fit_on", min(int(n), UMAP_FIT_MAX)))
            rows.append(row)
    return pd.DataFrame(rows)


def explore_summary(table: pd.DataFrame) -> str:
    """One line per size: time to the first map against the 2 s target, and to UMAP."""
    lines = []
    for row in table.to_dict("records"):
        line = (f"explore {row['items']:,} items: first map {row['first_map_s']:.2f} s "
                f"({'meets' if row['meets'] else 'misses'} the {TARGET_FIRST_MAP_S:.0f} s target;"
                f" reopened {row['reopen_s']:.2f} s)")
        if "umap_s" in row and row["umap_s"] == row["umap_s"]:
            how = ("fitted on all" if row["umap_fit_on"] >= row["items"] else
                   f"fitted on {row['umap_fit_on']:,}, the rest placed by transform")
            line += f"; UMAP ready after {row['umap_s']:.0f} s ({how})"
        lines.append(line)
    return "\n".join(lines)
