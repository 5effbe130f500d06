"""IEMOCAP (Busso et al. 2008): ``Session*/dialog/EmoEvaluation/*.txt`` with the audio of each
turn at ``Session*/sentences/wav/<dialog>/<turn>.wav``.

Each turn in an EmoEvaluation file is a summary line followed by every evaluator's lines::

    [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]
    C-E2:<TAB>Neutral;<TAB>()
    C-E3:<TAB>Frustration; Anger;<TAB>(comment)
    C-F1:<TAB>Neutral;<TAB>(curious)
    A-E3:<TAB>val 3; act 2; dom  2;<TAB>()

- Every categorical line (``C-<rater>``) becomes ``category`` ratings from that rater; a rater who
  ticked k categories gives k rows with ``weight`` 1/k (readers that ignore ``weight`` count every
  tick as a vote, the usual IEMOCAP convention).
- Every dimensional line (``A-<rater>``) becomes ``valence``, ``activation`` and ``dominance``
  ratings on 1..5 likert scales.
- Rater ids: evaluators keep their name (``E2``); self-evaluations by the session's actors (``F1``,
  ``M1``) are prefixed with the session (``Ses01F1``) since each session has different actors.
- The summary line's code and mean V/A/D stay in the items (``label``, ``summary_valence`` …) as
  the corpus's consensus, never as the only copy. ``speaker`` is session + the turn's gender
  letter (``Ses01F``). Split by session: 1–3 train, 4 val, 5 test.
"""

from __future__ import annotations

import re
from pathlib import Path

from affectlab.data.importers._common import (
    Corpus,
    ImportError_,
    Problems,
    drop_unrated,
    likert,
    nominal,
    open_text,
    parse_float,
    require_inside,
    unsafe_relative,
)

NAME = "iemocap"
DESCRIPTION = "IEMOCAP: Session*/dialog/EmoEvaluation/*.txt, every evaluator's category and V/A/D"

CODES = ["neu", "fru", "ang", "sad", "hap", "exc", "sur", "fea", "dis", "oth"]
LABELS = ["neutral", "frustration", "anger", "sadness", "happiness", "excited", "surprise",
          "fear", "disgust", "other"]
WORDS = {"neutral": 0, "neutral state": 0, "frustration": 1, "anger": 2, "sadness": 3,
         "happiness": 4, "excited": 5, "surprise": 6, "fear": 7, "disgust": 8, "other": 9}
SESSION_SPLIT = {1: "train", 2: "train", 3: "train", 4: "val", 5: "test"}

SUMMARY_RE = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(Ses(\d\d)\w*?_\S+)\s+(\w+)\s+"
                        r"\[\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*\]\s*$")
RATER_RE = re.compile(r"^([CA])-([A-Za-z]+\d*):\s*(.*)$")
DIM_RE = re.compile(r"val\s*(\d+(?:\.\d+)?)\s*;\s*act\s*(\d+(?:\.\d+)?)\s*;\s*"
                    r"dom\s*(\d+(?:\.\d+)?)\s*;?")


def parse_categories(text: str) -> list[int] | None:
    """Class indices of a categorical line's selections (``"Frustration; Anger;"``), or None."""
    selections = [s.strip() for s in text.split("\t")[0].split(";") if s.strip()]
    out: list[int] = []
    for sel in selections:
        word = sel.lower()
        if word.startswith("other"):  # "Other" or "Other:amused"
            word = "other"
        if word not in WORDS:
            return None
        if WORDS[word] not in out:
            out.append(WORDS[word])
    return out or None


def parse_dimensions(text: str) -> tuple[float, float, float] | None:
    """(valence, activation, dominance) of ``"val 3; act 2; dom  2;"``, each in 1..5, or None."""
    m = DIM_RE.search(text)
    if m is None:
        return None
    values = tuple(float(v) for v in m.groups())
    return values if all(1 <= v <= 5 for v in values) else None  # type: ignore[return-value]


def _summary_numbers(m: re.Match) -> dict[str, float] | None:
    """A summary line's start and end (finite seconds) and mean V/A/D (1..5), or None."""
    values = [parse_float(m.group(i)) for i in (1, 2, 6, 7, 8)]
    if any(v is None for v in values) or not all(1 <= v <= 5 for v in values[2:]):
        return None
    keys = ("start", "end", "summary_valence", "summary_activation", "summary_dominance")
    return dict(zip(keys, values, strict=True))


