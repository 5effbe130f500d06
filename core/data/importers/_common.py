"""Shared machinery of the importers: the parsed-corpus record, problem collection, media checks,
deterministic splits and the final atomic write.

An importer's ``parse(src, problems)`` only reads the source and returns a :class:`Corpus`; it
never writes anything. :func:`write_corpus` then checks the media, drops (or refuses) bad rows,
copies or hard-links the media into a staging directory next to ``out`` and hands everything to
:func:`affectlab.data.contract.write_dataset`, which validates and renames it into place atomically.
"""

from __future__ import annotations

import codecs
import csv
import math
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from glob import escape as glob_escape
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

import pandas as pd

from affectlab.data.contract import FACE_BOX, ContractError, face_boxes, write_dataset
from affectlab.data.schema import DatasetMeta, LabelSet
from affectlab.errors import UserDataError
from affectlab.fileio import link_or_copy
from affectlab.paths import NotProductDirError, require_product_dir, unsafe_relative
from affectlab.scales import IntervalScale, NominalScale, OrdinalScale, Scale

MAX_INT_CHARS = 12  # longest integer text accepted (counts, labels, sizes): up to 10^12
MAX_IMAGE_SIDE = 100_000  # largest pixel coordinate or size read from a label file
MAX_VOTES = 10_000  # most votes for one class of one item (FER+ has 10 raters per image)
_FOLLOW_SYMLINKS: ContextVar[bool] = ContextVar("affectlab_import_follow_symlinks",
                                                default=False)


class ImportError_(UserDataError):  # noqa: N801 - the trailing underscore avoids the builtin name
    """An import cannot proceed: unknown format, missing file, malformed rows, unreadable media."""


@dataclass(frozen=True)
class BadRow:
    """One problem found in the source: ``line`` is 1-based, ``None`` for a whole file (media)."""

    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.reason}"


class Problems:
    """Collects malformed rows and unreadable media while a corpus is parsed.

    ``bad(...)`` records a problem; when it names an ``item_id`` that item (and its ratings) is
    dropped if the import goes on with ``skip_bad``. ``exclude(reason)`` counts rows left out by
    a documented rule (not errors), e.g. FER+ faces voted mostly not-a-face. ``notice(...)``
    records a quirk of the source that the import resolved by a documented rule (FER+'s
    duplicated image names: the later row wins); it is reported, never an abort.
    """

    def __init__(self, src: Path) -> None:
        self.src = src
        self.rows: list[BadRow] = []
        self.bad_items: set[str] = set()
        self.excluded: Counter[str] = Counter()
        self.notices: list[BadRow] = []

    def rel(self, path: Path | str) -> str:
        path = Path(path)
        try:
            return path.relative_to(self.src).as_posix()
        except ValueError:
            return str(path)

    def bad(self, file: Path | str, line: int | None, reason: str,
            item_id: str | None = None) -> None:
        self.rows.append(BadRow(self.rel(file), line, reason))
        if item_id is not None:
            self.bad_items.add(item_id)

    def exclude(self, reason: str, n: int = 1) -> None:
        self.excluded[reason] += n

    def notice(self, file: Path | str, line: int | None, message: str) -> None:
        self.notices.append(BadRow(self.rel(file), line, message))


MediaSource = Path | Callable[[Path], None]
"""Where an item's media comes from: a source file (copied or hard-linked) or a function that
writes the file to the path it is given (FER+ pixels → PNG)."""


@dataclass
class Corpus:
    """What an importer read. ``items`` rows carry ``item_id``, ``media`` (path relative to the
    output directory), ``split`` and any extra columns; ``modality`` and ``domain`` are filled in
    by :func:`write_corpus`. ``ratings`` rows carry ``item_id``, ``rater_id`` (None for an
    anonymous vote: a source that gives vote counts, not raters), ``scale``, ``value`` and
    optionally ``weight``."""

    domain: str
    modality: str
    label_names: list[str]
    scales: dict[str, Scale]
    items: list[dict[str, Any]] = field(default_factory=list)
    ratings: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, MediaSource] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    ordinal: bool = False
    label_scale: str = "category"


