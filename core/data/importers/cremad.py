"""CREMA-D (Cao et al. 2014), speech part: ``AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav``
(e.g. ``1001_DFA_ANG_XX.wav``) with the crowd's per-rater responses.

Ratings come from ``finishedResponses.csv`` (R ``write.csv`` output: an unnamed row-name column,
then localid, pos, ans, ttr, queryType, numTries, clipNum, questNum, subType, clipName,
sessionNums, respEmo, respLevel, dispEmo, dispVal, dispLevel). Only voice-only responses
(``queryType`` 1) rate the audio, so only those are imported: each is one ``category`` rating
(``respEmo`` A/D/F/H/N/S) from rater ``localid``, plus its emotion level ``respLevel`` as a
``level`` rating on a 0..100 likert scale when it is a number. A rater's repeated response to the
same clip is counted once (the first).

When ``finishedResponses.csv`` is absent, ``processedResults/tabulatedVotes.csv`` is used: its
row name is 100000·queryType + clipNum, so rows 1xxxxx are the voice-only vote counts; each vote
becomes one anonymous rating (``rater_id`` null, as for FER+: the file gives counts, not
raters), with no levels.

Items are the WAV files that received at least one voice-only response. The acted emotion and
level from the file name are kept as ``label`` and ``intended_level``; ``speaker`` is the actor.
CREMA-D has no official split: actors are split about 80/10/10 by
:func:`group_splits` (val and test never empty from 3 actors).
"""

from __future__ import annotations

import re
from pathlib import Path

from affectlab.data.importers._common import (
    MAX_VOTES,
    SPLIT_RULE,
    Corpus,
    ImportError_,
    Problems,
    anonymous_votes,
    files_with_suffix,
    find_file,
    group_splits,
    likert,
    nominal,
    parse_float,
    parse_int,
    read_csv_rows,
)

NAME = "cremad"
DESCRIPTION = "CREMA-D: AudioWAV/*.wav + finishedResponses.csv voice-only ratings per rater"

CODES = ["A", "D", "F", "H", "N", "S"]
LABELS = ["anger", "disgust", "fear", "happy", "neutral", "sad"]
FILE_CODES = {"ANG": 0, "DIS": 1, "FEA": 2, "HAP": 3, "NEU": 4, "SAD": 5}
FILE_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
RESPONSE_COLUMNS = ("localid", "queryType", "clipName", "respEmo", "respLevel")


def _read_responses(path: Path, clips: set[str], problems: Problems, ratings: list[dict]) -> None:
    seen: set[tuple[str, str]] = set()
    for line, row, _ in read_csv_rows(path, NAME, RESPONSE_COLUMNS, problems=problems):
        rater, clip, emo = row.get("localid", ""), row.get("clipName", ""), row.get("respEmo", "")
        query = parse_int(row.get("queryType", ""))
        if not rater or not clip or query not in (1, 2, 3):
            problems.bad(path, line, "needs localid, clipName and queryType 1..3")
            continue
        if query != 1:
            problems.exclude("face or audio-visual response (not a rating of the audio)")
            continue
        if emo not in CODES:
            problems.bad(path, line, f"respEmo {emo!r} is not one of {CODES}")
            continue
        if clip not in clips:
            problems.exclude("voice response for a clip without a WAV")
            continue
        if (rater, clip) in seen:
            problems.exclude("repeated response of a rater to a clip")
            continue
        seen.add((rater, clip))
        ratings.append({"item_id": clip, "rater_id": rater, "scale": "category",
                        "value": float(CODES.index(emo))})
        level = parse_float(row.get("respLevel", ""))
        if level is not None and 0 <= level <= 100:
            ratings.append({"item_id": clip, "rater_id": rater, "scale": "level", "value": level})


def _read_tabulated(path: Path, clips: set[str], problems: Problems, ratings: list[dict]) -> None:
    for line, row, fields in read_csv_rows(path, NAME, (*CODES, "fileName"),
                                           problems=problems):
        row_name = parse_int(fields[0].strip().strip('"')) if fields else None
        if row_name is None:
            problems.bad(path, line, "first field must be the numeric row name")
            continue
        if row_name // 100000 != 1:
            problems.exclude("face or audio-visual vote row")
            continue
        counts = [parse_int(row.get(c, ""), 0, MAX_VOTES) for c in CODES]
        if any(c is None for c in counts):
            problems.bad(path, line, "vote counts must be non-negative integers "
                         f"(at most {MAX_VOTES})")
            continue
        clip = row["fileName"]
        if clip not in clips:
            problems.exclude("voice votes for a clip without a WAV")
            continue
        ratings.extend(anonymous_votes(clip, "category", counts))


def parse(src: Path, problems: Problems) -> Corpus:
    audio = src / "AudioWAV"
    if not audio.is_dir():
        raise ImportError_(f"{NAME}: AudioWAV/ not found under {src}")
    responses = find_file(src, "finishedResponses.csv")
    tabulated = find_file(src, "processedResults/tabulatedVotes.csv", "tabulatedVotes.csv")
    if responses is None and tabulated is None:
        raise ImportError_(f"{NAME}: neither finishedResponses.csv nor "
                           f"processedResults/tabulatedVotes.csv found under {src}")

    clips: dict[str, tuple[Path, re.Match]] = {}
    for wav in files_with_suffix(audio, ".wav", recursive=False):
        m = FILE_RE.match(wav.stem)
        if m is None or m.group(3) not in FILE_CODES:
            problems.bad(wav, None, "file name is not <actor>_<sentence>_<ANG|DIS|FEA|HAP|NEU|SAD>"
                         "_<level>.wav")
            continue
        clips[wav.stem] = (wav, m)

    ratings: list[dict] = []
    if responses is not None:
        _read_responses(responses, set(clips), problems, ratings)
    else:
        _read_tabulated(tabulated, set(clips), problems, ratings)
    rated = {r["item_id"] for r in ratings}
    split_of = group_splits([m.group(1) for _, m in clips.values()])

    corpus = Corpus(domain=NAME, modality="speech", label_names=list(LABELS),
                    scales={"category": nominal(LABELS), "level": likert(0.0, 100.0)},
                    ratings=ratings,
                    provenance={"files": [problems.rel(responses or tabulated)],
                                "ratings": "voice-only responses (queryType 1), rater = localid",
                                "split": f"actors {SPLIT_RULE}"})
    for clip, (wav, m) in clips.items():
        if clip not in rated:
            problems.exclude("clip without voice-only responses")
            continue
        actor, sentence, emo, level = m.groups()
        corpus.items.append({"item_id": clip, "media": f"media/AudioWAV/{wav.name}",
                             "split": split_of[actor], "speaker": actor, "sentence": sentence,
                             "label": LABELS[FILE_CODES[emo]], "intended_level": level})
        corpus.media[clip] = wav
    return corpus
