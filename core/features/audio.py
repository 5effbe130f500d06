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
# A header is read before any decoding: its sample rate, length and channel count bound the
# memory the decode (and the resampling to 16 kHz) takes. A file outside them is refused.
MIN_SAMPLE_RATE = 4_000
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 32
ENV_MAX_SECONDS = "AFFECTLAB_MAX_AUDIO_SECONDS"
DEFAULT_MAX_SECONDS = 300.0  # 5 minutes: far above any corpus clip or uploaded utterance
# The samples decoded (frames × channels) are bounded too, by the length limit at 48 kHz
# stereo (28.8 M samples, 115 MB as float32, at the default): a small FLAC of silence at
# 384 kHz × 8 channels would otherwise decode to gigabytes within the rate, channel and
# length limits.
BUDGET_RATE, BUDGET_CHANNELS = 48_000, 2


class AudioLoadError(ValueError):
    """A file could not be decoded as audio, holds no samples, or lies outside the bounds
    (sample rate, length, channels) checked before decoding. The message names the path."""


def max_audio_seconds() -> float:
    """The longest clip decoded: ``$AFFECTLAB_MAX_AUDIO_SECONDS`` (a positive number of
    seconds) when set, else :data:`DEFAULT_MAX_SECONDS`."""
    text = os.environ.get(ENV_MAX_SECONDS, "").strip()
    if not text:
        return DEFAULT_MAX_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and np.isfinite(value)):
        raise ValueError(f"${ENV_MAX_SECONDS} must be a positive number of seconds, got {text!r}")
    return value


def check_audio_header(sample_rate: int, frames: int, channels: int, source: str,
                       max_seconds: float | None = None) -> None:
    """Refuse, with :class:`AudioLoadError` naming ``source``, a file whose header gives a sample
    rate outside :data:`MIN_SAMPLE_RATE`..:data:`MAX_SAMPLE_RATE` Hz, more than
    :data:`MAX_CHANNELS` channels, more than ``max_seconds`` (default
    :func:`max_audio_seconds`) of audio, or more samples to decode (frames × channels) than
    ``max_seconds`` at 48 kHz stereo."""
    limit = max_audio_seconds() if max_seconds is None else float(max_seconds)
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioLoadError(f"{source}: sample rate {sample_rate} Hz is outside "
                             f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz; not decoded")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioLoadError(f"{source}: {channels} channels (at most {MAX_CHANNELS}); "
                             "not decoded")
    seconds = frames / sample_rate
    origin = f" (${ENV_MAX_SECONDS})" if max_seconds is None else ""  # where the limit is set
    if seconds > limit:
        raise AudioLoadError(f"{source}: {seconds:.0f} s of audio is longer than the "
                             f"{limit:g} s allowed{origin}; not decoded")
    budget = limit * BUDGET_RATE * BUDGET_CHANNELS
    if frames * channels > budget:
        raise AudioLoadError(
            f"{source}: {seconds:.0f} s × {channels} channels at {sample_rate} Hz is "
            f"{frames * channels:,} samples, more than the {budget:,.0f} allowed ({limit:g} s "
            f"at {BUDGET_RATE // 1000} kHz stereo{origin}); not decoded")


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


def load_wav(path: str | os.PathLike, target_sr: int | None = DEFAULT_SAMPLE_RATE,
             max_seconds: float | None = None) -> tuple[np.ndarray, AudioInfo]:
    """Read an audio file as a mono float32 wave in [-1, 1] at ``target_sr`` Hz.

    Stereo (or more) is averaged to mono. A file at another rate is resampled (see module
    docstring for how the caller is told); ``target_sr=None`` keeps the file's rate.

    Returns ``(wave, info)``: wave is (samples,) float32, info an :class:`AudioInfo`.
    Raises FileNotFoundError for a missing file and :class:`AudioLoadError` (a ValueError) for
    a corrupt, unreadable or empty one, or one whose header is out of bounds (sample rate
    outside 4..384 kHz, longer than ``max_seconds``, default ``$AFFECTLAB_MAX_AUDIO_SECONDS``
    or 300 s), refused before it is decoded; both name the path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    return decode_audio(path.read_bytes(), target_sr=target_sr, source=str(path),
                        max_seconds=max_seconds)


def decode_audio(data: bytes, target_sr: int | None = DEFAULT_SAMPLE_RATE,
                 source: str = "<bytes>", max_seconds: float | None = None
                 ) -> tuple[np.ndarray, AudioInfo]:
    """:func:`load_wav` on the bytes of a file already in memory; ``source`` names it in errors.
    The header is checked first (:func:`check_audio_header`, ``max_seconds``)."""
    if target_sr is not None and (not isinstance(target_sr, (int, np.integer)) or target_sr <= 0):
        raise ValueError(f"target_sr must be a positive integer (Hz) or None, got {target_sr!r}")
    if len(data) == 0:
        raise AudioLoadError(f"{source}: empty file (0 bytes), not audio")
    try:
        header = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioLoadError(f"{source}: cannot decode audio ({exc})") from exc
    check_audio_header(int(header.samplerate), int(header.frames), int(header.channels), source,
                       max_seconds)
    try:
        raw, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True,
                          frames=int(header.frames) or -1)
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