@dataclass
class ImportReport:
    """Outcome of :func:`affectlab.data.importers.import_corpus`."""

    fmt: str
    out: Path
    items: int
    ratings: int
    splits: dict[str, int]
    skipped: list[BadRow] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)
    notices: list[BadRow] = field(default_factory=list)

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    def summary(self) -> str:
        splits = ", ".join(f"{k} {v}" for k, v in self.splits.items() if v)
        lines = [f"imported {self.items} items and {self.ratings} ratings ({self.fmt}) into "
                 f"{self.out} [{splits}]"]
        if self.excluded:
            lines.append("excluded by rule: " + "; ".join(
                f"{n} × {reason}" for reason, n in sorted(self.excluded.items())))
        lines.extend(f"notice: {row}" for row in self.notices[:20])
        if len(self.notices) > 20:
            lines.append(f"notice: … and {len(self.notices) - 20} more")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} malformed row(s) or unreadable file(s):")
            lines.extend(f"  {row}" for row in self.skipped[:20])
            if len(self.skipped) > 20:
                lines.append(f"  … and {len(self.skipped) - 20} more")
        return "\n".join(lines)


# --------------------------------------------------------------------------- reading helpers

@contextmanager
def symlink_policy(follow: bool) -> Iterator[None]:
    """Within the block, files that resolve outside the corpus (symbolic links out of it) are
    accepted (``follow=True``) or refused (the default)."""
    token = _FOLLOW_SYMLINKS.set(bool(follow))
    try:
        yield
    finally:
        _FOLLOW_SYMLINKS.reset(token)


def outside_corpus(path: Path, src: Path) -> str | None:
    """Why ``path`` may not be read as part of the corpus at ``src`` (it resolves outside it,
    e.g. through a symbolic link), or None. Links are accepted under ``symlink_policy(True)``."""
    root = src.resolve()
    resolved = (path if path.is_absolute() else src / path).resolve()
    if resolved == root or root in resolved.parents or _FOLLOW_SYMLINKS.get():
        return None
    return (f"resolves outside the corpus (to {resolved}); pass follow_symlinks=True / "
            "--follow-symlinks to accept links out of it")


def corpus_path(base: Path, name: str, problems: Problems, file: Path, line: int | None,
                item_id: str | None = None) -> Path | None:
    """``base / name`` for a file name read from a label file (``file``:``line``), or None
    after reporting the row when the name would lead outside (see :func:`unsafe_relative`)."""
    reason = unsafe_relative(name)
    if reason is not None:
        problems.bad(file, line, reason, item_id=item_id)
        return None
    return base.joinpath(*PurePosixPath(name.replace("\\", "/")).parts)


def require_inside(path: Path, src: Path) -> Path:
    """``path`` (a label file the importer is about to read) when it lies inside the corpus
    ``src``; :class:`ImportError_` when it is a link out of it (see :func:`outside_corpus`)."""
    reason = outside_corpus(path, src)
    if reason is not None:
        raise ImportError_(f"{path}: {reason}")
    return path


def find_file(src: Path, *candidates: str) -> Path | None:
    """First existing path among ``candidates`` (relative to ``src``; glob patterns allowed).
    A match that resolves outside ``src`` (a link out of the corpus) is refused with
    :class:`ImportError_` unless under ``symlink_policy(True)``."""
    for pattern in candidates:
        matches = sorted(src.glob(pattern))
        files = [m for m in matches if m.is_file()]
        if files:
            return require_inside(files[0], src)
    return None


def files_with_suffix(root: Path, suffix: str, recursive: bool = True) -> list[Path]:
    """The files under ``root`` (in its subfolders too, when ``recursive``) whose suffix is
    ``suffix`` in any case (``.wav``, ``.WAV``: both ship in real downloads), sorted."""
    found = root.rglob("*") if recursive else root.glob("*")
    return sorted(p for p in found if p.suffix.lower() == suffix.lower() and p.is_file())


