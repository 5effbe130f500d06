"""The hidden truth of one generated item, shared by the face and speech renderers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The generated corpus's label set, in this order everywhere (DESIGN.md).
CATEGORIES: tuple[str, ...] = (
    "neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised",
)

# Circumplex positions (valence, arousal) in [-1, 1], after Russell (1980) / Posner et al.
CIRCUMPLEX: dict[str, tuple[float, float]] = {
    "neutral": (0.0, 0.0),
    "happy": (0.8, 0.5),
    "sad": (-0.7, -0.5),
    "angry": (-0.6, 0.8),
    "fearful": (-0.6, 0.7),
    "disgusted": (-0.7, 0.3),
    "surprised": (0.3, 0.9),
}


@dataclass(frozen=True)
class ItemTruth:
    """What a generated item really is; the renderers draw it, the raters perceive it.

    dist:      (7,) true emotion distribution over CATEGORIES, sums to 1
    valence:   true valence in [-1, 1]
    arousal:   true arousal in [-1, 1]
    intensity: ordinal expression intensity 1..5
    identity:  subject (face) or speaker (speech) id, a hidden sub-class factor
    style:     visible style factor: face 0 = plain, 1 = glasses; speech 0 = modal, 1 = breathy voice
    domain:    rendering / recording condition, 0..n_domains-1 (two "corpora")
    """

    dist: np.ndarray
    valence: float
    arousal: float
    intensity: int
    identity: int
    style: int
    domain: int

    @property
    def dominant(self) -> int:
        return int(np.argmax(self.dist))
