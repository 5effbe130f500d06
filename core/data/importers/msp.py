"""The MSP corpora from UT Dallas, detected by their label files:

**MSP-Podcast** (Lotfian & Busso 2019): ``Labels/labels_consensus.csv`` (FileName, EmoClass,
EmoAct, EmoVal, EmoDom, SpkrID, Gender, Split_Set; older releases spell it ``concensus``) for the
items, and the per-annotator ``Labels/labels_detailed.csv`` for the ratings, in either published
shape: one ``EmoDetail`` column per row (``"WORKER00014; Angry; Frustrated,Annoyed; A:3.0; V:2.0;
D:4.0;"``) or separate columns (a worker column such as ``WorkerID``/``Workers``, then
``EmoClass_Major``, ``EmoAct``, ``EmoVal``, ``EmoDom``). Audio at ``Audios/<FileName>``.
Split_Set: Train → train, Development/Validation → val, Test1/Test2/Test3 → test.

**MSP-IMPROV** (Busso et al. 2017): ``Evaluation.txt``, a summary line per clip followed by one
line per annotator::

    UTD-IMPROV-S01A-F01-P-FM01.avi; N; A:2.600000; V:3.000000; D:2.800000 ; N:3.200000;
    WORKER00001; Neutral; Neutral,Calm; A:3.000000; V:3.000000; D:3.000000; N:3.000000;

Audio at ``session<k>/S01A/P/MSP-IMPROV-S01A-F01-P-FM01.wav`` (k = the speaker's session).
Split by session: 1–4 train, 5 val, 6 test. A rater's duplicated line for a clip counts once.

In both, every annotator's primary emotion is one ``category`` rating and each attribute one
``activation``/``valence``/``dominance`` (and MSP-IMPROV ``naturalness``) rating, on the corpus's
scale (Podcast 1..7, IMPROV 1..5); NaN attributes are missing ratings. Primary emotions outside
the label set ("Other…") are excluded and counted. The consensus class is kept as ``label``.
"""

from __future__ import annotations

import re
from pathlib import Path

from affectlab.data.importers._common import (
    Corpus,
    ImportError_,
    Problems,
    corpus_path,
    csv_header,
    drop_unrated,
    find_file,
    likert,
    nominal,
    open_text,
    parse_float,
    read_csv_rows,
)

NAME = "msp"
DESCRIPTION = ("MSP-Podcast (Labels/labels_detailed.csv) or MSP-IMPROV (Evaluation.txt), "
               "every annotator's class and attributes")

POD_LABELS = ["angry", "sad", "happy", "surprise", "fear", "disgust", "contempt", "neutral"]
POD_CODES = {"A": 0, "S": 1, "H": 2, "U": 3, "F": 4, "D": 5, "C": 6, "N": 7}
POD_WORDS = {"angry": 0, "anger": 0, "sad": 1, "sadness": 1, "happy": 2, "happiness": 2,
             "surprise": 3, "surprised": 3, "fear": 4, "disgust": 5, "contempt": 6, "neutral": 7}
POD_SPLITS = {"train": "train", "development": "val", "validation": "val", "test": "test",
              "test1": "test", "test2": "test", "test3": "test"}
WORKER_COLUMNS = ("WorkerID", "Worker", "Workers", "Annotator", "AnnotatorID")
EMODETAIL_RE = re.compile(r"^\s*([^;]+?)\s*;\s*([^;]*?)\s*;\s*(.*?)\s*;\s*A:\s*(\S*?)\s*;\s*"
                          r"V:\s*(\S*?)\s*;\s*D:\s*(\S*?)\s*;?\s*$")

IMP_LABELS = ["angry", "happy", "sad", "neutral"]
IMP_CODES = {"A": 0, "H": 1, "S": 2, "N": 3}
IMP_WORDS = {"angry": 0, "happy": 1, "sad": 2, "neutral": 3}
IMP_SPLIT = {1: "train", 2: "train", 3: "train", 4: "train", 5: "val", 6: "test"}
_NUM = r"\s*([^;\s]*)\s*"
IMP_SUMMARY_RE = re.compile(rf"^UTD-IMPROV-([A-Z0-9-]+)\.avi\s*;\s*([A-Z])\s*;\s*A:{_NUM};"
                            rf"\s*V:{_NUM};\s*D:{_NUM};\s*N:{_NUM};\s*$")
IMP_RATER_RE = re.compile(rf"^([A-Za-z0-9_-]+)\s*;\s*([^;]+?)\s*;(.*);\s*A:{_NUM};\s*V:{_NUM};"
                          rf"\s*D:{_NUM};\s*N:{_NUM};\s*$")
IMP_NAME_RE = re.compile(r"^S(\d\d)([AHSN])-([MF])(\d\d)-([A-Z])-([A-Z]{2}\d\d)$")