def any_case_suffix(path: Path) -> Path:
    """``path``, or when it does not exist, the file beside it whose name differs only in the
    case of its suffix (``turn.WAV`` for ``turn.wav``), if there is one."""
    if path.exists() or not path.parent.is_dir():
        return path
    for other in path.parent.glob(f"{glob_escape(path.stem)}.*"):
        if other.name.lower() == path.name.lower() and other.stem == path.stem:
            return other
    return path


def require_file(src: Path, fmt: str, what: str, *candidates: str) -> Path:
    path = find_file(src, *candidates)
    if path is None:
        raise ImportError_(f"{fmt}: {what} not found under {src} "
                           f"(looked for: {', '.join(candidates)})")
    return path


# The text encoding of the label files of the import in progress (``import_corpus(encoding=)``,
# ``--encoding``): a context variable, so every reader below sees it without each importer
# passing it along.
_ENCODING: ContextVar[str] = ContextVar("affectlab_import_encoding", default="utf-8")


@contextmanager
def text_encoding(encoding: str | None) -> Iterator[str]:
    """Read the label files as ``encoding`` (default UTF-8) inside the block."""
    name = encoding or "utf-8"
    try:
        name = codecs.lookup(name).name
    except LookupError:
        raise ImportError_(f"unknown text encoding {encoding!r} (e.g. utf-8, latin-1, "
                           "cp1252)") from None
    token = _ENCODING.set(name)
    try:
        yield name
    finally:
        _ENCODING.reset(token)


