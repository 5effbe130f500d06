"""A plain folder of images (→ face) or WAV files (→ speech), in one of two shapes.

**Class folders**: ``<class>/<file>`` or ``<split>/<class>/<file>`` with split one of train,
val (also valid, validation, dev) and test. Each file gets one ``category`` rating (its folder)
from rater ``dataset``. Classes are named by their folders, in sorted order.

**A CSV** at the top of ``src`` (``labels.csv`` when there are several) with a ``path`` column
(relative to the CSV, inside ``src``) and any of:

- ``label``: a class name → one ``category`` rating;
- ``rater`` or ``rater_id``: who gave the row's ratings (default ``dataset``); with it, the CSV may
  be a long table holding one row per rating, several rows per path;
- ``split``, ``speaker``, ``subject``: item columns;
- any other column: numeric ratings on a likert scale named after the column. Its range is read
  from the column name, ``valence[1:5]`` or ``valence[-1:1]``; without one it is inferred from
  the values — integers within 1..5, 1..7 or 1..9 → that range, otherwise [0, 1] or [−1, 1] when
  they fit — and recorded in the provenance. Empty cells are missing ratings.

A CSV with rating columns but no ``label`` declares the first rating scale's two-class soft label
(SPEC §1: low, high) as its label set.

Without split information the items are split 80/10/10 by :func:`group_splits` over speakers
(or subjects, or items).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from affectlab.data.importers._common import (
    AUDIO_EXTS,
    IMAGE_EXTS,
    SPLIT_RULE,
    Corpus,
    ImportError_,
    Problems,
    csv_header,
    drop_unrated,
    group_splits,
    likert,
    nominal,
    parse_float,
    read_csv_rows,
)
from affectlab.scales import Scale

NAME = "folder"
DESCRIPTION = ("images or WAVs in class folders (optionally under train/val/test), or a CSV of "
               "path + label and/or rating columns")

SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
               "validation": "val", "dev": "val", "test": "test"}
ITEM_COLUMNS = ("split", "speaker", "subject")
RATER_COLUMNS = ("rater", "rater_id")
RANGE_RE = re.compile(r"^(.*?)\s*\[\s*(-?\d+(?:\.\d+)?)\s*:\s*(-?\d+(?:\.\d+)?)\s*\]$")
INTEGER_RANGES = ((1, 5), (1, 7), (1, 9))


def parse(src: Path, problems: Problems) -> Corpus:
    csvs = sorted(p for p in src.glob("*.csv") if p.is_file())
    if not csvs:
        return _parse_tree(src, problems)
    if len(csvs) > 1:
        if not (src / "labels.csv").is_file():
            names = ", ".join(p.name for p in csvs)
            raise ImportError_(f"{NAME}: several CSV files in {src} ({names}); "
                               "name the one to import labels.csv")
        return _parse_csv(src, src / "labels.csv", problems)
    return _parse_csv(src, csvs[0], problems)


def _modality(paths: list[Path], where: Path) -> str:
    exts = {p.suffix.lower() for p in paths}
    if exts <= IMAGE_EXTS:
        return "face"
    if exts <= AUDIO_EXTS:
        return "speech"
    raise ImportError_(f"{NAME}: {where} mixes images and audio ({sorted(exts)}); a dataset holds "
                       "one modality")


def _item_id(rel: Path) -> str:
    return rel.with_suffix("").as_posix()


# --------------------------------------------------------------------------- class folders

def _parse_tree(src: Path, problems: Problems) -> Corpus:
    files = sorted(p for p in src.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() in IMAGE_EXTS | AUDIO_EXTS)
    if not files:
        raise ImportError_(f"{NAME}: no images or WAV files under {src}")
    modality = _modality(files, src)
    top = {p.relative_to(src).parts[0] for p in files if len(p.relative_to(src).parts) > 1}
    by_split = bool(top) and all(t.lower() in SPLIT_NAMES for t in top)
    entries = []
    for path in files:
        parts = path.relative_to(src).parts
        depth = 3 if by_split else 2
        if len(parts) < depth:
            problems.bad(path, None, "not inside a class folder" + (" under a split folder"
                                                                     if by_split else ""))
            continue
        split = SPLIT_NAMES[parts[0].lower()] if by_split else None
        entries.append((path, split, parts[1] if by_split else parts[0]))
    classes = sorted({cls for _, _, cls in entries})
    auto = group_splits([_item_id(p.relative_to(src)) for p, _, _ in entries])
    corpus = Corpus(domain=src.name, modality=modality, label_names=classes,
                    scales={"category": nominal(classes)},
                    provenance={"layout": "split/class/file" if by_split else "class/file",
                                "split": "split folders" if by_split
                                else f"items {SPLIT_RULE}"})
    for path, split, cls in entries:
        rel = path.relative_to(src)
        item_id = _item_id(rel)
        corpus.items.append({"item_id": item_id, "media": f"media/{rel.as_posix()}",
                             "split": split or auto[item_id], "label": cls})
        corpus.media[item_id] = path
        corpus.ratings.append({"item_id": item_id, "rater_id": "dataset", "scale": "category",
                               "value": float(classes.index(cls))})
    return corpus


# --------------------------------------------------------------------------- CSV

def _scale_columns(header: list[str]) -> dict[str, tuple[str, tuple[float, float] | None]]:
    """column → (scale name, declared range or None) for every rating column."""
    reserved = {"path", "label", *ITEM_COLUMNS, *RATER_COLUMNS}
    out = {}
    for col in header:
        if not col or col.lower() in reserved:
            continue
        m = RANGE_RE.match(col)
        if m:
            lo, hi = float(m.group(2)), float(m.group(3))
            if not lo < hi:
                raise ImportError_(f"{NAME}: column {col!r} declares a range with low >= high")
            out[col] = (m.group(1), (lo, hi))
        else:
            out[col] = (col, None)
    if "category" in {name for name, _ in out.values()}:
        raise ImportError_(f"{NAME}: a rating column may not be named 'category' (use 'label')")
    return out


def infer_range(values: list[float]) -> tuple[float, float] | None:
    """The likert range a list of ratings most plausibly comes from (see the module doc)."""
    if not values:
        return None
    lo, hi = min(values), max(values)
    if all(float(v).is_integer() for v in values):
        for a, b in INTEGER_RANGES:
            if a <= lo and hi <= b:
                return float(a), float(b)
    if 0 <= lo and hi <= 1:
        return 0.0, 1.0
    if -1 <= lo and hi <= 1:
        return -1.0, 1.0
    return None


_CsvRow = tuple[int, str, str, str | None, dict[str, float]]  # line, item, rater, label, scores
_ScaleColumns = dict[str, tuple[str, tuple[float, float] | None]]  # see _scale_columns


def _parse_csv(src: Path, csv_path: Path, problems: Problems) -> Corpus:
    header = csv_header(csv_path, NAME)
    scale_cols = _scale_columns(header)
    has_label = "label" in header
    if not has_label and not scale_cols:
        raise ImportError_(f"{NAME}: {csv_path.name} needs a 'label' column or rating columns "
                           "besides 'path'")
    items, media, raw = _read_csv_rows(src, csv_path, header, scale_cols, problems)
    if not items:
        raise ImportError_(f"{NAME}: {csv_path.name} lists no usable rows")
    corpus = _csv_corpus(src, csv_path, scale_cols, has_label, media, raw, problems)
    _add_csv_ratings(corpus, csv_path, scale_cols, raw, problems)
    _add_csv_items(corpus, src, items, media)
    drop_unrated(corpus, problems, "CSV path without any label or rating")
    return corpus


def _read_csv_rows(src: Path, csv_path: Path, header: list[str],
                   scale_cols: _ScaleColumns, problems: Problems
                   ) -> tuple[dict[str, dict[str, Any]], dict[str, Path], list[_CsvRow]]:
    """The CSV's usable rows: item attributes, media paths and (line, item, rater, label,
    scores) per row; bad rows are reported and left out."""
    rater_col = next((c for c in RATER_COLUMNS if c in header), None)
    items: dict[str, dict[str, Any]] = {}
    media: dict[str, Path] = {}
    raw: list[_CsvRow] = []
    src_r = src.resolve()
    for line, row, _ in read_csv_rows(csv_path, NAME, ("path",), problems=problems):
        target = (csv_path.parent / row["path"]).resolve() if row["path"] else None
        if target is None or (target != src_r and src_r not in target.parents):
            problems.bad(csv_path, line, f"path {row['path']!r} is empty or outside {src}")
            continue
        item_id = _item_id(target.relative_to(src_r))
        split = row.get("split", "").strip().lower()
        if split and split not in SPLIT_NAMES:
            problems.bad(csv_path, line,
                         f"split {row['split']!r} is not one of {sorted(SPLIT_NAMES)}")
            continue
        attrs = {"split": SPLIT_NAMES.get(split),
                 **{c: row.get(c) or None for c in ("speaker", "subject") if c in header}}
        bad = [col for col in scale_cols if row.get(col, "") and parse_float(row[col]) is None]
        if bad:
            problems.bad(csv_path, line, f"non-numeric rating in column(s) {bad}")
            continue
        scores = {col: float(row[col]) for col in scale_cols if row.get(col, "")}
        if item_id in items:
            if rater_col is None:
                problems.bad(csv_path, line, f"path {row['path']!r} repeated; a CSV with several "
                             "rows per item needs a rater column")
                continue
            if items[item_id] != attrs:
                problems.bad(csv_path, line, f"split/speaker/subject of {row['path']!r} differ "
                             "from its first row")
                continue
        else:
            items[item_id] = attrs
            media[item_id] = target
        rater = (row.get(rater_col) if rater_col else None) or "dataset"
        raw.append((line, item_id, rater, row.get("label") or None, scores))
    return items, media, raw


def _csv_corpus(src: Path, csv_path: Path, scale_cols: _ScaleColumns,
                has_label: bool, media: dict[str, Path], raw: list[_CsvRow],
                problems: Problems) -> Corpus:
    """The corpus record (modality, scales, label set) the CSV's rows describe."""
    modality = _modality(list(media.values()), csv_path)
    scales, ranges = _csv_scales(scale_cols, raw)
    labels = sorted({lab for _, _, _, lab, _ in raw if lab})
    if has_label:
        scales = {"category": nominal(labels), **scales}
    if not scales:
        raise ImportError_(f"{NAME}: {csv_path.name} holds no label and no rating values")
    label_scale = "category" if has_label else next(iter(scales))
    return Corpus(domain=src.name, modality=modality,
                  label_names=labels if has_label
                  else [f"{label_scale}_low", f"{label_scale}_high"],
                  scales=scales, label_scale=label_scale, ordinal=not has_label,
                  provenance={"files": [problems.rel(csv_path)], "scale_ranges": ranges})


