"""Importers for real corpora into the dataset contract (SPEC §7), one module per format.

Every importer reads the corpus *as published* (the source is never modified: files are only
opened for reading, media are hard-linked when the output is on the same filesystem, copied
otherwise) and produces one dataset directory whose ``ratings.parquet`` holds every single rating
the corpus publishes — per rater where the corpus names raters, as anonymous votes (``rater_id``
null) where it publishes only vote counts (FER+, CREMA-D's tabulated votes) — so soft labels are
derived from the ratings, never stored as the only copy.

Malformed rows and unreadable media are reported with their file and line number. By default the
import then aborts before anything is written; with ``skip_bad=True`` the affected items are
skipped and listed in the report.

    >>> report = import_corpus("ravdess", Path("RAVDESS"), Path("data/datasets/ravdess"))
    >>> print(report.summary())
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from affectlab.data.importers import (
    affectnet,
    cremad,
    emodb,
    ferplus,
    folder,
    iemocap,
    msp,
    rafdb,
    ravdess,
)
from affectlab.data.importers._common import (
    BadRow,
    Corpus,
    ImportError_,
    ImportReport,
    Problems,
    check_out,
    symlink_policy,
    text_encoding,
    write_corpus,
)

__all__ = ["FORMATS", "BadRow", "ImportError_", "ImportReport", "Importer", "import_corpus"]


@dataclass(frozen=True)
class Importer:
    """One registered format: ``parse(src, problems)`` reads the source and returns a Corpus."""

    name: str
    description: str
    parse: Callable[[Path, Problems], Corpus]


FORMATS: dict[str, Importer] = {
    m.NAME: Importer(m.NAME, m.DESCRIPTION, m.parse)
    for m in (ferplus, rafdb, affectnet, cremad, ravdess, emodb, iemocap, msp, folder)
}


def import_corpus(fmt: str, src: str | Path, out: str | Path, skip_bad: bool = False,
                  overwrite: bool = False, link: bool = True,
                  follow_symlinks: bool = False, encoding: str | None = None) -> ImportReport:
    """Import the corpus at ``src`` (format ``fmt``, a key of :data:`FORMATS`) into ``out``.

    Media files are hard-linked when ``link`` and ``out`` is on the source's filesystem (no
    duplicate of a large corpus), copied otherwise; ``link=False`` always copies. Label files
    are read as ``encoding`` (default UTF-8, a BOM allowed); a file that is not is refused
    naming it, the byte offset and the line.

    Every file read stays inside ``src``: a file name in a label file that is absolute or
    climbs out with ``..`` is a bad row, and so is a media or label file that resolves outside
    ``src`` (a symbolic link out of the corpus) unless ``follow_symlinks`` (for corpora laid out
    as symlink farms).

    Raises :class:`ImportError_` (a ValueError) with a message naming the problem: unknown format,
    missing source or file, output inside the source or already present, malformed rows or
    unreadable media (unless ``skip_bad``). Nothing is written when it raises.
    """
    if not isinstance(fmt, str) or fmt.lower() not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise ImportError_(f"unknown format {fmt!r}; known formats: {known}")
    fmt = fmt.lower()
    src, out = Path(src).expanduser(), Path(out).expanduser()
    if not src.is_dir():
        raise ImportError_(f"{fmt}: source {src} is not a directory")
    check_out(src, out, overwrite)
    problems = Problems(src)
    with symlink_policy(follow_symlinks), text_encoding(encoding):
        corpus = FORMATS[fmt].parse(src, problems)
        return write_corpus(corpus, problems, fmt, src, out, skip_bad=skip_bad,
                            overwrite=overwrite, link=link)