def undecodable_at(path: Path, encoding: str) -> tuple[int, bytes, int] | None:
    """(byte offset, the offending bytes, 1-based line) of the first bytes of ``path`` that are
    not ``encoding`` text, or None. Read in chunks: a label file may be hundreds of MB."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset, newlines = 0, 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            pending = len(decoder.getstate()[0])  # bytes of a sequence begun in the last chunk
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                at = offset - pending + exc.start
                line = newlines + chunk[:max(at - offset, 0)].count(b"\n") + 1
                return at, exc.object[exc.start:exc.end], line
            offset += len(chunk)
            newlines += chunk.count(b"\n")
    return None


@contextmanager
def open_text(path: Path, fmt: str) -> Iterator[TextIO]:
    """``path`` opened as text in the import's encoding (a UTF-8 BOM dropped); a byte that is
    not text in that encoding becomes one :class:`ImportError_` naming the file, the byte
    offset and the line."""
    encoding = _ENCODING.get()
    try:
        fh = open(path, newline="", encoding="utf-8-sig" if encoding == "utf-8" else encoding)
    except OSError as exc:
        raise ImportError_(f"{fmt}: cannot read {path} ({exc.strerror or exc})") from None
    with fh:
        try:
            yield fh
        except UnicodeDecodeError:
            where = undecodable_at(path, encoding)
            detail = (f"byte 0x{where[1][:1].hex()} at offset {where[0]} (line {where[2]})"
                      if where else "a byte sequence that does not decode")
            raise ImportError_(f"{fmt}: {path} is not {encoding} text: {detail}; pass "
                               "--encoding (e.g. --encoding latin-1) if it uses another "
                               "encoding") from None


def read_csv_rows(path: Path, fmt: str, required: tuple[str, ...] = (),
                  names: list[str] | tuple[str, ...] | None = None,
                  problems: Problems | None = None
                  ) -> Iterator[tuple[int, dict[str, str], list[str]]]:
    """Yield ``(line_number, row_dict, raw_fields)`` for each data row of a CSV file.

    The header (the first line, or ``names`` for a file without one) must contain ``required``.
    With ``problems``, a row whose number of fields differs from the header's (a truncated
    file's last line, a stray comma) is reported there and not yielded; trailing empty fields
    are ignored. Without it such a row is still yielded (``row_dict`` then holds what could be
    paired, every header column present, empty when missing) so the caller reports it.
    """
    with open_text(path, fmt) as fh:
        reader = csv.reader(fh)
        try:
            header = list(names) if names is not None else [h.strip() for h in next(reader)]
        except StopIteration:
            raise ImportError_(f"{fmt}: {path} is empty") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise ImportError_(f"{fmt}: {path.name} lacks column(s) {missing}; header is {header}")
        for fields in _csv_records(reader, path, fmt):
            if not fields or all(not f.strip() for f in fields):
                continue
            n = field_count(fields, len(header))
            if problems is not None and n != len(header):
                problems.bad(path, reader.line_num, f"expected {len(header)} fields, got {n}"
                             + (" (a truncated line?)" if n < len(header) else ""))
                continue
            row = dict.fromkeys(header, "")
            row.update(zip(header, (f.strip() for f in fields), strict=False))
            yield reader.line_num, row, fields


def field_count(fields: list[str], width: int) -> int:
    """How many fields a CSV line has against a header of ``width`` names: empty fields past
    the header's last column are not counted (a trailing comma), empty ones within it are
    (a column's empty value)."""
    n = len(fields)
    while n > width and not fields[n - 1].strip():
        n -= 1
    return n


def _csv_records(reader, path: Path, fmt: str) -> Iterator[list[str]]:
    try:
        yield from reader
    except csv.Error as exc:
        raise ImportError_(f"{fmt}: {path}:{reader.line_num + 1}: malformed CSV ({exc})") from None


def csv_header(path: Path, fmt: str = "import") -> list[str]:
    with open_text(path, fmt) as fh:
        return [h.strip() for h in next(csv.reader(fh), [])]


def parse_float(text: str) -> float | None:
    """A finite float, or ``None`` for anything else (empty, NaN, text)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def parse_int(text: str, low: int | None = None, high: int | None = None) -> int | None:
    """An integer in ``low..high`` (bounds optional), or ``None`` for anything else. Text
    longer than :data:`MAX_INT_CHARS` is refused before it is converted, so a 20-digit
    "count" never reaches code that allocates by it."""
    text = str(text).strip()
    if len(text) > MAX_INT_CHARS:
        return None
    try:
        value = int(text)
    except (TypeError, ValueError):
        return None
    if (low is not None and value < low) or (high is not None and value > high):
        return None
    return value


SPLIT_RULE = "sorted, about 80/10/10 by rank, val and test never empty from 3 on (group_splits)"


def split_sizes(n: int) -> tuple[int, int, int]:
    """(train, val, test) group counts of :func:`group_splits` for ``n`` groups.

    About 80/10/10: train ⌈0.8 n⌉, val ⌈0.9 n⌉ − ⌈0.8 n⌉, test the rest; with at least 3
    groups neither val nor test is left empty (each then takes one group from train), so a
    small corpus (8 RAVDESS actors: 6/1/1) still has a test set to score.
    """
    n_train, n_upto_val = (8 * n + 9) // 10, (9 * n + 9) // 10
    n_val, n_test = n_upto_val - n_train, n - n_upto_val
    if n >= 3:
        n_val, n_test = max(n_val, 1), max(n_test, 1)
        n_train = n - n_val - n_test
    return n_train, n_val, n_test


def group_splits(groups: list[str]) -> dict[str, str]:
    """Deterministic group-independent split for corpora without an official one.

    The distinct groups (speakers, actors, or items) are sorted; the first ones by rank go to
    ``train``, the next to ``val``, the last to ``test``, in the sizes of :func:`split_sizes`,
    with no group in two splits. Returns group → split.
    """
    unique = sorted(set(groups))
    n_train, n_val, _ = split_sizes(len(unique))
    return {g: "train" if r < n_train else ("val" if r < n_train + n_val else "test")
            for r, g in enumerate(unique)}


def nominal(names: list[str]) -> NominalScale:
    return NominalScale(names=list(names))


def ordinal(names: list[str]) -> OrdinalScale:
    return OrdinalScale(names=list(names))


def likert(low: float, high: float) -> IntervalScale:
    return IntervalScale(type="likert", low=low, high=high)


def anonymous_votes(item_id: str, scale: str, counts: list[int]) -> list[dict[str, Any]]:
    """One anonymous rating (``rater_id`` None) per vote: ``counts[c]`` votes for class c,
    each in 0..:data:`MAX_VOTES` (ValueError otherwise: callers range-check while parsing and
    report the row; this is the backstop before anything is allocated)."""
    bad = [c for c in counts if isinstance(c, bool) or not isinstance(c, int)
           or not 0 <= c <= MAX_VOTES]
    if bad:
        raise ValueError(f"item {item_id!r}: vote counts must be integers in 0..{MAX_VOTES}, "
                         f"got {bad[0]!r}")
    return [{"item_id": item_id, "rater_id": None, "scale": scale, "value": float(cls)}
            for cls, count in enumerate(counts) for _ in range(count)]


def files_by_name(files: list[Path], parse_name: Callable[[str], dict[str, Any] | str],
                  problems: Problems) -> dict[str, tuple[Path, dict[str, Any]]]:
    """stem → (file, the fields its name encodes) for corpora labelled by file name (RAVDESS,
    EmoDB). ``parse_name(stem)`` gives the fields or the reason the name is not one; such a
    file, or a second file of the same stem, is a bad row."""
    found: dict[str, tuple[Path, dict[str, Any]]] = {}
    for path in files:
        fields = parse_name(path.stem)
        if isinstance(fields, str):
            problems.bad(path, None, fields)
        elif path.stem in found:
            problems.bad(path, None, f"duplicate of {problems.rel(found[path.stem][0])}")
        else:
            found[path.stem] = (path, fields)
    return found


def drop_unrated(corpus: Corpus, problems: Problems, reason: str) -> None:
    """Leave out (and count) items that received no rating at all."""
    rated = {r["item_id"] for r in corpus.ratings}
    kept = [it for it in corpus.items if it["item_id"] in rated]
    if len(kept) < len(corpus.items):
        problems.exclude(reason, len(corpus.items) - len(kept))
    corpus.items = kept


# --------------------------------------------------------------------------- media

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
AUDIO_EXTS = {".wav", ".flac"}


def media_problem(path: Path, modality: str, box: tuple[int, int, int, int] | None = None
                  ) -> str | None:
    """Why ``path`` cannot serve as an item's media, or ``None`` when it reads fine; ``box``:
    the corpus's own face box (x, y, w, h) in the image, if it gives one."""
    if not path.is_file():
        return "media file is missing"
    if modality == "face":
        from affectlab.features.face import ImageLoadError, check_image_file

        try:
            check_image_file(path)  # structure and size, without decoding every pixel
        except ImageLoadError as exc:
            return f"unreadable image ({exc})"
        return _face_problem(path, box)
    import soundfile as sf

    from affectlab.features.audio import AudioLoadError, check_audio_header

    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError, ValueError) as exc:  # LibsndfileError is a RuntimeError
        return f"unreadable audio ({exc.__class__.__name__}: {exc})"
    if info.frames <= 0:
        return "audio file holds no samples"
    short = _shorter_than_a_frame(int(info.frames), int(info.samplerate))
    if short is not None:
        return short
    try:
        check_audio_header(int(info.samplerate), int(info.frames), int(info.channels), str(path))
    except AudioLoadError as exc:
        return str(exc).removeprefix(f"{path}: ")
    return None


