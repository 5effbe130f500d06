"""One table of emotion class names across corpora, and matching two label sets by it.

Corpora name the same emotion differently: FER2013 says ``angry``, FER+ ``anger``, RAVDESS
``fearful``, FER2013 ``fear``. :data:`SYNONYMS` gives each emotion one canonical English name
(the generated corpus's adjectives) and the names corpora use for it:

============  ==================================================================
canonical     synonyms (case and surrounding spaces ignored)
============  ==================================================================
neutral       neutral
calm          calm                                   (RAVDESS)
happy         happy, happiness, joy                  (FER2013, FER+, RAVDESS, EmoDB)
sad           sad, sadness                           (FER2013, FER+, RAVDESS, EmoDB)
angry         angry, anger                           (FER2013, FER+, RAVDESS, EmoDB, CREMA-D)
fearful       fearful, fear                          (FER2013, FER+, RAVDESS, EmoDB)
disgusted     disgusted, disgust                     (FER2013, FER+, RAVDESS, EmoDB)
surprised     surprised, surprise                    (FER2013, FER+, RAVDESS)
contempt      contempt, contemptuous                 (FER+, AffectNet, MSP-Podcast)
bored         bored, boredom                         (EmoDB)
frustrated    frustrated, frustration                (IEMOCAP)
excited       excited, excitement                    (IEMOCAP)
============  ==================================================================

A name outside the table is its own canonical name (``other`` matches ``other``). The table is
deliberately literal: ``calm`` is not ``neutral`` and ``excited`` is not ``happy``, though
studies often merge them; a user says so with a class map (``calm=neutral``, ``excited=happy``:
:func:`parse_class_map`), which takes precedence over the table. The value of an entry is read
through the table, so ``excited=happiness`` means ``excited=happy``.

:func:`match_classes` pairs a *source* label set (a trained model's outputs) with a *target*
one (a dataset's classes) by canonical name; :func:`restrict_to_shared` cuts predictions and
soft labels down to the shared classes (cross-corpus evaluation).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectlab.errors import UserDataError

__all__ = ["SYNONYMS", "ClassMatch", "SharedView", "canonical", "match_classes",
           "parse_class_map", "restrict_to_shared"]

SYNONYMS: dict[str, tuple[str, ...]] = {
    "neutral": ("neutral",),
    "calm": ("calm",),
    "happy": ("happy", "happiness", "joy"),
    "sad": ("sad", "sadness"),
    "angry": ("angry", "anger"),
    "fearful": ("fearful", "fear"),
    "disgusted": ("disgusted", "disgust"),
    "surprised": ("surprised", "surprise"),
    "contempt": ("contempt", "contemptuous"),
    "bored": ("bored", "boredom"),
    "frustrated": ("frustrated", "frustration"),
    "excited": ("excited", "excitement"),
}
_CANONICAL = {syn: name for name, syns in SYNONYMS.items() for syn in syns}
MAX_CLASS_MAP_BYTES = 1 << 16


def _key(name: str) -> str:
    return " ".join(str(name).split()).lower()


def canonical(name: str, class_map: Mapping[str, str] | None = None) -> str:
    """The canonical name of class ``name``: the class map's entry (read through the table),
    else the table's, else ``name`` itself (lower-cased, spaces collapsed)."""
    key = _key(name)
    if class_map:
        overrides = {_key(k): _key(v) for k, v in class_map.items()}
        key = overrides.get(key, key)
    return _CANONICAL.get(key, key)


@dataclass(frozen=True)
class ClassMatch:
    """How a source label set (a model's outputs) meets a target one (a dataset's classes).

    ``shared``: the canonical names found in both, in target order; ``source_index[j]`` and
    ``target_index[j]``: the indices of the source and target classes that are ``shared[j]``
    (more than one when a class map merges classes, e.g. ``calm=neutral``).
    """

    source: tuple[str, ...]
    target: tuple[str, ...]
    shared: tuple[str, ...]
    source_index: tuple[tuple[int, ...], ...]
    target_index: tuple[tuple[int, ...], ...]

    @property
    def target_only(self) -> list[str]:
        """Target classes no source class maps to."""
        kept = {i for idx in self.target_index for i in idx}
        return [c for i, c in enumerate(self.target) if i not in kept]

    @property
    def source_only(self) -> list[str]:
        """Source classes no target class maps to."""
        kept = {i for idx in self.source_index for i in idx}
        return [c for i, c in enumerate(self.source) if i not in kept]

    def row_sources(self) -> dict[int, int]:
        """target index → the one source index it starts from (for copying a head's rows):
        the source class of the same name when there is one, else the first of its group."""
        out = {}
        for s_idx, t_idx in zip(self.source_index, self.target_index, strict=True):
            for t in t_idx:
                same = [s for s in s_idx if _key(self.source[s]) == _key(self.target[t])]
                out[t] = (same or list(s_idx))[0]
        return out

    def pairs(self) -> list[tuple[str, str]]:
        """(target class, source class) for every target class that has a source."""
        return [(self.target[t], self.source[s]) for t, s in sorted(self.row_sources().items())]


