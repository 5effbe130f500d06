"""EmoDB, the Berlin Database of Emotional Speech (Burkhardt et al. 2005): ``wav/*.wav`` as
published (the other folders of the release, ``lablaut/``, ``labsilb/``, ``silb/``, are not
read).

A file name is seven characters, ``03a01Fa.wav``:

- positions 1–2: the speaker, one of ten actors: 03 (male), 08 (female), 09 (female),
  10 (male), 11 (male), 12 (male), 13 (female), 14 (female), 15 (male), 16 (female);
- 3–5: the text, one of ten German sentences: a01, a02, a04, a05, a07, b01, b02, b03, b09, b10;
- 6: the emotion, the initial of its German name — mapped to the English class names of the
  other corpora (so :mod:`affectlab.labelmap` matches them):

  ======  ==================  ===========
  letter  German              class
  ======  ==================  ===========
  W       Ärger (Wut)         angry
  L       Langeweile          bored
  E       Ekel                disgusted
  A       Angst               fearful
  F       Freude              happy
  T       Trauer              sad
  N       neutral             neutral
  ======  ==================  ===========

- 7: the version of the take (a, b, c, …).

EmoDB's published label is the *acted* emotion (the release keeps only utterances that a
perception test recognised well, but gives no per-listener votes), so each utterance gets one
``category`` rating from rater ``dataset`` and a one-hot soft label, as for RAVDESS. Speaker →
``speaker``. No official split: speakers are split about 80/10/10 by :func:`group_splits`
(ten speakers: 8/1/1, speaker-independent).
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
)

NAME = "emodb"
DESCRIPTION = "EmoDB (Berlin): wav/03a01Fa.wav file names (speaker, text, emotion letter, version)"

EMOTIONS = {"W": "angry", "L": "bored", "E": "disgusted", "A": "fearful", "F": "happy",
            "T": "sad", "N": "neutral"}
LABELS = list(EMOTIONS.values())
SPEAKERS = {"03": "male", "08": "female", "09": "female", "10": "male", "11": "male",
            "12": "male", "13": "female", "14": "female", "15": "male", "16": "female"}
TEXTS = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10")
NAME_RE = re.compile(r"^(\d\d)([ab]\d\d)([A-Z])([a-z])$")


def parse_name(stem: str) -> dict[str, str] | str:
    """The fields of an EmoDB file name, or the reason it is not one."""
    m = NAME_RE.match(stem)
    if m is None:
        return ("not an EmoDB file name (speaker, text, emotion letter, version: "
                "e.g. 03a01Fa)")
    speaker, text, letter, version = m.groups()
    if speaker not in SPEAKERS:
        return f"speaker {speaker} is not one of EmoDB's ({', '.join(SPEAKERS)})"
    if text not in TEXTS:
        return f"text {text} is not one of EmoDB's ({', '.join(TEXTS)})"
    if letter not in EMOTIONS:
        return f"emotion letter {letter} is not one of {''.join(EMOTIONS)}"
    return {"speaker": speaker, "text": text, "emotion": EMOTIONS[letter], "version": version}


def parse(src: Path, problems: Problems) -> Corpus:
    wavs = files_with_suffix(src, ".wav")
    if not wavs:
        raise ImportError_(f"{NAME}: no .wav files under {src} (EmoDB's are in wav/)")
    corpus = Corpus(domain=NAME, modality="speech", label_names=list(LABELS),
                    scales={"category": nominal(LABELS)},
                    provenance={"ratings": "acted label as one rating from rater 'dataset'",
                                "labels": "W→angry, L→bored, E→disgusted, A→fearful, F→happy, "
                                          "T→sad, N→neutral",
                                "split": f"speakers {SPLIT_RULE}"})
    found = files_by_name(wavs, parse_name, problems)
    split_of = group_splits([f["speaker"] for _, f in found.values()])
    for stem, (wav, f) in found.items():
        corpus.items.append({
            "item_id": stem, "media": f"media/{problems.rel(wav)}",
            "split": split_of[f["speaker"]], "speaker": f"speaker{f['speaker']}",
            "gender": SPEAKERS[f["speaker"]], "text": f["text"], "version": f["version"],
            "label": f["emotion"],
        })
        corpus.media[stem] = wav
        corpus.ratings.append({"item_id": stem, "rater_id": "dataset", "scale": "category",
                               "value": float(LABELS.index(f["emotion"]))})
    return corpus