def _rater_id(session: str, rater: str) -> str:
    return rater if rater.startswith("E") else f"Ses{session}{rater}"


def parse(src: Path, problems: Problems) -> Corpus:
    files = sorted(src.glob("Session*/dialog/EmoEvaluation/*.txt"))
    if not files:
        raise ImportError_(f"{NAME}: no Session*/dialog/EmoEvaluation/*.txt under {src}")
    corpus = Corpus(domain=NAME, modality="speech", label_names=list(LABELS),
                    scales={"category": nominal(LABELS), "valence": likert(1.0, 5.0),
                            "activation": likert(1.0, 5.0), "dominance": likert(1.0, 5.0)},
                    provenance={"ratings": "every evaluator's C- and A- lines",
                                "split": "session 1-3 train, 4 val, 5 test"})
    seen: set[str] = set()
    for path in files:
        _parse_file(require_inside(path, src), src, corpus, problems, seen)
    drop_unrated(corpus, problems, "turn without any evaluator rating")
    return corpus


def _parse_file(path: Path, src: Path, corpus: Corpus, problems: Problems, seen: set[str]) -> None:
    dialog = path.stem
    turn: str | None = None
    session = ""
    with open_text(path, NAME) as fh:
        for line_no, raw in enumerate(fh, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.startswith("%"):
                continue
            if line.startswith("["):
                turn = None
                m = SUMMARY_RE.match(line)
                if m is None:
                    problems.bad(path, line_no, "summary line is not "
                                 "'[start - end]<TAB>turn<TAB>emo<TAB>[v, a, d]'")
                    continue
                name, session, code = m.group(3), m.group(4), m.group(5)
                reason = unsafe_relative(name)
                if reason is not None or "/" in name or "\\" in name:
                    problems.bad(path, line_no, reason or f"turn name {name!r} holds a path "
                                 "separator")
                    continue
                sess, numbers = int(session), _summary_numbers(m)
                if sess not in SESSION_SPLIT:
                    problems.bad(path, line_no, f"session {session} outside 01..05")
                    continue
                if numbers is None:
                    problems.bad(path, line_no, "summary times must be finite numbers and its "
                                 "[v, a, d] numbers in 1..5")
                    continue
                if name in seen:
                    problems.bad(path, line_no, f"duplicate turn {name}")
                    continue
                seen.add(name)
                turn = name
                letter = name.rsplit("_", 1)[-1][:1]
                wav = src / f"Session{sess}" / "sentences" / "wav" / dialog / f"{name}.wav"
                corpus.items.append({
                    "item_id": name, "media": f"media/Session{sess}/{dialog}/{name}.wav",
                    "split": SESSION_SPLIT[sess], "speaker": f"Ses{session}{letter}",
                    "session": sess, "dialog": dialog,
                    "label": LABELS[CODES.index(code)] if code in CODES else None, **numbers,
                })
                corpus.media[name] = wav
                continue
            m = RATER_RE.match(line)
            if m is None:
                problems.bad(path, line_no, "expected a summary line, a C-<rater>: line or an "
                             "A-<rater>: line")
                continue
            if turn is None:
                continue  # lines of a turn whose summary line was rejected (already reported)
            kind, rater, rest = m.groups()
            rater_id = _rater_id(session, rater)
            if kind == "C":
                classes = parse_categories(rest)
                if classes is None:
                    problems.bad(path, line_no, f"unknown category in {rest.split(chr(9))[0]!r}; "
                                 f"expected {sorted(set(WORDS))}")
                    continue
                corpus.ratings.extend(
                    {"item_id": turn, "rater_id": rater_id, "scale": "category",
                     "value": float(c), "weight": 1.0 / len(classes)} for c in classes)
            else:
                dims = parse_dimensions(rest)
                if dims is None:
                    problems.bad(path, line_no, "expected 'val v; act a; dom d;' with values "
                                 "in 1..5")
                    continue
                for scale, value in zip(("valence", "activation", "dominance"), dims, strict=True):
                    corpus.ratings.append({"item_id": turn, "rater_id": rater_id,
                                           "scale": scale, "value": value})