def _shorter_than_a_frame(frames: int, sample_rate: int) -> str | None:
    """Why a clip of ``frames`` samples at ``sample_rate`` gives no filterbank frame at all
    (SPEC §2: 25 ms windows at 16 kHz), which the dataset loader would leave out; else None."""
    from affectlab.features.fbank import FbankParams

    params = FbankParams()
    at_target = math.ceil(frames * params.sample_rate / sample_rate)  # after resampling
    if at_target >= params.frame_length:
        return None
    return (f"audio is {1000 * frames / sample_rate:.1f} ms long, shorter than one "
            f"{params.frame_length_ms:g} ms analysis frame")


def _face_problem(path: Path, box: tuple[int, int, int, int] | None = None) -> str | None:
    """A face box the corpus gives must overlap the image (the loader crops it); otherwise an
    image larger than a face crop (:func:`~affectlab.features.face.is_face_crop`) must show a
    face the detector finds, as the dataset loader will crop around it; a crop is taken as it
    is."""
    from affectlab.features.face import (
        ImageLoadError,
        check_box,
        is_face_crop,
        load_image,
        shared_detector,
    )

    try:
        img = load_image(path)
    except ImageLoadError as exc:
        return f"unreadable image ({exc})"
    if box is not None:
        try:
            check_box(box, img.shape[:2])  # the rule the loader's crop applies
        except ValueError:
            x, y, w, h = box
            return (f"face box (x {x}, y {y}, w {w}, h {h}) lies outside the "
                    f"{img.shape[1]}×{img.shape[0]} image")
        return None
    if is_face_crop(img) or shared_detector().detect(img):
        return None
    return f"no face detected (a {img.shape[1]}×{img.shape[0]} image, larger than a face crop)"


