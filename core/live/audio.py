"""Microphone chunks → 16 kHz mono ring buffer → filterbanks over a sliding window → a speech
model's distribution.

:class:`AudioChunkProcessor` accepts chunks at any rate and channel count (browsers send 48 kHz
stereo through WebRTC; a local sound card whatever it runs at), keeps the last ``window_s``
seconds at 16 kHz mono, and on ``predict()`` computes 40-d Kaldi log-Mel filterbanks of the
window (SPEC §2) and the model's distribution.

Normalisation: training z-normalises each filterbank dimension per corpus (SPEC §2). A run that
saved its normalisers is used with the first one; otherwise the window is z-normalised by its
own statistics (the per-utterance variant), the only choice without the training corpus.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch

from affectlab.features.audio import check_audio_header, decode_audio, resample
from affectlab.features.fbank import CorpusNormalizer, fbank
from affectlab.live.models import LiveModel
from affectlab.uncertainty import probs_uncertainty

__all__ = ["SAMPLE_RATE", "AudioResult", "AudioChunkProcessor", "av_to_samples", "silent_like"]

SAMPLE_RATE = 16000
# a live chunk is 10–20 ms of WebRTC or sounddevice audio; anything past this is not a live chunk
MAX_CHUNK_SECONDS = 10.0
_INT_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}


@dataclass(frozen=True)
class AudioResult:
    """probs (K,) over class_names; uncertainty = normalised entropy in [0, 1];
    seconds = audio the prediction used; embedding (D,)."""

    probs: np.ndarray
    class_names: list[str]
    uncertainty: float
    seconds: float
    embedding: np.ndarray

    @property
    def top(self) -> str:
        return self.class_names[int(np.argmax(self.probs))]


def av_to_samples(array: np.ndarray, channels: int, planar: bool) -> np.ndarray:
    """An ``av.AudioFrame.to_ndarray()`` → (samples, channels) float32 in [-1, 1].

    Packed formats (s16, flt) give (1, samples·channels) interleaved; planar ones (s16p, fltp)
    give (channels, samples). Integer samples are scaled to [-1, 1].
    """
    arr = np.asarray(array)
    if not isinstance(channels, int | np.integer) or channels < 1:
        raise ValueError(f"channels must be a positive integer, got {channels!r}")
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise ValueError(f"array must be 1-D or 2-D, got shape {arr.shape}")
    if planar:
        if arr.shape[0] != channels:
            raise ValueError(f"planar array must be (channels={channels}, samples), got "
                             f"{arr.shape}")
        out = arr.T
    else:
        if arr.size % channels:
            raise ValueError(f"packed array of {arr.size} values is not a multiple of "
                             f"channels={channels}")
        out = arr.reshape(-1, channels)
    return _to_float(out)


def _to_float(arr: np.ndarray) -> np.ndarray:
    if arr.dtype in _INT_SCALE:
        return (arr.astype(np.float32) / _INT_SCALE[arr.dtype]).astype(np.float32)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"samples must be int16, int32 or float, got dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False)


class AudioChunkProcessor:
    """Ring buffer of the last ``window_s`` seconds at 16 kHz mono, and predictions over it.

    model:     a speech :class:`LiveModel` (e.g. :func:`affectlab.live.models.load_run_model`)
    window_s:  seconds the prediction looks at (default 2 s)
    min_s:     the least audio ``predict`` accepts (default 0.5 s)
    """

    def __init__(self, model: LiveModel, window_s: float = 2.0, min_s: float = 0.5) -> None:
        if not isinstance(model, LiveModel):
            raise TypeError(f"model must be a LiveModel, got {type(model).__name__}")
        if model.modality != "speech":
            raise ValueError(f"model must be a speech model, got a {model.modality} model "
                             f"({model.source})")
        if not (0.1 <= float(window_s) <= 60):
            raise ValueError(f"window_s must be in [0.1, 60] seconds, got {window_s!r}")
        if not (0.03 <= float(min_s) <= float(window_s)):
            raise ValueError(f"min_s must be in [0.03, window_s], got {min_s!r}")
        self.model = model
        self.window = int(round(float(window_s) * SAMPLE_RATE))
        self.min_samples = int(round(float(min_s) * SAMPLE_RATE))
        self._buf = np.zeros(self.window, dtype=np.float32)
        self._filled = 0
        self._lock = threading.Lock()
        self._normalizer = self._run_normalizer(model)

    @staticmethod
    def _run_normalizer(model: LiveModel) -> CorpusNormalizer | None:
        for state in (model.normalizers or {}).values():
            try:
                return CorpusNormalizer.from_dict(state)
            except (KeyError, TypeError, ValueError):
                continue
        return None

    @property
    def class_names(self) -> list[str]:
        return list(self.model.class_names)

    @property
    def buffered_seconds(self) -> float:
        with self._lock:
            return self._filled / SAMPLE_RATE

    def buffer(self) -> np.ndarray:
        """The buffered audio, oldest first: (min(filled, window),) float32 at 16 kHz."""
        with self._lock:
            return self._buf[self.window - self._filled:].copy()

    def reset(self) -> None:
        with self._lock:
            self._buf[:] = 0.0
            self._filled = 0

    def push(self, samples, sample_rate: int) -> int:
        """Append a chunk: (samples,) mono or (samples, channels), int16/int32 or float in
        [-1, 1], at ``sample_rate`` Hz. It is averaged to mono, resampled to 16 kHz and
        appended (the oldest audio drops out). Returns the samples added at 16 kHz.

        Resampling each chunk on its own is exact for the 48 kHz → 16 kHz case (a rational
        factor 1/3 with a polyphase filter) up to the filter's edge effects at chunk borders,
        which are below the filterbank's resolution for 10–20 ms WebRTC chunks.
        """
        arr = np.asarray(samples)
        if arr.ndim not in (1, 2) or arr.size == 0:
            raise ValueError(f"samples must be a non-empty (samples,) or (samples, channels) "
                             f"array, got shape {arr.shape}")
        _check_chunk(arr, sample_rate)
        arr = _to_float(arr)
        if not np.isfinite(arr).all():
            raise ValueError("samples must be finite")
        mono = arr.mean(axis=1, dtype=np.float64).astype(np.float32) if arr.ndim == 2 else arr
        wave = resample(mono, int(sample_rate), SAMPLE_RATE)
        wave = wave[-self.window:]
        m = len(wave)
        with self._lock:
            if m < self.window:
                self._buf[:-m] = self._buf[m:].copy()  # shift the older audio left
            self._buf[self.window - m:] = wave
            self._filled = min(self.window, self._filled + m)
        return m

    def _features(self, wave: np.ndarray) -> np.ndarray:
        feats = fbank(np.clip(wave, -1.0, 1.0), sample_rate=SAMPLE_RATE, num_mel_bins=40)
        if self._normalizer is not None:
            return self._normalizer.transform(feats)
        mean = feats.mean(axis=0, keepdims=True)
        std = np.maximum(feats.std(axis=0, keepdims=True), 1e-3)
        return ((feats - mean) / std).astype(np.float32)

    def predict_wave(self, wave: np.ndarray) -> AudioResult:
        """Distribution for a whole 16 kHz mono (samples,) wave (e.g. an uploaded file)."""
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(f"wave must be 1-D (samples,) at 16 kHz, got shape {wave.shape}")
        if len(wave) < self.min_samples:
            raise ValueError(f"wave must hold at least {self.min_samples / SAMPLE_RATE:g} s "
                             f"({self.min_samples} samples at 16 kHz), got {len(wave)}")
        feats = self._features(wave)
        x = torch.from_numpy(feats)[None]
        probs, emb = self.model.predict(x, torch.tensor([feats.shape[0]]))
        p = probs[0]
        return AudioResult(p, self.class_names, float(probs_uncertainty(p)),
                           len(wave) / SAMPLE_RATE, emb[0])

    def predict_file_bytes(self, data: bytes) -> AudioResult:
        """An uploaded audio file's bytes (WAV, FLAC, OGG: what soundfile reads), at any rate
        and channel count → :meth:`predict_wave` of the whole file at 16 kHz mono."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        wave, _ = decode_audio(bytes(data), target_sr=SAMPLE_RATE, source="uploaded audio")
        return self.predict_wave(wave)

    def predict(self) -> AudioResult | None:
        """Distribution over the buffered window, or None while less than ``min_s`` is
        buffered."""
        wave = self.buffer()
        if len(wave) < self.min_samples:
            return None
        return self.predict_wave(wave)


