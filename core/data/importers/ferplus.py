"""FER+ (Barsoum et al. 2016), in either of the two layouts its users have, detected from the
folder given:

- **Kaggle**: ``fer2013.csv`` (emotion, pixels, Usage) plus Microsoft's ``fer2013new.csv``
  (Usage, Image name, 10 vote columns), row-aligned. Each 48×48 pixel string becomes
  ``media/<FER2013Train|Valid|Test>/<Image name>`` (PNG, the layout FER+'s own
  ``generate_training_data.py`` writes); FER2013's own label is kept as ``fer_label``.
- **Microsoft folders** (after ``generate_training_data.py``): ``FER2013Train/``,
  ``FER2013Valid/`` and ``FER2013Test/`` (under ``src``, ``src/data`` or one folder down), each
  with the PNGs and a header-less ``label.csv``: ``image name, "(x, y, w, h)", 10 vote counts``.

The vote columns are, in order, neutral, happiness, surprise, sadness, anger, disgust, fear,
contempt, unknown, NF (not a face). Both layouts give the same items, media and votes.

- Ratings: every vote over the eight emotions is one ``category`` rating. The release gives
  vote counts per image, not who voted, so every vote is an anonymous rating (``rater_id``
  null, the contract's mark): Krippendorff's α uses them (it needs only the value counts per
  item); Dawid–Skene and other per-rater statistics refuse them rather than treat the k-th
  vote of every image as one person.
- SPEC §1: "unknown" and "not-a-face" (NF) votes are dropped before any distribution is formed;
  items whose votes are mostly NF (NF > half of all votes) are excluded, as are rows without an
  image name (FER+ leaves it empty for non-faces) and rows with no emotion vote left.
- Duplicated image names (the official ``fer2013new.csv`` names three images twice): the later
  row wins, as in FER+'s own script, which writes the later row's PNG over the earlier one. The
  rules above then apply to the winning row; each duplicate is reported as a notice.
- Usage → split: Training (FER2013Train) → train, PublicTest (FER2013Valid) → val,
  PrivateTest (FER2013Test) → test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import numpy as np

from affectlab.data.importers._common import (
    MAX_VOTES,
    Corpus,
    ImportError_,
    MediaSource,
    Problems,
    anonymous_votes,
    field_count,
    find_file,
    nominal,
    parse_int,
    read_csv_rows,
)

NAME = "ferplus"
DESCRIPTION = ("FER+: fer2013.csv pixels + fer2013new.csv votes, or the FER2013Train/Valid/Test "
               "folders of label.csv + PNGs (anonymous votes; 8 emotions, 48×48 faces)")

LABELS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]
VOTE_COLUMNS = [*LABELS, "unknown", "NF"]
FER_LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]  # fer2013.csv
SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
FOLDERS = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
LABEL_FILE_COLUMNS = ("Image name", "box", *VOTE_COLUMNS)
BOX_RE = re.compile(r"^\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)$")
SIDE = 48


@dataclass(frozen=True)
class _Row:
    """One FER+ row of either layout, structurally valid: where it is, its split, image name,
    the 10 vote counts, its media, and (Kaggle layout) FER2013's own label."""

    file: Path
    line: int
    usage: str
    name: str
    votes: list[int]
    media: MediaSource | None  # None: a row without an image name
    extra: dict[str, object]


def parse_pixels(text: str) -> np.ndarray | None:
    """A 48×48 uint8 image from FER2013's space-separated pixel string, or ``None``."""
    parts = text.split()
    if len(parts) != SIDE * SIDE:
        return None
    try:
        values = np.array(parts, dtype=np.int64)  # numpy parses the digit strings in C
    except (ValueError, OverflowError):
        return None
    if values.min() < 0 or values.max() > 255:
        return None
    return values.astype(np.uint8).reshape(SIDE, SIDE)


def _png_writer(pixels: np.ndarray):
    def write(dest: Path) -> None:
        from PIL import Image

        Image.fromarray(pixels).save(dest, format="PNG")

    return write


def _votes(row: dict[str, str], path: Path, line: int, problems: Problems) -> list[int] | None:
    votes = [parse_int(row[c], 0, MAX_VOTES) for c in VOTE_COLUMNS]
    if any(v is None for v in votes):
        problems.bad(path, line, f"vote counts must be non-negative integers (at most {MAX_VOTES})")
        return None
    return votes  # type: ignore[return-value]