def _place(source: MediaSource, dest: Path, link: bool) -> None:
    if callable(source):
        dest.parent.mkdir(parents=True, exist_ok=True)
        source(dest)
        return
    # A hard link on the same file system: a later in-place write to the output file would
    # show in the source; replace output files (unlink + write), or import with link=False.
    link_or_copy(source, dest, link)


# --------------------------------------------------------------------------- the write

def check_out(src: Path, out: Path, overwrite: bool) -> None:
    """Refuse an output that would modify the source or clobber a dataset without ``overwrite``."""
    src_r, out_r = src.resolve(), out.resolve()
    if out_r == src_r or src_r in out_r.parents:
        raise ImportError_(f"the output {out} lies inside the source {src}; importing never writes "
                           "into the source, choose another --out")
    if out_r in src_r.parents:
        raise ImportError_(f"the output {out} contains the source {src}; choose another --out")
    if out.exists() and not out.is_dir():
        raise ImportError_(f"the output {out} exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ImportError_(f"{out} already exists and is not empty "
                           "(pass overwrite=True / --overwrite)")
    try:
        require_product_dir(out)
    except NotProductDirError as exc:
        raise ImportError_(str(exc)) from exc


def check_media(corpus: Corpus, problems: Problems) -> None:
    """Report every item whose source media file is missing, unreadable or outside the corpus
    (a link out of it, unless under ``symlink_policy(True)``), or whose media path in the
    output would leave the output directory."""
    boxes = _item_boxes(corpus.items)
    for row, item in enumerate(corpus.items):
        iid = item["item_id"]
        if iid in problems.bad_items:
            continue
        source = corpus.media.get(iid)
        dest = unsafe_relative(str(item.get("media", "")))
        if dest is not None:  # it would be written outside the output directory
            problems.bad("<items>", None, f"item {iid!r}: media {dest}", item_id=iid)
        elif source is None:
            problems.bad("<items>", None, f"item {iid!r} has no media", item_id=iid)
        elif not callable(source):
            source = corpus.media[iid] = any_case_suffix(source)
            box = None if boxes is None or math.isnan(boxes[row, 0]) else \
                tuple(int(v) for v in boxes[row])
            reason = outside_corpus(source, problems.src) or media_problem(
                source, corpus.modality, box)
            if reason is not None:
                problems.bad(source, None, reason, item_id=iid)


def _item_boxes(items: list[dict[str, Any]]):
    """The items' own face boxes by the dataset contract's rule (:func:`face_boxes`: NaN rows
    without a usable one), or None when no item has the face-box columns."""
    if not any(FACE_BOX[0] in it for it in items):
        return None
    return face_boxes(pd.DataFrame([{c: it.get(c) for c in FACE_BOX} for it in items]))


