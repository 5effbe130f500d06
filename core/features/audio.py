"""Reading speech files: any WAV/FLAC/OGG soundfile can read, to mono float32 at one rate.

Every feature downstream (SPEC §2: 16 kHz Kaldi filterbanks) assumes one sample rate, so a file
at another rate is resampled here, and the caller is told: :class:`AudioInfo` records the
original rate and ``resampled=True``, and a warning goes to the ``affectlab.features.audio`` logger.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

logger = logging.getLogger(__name__)

DEFAULT_SAMPLE_RATE = 16000


class AudioLoadError(ValueError):
    """A file could not be decoded as audio, or holds no samples. The message names the path."""


@dataclass(frozen=True)
class AudioInfo:
    """What :func:`load_wav` found and did.

    path:          the file read
    original_sr:   sample rate stored in the file (Hz)
    sample_rate:   sample rate of the returned wave (Hz)
    channels:      channel count in the file (the returned wave is always mono)
    resampled:     True when ``original_sr != sample_rate``
    num_samples:   length of the returned wave
    """

    path: str
    original_sr: int
    sample_rate: int
    channels: int
    resampled: bool
    num_samples: int

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate


def to_mono(wave: np.ndarray) -> np.ndarray:
    """Average the channels of a (samples, channels) array; a 1-D array passes through.

    Returns a (samples,) float32 array.
    """
    wave = np.asarray(wave)
    if wave.ndim == 1:
        return wave.astype(np.float32, copy=False)
    if wave.ndim != 2:
        raise ValueError("wave must be 1-D (samples,) or 2-D (samples, channels), "
                         f"got {wave.shape}")
    return wave.mean(axis=1, dtype=np.float64).astype(np.float32)


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling of a (samples,) wave from ``orig_sr`` to ``target_sr`` Hz.

    Uses :func:`scipy.signal.resample_poly` with the up/down factors reduced by their gcd
    (44.1 kHz → 16 kHz is up 160, down 441). Returns float32 of length ceil(n·target/orig).
    """
    for name, rate in (("orig_sr", orig_sr), ("target_sr", target_sr)):
        if not isinstance(rate, (int, np.integer)) or rate <= 0:
            raise ValueError(f"{name} must be a positive integer (Hz), got {rate!r}")
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"wave must be 1-D (samples,), got shape {wave.shape}")
    if orig_sr == target_sr:
        return wave
    g = gcd(int(orig_sr), int(target_sr))
    out = resample_poly(wave.astype(np.float64), int(target_sr) // g, int(orig_sr) // g)
    return out.astype(np.float32)


def load_wav(path: str | os.PathLike, target_sr: int | None = DEFAULT_SAMPLE_RATE
             ) -> tuple[np.ndarray, AudioInfo]:
    """Read an audio file as a mono float32 wave in [-1, 1] at ``target_sr`` Hz.

    Stereo (or more) is averaged to mono. A file at another rate is resampled (see module
    docstring for how the caller is told); ``target_sr=None`` keeps the file's rate.

    Returns ``(wave, info)``: wave is (samples,) float32, info an :class:`AudioInfo`.
    Raises FileNotFoundError for a missing file and :class:`AudioLoadError` (a ValueError) for
    a corrupt, unreadable or empty one; both name the path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    return decode_audio(path.read_bytes(), target_sr=target_sr, source=str(path))


def decode_audio(data: bytes, target_sr: int | None = DEFAULT_SAMPLE_RATE,
                 source: str = "<bytes>") -> tuple[np.ndarray, AudioInfo]:
    """:func:`load_wav` on the bytes of a file already in memory; ``source`` names it in errors."""
    if target_sr is not None and (not isinstance(target_sr, (int, np.integer)) or target_sr <= 0):
        raise ValueError(f"target_sr must be a positive integer (Hz) or None, got {target_sr!r}")
    if len(data) == 0:
        raise AudioLoadError(f"{source}: empty file (0 bytes), not audio")
    try:
        raw, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioLoadError(f"{source}: cannot decode audio ({exc})") from exc
    if raw.shape[0] == 0:
        raise AudioLoadError(f"{source}: audio file holds no samples")
    wave = to_mono(raw)
    out_sr = int(sr) if target_sr is None else int(target_sr)
    resampled = out_sr != int(sr)
    if resampled:
        logger.warning("%s: resampled from %d Hz to %d Hz", source, sr, out_sr)
        wave = resample(wave, int(sr), out_sr)
    info = AudioInfo(path=source, original_sr=int(sr), sample_rate=out_sr,
                     channels=int(raw.shape[1]), resampled=resampled, num_samples=int(wave.size))
    return wave, info
