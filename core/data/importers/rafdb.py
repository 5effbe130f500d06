"""RAF-DB, basic (single-label) subset (Li, Deng & Du 2017).

Layout (``src`` is the RAF-DB root or its ``basic/`` folder)::

    EmoLabel/list_patition_label.txt     "train_00001.jpg 5"; labels 1..7 = Surprise, Fear,
                                         Disgust, Happiness, Sadness, Anger, Neutral
    Image/aligned/train_00001_aligned.jpg   (preferred) or Image/original/train_00001.jpg
    EmoLabel/distribution.txt            optional: "train_00001.jpg p1 … p7"

- Split: the file-name prefix: ``train_`` → train, ``test_`` → test (RAF-DB has no val split).
- Ratings: the dataset label is one ``category`` rating from rater ``dataset``. When a label
  distribution file is present — RAF publishes its crowd distributions as
  ``EmoLabel/distribution.txt`` (that is the RAF-ML name and format: image name then one
  probability per class, in label order; a 7-column file is read in the basic order above) — the
  item's ratings are instead one ``category`` row per class with non-zero probability from rater
  ``crowd``, carrying the probability in a ``weight`` column (RAF-DB's distributions are
  reliability-weighted, not raw vote counts, so no integer votes can be recovered). The dataset
  label then stays in the items ``label`` column.
"""

from __future__ import annotations

from pathlib import Path

from affectlab.data.importers._common import (
    Corpus,
    ImportError_,
    Problems,
    corpus_path,
    nominal,
    open_text,
    parse_float,
    parse_int,
    require_inside,
)

NAME = "rafdb"
DESCRIPTION = "RAF-DB basic: EmoLabel/list_patition_label.txt + aligned images (+ distribution.txt)"

LABELS = ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"]


def _root(src: Path) -> Path:
    for root in (src, src / "basic"):
        if (root / "EmoLabel" / "list_patition_label.txt").is_file():
            return root
    raise ImportError_(f"{NAME}: EmoLabel/list_patition_label.txt not found under {src} "
                       "(or under its basic/ folder)")


def _image(root: Path, name: str, problems: Problems, label_path: Path, line_no: int
           ) -> Path | None:
    """The aligned image of ``name`` (else the original); None, after reporting the row, when
    ``name`` would lead outside the corpus."""
    original = corpus_path(root / "Image" / "original", name, problems, label_path, line_no)
    if original is None:
        return None
    aligned = root / "Image" / "aligned" / f"{Path(name).stem}_aligned.jpg"
    if aligned.is_file():
        return aligned
    return original if original.is_file() else aligned  # the aligned path is reported as missing


def _read_distribution(path: Path, problems: Problems) -> dict[str, list[float]]:
    dist: dict[str, list[float]] = {}
    with open_text(path, NAME) as fh:
        for line_no, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            values = [parse_float(p) for p in parts[1:]]
            if len(values) != len(LABELS) or any(v is None or v < 0 for v in values):
                problems.bad(path, line_no, f"expected an image name and {len(LABELS)} "
                             "non-negative probabilities")
                continue
            total = sum(values)
            if total <= 0:
                problems.bad(path, line_no, "probabilities sum to zero")
                continue
            dist[parts[0]] = [v / total for v in values]
    return dist


def parse(src: Path, problems: Problems) -> Corpus:
    root = _root(src)
    label_path = require_inside(root / "EmoLabel" / "list_patition_label.txt", src)
    dist_path = root / "EmoLabel" / "distribution.txt"
    if dist_path.is_file():
        require_inside(dist_path, src)
    dist = _read_distribution(dist_path, problems) if dist_path.is_file() else {}
    corpus = Corpus(domain=NAME, modality="face", label_names=list(LABELS),
                    scales={"category": nominal(LABELS)},
                    provenance={"files": [problems.rel(label_path)]
                                + ([problems.rel(dist_path)] if dist else []),
                                "split": "file-name prefix: train_→train, test_→test",
                                "ratings": "crowd distribution (weighted rows)" if dist
                                else "dataset label (one rating per item)"})
    seen: set[str] = set()
    with open_text(label_path, NAME) as fh:
        for line_no, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            label = parse_int(parts[1], 1, len(LABELS)) if len(parts) == 2 else None
            if label is None:
                problems.bad(label_path, line_no, "expected '<image>.jpg <label 1..7>'")
                continue
            name = parts[0]
            prefix = name.split("_", 1)[0]
            if prefix not in ("train", "test"):
                problems.bad(label_path, line_no, f"image name {name!r} starts with neither "
                             "train_ nor test_")
                continue
            item_id = Path(name).stem
            if item_id in seen:
                problems.bad(label_path, line_no, f"duplicate image {name!r}")
                continue
            image = _image(root, name, problems, label_path, line_no)
            if image is None:
                continue
            seen.add(item_id)
            corpus.items.append({"item_id": item_id, "media": f"media/{image.name}",
                                 "split": prefix, "label": LABELS[label - 1]})
            corpus.media[item_id] = image
            if dist:
                probs = dist.get(name)
                if probs is None:
                    problems.bad(dist_path, None, f"no distribution for {name}", item_id=item_id)
                    continue
                corpus.ratings.extend(
                    {"item_id": item_id, "rater_id": "crowd", "scale": "category",
                     "value": float(k), "weight": p}
                    for k, p in enumerate(probs) if p > 0)
            else:
                corpus.ratings.append({"item_id": item_id, "rater_id": "dataset",
                                       "scale": "category", "value": float(label - 1)})
    return corpus
