"""Kaldi log-Mel filterbanks (SPEC §2), their disk cache, and per-corpus z-normalisation.

Features: 40-d Kaldi fbank at 16 kHz, 25 ms frames, 10 ms hop, computed by kaldi-native-fbank
with Kaldi's defaults otherwise (povey window, pre-emphasis 0.97, DC removal, mel bins from
20 Hz to Nyquist, power spectrum, natural log floored at FLT_EPSILON, ``snip_edges``: a wave of
N ≥ 400 samples gives 1 + (N − 400) // 160 frames). Dither is 0 so features are deterministic.

Sample scale: Kaldi reads WAV files as raw 16-bit integers, and kaldi-native-fbank applies no
scaling of its own (``accept_waveform`` takes the samples as given). Our waves are floats in
[-1, 1], so :func:`fbank` multiplies them by 32768 first; the log energies then match Kaldi's
``compute-fbank-feats`` on the same file (a factor s on the samples would shift every log
energy by 2·ln s).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import kaldi_native_fbank as knf
import numpy as np

from affectlab import paths
from affectlab.features.audio import decode_audio
from affectlab.validation import as_float_array

INT16_SCALE = 32768.0
# Bumped whenever the computation changes, so stale cache entries are never reused.
FEATURE_VERSION = 1


@dataclass(frozen=True)
class FbankParams:
    """Everything that determines a filterbank matrix; part of the cache key."""

    sample_rate: int = 16000
    num_mel_bins: int = 40
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    low_freq: float = 20.0
    high_freq: float = 0.0  # Kaldi convention: <= 0 means Nyquist + high_freq

    def __post_init__(self) -> None:
        if not isinstance(self.sample_rate, (int, np.integer)) or self.sample_rate <= 0:
            raise ValueError("sample_rate must be a positive integer (Hz), "
                             f"got {self.sample_rate!r}")
        if not isinstance(self.num_mel_bins, (int, np.integer)) or self.num_mel_bins < 3:
            raise ValueError(f"num_mel_bins must be an integer >= 3, got {self.num_mel_bins!r}")
        if not (self.frame_length_ms > 0 and self.frame_shift_ms > 0):
            raise ValueError("frame_length_ms and frame_shift_ms must be > 0, got "
                             f"{self.frame_length_ms!r} and {self.frame_shift_ms!r}")

    @property
    def frame_length(self) -> int:
        """Samples per frame (400 at 16 kHz / 25 ms)."""
        return int(self.sample_rate * 0.001 * self.frame_length_ms)

    @property
    def frame_shift(self) -> int:
        """Samples between frame starts (160 at 16 kHz / 10 ms)."""
        return int(self.sample_rate * 0.001 * self.frame_shift_ms)

    def options(self) -> knf.FbankOptions:
        opts = knf.FbankOptions()
        opts.frame_opts.samp_freq = float(self.sample_rate)
        opts.frame_opts.frame_length_ms = float(self.frame_length_ms)
        opts.frame_opts.frame_shift_ms = float(self.frame_shift_ms)
        opts.frame_opts.dither = 0.0
        opts.frame_opts.snip_edges = True
        opts.mel_opts.num_bins = int(self.num_mel_bins)
        opts.mel_opts.low_freq = float(self.low_freq)
        opts.mel_opts.high_freq = float(self.high_freq)
        return opts

    def key(self) -> str:
        """A stable text form of the parameters (and the feature code's version)."""
        return json.dumps({**asdict(self), "version": FEATURE_VERSION}, sort_keys=True)


def num_frames(num_samples: int, params: FbankParams | None = None) -> int:
    """Frames Kaldi produces with ``snip_edges``: 1 + (N − L) // S for N ≥ L, else 0."""
    p = params or FbankParams()
    if num_samples < p.frame_length:
        return 0
    return 1 + (num_samples - p.frame_length) // p.frame_shift


def fbank(wave, sample_rate: int = 16000, num_mel_bins: int = 40,
          params: FbankParams | None = None) -> np.ndarray:
    """Kaldi log-Mel filterbank of a mono wave.

    wave:  (samples,) floats in [-1, 1] (as :func:`affectlab.features.audio.load_wav` returns),
           at ``sample_rate`` Hz.
    params: overrides ``sample_rate`` / ``num_mel_bins`` when given.

    Returns (frames, num_mel_bins) float32, frames = :func:`num_frames` (0 rows for a wave
    shorter than one frame).
    """
    p = params or FbankParams(sample_rate=sample_rate, num_mel_bins=num_mel_bins)
    x = as_float_array(wave, "wave", ndim=1)
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 2.0:
        # Resampling may overshoot 1 slightly; far beyond that means int16-range samples.
        raise ValueError(f"wave must hold floats in [-1, 1]; max |wave| is {peak:.4g} "
                         "(int16-range samples? divide by 32768)")
    extractor = knf.OnlineFbank(p.options())
    extractor.accept_waveform(float(p.sample_rate), (x * INT16_SCALE).astype(np.float32))
    extractor.input_finished()
    n = extractor.num_frames_ready
    if n == 0:
        return np.zeros((0, p.num_mel_bins), dtype=np.float32)
    # get_frame returns a view into the extractor's buffer: stack copies it.
    return np.stack([extractor.get_frame(i) for i in range(n)]).astype(np.float32, copy=False)


class FbankCache:
    """Filterbanks of audio files, computed once and kept on disk as ``.npy``.

    The key is sha256(file bytes) + sha256(parameters), so a renamed file still hits, an edited
    file or a changed parameter misses. Entries are written to a temporary file in the cache
    directory and moved into place with :func:`os.replace`, so concurrent writers of the same
    entry never leave a partial file (the last complete write wins; all are identical).

    dir: cache directory, default ``affectlab.paths.cache_dir() / "fbank"``.
    """

    def __init__(self, dir: str | os.PathLike | None = None, params: FbankParams | None = None):
        self.dir = Path(dir) if dir is not None else paths.cache_dir() / "fbank"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.params = params or FbankParams()
        self.hits = 0
        self.misses = 0

    def key(self, data: bytes) -> str:
        h = hashlib.sha256()
        h.update(hashlib.sha256(data).digest())
        h.update(self.params.key().encode())
        return h.hexdigest()

    def entry_path(self, key: str) -> Path:
        return self.dir / f"{key}.npy"

    def get(self, path: str | os.PathLike) -> np.ndarray:
        """(frames, num_mel_bins) float32 filterbank of the audio file at ``path``.

        Read from the cache when present; otherwise decoded (resampled to the parameters' rate
        if needed), computed and stored. Raises like :func:`affectlab.features.audio.load_wav`.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"audio file not found: {path}")
        data = path.read_bytes()
        entry = self.entry_path(self.key(data))
        if entry.is_file():
            try:
                feats = np.load(entry, allow_pickle=False)
                self.hits += 1
                return feats
            except (OSError, ValueError):
                pass  # unreadable entry (e.g. disk trouble): recompute and overwrite it
        self.misses += 1
        wave, _ = decode_audio(data, target_sr=self.params.sample_rate, source=str(path))
        feats = fbank(wave, params=self.params)
        self._store(entry, feats)
        return feats

    def _store(self, entry: Path, feats: np.ndarray) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{entry.stem[:16]}.", suffix=".tmp", dir=self.dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, feats, allow_pickle=False)
            os.replace(tmp, entry)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class CorpusNormalizer:
    """Per-dimension z-normalisation with statistics of one corpus (SPEC §2: each corpus is
    normalised separately; fit one normaliser per domain).

    Statistics are over all frames of all utterances (frame-level, as in the f-SPL paper),
    accumulated in float64 with Chan et al.'s pairwise update, so ``partial_fit`` over chunks
    equals one ``fit`` over everything.

    std_floor: standard deviations below it are raised to it, so a constant dimension (e.g. a
               mel bin that is always at the log floor) maps to 0 instead of dividing by 0.

    Attributes after fitting: ``mean_`` (D,), ``std_`` (D,) floored, ``n_frames_``.
    """

    def __init__(self, std_floor: float = 1e-3):
        if not (std_floor > 0):
            raise ValueError(f"std_floor must be > 0, got {std_floor!r}")
        self.std_floor = float(std_floor)
        self.n_frames_ = 0
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None

    def partial_fit(self, features: Iterable[np.ndarray]) -> CorpusNormalizer:
        """Add utterances, each (frames, D), to the statistics."""
        if isinstance(features, np.ndarray):
            raise TypeError("features must be a list of (frames, D) arrays, not one array; "
                            "wrap a single utterance in a list")
        for i, feats in enumerate(features):
            x = as_float_array(feats, f"features[{i}]", ndim=2)
            if x.shape[0] == 0:
                continue
            if self._mean is not None and x.shape[1] != self._mean.size:
                raise ValueError(f"features[{i}] has {x.shape[1]} dimensions, expected "
                                 f"{self._mean.size} like the earlier ones")
            n_b = x.shape[0]
            mean_b = x.mean(axis=0)
            m2_b = ((x - mean_b) ** 2).sum(axis=0)
            if self._mean is None:
                self._mean, self._m2, self.n_frames_ = mean_b, m2_b, n_b
                continue
            n_a = self.n_frames_
            n = n_a + n_b
            delta = mean_b - self._mean
            self._mean = self._mean + delta * (n_b / n)
            self._m2 = self._m2 + m2_b + delta**2 * (n_a * n_b / n)
            self.n_frames_ = n
        return self

    def fit(self, features: Iterable[np.ndarray]) -> CorpusNormalizer:
        """Statistics of a list of (frames, D) utterances (replacing earlier ones)."""
        self.n_frames_, self._mean, self._m2 = 0, None, None
        self.partial_fit(features)
        if self._mean is None:
            raise ValueError("features must contain at least one frame to fit a normaliser")
        return self

    @property
    def fitted(self) -> bool:
        return self._mean is not None

    @property
    def mean_(self) -> np.ndarray:
        self._check_fitted()
        return self._mean

    @property
    def std_(self) -> np.ndarray:
        """Population standard deviation per dimension, floored at ``std_floor``."""
        self._check_fitted()
        return np.maximum(np.sqrt(self._m2 / self.n_frames_), self.std_floor)

    def transform(self, features: np.ndarray) -> np.ndarray:
        """(frames, D) → (frames, D) float32, (x − mean) / std per dimension."""
        self._check_fitted()
        x = as_float_array(features, "features", ndim=2)
        if x.shape[1] != self._mean.size:
            raise ValueError(f"features must have {self._mean.size} columns (the fitted "
                             f"dimension), got shape {x.shape}")
        return ((x - self._mean) / self.std_).astype(np.float32)

    def to_dict(self) -> dict:
        """JSON-serialisable state (for saving with a trained model)."""
        self._check_fitted()
        return {"mean": self._mean.tolist(), "m2": self._m2.tolist(),
                "n_frames": int(self.n_frames_), "std_floor": self.std_floor}

    @classmethod
    def from_dict(cls, state: dict) -> CorpusNormalizer:
        norm = cls(std_floor=state["std_floor"])
        norm._mean = np.asarray(state["mean"], dtype=np.float64)
        norm._m2 = np.asarray(state["m2"], dtype=np.float64)
        norm.n_frames_ = int(state["n_frames"])
        return norm

    def _check_fitted(self) -> None:
        if self._mean is None:
            raise RuntimeError("CorpusNormalizer is not fitted yet; call fit(features) first")


def fit_per_domain(features: list[np.ndarray], domains: list, std_floor: float = 1e-3
                   ) -> dict[object, CorpusNormalizer]:
    """One :class:`CorpusNormalizer` per distinct domain value.

    features: list of (frames, D) arrays; domains: same length, the corpus of each.
    """
    if len(features) != len(domains):
        raise ValueError(f"features and domains must have the same length, got "
                         f"{len(features)} and {len(domains)}")
    groups: dict[object, list[np.ndarray]] = {}
    for feats, dom in zip(features, domains, strict=True):
        groups.setdefault(dom, []).append(feats)
    return {dom: CorpusNormalizer(std_floor).fit(group) for dom, group in groups.items()}
