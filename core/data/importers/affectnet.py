"""AffectNet, manually annotated part (Mollahosseini et al. 2017), in either of the two layouts
it ships in: the manual lists below, or the newer distribution's ``train_set/`` and
``val_set/`` folders of cropped faces with one ``.npy`` per annotation
(:mod:`.affectnet_sets`); the same rules apply to both.

Layout::

    Manually_Annotated_file_lists/training.csv, validation.csv
        subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,
        expression,valence,arousal
    Manually_Annotated_Images/<subDirectory_filePath>
        (also accepted: Manually_Annotated/Manually_Annotated_Images/, or the CSVs and the image
        folders directly under ``src``)

- ``expression`` 0..10 = Neutral, Happy, Sad, Surprise, Fear, Disgust, Anger, Contempt, None,
  Uncertain, No-Face. Documented rule: 8–10 are not expressions of the label set (and No-Face
  carries valence/arousal −2), so those rows are excluded and counted in the report.
- Ratings (rater ``dataset``; AffectNet does not name its annotators): the expression as one
  ``category`` rating, valence as ``valence`` and arousal as ``activation`` (the name the other
  corpora use for the same dimension), both on a likert scale declared low −1, high 1.
- A list file without its header line is read with the columns above, in that order.
- Split: training.csv → train; validation.csv → test (AffectNet's test set is not public and
  its validation set is the test set of the literature). The face box is kept in the items' face-box
  columns (``face_x`` … ``face_height``, the dataset contract's FACE_BOX), and the images are
  copied whole: the dataset loader crops each face in its box, no detector needed (an image
  whose box lies outside it is a bad row; a row with a zero-size box goes through detection).
"""

from __future__ import annotations

from pathlib import Path

from affectlab.data.importers._common import (
    MAX_IMAGE_SIDE,
    Corpus,
    ImportError_,
    Problems,
    csv_header,
    likert,
    nominal,
    parse_float,
    parse_int,
    read_csv_rows,
)
from affectlab.data.contract import FACE_BOX
from affectlab.data.importers.affectnet_sets import add_set_items, find_sets

NAME = "affectnet"
DESCRIPTION = ("AffectNet: Manually_Annotated_file_lists/{training,validation}.csv + images, "
               "or train_set/ val_set/ of images + annotations/*.npy (8 classes, "
               "valence/arousal)")

LABELS = ["neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt"]
EXCLUDED = {8: "None", 9: "Uncertain", 10: "No-Face"}
COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
           "facial_landmarks", "expression", "valence", "arousal")
LISTS = {"training.csv": "train", "validation.csv": "test"}


def _locate(src: Path) -> tuple[dict[str, Path], Path]:
    lists = {}
    for name in LISTS:
        for cand in (src / "Manually_Annotated_file_lists" / name, src / name):
            if cand.is_file():
                lists[name] = cand
                break
    for images in (src / "Manually_Annotated_Images",
                   src / "Manually_Annotated" / "Manually_Annotated_Images"):
        if images.is_dir():
            return lists, images
    return lists, src


def _corpus(files: list[str], split: str) -> Corpus:
    return Corpus(domain=NAME, modality="face", label_names=list(LABELS),
                  scales={"category": nominal(LABELS), "valence": likert(-1.0, 1.0),
                          "activation": likert(-1.0, 1.0)},
                  provenance={"files": files,
                              "rule": "expression 8-10 (None, Uncertain, No-Face) excluded; "
                                      "arousal stored as scale 'activation'",
                              "split": split})


def parse(src: Path, problems: Problems) -> Corpus:
    lists, images = _locate(src)
    if not lists:
        sets = find_sets(src)
        if not sets:
            raise ImportError_(
                f"{NAME}: neither training.csv nor validation.csv found under {src} (looked in "
                "Manually_Annotated_file_lists/ and the root), nor the train_set/ and val_set/ "
                "folders of images/ and annotations/ (*_exp.npy …) of the newer distribution")
        corpus = _corpus([problems.rel(p) for p in sets.values()],
                         "train_set→train, val_set→test")
        corpus.provenance["layout"] = "sets: one .npy per annotation, faces already cropped"
        add_set_items(corpus, sets, problems, _add_row)
        return corpus
    corpus = _corpus([problems.rel(p) for p in lists.values()],
                     "training.csv→train, validation.csv→test")
    for list_name, path in lists.items():
        # some copies of validation.csv come without the header line: same columns, same order
        names = None if COLUMNS[0] in csv_header(path, NAME) else COLUMNS
        for line, row, _ in read_csv_rows(path, NAME, COLUMNS, names=names, problems=problems):
            rel = row["subDirectory_filePath"].replace("\\", "/").lstrip("/")
            _add_row(corpus, problems, (path, line), {
                "split": LISTS[list_name], "rel": rel, "source": images / rel,
                "shown": row["subDirectory_filePath"], "expression": row["expression"],
                "valence": row["valence"], "arousal": row["arousal"],
                "box": [row[c] for c in FACE_BOX],  # the CSV names them as the contract
                "facial_landmarks": row["facial_landmarks"]})
    return corpus


def _add_row(corpus: Corpus, problems: Problems, where: tuple[Path, int | None],
             row: dict) -> None:
    """One image of either layout, by the rules of the module docstring (a bad or excluded
    row is counted in ``problems`` and left out)."""
    expression = parse_int(row["expression"])
    if expression is None or not 0 <= expression <= 10:
        problems.bad(*where, f"expression {row['expression']!r} is not an integer 0..10")
        return
    if expression in EXCLUDED:
        problems.exclude(f"expression {expression} ({EXCLUDED[expression]})")
        return
    valence, arousal = parse_float(row["valence"]), parse_float(row["arousal"])
    if not (valence is not None and arousal is not None
            and -1 <= valence <= 1 and -1 <= arousal <= 1):
        problems.bad(*where, f"valence/arousal ({row['valence']}, {row['arousal']}) must be "
                     "numbers in [-1, 1]")
        return
    box = [parse_int(v, 0, MAX_IMAGE_SIDE) for v in row["box"]]
    if any(b is None for b in box):
        problems.bad(*where, f"face box values must be integers in 0..{MAX_IMAGE_SIDE}")
        return
    rel = row["rel"]
    if not rel or ".." in Path(rel).parts:
        problems.bad(*where, f"bad image path {row.get('shown', rel)!r}")
        return
    item_id = str(Path(rel).with_suffix("").as_posix())
    if item_id in corpus.media:
        problems.bad(*where, f"duplicate image {rel!r}")
        return
    corpus.items.append({
        "item_id": item_id, "media": f"media/{rel}", "split": row["split"],
        "label": LABELS[expression], **dict(zip(FACE_BOX, box, strict=True)),
        "facial_landmarks": row["facial_landmarks"],
    })
    corpus.media[item_id] = row["source"]
    for scale, value in (("category", float(expression)), ("valence", valence),
                         ("activation", arousal)):
        corpus.ratings.append({"item_id": item_id, "rater_id": "dataset", "scale": scale,
                               "value": value})