def raise_if_bad(problems: Problems, fmt: str, skip_bad: bool) -> None:
    if len(problems.rows) == 1 and not skip_bad:  # one problem: one line
        raise ImportError_(f"{fmt}: {problems.rows[0]}; nothing was written (pass "
                           "skip_bad=True / --skip-bad to skip it)")
    if problems.rows and not skip_bad:
        shown = "\n  ".join(str(r) for r in problems.rows[:10])
        more = f"\n  … and {len(problems.rows) - 10} more" if len(problems.rows) > 10 else ""
        raise ImportError_(f"{fmt}: {len(problems.rows)} malformed row(s) or unreadable file(s); "
                           f"nothing was written (pass skip_bad=True / --skip-bad to skip them):"
                           f"\n  {shown}{more}")


_EMPTY_SPLIT = {
    "train": "`affectlab train` needs some; use the dataset for evaluation "
             "(affectlab eval RUN --dataset DIR --split all)",
    "val": "training runs without validation metrics",
    "test": "a run on it ends without test metrics",
}


def write_corpus(corpus: Corpus, problems: Problems, fmt: str, src: Path, out: Path,
                 skip_bad: bool, overwrite: bool, link: bool = True) -> ImportReport:
    """Check media, apply the bad-row policy, stage the media and write the dataset atomically."""
    check_media(corpus, problems)
    raise_if_bad(problems, fmt, skip_bad)

    items = [dict(it) for it in corpus.items if it["item_id"] not in problems.bad_items]
    keep = {it["item_id"] for it in items}
    ratings = [r for r in corpus.ratings if r["item_id"] in keep]
    if not items:
        raise ImportError_(f"{fmt}: no importable items found under {src}")

    for it in items:
        it["modality"] = corpus.modality
        it["domain"] = corpus.domain
    items_df = _items_frame(items)
    ratings_df = _ratings_frame(ratings)
    try:
        meta = DatasetMeta(
            name=out.name, modality=corpus.modality,
            label_set=LabelSet(scale=corpus.label_scale, names=list(corpus.label_names),
                               ordinal=corpus.ordinal),
            scales=corpus.scales,
            provenance={"importer": fmt, "source": str(src.resolve()), "corpus": corpus.domain,
                        **corpus.provenance})
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ImportError_(f"{fmt}: the imported scales break the dataset contract: "
                           f"{exc}") from exc

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.media.", dir=out.parent))
    try:
        for it in items:
            _place(corpus.media[it["item_id"]], staging / it["media"], link)
        try:
            write_dataset(out, items_df, ratings_df, meta, media_dir=staging, overwrite=overwrite)
        except ContractError as exc:
            raise ImportError_(f"{fmt}: the imported tables break the dataset contract: "
                               f"{exc}") from exc
        except FileExistsError as exc:
            raise ImportError_(str(exc)) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    splits = {s: int((items_df["split"] == s).sum()) for s in ("train", "val", "test")}
    for split, consequence in _EMPTY_SPLIT.items():
        if splits[split] == 0:
            problems.notice("splits", None, f"no {split} items: {consequence}")
    return ImportReport(fmt=fmt, out=out, items=len(items_df), ratings=len(ratings_df),
                        splits=splits, skipped=list(problems.rows),
                        excluded=dict(problems.excluded), notices=list(problems.notices))


def _items_frame(items: list[dict[str, Any]]) -> pd.DataFrame:
    first = ["item_id", "media", "modality", "split", "domain"]
    df = pd.DataFrame(items)
    rest = [c for c in df.columns if c not in first]
    return df[first + rest]


def _ratings_frame(ratings: list[dict[str, Any]]) -> pd.DataFrame:
    cols = ["item_id", "rater_id", "scale", "value"]
    if any("weight" in r for r in ratings):
        cols.append("weight")
    df = pd.DataFrame(ratings, columns=cols)
    df["item_id"] = df["item_id"].astype(str)
    # None (an anonymous vote) stays null: astype(str) would make it the rater "None"
    df["rater_id"] = pd.Series([None if pd.isna(r) else str(r) for r in df["rater_id"]],
                               dtype=object, index=df.index)
    df["scale"] = df["scale"].astype(str)
    df["value"] = df["value"].astype("float64")
    if "weight" in df:
        df["weight"] = df["weight"].fillna(1.0).astype("float64")
    return df