def parse(src: Path, problems: Problems) -> Corpus:
    fer_path = find_file(src, "fer2013.csv", "*/fer2013.csv")
    new_path = find_file(src, "fer2013new.csv", "*/fer2013new.csv")
    folders = _find_folders(src)
    if fer_path is not None and new_path is not None:
        rows, layout = _kaggle_rows(fer_path, new_path, problems), "kaggle"
        files = [problems.rel(fer_path), problems.rel(new_path)]
    elif folders:
        rows, layout = _folder_rows(folders, problems), "folders"
        files = [problems.rel(f / "label.csv") for f in folders.values()]
    else:
        missing = " and ".join(n for n, p in (("fer2013.csv", fer_path),
                                               ("fer2013new.csv", new_path)) if p is None)
        raise ImportError_(f"{NAME}: {src} holds neither the Kaggle layout ({missing} not found) "
                           "nor FER+'s folders (FER2013Train/label.csv, FER2013Valid/, "
                           "FER2013Test/ under it or under data/)")
    corpus = Corpus(domain=NAME, modality="face", label_names=list(LABELS),
                    scales={"category": nominal(LABELS)},
                    provenance={"layout": layout, "files": files,
                                "rule": "unknown/NF votes dropped; NF > half of votes excluded; "
                                        "a duplicated image name: the later row wins",
                                "split": "Usage: Training→train, PublicTest→val, "
                                         "PrivateTest→test"})
    _add_items(corpus, _latest_by_name(rows, problems), problems)
    return corpus


def _latest_by_name(rows: Iterator[_Row], problems: Problems) -> dict[str, _Row]:
    """item id → its row; a name given again replaces the earlier row (FER+'s script writes
    the later PNG over the earlier one), with a notice."""
    latest: dict[str, _Row] = {}
    for row in rows:
        if not row.name:
            problems.exclude("FER+ row without image name (not a face)")
            continue
        item_id = Path(row.name).stem
        earlier = latest.pop(item_id, None)
        if earlier is not None:
            problems.notice(row.file, row.line,
                            f"image name {row.name!r} repeats line {earlier.line} of "
                            f"{problems.rel(earlier.file)}; the later row wins (as in FER+'s "
                            "generate_training_data.py, which overwrites the PNG)")
        latest[item_id] = row
    return latest


def _add_items(corpus: Corpus, rows: dict[str, _Row], problems: Problems) -> None:
    for item_id, row in rows.items():
        emotion_votes, nf = row.votes[:8], row.votes[9]
        if 2 * nf > sum(row.votes):
            problems.exclude("votes mostly not-a-face")
            continue
        if sum(emotion_votes) == 0:
            problems.exclude("no emotion vote left after dropping unknown/NF")
            continue
        corpus.items.append({
            "item_id": item_id,
            "media": f"media/{FOLDERS[row.usage]}/{item_id}.png",
            "split": SPLITS[row.usage],
            "label": LABELS[int(np.argmax(emotion_votes))],
            **row.extra,
            "votes_unknown": row.votes[8],
            "votes_nf": nf,
        })
        assert row.media is not None  # rows without a name never get here
        corpus.media[item_id] = row.media
        corpus.ratings.extend(anonymous_votes(item_id, "category", emotion_votes))


# --------------------------------------------------------------------------- Kaggle layout

def _kaggle_rows(fer_path: Path, new_path: Path, problems: Problems) -> Iterator[_Row]:
    # streamed side by side: the Kaggle file is ~300 MB of pixel text
    fer_rows = read_csv_rows(fer_path, NAME, ("emotion", "pixels", "Usage"))
    new_rows = read_csv_rows(new_path, NAME, ("Usage", "Image name", *VOTE_COLUMNS))
    for fer_row, new_row in zip_longest(fer_rows, new_rows):
        if fer_row is None or new_row is None:
            raise ImportError_(f"{NAME}: {fer_path.name} and {new_path.name} have different "
                               "numbers of rows; FER+ rows must align one to one")
        row = _kaggle_row(fer_path, fer_row, new_path, new_row, problems)
        if row is not None:
            yield row