def parse(src: Path, problems: Problems) -> Corpus:
    detailed = find_file(src, "Labels/labels_detailed.csv", "labels/labels_detailed.csv",
                         "label/labels_detailed.csv", "labels_detailed.csv")
    if detailed is not None:
        return _parse_podcast(src, detailed, problems)
    evaluation = find_file(src, "Evaluation.txt", "*/Evaluation.txt")
    if evaluation is not None:
        return _parse_improv(src, evaluation, problems)
    raise ImportError_(f"{NAME}: found neither MSP-Podcast's Labels/labels_detailed.csv nor "
                       f"MSP-IMPROV's Evaluation.txt under {src}")


def _attribute(text: str, lo: float, hi: float) -> float | None | str:
    """A rating in lo..hi; ``None`` when missing (empty/NaN); ``"bad"`` otherwise."""
    if text.strip().lower() in ("", "nan", "na"):
        return None
    value = parse_float(text)
    if value is None or not lo <= value <= hi:
        return "bad"
    return value


# --------------------------------------------------------------------------- MSP-Podcast

def _parse_podcast(src: Path, detailed: Path, problems: Problems) -> Corpus:
    consensus = find_file(detailed.parent, "labels_consensus.csv", "labels_concensus.csv")
    if consensus is None:
        raise ImportError_(f"{NAME}: {problems.rel(detailed)} found but no labels_consensus.csv "
                           "next to it (needed for splits and speakers)")
    corpus = Corpus(domain="msp-podcast", modality="speech", label_names=list(POD_LABELS),
                    scales={"category": nominal(POD_LABELS), "activation": likert(1.0, 7.0),
                            "valence": likert(1.0, 7.0), "dominance": likert(1.0, 7.0)},
                    provenance={"files": [problems.rel(consensus), problems.rel(detailed)],
                                "split": "Split_Set: Train→train, Development/Validation→val, "
                                         "Test*→test"})
    for line, row, _ in read_csv_rows(consensus, NAME, ("FileName", "Split_Set"),
                                     problems=problems):
        name = row["FileName"]
        split = POD_SPLITS.get(row["Split_Set"].strip().lower())
        if not name or split is None:
            problems.bad(consensus, line, f"needs a FileName and a Split_Set in "
                         f"{sorted(set(POD_SPLITS))}, got {row['Split_Set']!r}")
            continue
        audio = corpus_path(src / "Audios", name, problems, consensus, line)
        if audio is None:  # absolute, or climbing out with '..'
            continue
        item_id = Path(name).stem
        if item_id in corpus.media:
            problems.bad(consensus, line, f"duplicate FileName {name!r}")
            continue
        code = row.get("EmoClass", "")
        corpus.items.append({
            "item_id": item_id, "media": f"media/Audios/{name}", "split": split,
            "speaker": row.get("SpkrID") or None, "gender": row.get("Gender") or None,
            "split_set": row["Split_Set"],
            "label": POD_LABELS[POD_CODES[code]] if code in POD_CODES else None,
        })
        corpus.media[item_id] = audio if audio.is_file() or not (src / "Audio").is_dir() \
            else src / "Audio" / audio.relative_to(src / "Audios")
    known = {it["item_id"] for it in corpus.items}

    header = csv_header(detailed, NAME)
    if "EmoDetail" in header:
        rows = _emodetail_rows(detailed, problems)
    else:
        worker = next((c for c in WORKER_COLUMNS if c in header), None)
        if worker is None:
            raise ImportError_(f"{NAME}: {detailed.name} has neither an EmoDetail column nor a "
                               f"worker column ({', '.join(WORKER_COLUMNS)}); header is {header}")
        rows = _column_rows(detailed, worker, problems)
    for line, name, rater, emotion, act, val, dom in rows:
        item_id = Path(name).stem
        if item_id not in known:
            problems.exclude("annotation for a file not in labels_consensus.csv")
            continue
        _add_rating(corpus, problems, detailed, line, item_id, rater, emotion,
                    {"activation": act, "valence": val, "dominance": dom}, POD_WORDS, 7.0)
    drop_unrated(corpus, problems, "file without any annotator rating")
    return corpus


def _emodetail_rows(path: Path, problems: Problems):
    for line, row, _ in read_csv_rows(path, NAME, ("FileName", "EmoDetail"),
                                      problems=problems):
        m = EMODETAIL_RE.match(row["EmoDetail"])
        if m is None or not row["FileName"]:
            problems.bad(path, line,
                         "EmoDetail is not 'WORKER; Primary; Secondary; A:a; V:v; D:d;'")
            continue
        rater, emotion, _secondary, act, val, dom = m.groups()
        yield line, row["FileName"], rater, emotion, act, val, dom


