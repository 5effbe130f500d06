"""Audio loading, Kaldi filterbanks (against an independent numpy implementation of Kaldi's
definition), the disk cache and per-corpus normalisation."""

import logging
import os
import threading

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st

from affectlab.features.audio import AudioLoadError, load_wav, resample, to_mono
from affectlab.features.fbank import (
    CorpusNormalizer,
    FbankCache,
    FbankParams,
    fbank,
    fit_per_domain,
    num_frames,
)

SR = 16000


# --- an independent Kaldi fbank, written from Kaldi's feature-window.cc / mel-computations.cc ---

def _mel(f):
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def kaldi_mel_banks(num_bins=40, sr=SR, n_fft=512, low=20.0, high=None):
    """(num_bins, n_fft // 2) triangular weights on the mel scale, Kaldi's MelBanks."""
    high = sr / 2 if high is None else high
    mel_lo, mel_hi = _mel(low), _mel(high)
    delta = (mel_hi - mel_lo) / (num_bins + 1)
    mels = _mel(np.arange(n_fft // 2) * sr / n_fft)
    banks = np.zeros((num_bins, n_fft // 2))
    for b in range(num_bins):
        left, center, right = mel_lo + b * delta, mel_lo + (b + 1) * delta, mel_lo + (b + 2) * delta
        inside = (mels > left) & (mels < right)
        up = (mels - left) / (center - left)
        down = (right - mels) / (right - center)
        banks[b] = np.where(inside, np.where(mels <= center, up, down), 0.0)
    return banks


def kaldi_fbank_reference(wave, num_bins=40, sr=SR):
    """Kaldi log-Mel fbank in float64: snip_edges framing, DC removal, pre-emphasis 0.97,
    povey window, 512-point power spectrum, mel banks 20 Hz..Nyquist, log floored at FLT_EPS."""
    x = np.asarray(wave, dtype=np.float64) * 32768.0
    L, S, n_fft = 400, 160, 512
    n = 1 + (len(x) - L) // S
    frames = np.stack([x[i * S: i * S + L] for i in range(n)])
    frames = frames - frames.mean(axis=1, keepdims=True)
    pre = np.empty_like(frames)
    pre[:, 1:] = frames[:, 1:] - 0.97 * frames[:, :-1]
    pre[:, 0] = frames[:, 0] * (1 - 0.97)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(L) / (L - 1))) ** 0.85
    power = np.abs(np.fft.rfft(pre * window, n=n_fft, axis=1)) ** 2
    energies = power[:, : n_fft // 2] @ kaldi_mel_banks(num_bins, sr, n_fft).T
    return np.log(np.maximum(energies, np.finfo(np.float32).eps))


def tone(freq, seconds=0.5, amp=0.5, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def bin_centre_hz(b, num_bins=40, sr=SR):
    lo, hi = _mel(20.0), _mel(sr / 2)
    m = lo + (b + 1) * (hi - lo) / (num_bins + 1)
    return 700.0 * (np.exp(m / 1127.0) - 1.0)


# --- load_wav ---

def test_load_mono_16k_roundtrip(tmp_path, rng):
    wave = (0.3 * rng.standard_normal(8000)).clip(-1, 1).astype(np.float32)
    path = tmp_path / "a.wav"
    sf.write(path, wave, SR, subtype="FLOAT")
    out, info = load_wav(path)
    assert out.dtype == np.float32 and out.shape == (8000,)
    np.testing.assert_array_equal(out, wave)
    assert (info.original_sr, info.sample_rate, info.channels, info.resampled) == (SR, SR, 1, False)
    assert info.duration_s == pytest.approx(0.5)


def test_stereo_becomes_channel_mean(tmp_path):
    left, right = tone(440, 0.1), tone(880, 0.1, amp=0.2)
    path = tmp_path / "st.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    out, info = load_wav(path)
    assert info.channels == 2 and out.ndim == 1
    np.testing.assert_allclose(out, (left + right) / 2, atol=1e-7)


def test_44k_is_resampled_with_notice(tmp_path, caplog):
    sr = 44100
    t = np.arange(sr) / sr  # one second of a 1 kHz tone
    path = tmp_path / "cd.wav"
    sf.write(path, (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), sr, subtype="FLOAT")
    with caplog.at_level(logging.WARNING, logger="affectlab.features.audio"):
        out, info = load_wav(path, target_sr=SR)
    assert info.resampled and info.original_sr == sr and info.sample_rate == SR
    assert out.shape == (SR,)
    assert any("44100" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
    # The tone survives at the right frequency: spectral peak at 1 kHz.
    spec = np.abs(np.fft.rfft(out * np.hanning(out.size)))
    assert np.fft.rfftfreq(out.size, 1 / SR)[np.argmax(spec)] == pytest.approx(1000, abs=1)


def test_keep_native_rate(tmp_path):
    path = tmp_path / "n.wav"
    sf.write(path, tone(300, 0.1, sr=8000), 8000)
    out, info = load_wav(path, target_sr=None)
    assert info.sample_rate == 8000 and not info.resampled and out.size == 800


def test_corrupt_and_empty_files_name_the_path(tmp_path):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00garbage, not a wave file at all" * 3)
    with pytest.raises(AudioLoadError, match="corrupt.wav"):
        load_wav(bad)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioLoadError, match="empty.wav"):
        load_wav(empty)
    no_samples = tmp_path / "nosamples.wav"
    sf.write(no_samples, np.zeros(0, dtype=np.float32), SR)
    with pytest.raises(AudioLoadError, match="nosamples.wav.*no samples"):
        load_wav(no_samples)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        load_wav(tmp_path / "missing.wav")


def test_resample_and_mono_validate():
    with pytest.raises(ValueError, match="orig_sr"):
        resample(np.zeros(10), 0, SR)
    with pytest.raises(ValueError, match="wave must be 1-D"):
        resample(np.zeros((10, 2)), 8000, SR)
    with pytest.raises(ValueError, match="wave must be"):
        to_mono(np.zeros((2, 2, 2)))
    assert resample(np.ones(441), 44100, SR).shape == (160,)


# --- fbank ---

@given(st.integers(min_value=0, max_value=3000))
def test_frame_count_snip_edges(n):
    expected = 0 if n < 400 else 1 + (n - 400) // 160
    assert num_frames(n) == expected
    wave = np.zeros(n, dtype=np.float32)
    assert fbank(wave).shape == (expected, 40)


def test_fbank_matches_numpy_kaldi_reference(rng):
    wave = (0.2 * rng.standard_normal(SR // 2)).astype(np.float32) + tone(700, amp=0.3)
    ours = fbank(wave)
    ref = kaldi_fbank_reference(wave)
    assert ours.dtype == np.float32 and ours.shape == ref.shape == (48, 40)
    # float32 inside the library vs float64 here: measured max difference 1.3e-5.
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)


def test_fbank_reference_quiet_signal_and_other_bin_count(rng):
    wave = (1e-3 * rng.standard_normal(4000)).astype(np.float32)
    np.testing.assert_allclose(fbank(wave, num_mel_bins=23), kaldi_fbank_reference(wave, 23),
                               atol=1e-4, rtol=0)


def test_fbank_is_deterministic(rng):
    wave = (0.1 * rng.standard_normal(SR)).astype(np.float32)
    np.testing.assert_array_equal(fbank(wave), fbank(wave.copy()))


@pytest.mark.parametrize("b", [5, 20, 33])
def test_tone_peaks_at_its_mel_bin(b):
    feats = fbank(tone(bin_centre_hz(b)))
    assert (np.argmax(feats, axis=1) == b).all()
    # response falls off monotonically on both sides of the peak over neighbouring bins
    mean = feats.mean(axis=0)
    assert np.all(np.diff(mean[b - 3: b + 1]) > 0) and np.all(np.diff(mean[b: b + 4]) < 0)


def test_doubling_amplitude_adds_log4(rng):
    wave = tone(1000, amp=0.2) + (0.01 * rng.standard_normal(SR // 2)).astype(np.float32)
    np.testing.assert_allclose(fbank(2 * wave) - fbank(wave), np.log(4.0), atol=1e-3)


def test_fbank_validates_input():
    with pytest.raises(ValueError, match="wave must be 1-D"):
        fbank(np.zeros((400, 2)))
    with pytest.raises(ValueError, match="wave contains NaN"):
        fbank(np.full(800, np.nan))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        fbank(np.full(800, 1000.0))
    with pytest.raises(ValueError, match="num_mel_bins"):
        FbankParams(num_mel_bins=0)


# --- cache ---

def _write(path, wave):
    sf.write(path, wave, SR, subtype="FLOAT")
    return path


def test_cache_hit_identical_and_param_change_misses(tmp_path, rng):
    path = _write(tmp_path / "x.wav", (0.1 * rng.standard_normal(SR // 4)).astype(np.float32))
    cache = FbankCache(tmp_path / "cache")
    first = cache.get(path)
    assert (cache.hits, cache.misses) == (0, 1)
    second = cache.get(path)
    assert (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, fbank(load_wav(path)[0]))
    # a renamed copy has the same content: hit
    copy = tmp_path / "copy.wav"
    copy.write_bytes(path.read_bytes())
    cache.get(copy)
    assert cache.hits == 2
    # other parameters: miss, another entry, another shape
    other = FbankCache(tmp_path / "cache", FbankParams(num_mel_bins=23))
    assert other.get(path).shape == (first.shape[0], 23)
    assert other.misses == 1 and len(list((tmp_path / "cache").glob("*.npy"))) == 2
    # changed content: miss
    _write(path, (0.2 * rng.standard_normal(SR // 4)).astype(np.float32))
    cache.get(path)
    assert cache.misses == 2


def test_cache_default_dir_under_data_dir(tmp_path, rng):
    cache = FbankCache()
    assert cache.dir == (tmp_path / "affectlab-data" / "cache" / "fbank").resolve()


def test_cache_concurrent_writers_leave_one_complete_entry(tmp_path, rng):
    path = _write(tmp_path / "x.wav", (0.1 * rng.standard_normal(SR)).astype(np.float32))
    results, errors = [], []

    def worker():
        try:
            results.append(FbankCache(tmp_path / "cache").get(path))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(np.array_equal(r, results[0]) for r in results)
    assert len(os.listdir(tmp_path / "cache")) == 1  # no temp files left behind


def test_cache_recovers_from_corrupt_entry(tmp_path, rng):
    path = _write(tmp_path / "x.wav", (0.1 * rng.standard_normal(SR // 4)).astype(np.float32))
    cache = FbankCache(tmp_path / "cache")
    good = cache.get(path)
    entry = next((tmp_path / "cache").glob("*.npy"))
    entry.write_bytes(b"not npy")
    np.testing.assert_array_equal(cache.get(path), good)


def test_cache_error_names_corrupt_file(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"nonsense" * 10)
    with pytest.raises(AudioLoadError, match="broken.wav"):
        FbankCache(tmp_path / "cache").get(bad)


# --- normaliser ---

def test_normalizer_matches_concatenated_stats(rng):
    feats = [rng.normal(3.0, 2.0, size=(n, 4)) for n in (5, 17, 1, 40)]
    norm = CorpusNormalizer().fit(feats)
    allf = np.concatenate(feats)
    np.testing.assert_allclose(norm.mean_, allf.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(norm.std_, allf.std(axis=0), rtol=1e-12)
    z = np.concatenate([norm.transform(f) for f in feats])
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-5)
    # partial_fit in pieces equals one fit; state round-trips
    part = CorpusNormalizer().partial_fit(feats[:2]).partial_fit(feats[2:])
    np.testing.assert_allclose(part.std_, norm.std_, rtol=1e-12)
    back = CorpusNormalizer.from_dict(norm.to_dict())
    np.testing.assert_array_equal(back.transform(feats[0]), norm.transform(feats[0]))


def test_normalizer_std_floor_on_constant_dimension(rng):
    feats = [np.column_stack([rng.standard_normal(10), np.full(10, 7.0)])]
    norm = CorpusNormalizer(std_floor=1e-3).fit(feats)
    assert norm.std_[1] == 1e-3
    np.testing.assert_array_equal(norm.transform(feats[0])[:, 1], 0.0)


def test_normalizer_per_domain_is_separate(rng):
    a = [rng.normal(0.0, 1.0, size=(50, 3)) for _ in range(4)]
    b = [rng.normal(10.0, 5.0, size=(50, 3)) for _ in range(4)]
    norms = fit_per_domain(a + b, ["A"] * 4 + ["B"] * 4)
    assert set(norms) == {"A", "B"}
    for dom, group in (("A", a), ("B", b)):
        z = np.concatenate([norms[dom].transform(f) for f in group])
        np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-5)
    assert norms["B"].mean_.min() > 8 and norms["A"].mean_.max() < 1


def test_normalizer_validates():
    with pytest.raises(RuntimeError, match="not fitted"):
        CorpusNormalizer().transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="at least one frame"):
        CorpusNormalizer().fit([np.zeros((0, 3))])
    with pytest.raises(ValueError, match=r"features\[1\] has 2 dimensions"):
        CorpusNormalizer().fit([np.zeros((2, 3)), np.zeros((2, 2))])
    with pytest.raises(TypeError, match="list of"):
        CorpusNormalizer().fit(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="features must have 3 columns"):
        CorpusNormalizer().fit([np.ones((2, 3))]).transform(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="std_floor"):
        CorpusNormalizer(std_floor=0)
    with pytest.raises(ValueError, match="same length"):
        fit_per_domain([np.zeros((2, 3))], ["a", "b"])
