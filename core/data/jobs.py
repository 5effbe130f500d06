"""Data work in the background (corpus generation, imports), so an app page never blocks.

A :class:`DataJob` runs one function in a daemon thread and records its result or error; the
page keeps the job in its session state and polls ``status`` / ``progress()``.

Generation progress is read from the outside, without changing the generator: while rendering,
``generate_corpus`` writes the media into a staging directory ``<parent>/.<name>.media.*/media``
next to its output, so the number of files there over n is the fraction rendered.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["DataJob", "generation_progress", "start_generation", "start_import"]


class DataJob:
    """``fn(*args, **kwargs)`` in a daemon thread.

    status: "running" → "done" | "failed"; ``result`` / ``error`` (the message) /
    ``traceback`` once finished. ``progress()`` gives a fraction in [0, 1] from the optional
    ``progress_fn`` while running (1.0 once done).
    """

    def __init__(self, description: str, fn: Callable[..., Any], *args: Any,
                 progress_fn: Callable[[], float] | None = None, **kwargs: Any) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.description = str(description)
        self.status = "running"
        self.result: Any = None
        self.error: str | None = None
        self.traceback: str | None = None
        self.started = time.time()
        self.finished: float | None = None
        self._progress_fn = progress_fn
        self._thread = threading.Thread(target=self._run, args=(fn, args, kwargs), daemon=True,
                                        name=f"affectlab-job-{description[:30]}")
        self._thread.start()

    def _run(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        try:
            self.result = fn(*args, **kwargs)
            self.status = "done"
        except BaseException as exc:  # reported on the page, never raised into the server
            self.error = f"{type(exc).__name__}: {exc}"
            self.traceback = traceback.format_exc()
            self.status = "failed"
        finally:
            self.finished = time.time()

    @property
    def running(self) -> bool:
        return self.status == "running"

    def progress(self) -> float:
        if self.status == "done":
            return 1.0
        if self._progress_fn is None:
            return 0.0
        try:
            return float(min(max(self._progress_fn(), 0.0), 1.0))
        except OSError:  # the staging directory vanished between listing and counting
            return 0.0

    def wait(self, timeout: float | None = None) -> bool:
        """Block until finished (tests, CLI); True when it finished within ``timeout``."""
        self._thread.join(timeout)
        return not self._thread.is_alive()


def generation_progress(out: str | os.PathLike, n: int) -> float:
    """Fraction of ``n`` media files rendered so far for a corpus being generated into ``out``
    (0.0 before rendering starts, 1.0 once ``out`` holds a dataset)."""
    out = Path(out)
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if (out / "meta.json").is_file():
        return 1.0
    done = 0
    for staging in out.parent.glob(f".{out.name}.media.*"):
        media = staging / "media"
        if media.is_dir():
            done = max(done, sum(1 for _ in media.iterdir()))
    return min(done / n, 0.99)  # the tables are written after the last file


def start_generation(out: str | os.PathLike, *, modality: str, n: int, seed: int,
                     n_domains: int, flip_rate: float, overwrite: bool = False) -> DataJob:
    """Generate a corpus (:func:`affectlab.data.synth.corpus.generate_corpus`) in the background.

    Arguments are validated by the generator; a bad one fails the job with its message.
    """
    from affectlab.data.synth.corpus import generate_corpus

    out = Path(out)
    return DataJob(f"generate {modality} corpus {out.name}", generate_corpus,
                   progress_fn=lambda: generation_progress(out, max(int(n), 1)),
                   modality=modality, n=n, seed=seed, n_domains=n_domains, flip_rate=flip_rate,
                   out=out, overwrite=overwrite, progress=False, name=out.name)


def start_import(fmt: str, src: str | os.PathLike, out: str | os.PathLike, *,
                 skip_bad: bool = False, overwrite: bool = False) -> DataJob:
    """Import a corpus (:func:`affectlab.data.importers.import_corpus`) in the background."""
    from affectlab.data.importers import import_corpus

    return DataJob(f"import {fmt} into {Path(out).name}", import_corpus, fmt, src, out,
                   skip_bad=skip_bad, overwrite=overwrite)