def _column_rows(path: Path, worker: str, problems: Problems):
    required = ("FileName", worker, "EmoClass_Major", "EmoAct", "EmoVal", "EmoDom")
    for line, row, _ in read_csv_rows(path, NAME, required, problems=problems):
        yield (line, row["FileName"], row[worker], row["EmoClass_Major"], row["EmoAct"],
               row["EmoVal"], row["EmoDom"])


def _add_rating(corpus: Corpus, problems: Problems, path: Path, line: int, item_id: str,
                rater: str, emotion: str, attributes: dict[str, str], words: dict[str, int],
                high: float) -> None:
    """One annotator's line: validate all of it first, then add its ratings."""
    if not rater:
        problems.bad(path, line, "missing annotator id")
        return
    values = {k: _attribute(v, 1.0, high) for k, v in attributes.items()}
    bad = [k for k, v in values.items() if v == "bad"]
    if bad:
        problems.bad(path, line, f"{', '.join(bad)} must be a number in 1..{high:g} or NaN")
        return
    word = emotion.strip().lower()
    if word.startswith("other"):
        problems.exclude("primary emotion 'Other' (not in the label set)")
    elif word in words:
        corpus.ratings.append({"item_id": item_id, "rater_id": rater, "scale": "category",
                               "value": float(words[word])})
    else:
        problems.bad(path, line, f"unknown primary emotion {emotion!r}")
        return
    for scale, value in values.items():
        if value is not None:
            corpus.ratings.append({"item_id": item_id, "rater_id": rater, "scale": scale,
                                   "value": value})


# --------------------------------------------------------------------------- MSP-IMPROV

def _parse_improv(src: Path, evaluation: Path, problems: Problems) -> Corpus:
    root = evaluation.parent
    corpus = Corpus(domain="msp-improv", modality="speech", label_names=list(IMP_LABELS),
                    scales={"category": nominal(IMP_LABELS), "activation": likert(1.0, 5.0),
                            "valence": likert(1.0, 5.0), "dominance": likert(1.0, 5.0),
                            "naturalness": likert(1.0, 5.0)},
                    provenance={"files": [problems.rel(evaluation)],
                                "split": "session 1-4 train, 5 val, 6 test"})
    item_id: str | None = None
    pairs: set[tuple[str, str]] = set()
    with open_text(evaluation, NAME) as fh:
        for line_no, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line:
                continue
            m = IMP_SUMMARY_RE.match(line)
            if m is not None:
                item_id = _improv_item(root, m, corpus, problems, evaluation, line_no)
                continue
            r = IMP_RATER_RE.match(line)
            if r is None:
                problems.bad(evaluation, line_no, "neither a 'UTD-IMPROV-….avi; C; A:…; V:…; "
                             "D:…; N:…;' summary nor an annotator line")
                continue
            if item_id is None:
                continue  # annotator lines of a rejected summary (already reported)
            rater, emotion, _secondary, act, val, dom, nat = r.groups()
            if (item_id, rater) in pairs:
                problems.exclude("duplicated annotator line for a clip")
                continue
            pairs.add((item_id, rater))
            _add_rating(corpus, problems, evaluation, line_no, item_id, rater, emotion,
                        {"activation": act, "valence": val, "dominance": dom,
                         "naturalness": nat}, IMP_WORDS, 5.0)
    drop_unrated(corpus, problems, "clip without any annotator rating")
    return corpus


def _improv_item(root: Path, m: re.Match, corpus: Corpus, problems: Problems, path: Path,
                 line_no: int) -> str | None:
    clip = m.group(1)
    parts = IMP_NAME_RE.match(clip)
    if parts is None:
        problems.bad(path, line_no, f"clip name {clip!r} is not S<nn><emo>-<M|F><nn>-<type>-<id>")
        return None
    sentence, acted, gender, session, rec, _ = parts.groups()
    sess = int(session)
    if sess not in IMP_SPLIT:
        problems.bad(path, line_no, f"session {session} outside 01..06")
        return None
    name = f"MSP-IMPROV-{clip}"
    if name in corpus.media:
        problems.bad(path, line_no, f"duplicate clip {name}")
        return None
    code = m.group(2)
    corpus.items.append({
        "item_id": name, "media": f"media/session{sess}/S{sentence}{acted}/{rec}/{name}.wav",
        "split": IMP_SPLIT[sess], "speaker": f"{gender}{session}", "gender": gender,
        "session": sess, "sentence": f"S{sentence}", "recording": rec,
        "intended": IMP_LABELS[IMP_CODES[acted]],
        "label": IMP_LABELS[IMP_CODES[code]] if code in IMP_CODES else None,
    })
    corpus.media[name] = root / f"session{sess}" / f"S{sentence}{acted}" / rec / f"{name}.wav"
    return name
