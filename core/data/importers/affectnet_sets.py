"""AffectNet as its newer distribution ships (what most copies in use are): one folder per set,
the faces already cropped, one small NumPy file per annotation::

    train_set/images/<n>.jpg
    train_set/annotations/<n>_exp.npy   expression 0..7 (8: the manual layout's None ... )
                          <n>_val.npy   valence in [-1, 1]
                          <n>_aro.npy   arousal in [-1, 1]
                          <n>_lnd.npy   68 landmarks (not read)
    val_set/images/..., val_set/annotations/...

(also under a parent folder such as ``AffectNet/``). Each ``.npy`` holds one value, as text
(``'3'``, ``'-0.176'``) or as a number. The files are read with ``allow_pickle=False`` and at
most :data:`MAX_NPY_BYTES` each: nothing is unpickled. The images are the face box of the
manual layout cut out and resized (224×224), so the whole image is the item's face box: the
loader frames it as it frames the manual layout's box (see :mod:`.affectnet`). Splits as
there: ``train_set`` → train, ``val_set`` → test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectlab.data.importers._common import (
    IMAGE_EXTS,
    Corpus,
    Problems,
    require_inside,
)

SETS = {"train_set": "train", "val_set": "test"}
MAX_NPY_BYTES = 4096  # one value (or 68 × 2 landmarks); a larger file is not an annotation
ANNOTATIONS = {"exp": "expression", "val": "valence", "aro": "arousal"}


def find_sets(src: Path) -> dict[str, Path]:
    """``{"train_set": folder, "val_set": folder}`` (those present) under ``src`` or one
    folder down; empty when ``src`` is not this layout."""
    for base in (src, *sorted(p for p in src.iterdir() if p.is_dir())):
        sets = {name: base / name for name in SETS
                if (base / name / "images").is_dir() and (base / name / "annotations").is_dir()}
        if sets:
            return sets
    return {}


def read_npy_value(path: Path) -> str | None:
    """The one value an annotation file holds, as text; None for a file that is missing, too
    large, not a NumPy file, or holds more than one value (or an object array: refused, never
    unpickled)."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_NPY_BYTES:
            return None
        value = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if value.size != 1 or value.dtype.kind not in "UuifS":
        return None
    item = value.reshape(()).item()
    return item.decode("ascii", "replace") if isinstance(item, bytes) else str(item)


def _annotations(folder: Path, stem: str, problems: Problems, image: Path
                 ) -> dict[str, str] | None:
    out = {}
    for suffix, what in ANNOTATIONS.items():
        path = folder / f"{stem}_{suffix}.npy"
        text = read_npy_value(path)
        if text is None:
            problems.bad(image, None, f"{what}: {problems.rel(path)} is missing or not a "
                         f"one-value NumPy file of at most {MAX_NPY_BYTES} bytes")
            return None
        out[what] = text
    return out


def _image_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:  # the header only
            return img.size
    except (OSError, UnidentifiedImageError, ValueError):
        return None  # the media check reports it


def set_rows(sets: dict[str, Path], problems: Problems):
    """Yield ``(split, image path, relative media path, annotations, (w, h) or None)`` for
    every image of the sets, in name order."""
    for name, folder in sets.items():
        images = [p for p in sorted((folder / "images").iterdir())
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTS]
        for image in images:
            require_inside(image, problems.src)
            notes = _annotations(folder / "annotations", image.stem, problems, image)
            if notes is not None:
                yield SETS[name], image, f"{name}/{image.name}", notes, _image_size(image)


def add_set_items(corpus: Corpus, sets: dict[str, Path], problems: Problems, add_row) -> None:
    """Every image of the sets through ``add_row(corpus, problems, where, fields)`` (the
    manual layout's row rules), with the whole image as its face box."""
    for split, image, rel, notes, size in set_rows(sets, problems):
        w, h = size if size is not None else (0, 0)
        add_row(corpus, problems, (image, None), {
            "split": split, "rel": rel, "source": image, "expression": notes["expression"],
            "valence": notes["valence"], "arousal": notes["arousal"],
            "box": ["0", "0", str(w), str(h)], "facial_landmarks": ""})