def _kaggle_row(fer_path: Path, fer_row, new_path: Path, new_row, problems: Problems
                ) -> _Row | None:
    (fer_line, fer, fer_fields), (new_line, new, new_fields) = fer_row, new_row
    # as many fields as the header names (row dicts hold the header's columns): a release
    # with an extra column of its own reads, a line with a stray or missing comma does not
    if field_count(new_fields, len(new)) != len(new):
        problems.bad(new_path, new_line, f"expected {len(new)} fields (as the header), "
                     f"got {field_count(new_fields, len(new))}")
        return None
    usage, name = new["Usage"], new["Image name"]
    votes = _votes(new, new_path, new_line, problems)
    if votes is None:
        return None
    if usage not in SPLITS:
        problems.bad(new_path, new_line, f"unknown Usage {usage!r}; expected {list(SPLITS)}")
        return None
    if field_count(fer_fields, len(fer)) != len(fer):
        problems.bad(fer_path, fer_line, f"expected {len(fer)} fields (as the header), "
                     f"got {field_count(fer_fields, len(fer))}")
        return None
    if fer["Usage"] != usage:
        problems.bad(fer_path, fer_line, f"Usage {fer['Usage']!r} differs from "
                     f"{new_path.name} line {new_line} ({usage!r}); the files are not aligned")
        return None
    if not name:  # a non-face: no pixels needed
        return _Row(new_path, new_line, usage, name, votes, None, {})
    pixels = parse_pixels(fer["pixels"])
    if pixels is None:
        problems.bad(fer_path, fer_line, f"pixels must be {SIDE * SIDE} integers in 0..255")
        return None
    fer_label = parse_int(fer["emotion"], 0, 6)
    return _Row(new_path, new_line, usage, name, votes, _png_writer(pixels),
                {"fer_label": FER_LABELS[fer_label] if fer_label in range(7) else None})


# --------------------------------------------------------------------------- Microsoft folders

def _find_folders(src: Path) -> dict[str, Path]:
    """Usage → the FER2013Train|Valid|Test folder holding label.csv, under ``src``, ``src/data``
    or one folder down; {} when there is none."""
    first = find_file(src, "FER2013Train/label.csv", "data/FER2013Train/label.csv",
                      "*/FER2013Train/label.csv", "*/data/FER2013Train/label.csv",
                      "FER2013*/label.csv", "data/FER2013*/label.csv", "*/FER2013*/label.csv")
    if first is None:
        return {}
    root = first.parent.parent
    return {usage: root / folder for usage, folder in FOLDERS.items()
            if (root / folder / "label.csv").is_file()}


def _folder_rows(folders: dict[str, Path], problems: Problems) -> Iterator[_Row]:
    """Rows of every label.csv, in FER2013's order (Training, PublicTest, PrivateTest)."""
    for usage in FOLDERS:
        folder = folders.get(usage)
        if folder is None:
            problems.notice(FOLDERS[usage], None, "folder with label.csv not found: no "
                            f"{SPLITS[usage]} split")
            continue
        rows = list(_label_file_rows(folder, usage, problems))
        named = [r for r in rows if r.name]
        if named and not any(isinstance(r.media, Path) and r.media.is_file() for r in named):
            raise ImportError_(f"{NAME}: {problems.rel(folder / 'label.csv')} lists "
                               f"{len(named)} images but none is in {problems.rel(folder)}; run "
                               "FER+'s generate_training_data.py first (it writes the PNGs "
                               "from fer2013.csv), or import fer2013.csv + fer2013new.csv")
        yield from rows


def _label_file_rows(folder: Path, usage: str, problems: Problems) -> Iterator[_Row]:
    path = folder / "label.csv"
    for line, row, _ in read_csv_rows(path, NAME, names=LABEL_FILE_COLUMNS, problems=problems):
        if BOX_RE.match(row["box"]) is None:
            problems.bad(path, line, f"face box {row['box']!r} is not '(x, y, w, h)'")
            continue
        votes = _votes(row, path, line, problems)
        if votes is None:
            continue
        name = row["Image name"]
        if name and (Path(name).name != name or not name.lower().endswith(".png")):
            problems.bad(path, line, f"image name {name!r} is not a PNG file name")
            continue
        yield _Row(path, line, usage, name, votes, folder / name, {})
