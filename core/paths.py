"""Where affectlab keeps its data: datasets, runs and the rating store.

Everything lives under one data directory: ``$AFFECTLAB_DATA`` when set, else ``data/`` in the
working directory. Nothing is written outside it.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The root data directory (created on first use)."""
    root = Path(os.environ.get("AFFECTLAB_DATA", "data")).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def datasets_dir() -> Path:
    path = data_dir() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    path = data_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    path = data_dir() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path