def silent_like(frame):
    """A silent ``av.AudioFrame`` with ``frame``'s format, layout, rate and timestamp.

    streamlit-webrtc only pulls (and so only processes) the microphone track when the processed
    audio is sent back to the browser; sending silence back keeps the callback running without
    echoing the user's voice into their speakers.
    """
    import av

    silent = av.AudioFrame.from_ndarray(np.zeros_like(frame.to_ndarray()), format=frame.format.name,
                                        layout=frame.layout.name)
    silent.sample_rate = frame.sample_rate
    silent.pts = frame.pts
    if frame.time_base is not None:
        silent.time_base = frame.time_base
    return silent


def _check_chunk(arr: np.ndarray, sample_rate: int) -> None:
    """An upload's header bounds (:func:`check_audio_header`: 4–384 kHz, channels), for the rate
    a browser's stream declares, with at most MAX_CHUNK_SECONDS a chunk: resampling a 1 Hz
    "chunk" to 16 kHz would grow it 16,000-fold."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise ValueError(f"sample_rate must be an integer (Hz), got {sample_rate!r}")
    channels = arr.shape[1] if arr.ndim == 2 else 1
    check_audio_header(int(sample_rate), arr.shape[0], channels, "live audio chunk",
                       max_seconds=MAX_CHUNK_SECONDS)