def match_classes(source: Sequence[str], target: Sequence[str],
                  class_map: Mapping[str, str] | None = None) -> ClassMatch:
    """Pair ``source`` and ``target`` class names by their canonical names (see the module)."""
    src = [canonical(c, class_map) for c in source]
    tgt = [canonical(c, class_map) for c in target]
    shared = [c for c in dict.fromkeys(tgt) if c in set(src)]
    return ClassMatch(
        source=tuple(source), target=tuple(target), shared=tuple(shared),
        source_index=tuple(tuple(i for i, c in enumerate(src) if c == name) for name in shared),
        target_index=tuple(tuple(i for i, c in enumerate(tgt) if c == name) for name in shared))


@dataclass(frozen=True)
class SharedView:
    """Predictions and truth cut down to the shared classes of a :class:`ClassMatch`.

    ``keep`` (n,) bool: the items kept (their label is a shared class and their soft label has
    mass there); the arrays hold those items only, over the S shared classes: ``probs`` and
    ``soft`` summed over each shared class's members and renormalised, ``labels`` in 0..S−1.
    """

    probs: np.ndarray
    soft: np.ndarray
    labels: np.ndarray
    keep: np.ndarray


def _merge_columns(values: np.ndarray, groups: tuple[tuple[int, ...], ...]) -> np.ndarray:
    return np.stack([values[:, list(g)].sum(axis=1) for g in groups], axis=1)


def restrict_to_shared(match: ClassMatch, probs: np.ndarray, soft: np.ndarray,
                       labels: np.ndarray) -> SharedView:
    """Cut a prediction pass down to ``match.shared``.

    probs: (n, len(source)) model outputs; soft: (n, len(target)) soft labels; labels: (n,)
    target class indices. An item is kept when its label is a shared class; its prediction is
    then the model's distribution over the shared classes only (renormalised: the model cannot
    be right about a class the dataset does not have), its truth the soft label's share of them.
    """
    probs, soft = np.asarray(probs, dtype=np.float64), np.asarray(soft, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.shape[1:] != (len(match.source),) or soft.shape[1:] != (len(match.target),):
        raise ValueError(f"probs must be (n, {len(match.source)}) and soft (n, "
                         f"{len(match.target)}), got {probs.shape} and {soft.shape}")
    if not match.shared:
        raise ValueError("the label sets share no class")
    to_shared = np.full(len(match.target), -1, dtype=np.int64)
    for j, idx in enumerate(match.target_index):
        to_shared[list(idx)] = j
    p = _merge_columns(probs, match.source_index)
    y = _merge_columns(soft, match.target_index)
    keep = (to_shared[labels] >= 0) & (y.sum(axis=1) > 0)
    p, y = p[keep], y[keep]
    p = p / np.clip(p.sum(axis=1, keepdims=True), 1e-12, None)
    y = y / y.sum(axis=1, keepdims=True)
    return SharedView(probs=p, soft=y, labels=to_shared[labels[keep]], keep=keep)


# --------------------------------------------------------------------------- user class maps

def _pairs(entries: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in entries:
        old, sep, new = str(entry).partition("=")
        if not sep or not old.strip() or not new.strip():
            raise UserDataError(f"--class-map expects old=new (e.g. calm=neutral) or a YAML/JSON "
                                f"file of such pairs, got {entry!r}")
        out[old.strip()] = new.strip()
    return out


def _read_map_file(path: Path) -> dict[str, str]:
    import yaml

    try:
        if path.stat().st_size > MAX_CLASS_MAP_BYTES:
            raise UserDataError(f"{path}: a class map may have at most {MAX_CLASS_MAP_BYTES} "
                                "bytes")
        text = path.read_bytes().decode("utf-8")
        data = (json.loads(text) if path.suffix.lower() == ".json"
                else yaml.safe_load(text))
    except OSError as exc:
        raise UserDataError(f"{path}: cannot read the class map ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise UserDataError(f"{path}: not UTF-8 text (byte offset {exc.start})") from exc
    except (ValueError, yaml.YAMLError) as exc:
        raise UserDataError(f"{path}: cannot parse the class map "
                            f"({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in data.items()):
        raise UserDataError(f"{path}: a class map must be a mapping of class name to class name "
                            "(e.g. 'calm: neutral')")
    return dict(data)


def parse_class_map(spec: Mapping[str, str] | Sequence[str] | str | os.PathLike | None
                    ) -> dict[str, str]:
    """A user's class map from a mapping, ``old=new`` strings, or the path of a YAML/JSON file
    holding a mapping (an entry without ``=`` names such a file). {} for None."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        return _pairs(f"{k}={v}" for k, v in spec.items())
    entries = [spec] if isinstance(spec, str | os.PathLike) else list(spec)
    out: dict[str, str] = {}
    for entry in entries:
        text = os.fspath(entry)
        out.update(_pairs([text]) if "=" in text else _read_map_file(Path(text)))
    return out
