"""RAVDESS (Livingstone & Russo 2018), audio files found anywhere under ``src`` (the release puts
them in ``Audio_Speech_Actors_01-24/Actor_NN/`` and ``Audio_Song_Actors_01-24/Actor_NN/``).

File names are seven two-digit fields, ``modality-channel-emotion-intensity-statement-repetition-
actor`` (``03-01-06-01-02-01-12.wav``): modality 01 AV, 02 video, 03 audio; channel 01 speech,
02 song; emotion 01..08 = neutral, calm, happy, sad, angry, fearful, disgust, surprised;
intensity 01 normal, 02 strong (neutral has no strong); statement 01 "Kids are talking by the
door", 02 "Dogs are sitting by the door"; repetition 01/02; actor 01..24 (odd male, even female).

RAVDESS's published label is the *acted* emotion; the release carries no per-rater labels (the
perceptual validation ratings are distributed separately and are not read here). So each clip gets
one ``category`` rating and one ``intensity`` rating (ordinal: normal < strong) from rater
``dataset``, and its soft label is one-hot. Actor → ``speaker``. No official split: actors are
split about 80/10/10 by :func:`group_splits` (val and test never empty from 3 actors).
"""

from __future__ import annotations

import re
from pathlib import Path

from affectlab.data.importers._common import (
    SPLIT_RULE,
    Corpus,
    ImportError_,
    Problems,
    files_by_name,
    files_with_suffix,
    group_splits,
    nominal,
    ordinal,
)

NAME = "ravdess"
DESCRIPTION = "RAVDESS: 03-01-06-01-02-01-12.wav file-name convention; acted label as one rating"

LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
INTENSITY = ["normal", "strong"]
STATEMENTS = ["Kids are talking by the door", "Dogs are sitting by the door"]
NAME_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def parse_name(stem: str) -> dict[str, int] | str:
    """The fields of a RAVDESS file name, or the reason it is not one."""
    m = NAME_RE.match(stem)
    if m is None:
        return "not a RAVDESS file name (seven two-digit fields joined by '-')"
    modality, channel, emotion, intensity, statement, repetition, actor = map(int, m.groups())
    checks = [(modality, 1, 3, "modality"), (channel, 1, 2, "vocal channel"),
              (emotion, 1, 8, "emotion"), (intensity, 1, 2, "intensity"),
              (statement, 1, 2, "statement"), (repetition, 1, 2, "repetition"),
              (actor, 1, 24, "actor")]
    for value, lo, hi, what in checks:
        if not lo <= value <= hi:
            return f"{what} {value:02d} outside {lo:02d}..{hi:02d}"
    if emotion == 1 and intensity == 2:
        return "neutral has no strong intensity"
    return {"modality": modality, "channel": channel, "emotion": emotion, "intensity": intensity,
            "statement": statement, "repetition": repetition, "actor": actor}


def parse(src: Path, problems: Problems) -> Corpus:
    corpus = Corpus(domain=NAME, modality="speech", label_names=list(LABELS),
                    scales={"category": nominal(LABELS),
                            "intensity": ordinal(INTENSITY)},
                    provenance={"ratings": "acted label as one rating from rater 'dataset'",
                                "split": f"actors {SPLIT_RULE}"})
    wavs = files_with_suffix(src, ".wav")
    if not wavs and files_with_suffix(src, ".mp4"):
        raise ImportError_(f"{NAME}: {src} holds RAVDESS's video files (.mp4) and no .wav: "
                           "affectlab reads the speech; import the audio-only download "
                           "(Audio_Speech_Actors_01-24.zip, Audio_Song_Actors_01-24.zip)")
    found = files_by_name(wavs, parse_name, problems)
    split_of = group_splits([f"{f['actor']:02d}" for _, f in found.values()])
    for stem, (wav, f) in found.items():
        actor = f"{f['actor']:02d}"
        corpus.items.append({
            "item_id": stem, "media": f"media/{problems.rel(wav)}", "split": split_of[actor],
            "speaker": f"actor{actor}", "gender": "male" if f["actor"] % 2 else "female",
            "vocal_channel": "speech" if f["channel"] == 1 else "song",
            "statement": STATEMENTS[f["statement"] - 1], "repetition": f["repetition"],
            "label": LABELS[f["emotion"] - 1], "intensity": INTENSITY[f["intensity"] - 1],
        })
        corpus.media[stem] = wav
        corpus.ratings.append({"item_id": stem, "rater_id": "dataset", "scale": "category",
                               "value": float(f["emotion"] - 1)})
        corpus.ratings.append({"item_id": stem, "rater_id": "dataset", "scale": "intensity",
                               "value": float(f["intensity"] - 1)})
    return corpus
