"""2-D maps of a run's test embeddings: PCA at once, UMAP in the background, both cached.

- :class:`MapProjection`: a fitted PCA to 2-D (scikit-learn's, kept as mean and components so
  it saves to a plain ``.npz``) with ``fit`` / ``transform``; the Live page places a new
  embedding on a run's map with ``transform``.
- :func:`run_projection`: the run's PCA, fitted once and persisted in its outputs
  (:attr:`RunDir.PCA <affectlab.engine.rundir.RunDir.PCA>`).
- :func:`compute_umap` / :func:`ensure_umap_async`: the UMAP layout written atomically to the
  run's outputs (with a small JSON file recording which embeddings it belongs to), the
  latter in a separate process (UMAP's numba compilation takes 30–50 s the first time and holds
  the interpreter; a process keeps the app responsive). ``python -m affectlab.explore.projection RUN``
  is that process. Past :data:`UMAP_FIT_MAX` items UMAP is fitted on a random subsample of that
  many and the other items are placed with ``transform`` (a full fit of 100k items takes many
  minutes on two cores); the JSON file records ``fit_on``.
- :func:`nearest_neighbours`: the k closest test items to one item in embedding space.

Caches are keyed by a fingerprint of the embeddings, so a re-run that rewrote them is never
shown with a stale layout. The fingerprint of the saved embeddings is remembered per version of
the run's outputs (their files' sizes and modification times), so polling the UMAP status every few seconds
does not re-read and re-hash them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from affectlab.engine.rundir import RunDir
from affectlab.fileio import atomic_write

__all__ = ["PCA_FIT_MAX", "UMAP_FIT_MAX", "MapProjection", "compute_umap",
           "embeddings_fingerprint", "ensure_umap_async", "forget_fingerprints", "load_umap",
           "nearest_neighbours", "run_fingerprint", "run_projection", "umap_info", "umap_layout",
           "umap_status"]

# the map caches in a run's outputs (RunDir names them)
PCA_FILE, UMAP_FILE, UMAP_META = RunDir.PCA, RunDir.UMAP, RunDir.UMAP_META
UMAP_LOCK, UMAP_ERROR = RunDir.UMAP_LOCK, RunDir.UMAP_ERROR
UMAP_FIT_MAX = 10_000  # items UMAP is fitted on; the rest are placed with transform
PCA_FIT_MAX = 20_000  # items the PCA axes are fitted on
_FINGERPRINT_MEMO_SIZE = 16
_fingerprints: dict[tuple, str] = {}


def _as_embeddings(x: Any, name: str = "embeddings", dim: int | None = None,
                   keep_float32: bool = False) -> np.ndarray:
    """(n, D) finite float64, or float32 when ``keep_float32`` and ``x`` is float32 (half the
    memory and time for a map's 100,000 rows; the layout is for display)."""
    arr = np.asarray(x)
    if not (keep_float32 and arr.dtype == np.float32):
        arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, D), got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} columns (the fitted dimension), "
                         f"got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def embeddings_fingerprint(embeddings: np.ndarray) -> str:
    """sha256 of the embeddings' shape, dtype and bytes (the cache key)."""
    arr = np.ascontiguousarray(embeddings)
    h = hashlib.sha256(f"{arr.shape}{arr.dtype}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


class MapProjection:
    """PCA to 2-D, fitted with scikit-learn and stored as ``mean_`` (D,) and ``components_``
    (2, D): ``transform(X) = (X − mean_) @ components_.T``, exactly sklearn's PCA.transform
    (no whitening). Past :data:`PCA_FIT_MAX` rows the axes are fitted on that many rows drawn
    at random (seeded by ``random_state``): they are estimated as well from 20,000 items as from
    all, and the fit's time stays bounded (a 100,000 × 512 covariance takes seconds on a busy
    machine)."""

    def __init__(self, n_components: int = 2, random_state: int = 0) -> None:
        if not isinstance(n_components, int) or n_components < 1:
            raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
        self.n_components = n_components
        self.random_state = random_state
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None
        self.explained_variance_ratio_: np.ndarray | None = None
        self.fingerprint_: str | None = None

    def fit(self, embeddings: Any, fingerprint: str | None = None) -> MapProjection:
        """embeddings: (n, D) with n ≥ 2. With D < n_components the missing axes are zero.
        fingerprint: the embeddings' :func:`embeddings_fingerprint` when the caller has it."""
        from sklearn.decomposition import PCA

        raw = np.asarray(embeddings)
        if raw.ndim == 2 and raw.shape[0] > PCA_FIT_MAX:
            rows = np.random.default_rng(self.random_state).choice(raw.shape[0], PCA_FIT_MAX,
                                                                   replace=False)
            raw_fit = raw[np.sort(rows)]
        else:
            raw_fit = raw
        x = _as_embeddings(raw_fit)
        if x.shape[0] < 2:
            raise ValueError(f"embeddings must have at least 2 rows to fit a map, got {x.shape[0]}")
        k = min(self.n_components, x.shape[1], x.shape[0])
        pca = PCA(n_components=k, random_state=self.random_state).fit(x)
        comps = np.zeros((self.n_components, x.shape[1]))
        comps[:k] = pca.components_
        ratio = np.zeros(self.n_components)
        ratio[:k] = pca.explained_variance_ratio_
        self.mean_, self.components_ = pca.mean_.copy(), comps
        self.explained_variance_ratio_ = ratio
        self.fingerprint_ = fingerprint or embeddings_fingerprint(raw)
        return self

    @property
    def fitted(self) -> bool:
        return self.components_ is not None

    def transform(self, embeddings: Any) -> np.ndarray:
        """(n, D) or (D,) → (n, n_components) or (n_components,) map coordinates (float64;
        computed in float32 for float32 input)."""
        if not self.fitted:
            raise RuntimeError("MapProjection is not fitted; call fit(embeddings) first")
        arr = np.asarray(embeddings)
        single = arr.ndim == 1
        x = _as_embeddings(arr[None] if single else arr, dim=self.components_.shape[1],
                           keep_float32=True)
        comps = self.components_.T.astype(x.dtype)
        out = (x @ comps - (self.mean_ @ self.components_.T).astype(x.dtype)).astype(np.float64)
        return out[0] if single else out

    def fit_transform(self, embeddings: Any) -> np.ndarray:
        return self.fit(embeddings).transform(embeddings)

    def save(self, path: str | os.PathLike) -> None:
        """Write an .npz atomically."""
        if not self.fitted:
            raise RuntimeError("MapProjection is not fitted; nothing to save")
        atomic_write(Path(path), lambda f: np.savez(
            f, mean=self.mean_, components=self.components_,
            explained_variance_ratio=self.explained_variance_ratio_,
            fingerprint=np.array(self.fingerprint_ or "")))

    @classmethod
    def load(cls, path: str | os.PathLike) -> MapProjection:
        with np.load(Path(path), allow_pickle=False) as z:
            proj = cls(n_components=int(z["components"].shape[0]))
            proj.mean_ = z["mean"].astype(np.float64)
            proj.components_ = z["components"].astype(np.float64)
            proj.explained_variance_ratio_ = z["explained_variance_ratio"].astype(np.float64)
            proj.fingerprint_ = str(z["fingerprint"]) or None
        return proj


def _outputs(run_dir: str | os.PathLike) -> Path:
    return RunDir(run_dir).outputs_dir


def _run_embeddings(run_dir: str | os.PathLike) -> np.ndarray:
    """The run's saved embeddings (every saved split, in its outputs' row order)."""
    return RunDir(run_dir).read_embeddings()


def forget_fingerprints() -> None:
    """Drop the remembered fingerprints (a benchmark's cold start)."""
    _fingerprints.clear()


def _outputs_version(run: RunDir) -> tuple:
    """The run's output and embedding files as (name, size, mtime in ns): any rewrite changes
    it, even one that leaves an older modification time."""
    splits = run.output_splits()
    files = [run.outputs_path(s) for s in splits] + [run.embeddings_path(s) for s in splits]
    files.append(run.outputs_dir / RunDir.LEGACY_EMBEDDINGS)
    found = []
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue
        found.append((f.name, st.st_size, st.st_mtime_ns))
    return (str(run.path.resolve()), *found)


def run_fingerprint(run_dir: str | os.PathLike) -> str:
    """:func:`embeddings_fingerprint` of the run's saved embeddings, computed once per version
    of its outputs (their files' sizes and modification times); FileNotFoundError when it has
    none."""
    run = RunDir(run_dir)
    key = _outputs_version(run)
    found = _fingerprints.get(key)
    if found is None:
        found = embeddings_fingerprint(run.read_embeddings())
        while len(_fingerprints) >= _FINGERPRINT_MEMO_SIZE:
            _fingerprints.pop(next(iter(_fingerprints)))
        _fingerprints[key] = found
    return found


def run_projection(run_dir: str | os.PathLike, embeddings: np.ndarray | None = None
                   ) -> MapProjection:
    """The run's fitted PCA: loaded from its cache when it matches the embeddings, else fitted
    on the run's saved embeddings (or the given (n, D) ``embeddings``) and saved."""
    fp = run_fingerprint(run_dir) if embeddings is None else embeddings_fingerprint(
        np.asarray(embeddings))
    path = _outputs(run_dir) / PCA_FILE
    if path.is_file():
        try:
            proj = MapProjection.load(path)
            if proj.fingerprint_ == fp:
                return proj
        except (OSError, KeyError, ValueError):
            pass  # unreadable cache: refit below
    emb = _run_embeddings(run_dir) if embeddings is None else np.asarray(embeddings)
    proj = MapProjection().fit(emb, fingerprint=fp)
    proj.save(path)
    return proj


# -- UMAP ------------------------------------------------------------------------------------

def load_umap(run_dir: str | os.PathLike, embeddings: np.ndarray | None = None
              ) -> np.ndarray | None:
    """The cached (n, 2) UMAP layout when it exists and belongs to the current embeddings."""
    out = _outputs(run_dir)
    path, meta_path = out / UMAP_FILE, out / UMAP_META
    if not (path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if embeddings is None:
            fp, n = run_fingerprint(run_dir), None
        else:
            emb = np.asarray(embeddings)
            fp, n = embeddings_fingerprint(emb), emb.shape[0]
        if not isinstance(meta, dict) or meta.get("fingerprint") != fp:
            return None
        layout = np.load(path, allow_pickle=False)
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    ok = layout.ndim == 2 and layout.shape[1] == 2 and layout.shape[0] == meta.get("n", n)
    return layout if ok and (n is None or layout.shape[0] == n) else None


def umap_info(run_dir: str | os.PathLike) -> dict[str, Any]:
    """What ``umap.json`` says about the cached layout (n, fit_on, n_neighbors, ...); {} when
    there is none."""
    try:
        meta = json.loads((_outputs(run_dir) / UMAP_META).read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def umap_layout(x: np.ndarray, n_neighbors: int = 15, min_dist: float = 0.1,
                random_state: int = 0, fit_max: int = UMAP_FIT_MAX) -> tuple[np.ndarray, int]:
    """(n, 2) float32 UMAP layout of the (n, D) ``x`` and how many rows the fit saw.

    Up to ``fit_max`` rows: one fit_transform. More: fitted on ``fit_max`` rows drawn at random
    (seeded by ``random_state``), the others placed by ``transform``. Fewer than 4 rows get the
    PCA layout (UMAP needs a neighbourhood).
    """
    if not isinstance(n_neighbors, int) or n_neighbors < 2:
        raise ValueError(f"n_neighbors must be an integer >= 2, got {n_neighbors!r}")
    if isinstance(fit_max, bool) or not isinstance(fit_max, int) or fit_max < 4:
        raise ValueError(f"fit_max must be an integer >= 4, got {fit_max!r}")
    n = x.shape[0]
    if n < 4:
        layout = MapProjection().fit_transform(x) if n >= 2 else np.zeros((n, 2))
        return np.asarray(layout, dtype=np.float32), n
    import umap  # imported here: it pulls numba (seconds) and compiles on first use

    reducer = umap.UMAP(n_neighbors=min(n_neighbors, n - 1), min_dist=min_dist,
                        n_components=2, random_state=random_state, n_jobs=1)
    if n <= fit_max:
        return np.asarray(reducer.fit_transform(x), dtype=np.float32), n
    fit_rows = np.sort(np.random.default_rng(random_state).choice(n, fit_max, replace=False))
    rest = np.setdiff1d(np.arange(n), fit_rows, assume_unique=True)
    layout = np.empty((n, 2), dtype=np.float32)
    layout[fit_rows] = reducer.fit_transform(x[fit_rows])
    for start in range(0, len(rest), 20_000):  # bounded memory for the neighbour search
        chunk = rest[start:start + 20_000]
        layout[chunk] = reducer.transform(x[chunk])
    return layout, fit_max


def compute_umap(run_dir: str | os.PathLike, n_neighbors: int = 15, min_dist: float = 0.1,
                 random_state: int = 0, force: bool = False, fit_max: int = UMAP_FIT_MAX
                 ) -> np.ndarray:
    """UMAP of the run's embeddings (:func:`umap_layout`), cached as the (n, 2) layout
    (returned). A cached layout for the same embeddings is returned without recomputing unless
    ``force``."""
    if not isinstance(n_neighbors, int) or n_neighbors < 2:
        raise ValueError(f"n_neighbors must be an integer >= 2, got {n_neighbors!r}")
    if not force:
        cached = load_umap(run_dir)
        if cached is not None:
            return cached
    fingerprint = run_fingerprint(run_dir)
    x = _as_embeddings(_run_embeddings(run_dir))
    layout, fit_on = umap_layout(x, n_neighbors, min_dist, random_state, fit_max)
    out = _outputs(run_dir)
    atomic_write(out / UMAP_FILE, lambda f: np.save(f, layout, allow_pickle=False))
    meta = {"fingerprint": fingerprint, "n": int(x.shape[0]), "fit_on": fit_on,
            "n_neighbors": n_neighbors, "min_dist": min_dist, "random_state": random_state}
    atomic_write(out / UMAP_META, lambda f: f.write(json.dumps(meta).encode()))
    return layout


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def umap_status(run_dir: str | os.PathLike) -> str:
    """"ready" (cached and current), "running" (a worker process is alive), "failed" (the
    last worker left an error in the run's outputs, :data:`UMAP_ERROR`) or "missing"."""
    if load_umap(run_dir) is not None:
        return "ready"
    out = _outputs(run_dir)
    lock = out / UMAP_LOCK
    if lock.is_file():
        try:
            pid = int(lock.read_text().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        if pid and _pid_alive(pid):
            return "running"
    if (out / UMAP_ERROR).is_file():
        return "failed"
    return "missing"


def ensure_umap_async(run_dir: str | os.PathLike) -> str:
    """Start computing the run's UMAP layout in a separate process unless it is cached or
    already being computed. Returns :func:`umap_status` after the call ("ready", "running" or
    "failed"; a failed layout is not retried until the :data:`UMAP_ERROR` file is removed)."""
    status = umap_status(run_dir)
    if status in ("ready", "running", "failed"):
        return status
    run_fingerprint(run_dir)  # fail here, with the run's name, rather than in the worker
    out = _outputs(run_dir)
    proc = subprocess.Popen([sys.executable, "-m", "affectlab.explore.projection", str(run_dir)],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    (out / UMAP_LOCK).write_text(str(proc.pid))
    # reap the worker when it exits, so a long-lived app server collects no zombies
    threading.Thread(target=proc.wait, daemon=True, name="umap-reaper").start()
    return "running"


def _worker(run_dir: str) -> int:
    try:
        os.nice(10)  # background work: the app's own threads come first
    except (AttributeError, OSError):
        pass
    out = _outputs(run_dir)
    (out / UMAP_LOCK).write_text(str(os.getpid()))
    try:
        compute_umap(run_dir)
        (out / UMAP_ERROR).unlink(missing_ok=True)
        return 0
    except Exception as exc:
        (out / UMAP_ERROR).write_text(f"{type(exc).__name__}: {exc}")
        return 1
    finally:
        (out / UMAP_LOCK).unlink(missing_ok=True)


# -- neighbours ------------------------------------------------------------------------------

def nearest_neighbours(embeddings: Any, index: int, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` items closest to item ``index`` in Euclidean embedding distance.

    embeddings: (n, D). Returns (indices (k',), distances (k',)) sorted by distance, the item
    itself excluded, k' = min(k, n − 1); ties keep the lower index first.
    """
    x = _as_embeddings(embeddings)
    n = x.shape[0]
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= index < n:
        raise ValueError(f"index must be an integer in [0, {n}), got {index!r}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    d = np.sqrt(((x - x[index]) ** 2).sum(axis=1))
    order = np.argsort(d, kind="stable")
    order = order[order != index][: min(int(k), n - 1)]
    return order, d[order]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m affectlab.explore.projection RUN_DIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(_worker(sys.argv[1]))