def _add_csv_ratings(corpus: Corpus, csv_path: Path, scale_cols: _ScaleColumns,
                     raw: list[_CsvRow], problems: Problems) -> None:
    labels = corpus.label_names if "category" in corpus.scales else []
    for line, item_id, rater, label, scores in raw:
        out_of_range = [c for c, v in scores.items()
                        if not _within(corpus.scales[scale_cols[c][0]], v)]
        if out_of_range:
            problems.bad(csv_path, line, f"rating(s) in {out_of_range} outside the declared range")
            continue
        if label:
            corpus.ratings.append({"item_id": item_id, "rater_id": rater, "scale": "category",
                                   "value": float(labels.index(label))})
        for col, value in scores.items():
            corpus.ratings.append({"item_id": item_id, "rater_id": rater,
                                   "scale": scale_cols[col][0], "value": value})


def _add_csv_items(corpus: Corpus, src: Path, items: dict[str, dict[str, Any]],
                   media: dict[str, Path]) -> None:
    """Items with their media; rows without a split are split by speaker/subject/item."""
    src_r = src.resolve()
    groups = {iid: a.get("speaker") or a.get("subject") or iid for iid, a in items.items()}
    auto = group_splits(list(groups.values()))
    for item_id, attrs in items.items():
        rel = media[item_id].relative_to(src_r)
        corpus.items.append({"item_id": item_id, "media": f"media/{rel.as_posix()}",
                             **attrs, "split": attrs["split"] or auto[groups[item_id]]})
        corpus.media[item_id] = media[item_id]


def _within(scale: Scale, value: float) -> bool:
    lo, hi = scale.value_range()
    return lo <= value <= hi


def _csv_scales(scale_cols, raw) -> tuple[dict[str, Scale], dict[str, str]]:
    scales, ranges = {}, {}
    for col, (name, declared) in scale_cols.items():
        values = [scores[col] for *_, scores in raw if col in scores]
        if not values and declared is None:
            continue  # an empty column declares nothing
        rng = declared or infer_range(values)
        if rng is None:
            raise ImportError_(f"{NAME}: cannot infer the range of rating column {col!r} "
                               f"(values {min(values, default=0):g}..{max(values, default=0):g}); "
                               f"declare it in the header, e.g. '{col}[1:5]'")
        scales[name] = likert(*rng)
        ranges[name] = f"{rng[0]:g}..{rng[1]:g} ({'declared' if declared else 'inferred'})"
    return scales, ranges
