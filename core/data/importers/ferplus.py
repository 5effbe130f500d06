"""FER+ (Barsoum et al. 2016): the Kaggle ``fer2013.csv`` (emotion, pixels, Usage) plus
Microsoft's ``fer2013new.csv`` (Usage, Image name, 10 vote columns), row-aligned.

- Images: each 48×48 pixel string becomes ``media/<FER2013Train|Valid|Test>/<Image name>``
  (PNG, the layout FER+'s own ``generate_training_data.py`` writes).
- Ratings: every vote over the eight emotions is one ``category`` rating. The release gives
  vote counts per image, not who voted, so every vote is an anonymous rating (``rater_id``
  null, the contract's mark): Krippendorff's α uses them (it needs only the value counts per
  item); Dawid–Skene and other per-rater statistics refuse them rather than treat the k-th
  vote of every image as one person.
- SPEC §1: "unknown" and "not-a-face" (NF) votes are dropped before any distribution is formed;
  items whose votes are mostly NF (NF > half of all votes) are excluded, as are rows without an
  image name (FER+ leaves it empty for non-faces) and rows with no emotion vote left.
- Usage → split: Training → train, PublicTest → val, PrivateTest → test.
"""

from __future__ import annotations

from itertools import zip_longest
from pathlib import Path

import numpy as np

from affectlab.data.importers._common import (
    MAX_VOTES,
    Corpus,
    ImportError_,
    Problems,
    anonymous_votes,
    nominal,
    parse_int,
    read_csv_rows,
    require_file,
)

NAME = "ferplus"
DESCRIPTION = "FER+: fer2013.csv pixels + fer2013new.csv votes (anonymous; 8 emotions, 48×48 faces)"

LABELS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]
VOTE_COLUMNS = [*LABELS, "unknown", "NF"]
FER_LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]  # fer2013.csv
SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
FOLDERS = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
SIDE = 48


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


def parse(src: Path, problems: Problems) -> Corpus:
    fer_path = require_file(src, NAME, "fer2013.csv", "fer2013.csv", "*/fer2013.csv")
    new_path = require_file(src, NAME, "fer2013new.csv", "fer2013new.csv", "*/fer2013new.csv")
    # streamed side by side: the Kaggle file is ~300 MB of pixel text
    fer_rows = read_csv_rows(fer_path, NAME, ("emotion", "pixels", "Usage"))
    new_rows = read_csv_rows(new_path, NAME, ("Usage", "Image name", *VOTE_COLUMNS))

    corpus = Corpus(domain=NAME, modality="face", label_names=list(LABELS),
                    scales={"category": nominal(LABELS)},
                    provenance={"files": [problems.rel(fer_path), problems.rel(new_path)],
                                "rule": "unknown/NF votes dropped; NF > half of votes excluded",
                                "split": "Usage: Training→train, PublicTest→val, PrivateTest→test"})
    seen: set[str] = set()
    for fer_row, new_row in zip_longest(fer_rows, new_rows):
        if fer_row is None or new_row is None:
            raise ImportError_(f"{NAME}: {fer_path.name} and {new_path.name} have different "
                               "numbers of rows; FER+ rows must align one to one")
        (fer_line, fer, fer_fields), (new_line, new, new_fields) = fer_row, new_row
        if len(new_fields) != len(VOTE_COLUMNS) + 2:
            problems.bad(new_path, new_line, f"expected {len(VOTE_COLUMNS) + 2} fields, "
                         f"got {len(new_fields)}")
            continue
        usage, name = new["Usage"], new["Image name"]
        votes = [parse_int(new[c], 0, MAX_VOTES) for c in VOTE_COLUMNS]
        if any(v is None for v in votes):
            problems.bad(new_path, new_line, "vote counts must be non-negative integers "
                         f"(at most {MAX_VOTES})")
            continue
        if usage not in SPLITS:
            problems.bad(new_path, new_line, f"unknown Usage {usage!r}; expected {list(SPLITS)}")
            continue
        if len(fer_fields) != 3:
            problems.bad(fer_path, fer_line, f"expected 3 fields, got {len(fer_fields)}")
            continue
        if fer["Usage"] != usage:
            problems.bad(fer_path, fer_line, f"Usage {fer['Usage']!r} differs from "
                         f"{new_path.name} line {new_line} ({usage!r}); the files are not aligned")
            continue
        if not name:
            problems.exclude("FER+ row without image name (not a face)")
            continue
        emotion_votes, nf = votes[:8], votes[9]
        if 2 * nf > sum(votes):
            problems.exclude("votes mostly not-a-face")
            continue
        if sum(emotion_votes) == 0:
            problems.exclude("no emotion vote left after dropping unknown/NF")
            continue
        pixels = parse_pixels(fer["pixels"])
        if pixels is None:
            problems.bad(fer_path, fer_line, f"pixels must be {SIDE * SIDE} integers in 0..255")
            continue
        item_id = Path(name).stem
        if item_id in seen:
            problems.bad(new_path, new_line, f"duplicate image name {name!r}")
            continue
        seen.add(item_id)
        fer_label = parse_int(fer["emotion"], 0, 6)
        corpus.items.append({
            "item_id": item_id,
            "media": f"media/{FOLDERS[usage]}/{item_id}.png",
            "split": SPLITS[usage],
            "label": LABELS[int(np.argmax(emotion_votes))],
            "fer_label": FER_LABELS[fer_label] if fer_label in range(7) else None,
            "votes_unknown": votes[8],
            "votes_nf": nf,
        })
        corpus.media[item_id] = _png_writer(pixels)
        corpus.ratings.extend(anonymous_votes(item_id, "category", emotion_votes))
    return corpus
