"""Tests of the speech renderer: format, determinism, and acoustics measured on the output.

The acoustic checks use small, independent estimators defined here (autocorrelation F0,
frame energies, low-band envelope peaks, long-term spectra), never the renderer's internals.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import butter, fftconvolve, find_peaks, lfilter, sosfiltfilt

from affectlab.data.synth import speech
from affectlab.data.synth.speech import (
    EMOTION_PROSODY,
    SAMPLE_RATE,
    Prosody,
    emotion_prosody,
    speaker_voice,
    synthesize_utterance,
)
from affectlab.data.synth.truth import CATEGORIES, ItemTruth

FS = SAMPLE_RATE


def make_truth(category: str = "neutral", *, identity: int = 0, intensity: int = 4,
               style: int = 0, domain: int = 0, dist=None) -> ItemTruth:
    if dist is None:
        dist = np.zeros(len(CATEGORIES))
        dist[CATEGORIES.index(category)] = 1.0
    return ItemTruth(dist=np.asarray(dist, dtype=float), valence=0.0, arousal=0.0,
                     intensity=intensity, identity=identity, style=style, domain=domain)


def render(category="neutral", seed=0, **kw) -> np.ndarray:
    return synthesize_utterance(make_truth(category, **kw), np.random.default_rng(seed))


def first_speaker(female: bool) -> int:
    return next(i for i in range(100) if speaker_voice(i).female is female)


MALE, FEMALE = first_speaker(False), first_speaker(True)


# --- independent acoustic estimators -------------------------------------------------------------

def frames(y: np.ndarray, size: int, hop: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(np.asarray(y, float), size)[::hop]


def best_lag(ac: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """(n_frames,) period lag per row of ``ac``: the shortest local maximum in [lo, hi) within
    10 % of the highest one, so that period doubling (creak, alternating pulses) does not halve
    the estimate."""
    seg = ac[:, lo:hi]
    local_max = np.zeros_like(seg, dtype=bool)
    local_max[:, 1:-1] = (seg[:, 1:-1] >= seg[:, :-2]) & (seg[:, 1:-1] >= seg[:, 2:])
    good = local_max & (seg >= 0.9 * seg.max(axis=1, keepdims=True))
    first = np.argmax(good, axis=1)
    return lo + np.where(good.any(axis=1), first, np.argmax(seg, axis=1))


def median_f0(y: np.ndarray) -> float:
    """Median autocorrelation F0 (50..500 Hz) over loud, clearly periodic 40 ms frames."""
    fr = frames(y, 640, 160)
    energy = (fr ** 2).mean(axis=1)
    fr = fr[energy > 0.2 * energy.max()]
    fr = fr - fr.mean(axis=1, keepdims=True)
    ac = np.fft.irfft(np.abs(np.fft.rfft(fr, 2048, axis=1)) ** 2, axis=1)[:, :400]
    ac = ac / ac[:, :1]
    lag = best_lag(ac, FS // 500, FS // 50)
    periodic = ac[np.arange(len(ac)), lag] > 0.5
    return float(np.median(FS / lag[periodic]))


_BELOW_1K = butter(4, 1000, btype="lowpass", fs=FS, output="sos")


def f0_track(y: np.ndarray) -> np.ndarray:
    """(n_frames,) autocorrelation F0 (60..500 Hz) every 5 ms on the signal below 1 kHz, NaN if
    unvoiced. Short (30 ms) frames so fast glides stay periodic within a frame."""
    size = 480
    fr = frames(sosfiltfilt(_BELOW_1K, np.asarray(y, float)), size, 80)
    fr = fr - fr.mean(axis=1, keepdims=True)
    energy = (fr ** 2).mean(axis=1)
    ac = np.fft.irfft(np.abs(np.fft.rfft(fr, 1024, axis=1)) ** 2, axis=1)[:, :300]
    ac = ac / (ac[:, :1] + 1e-20) * (size / (size - np.arange(300)))  # unbiased
    lag = best_lag(ac, FS // 500, FS // 60)
    voiced = (ac[np.arange(len(ac)), lag] > 0.5) & (energy > 0.01 * energy.max())
    return np.where(voiced, FS / lag, np.nan)


def active_level_db(y: np.ndarray) -> float:
    """RMS level (dBFS) over the 20 ms frames within 10 dB of the loudest."""
    energy = (frames(y, 320, 160) ** 2).mean(axis=1)
    return float(10 * np.log10(energy[energy > 0.1 * energy.max()].mean()))


_NUCLEUS_BAND = butter(2, [300, 1200], btype="bandpass", fs=FS, output="sos")


def syllable_rate(y: np.ndarray) -> float:
    """Vowel nuclei per second: peaks (>= 4 dB prominence) of the 300-1200 Hz envelope."""
    band = sosfiltfilt(_NUCLEUS_BAND, np.asarray(y, float))
    db = 10 * np.log10(np.abs(fftconvolve(band ** 2, np.hanning(481), "same"))[::80] + 1e-12)
    db = np.maximum(db, db.max() - 35)
    peaks, _ = find_peaks(db, prominence=4, distance=14)
    active = np.nonzero(db > db.max() - 25)[0]
    return len(peaks) / ((active[-1] - active[0]) * 80 / FS)


def spectrum(y: np.ndarray, n_fft: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Long-term power spectrum (Welch-style mean of Hann frames) and its frequencies."""
    fr = frames(y, n_fft, n_fft // 2) * np.hanning(n_fft)
    return np.fft.rfftfreq(n_fft, 1 / FS), (np.abs(np.fft.rfft(fr, axis=1)) ** 2).mean(axis=0)


def band_fraction(y: np.ndarray, lo: float, hi: float) -> float:
    f, p = spectrum(y)
    return float(p[(f >= lo) & (f < hi)].sum() / p.sum())


def snr_db(y: np.ndarray) -> float:
    """Loud-frame over quiet-frame energy (95th / 5th percentile of 20 ms frames)."""
    energy = (frames(y, 320, 160) ** 2).mean(axis=1)
    return float(10 * np.log10(np.percentile(energy, 95) / np.percentile(energy, 5)))


def semitones(a: float, b: float) -> float:
    return 12 * np.log2(a / b)


# --- format and determinism ----------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dist=st.lists(st.floats(0, 1), min_size=7, max_size=7),
       intensity=st.integers(1, 5), identity=st.integers(0, 500), style=st.integers(0, 1),
       domain=st.integers(0, 1))
def test_output_is_float32_mono_1_to_3_seconds_with_peak_at_most_1(seed, dist, intensity,
                                                                   identity, style, domain):
    p = np.asarray(dist) + 1e-3
    truth = make_truth(dist=p / p.sum(), intensity=intensity, identity=identity, style=style,
                       domain=domain)
    y = synthesize_utterance(truth, np.random.default_rng(seed))
    assert y.dtype == np.float32 and y.ndim == 1
    assert 1.0 <= len(y) / SAMPLE_RATE <= 3.0
    assert np.isfinite(y).all()
    assert 0.0 < np.max(np.abs(y)) <= 1.0


def test_sample_rate_is_16k():
    assert SAMPLE_RATE == 16000


def test_same_truth_and_seed_give_identical_samples():
    truth = make_truth("happy", identity=3, style=1, domain=1)
    a = synthesize_utterance(truth, np.random.default_rng(42))
    b = synthesize_utterance(truth, np.random.default_rng(42))
    c = synthesize_utterance(truth, np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert len(a) != len(c) or not np.array_equal(a, c)


def test_rng_is_advanced_so_consecutive_items_differ():
    rng = np.random.default_rng(0)
    a, b = (synthesize_utterance(make_truth("sad"), rng) for _ in range(2))
    assert len(a) != len(b) or not np.array_equal(a, b)


def test_durations_spread_over_the_range():
    lengths = np.array([len(render("neutral", seed=s, identity=s % 7)) for s in range(30)]) / FS
    assert lengths.min() < 1.6 and lengths.max() > 2.2


# --- it is a voice, not a tone -------------------------------------------------------------------

def test_spectrum_is_harmonic_with_energy_spread_over_bands():
    y = render("neutral", seed=1, identity=MALE)
    f0 = median_f0(y)
    fr = frames(y, 1024, 256)
    loud = fr[np.argmax((fr ** 2).sum(axis=1))] * np.hanning(1024)
    f = np.fft.rfftfreq(4096, 1 / FS)
    db = 10 * np.log10(np.abs(np.fft.rfft(loud, 4096)) ** 2 + 1e-20)
    # harmonics: a local spectral peak near k*F0 within 50 dB of the strongest, for many k
    near = [np.argmin(np.abs(f - k * f0)) for k in range(1, int(4000 // f0))]
    strong = [i for i in near if db[i - 4:i + 5].max() > db.max() - 50]
    assert len(strong) >= 10
    # several octave bands each hold a real share of the energy (a tone would fill one)
    shares = [band_fraction(y, lo, 2 * lo) for lo in (125, 250, 500, 1000, 2000)]
    assert sum(s > 0.01 for s in shares) >= 4
    assert max(shares) < 0.8


def test_fricatives_put_energy_above_4khz():
    shares = [band_fraction(render("neutral", seed=s), 4000, 8000) for s in range(6)]
    assert np.mean(shares) > 0.002


# --- emotion -> prosody, measured ----------------------------------------------------------------

LOW_AROUSAL = ("sad", "neutral")
HIGH_AROUSAL = ("angry", "happy", "surprised")


@pytest.fixture(scope="module")
def arousal_measures():
    """{(speaker, category): (median F0s, levels, rates)} over 6 seeds at intensity 4."""
    out = {}
    for spk in (MALE, FEMALE):
        for cat in LOW_AROUSAL + HIGH_AROUSAL:
            ys = [render(cat, seed=s, identity=spk, intensity=4) for s in range(6)]
            out[spk, cat] = (np.array([median_f0(y) for y in ys]),
                             np.array([active_level_db(y) for y in ys]),
                             np.array([syllable_rate(y) for y in ys]))
    return out


@pytest.mark.parametrize("spk", [MALE, FEMALE])
def test_high_arousal_has_higher_f0_than_low_arousal(arousal_measures, spk):
    for high in HIGH_AROUSAL:
        for low in LOW_AROUSAL:
            f_high, f_low = arousal_measures[spk, high][0], arousal_measures[spk, low][0]
            assert semitones(np.median(f_high), np.median(f_low)) > 1.5, (high, low)
            assert (f_high > f_low).mean() >= 5 / 6  # same seed = same syllables


@pytest.mark.parametrize("spk", [MALE, FEMALE])
def test_high_arousal_is_louder_than_low_arousal(arousal_measures, spk):
    for high in HIGH_AROUSAL:
        for low in LOW_AROUSAL:
            l_high, l_low = arousal_measures[spk, high][1], arousal_measures[spk, low][1]
            assert l_high.mean() - l_low.mean() > 2.0, (high, low)


@pytest.mark.parametrize("spk", [MALE, FEMALE])
def test_high_arousal_is_faster_than_low_arousal(arousal_measures, spk):
    def rate(cats):
        return np.mean([arousal_measures[spk, c][2] for c in cats])
    assert rate(HIGH_AROUSAL) > 1.1 * rate(LOW_AROUSAL)
    assert arousal_measures[spk, "angry"][2].mean() > 1.25 * arousal_measures[spk, "sad"][2].mean()


def test_anger_has_flatter_spectral_tilt_than_sadness():
    def hf_ratio(cat, s):
        y = render(cat, seed=s, identity=MALE)
        return band_fraction(y, 1000, 4000) / band_fraction(y, 0, 1000)
    ratios = np.array([[hf_ratio("angry", s), hf_ratio("sad", s)] for s in range(4)])
    assert (ratios[:, 0] > 1.4 * ratios[:, 1]).all()
    assert ratios[:, 0].mean() > 2 * ratios[:, 1].mean()


def test_surprise_ends_higher_than_sadness():
    """Boundary tones: surprise rises at the end, sadness falls (a female voice, so that sad
    phrase ends stay inside the tracker's 60 Hz floor)."""
    def final_minus_median(cat, s):
        track = f0_track(render(cat, seed=s, identity=FEMALE, intensity=5))
        voiced = track[~np.isnan(track)]
        return semitones(np.median(voiced[-8:]), np.median(voiced))
    surprise = np.mean([final_minus_median("surprised", s) for s in range(4)])
    sad = np.mean([final_minus_median("sad", s) for s in range(4)])
    assert surprise > sad + 4 and sad < -2


def test_neutral_intensity_does_not_change_the_voice():
    a = render("neutral", seed=5, intensity=1)
    b = render("neutral", seed=5, intensity=5)
    np.testing.assert_array_equal(a, b)


# --- speakers, voice type and domain -------------------------------------------------------------

def test_speakers_differ_in_pitch():
    f_male = np.median([median_f0(render(seed=s, identity=MALE)) for s in range(4)])
    f_female = np.median([median_f0(render(seed=s, identity=FEMALE)) for s in range(4)])
    assert semitones(f_female, f_male) > 5
    ratio = f_female / f_male
    expected = speaker_voice(FEMALE).f0_hz / speaker_voice(MALE).f0_hz
    assert abs(np.log(ratio / expected)) < 0.1


def test_speaker_voices_are_deterministic_and_varied():
    voices = [speaker_voice(i) for i in range(60)]
    assert speaker_voice(7) == voices[7]
    female = np.array([v.female for v in voices])
    assert 0.25 < female.mean() < 0.75
    f0 = np.array([v.f0_hz for v in voices])
    vtl = np.array([v.vtl_cm for v in voices])
    assert f0[female].min() > f0[~female].max() * 1.1 or np.median(f0[female]) > 1.5 * np.median(
        f0[~female])
    assert vtl[female].max() < vtl[~female].min()
    assert len({round(v.rate_sps, 6) for v in voices}) == 60


def test_speaker_does_not_depend_on_rng():
    """Same identity, different item seeds: same pitch level (within accent/drift noise)."""
    f = [median_f0(render(seed=s, identity=FEMALE)) for s in range(4)]
    assert semitones(max(f), min(f)) < 2.5


def test_formants_scale_with_vocal_tract(monkeypatch):
    """Only the tract changes (pitch fixed): the long-term spectrum's centroid moves with it."""
    base = speaker_voice(MALE)
    longer = dataclasses.replace(base, formant_scale=tuple(s / 1.2 for s in base.formant_scale))

    def centroid(y):
        f, p = spectrum(y)
        keep = (f > 150) & (f < 4000)
        return float((f[keep] * p[keep]).sum() / p[keep].sum())

    ratios = []
    for seed in range(3):
        short = render(seed=seed, identity=MALE)
        monkeypatch.setattr(speech, "speaker_voice", lambda identity, style: longer)
        long_ = render(seed=seed, identity=MALE)
        monkeypatch.undo()
        ratios.append(centroid(short) / centroid(long_))
    assert 1.08 < np.mean(ratios) < 1.3


def test_breathy_voice_type_is_less_periodic():
    def periodicity(y):
        fr = frames(y, 640, 160)
        energy = (fr ** 2).mean(axis=1)
        fr = fr[energy > 0.2 * energy.max()]
        fr = fr - fr.mean(axis=1, keepdims=True)
        ac = np.fft.irfft(np.abs(np.fft.rfft(fr, 2048, axis=1)) ** 2, axis=1)[:, :400]
        return float(np.median((ac[:, 32:267] / ac[:, :1]).max(axis=1)))
    for spk in (MALE, FEMALE):
        modal = np.array([periodicity(render(seed=s, identity=spk, style=0)) for s in range(4)])
        breathy = np.array([periodicity(render(seed=s, identity=spk, style=1)) for s in range(4)])
        assert breathy.mean() < modal.mean() - 0.02
        assert (breathy < modal).mean() >= 0.75
    assert speaker_voice(MALE, 1).f0_hz == speaker_voice(MALE, 0).f0_hz


def test_domain_1_is_noisier_and_band_limited():
    d0 = [render("neutral", seed=s, identity=s, domain=0) for s in range(4)]
    d1 = [render("neutral", seed=s, identity=s, domain=1) for s in range(4)]
    snr0, snr1 = np.mean([snr_db(y) for y in d0]), np.mean([snr_db(y) for y in d1])
    assert snr0 > 30 and snr1 < 28 and snr0 - snr1 > 10
    # telephone band: a male voice keeps its low harmonics and fricatives only in domain 0
    for s in range(3):
        y0 = render("neutral", seed=s, identity=MALE, domain=0)
        y1 = render("neutral", seed=s, identity=MALE, domain=1)
        assert band_fraction(y1, 4500, 8000) < 0.05 * band_fraction(y0, 4500, 8000)
        assert band_fraction(y1, 0, 200) < 0.1 * band_fraction(y0, 0, 200)


# --- the building blocks -------------------------------------------------------------------------

def test_resonator_cascade_matches_product_of_2_pole_sections():
    formants = np.array([[500.0, 1500.0, 2500.0, 3500.0, 4500.0]])
    bandwidths = np.array([60.0, 90.0, 150.0, 200.0, 250.0])
    poly = speech._resonator_polys(formants, bandwidths)[0]
    r = np.exp(-np.pi * bandwidths / FS)
    theta = 2 * np.pi * formants[0] / FS
    roots = np.concatenate([r * np.exp(1j * theta), r * np.exp(-1j * theta)])
    np.testing.assert_allclose(poly, np.poly(roots).real, atol=1e-12)
    # a single 2-pole resonator, hand-worked: F = fs/4, B = fs/(2 pi) -> r = e^-0.5, cos = 0
    single = speech._resonator_polys(np.array([[FS / 4]]), np.array([FS / (2 * np.pi)]))[0]
    np.testing.assert_allclose(single, [1.0, 0.0, np.exp(-1.0)], atol=1e-12)


def test_time_varying_tract_with_fixed_formants_equals_one_filter():
    """Rebuilding the filter state at each block from past outputs must be exact."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1000)
    formants = np.tile([600.0, 1700.0, 2600.0, 3400.0, 4300.0], (7, 1))
    bandwidths = np.array([70.0, 100.0, 140.0, 250.0, 300.0])
    y = speech._vocal_tract(x, formants, bandwidths)
    a = speech._resonator_polys(formants[:1], bandwidths)[0]
    np.testing.assert_allclose(y, lfilter([a.sum()], a, x), rtol=1e-9, atol=1e-9)


def test_vocal_tract_peaks_at_its_formants():
    formants = np.tile([700.0, 1200.0, 2600.0, 3400.0, 4300.0], (40, 1))
    impulse = np.zeros(40 * 160)
    impulse[0] = 1.0
    h = speech._vocal_tract(impulse, formants, np.array([60.0, 80.0, 120.0, 200.0, 250.0]))
    f = np.fft.rfftfreq(len(h), 1 / FS)
    mag = np.abs(np.fft.rfft(h))
    peaks, _ = find_peaks(mag)
    top = np.sort(f[peaks[np.argsort(mag[peaks])[-5:]]])
    # each peak sits on its resonance, pulled down a little by the skirts of the lower ones
    np.testing.assert_allclose(top, formants[0], rtol=0.015)
    assert mag[0] == pytest.approx(1.0, rel=1e-3)  # unity DC gain


def test_rosenberg_pulse_shape():
    frac = np.linspace(0, 1, 1001)[:-1]
    flow = speech._rosenberg_flow(frac, 0.6)
    tp, tn = 0.66 * 0.6, 0.34 * 0.6
    assert flow.max() == pytest.approx(1.0, abs=1e-4)
    assert frac[np.argmax(flow)] == pytest.approx(tp, abs=2e-3)
    assert np.all(flow[frac >= tp + tn] == 0.0)          # closed phase
    assert np.all(np.diff(flow[frac < tp]) >= 0)         # opening rises
    assert np.all(np.abs(np.diff(flow)) < 0.02)          # continuous flow


def test_mu_law_round_trip_is_close_and_monotone():
    x = np.linspace(-1, 1, 2001)
    q = speech._mu_law_8bit(x)
    assert np.all(np.diff(q) >= 0)
    assert np.max(np.abs(q - x)) < 0.04
    assert len(np.unique(q)) <= 255


# --- emotion_prosody -----------------------------------------------------------------------------

@pytest.mark.parametrize("intensity", [1, 3, 5])
def test_neutral_prosody_is_the_identity(intensity):
    assert emotion_prosody(make_truth("neutral").dist, intensity) == Prosody()


def test_full_intensity_pure_category_is_its_profile():
    for cat in CATEGORIES:
        got = dataclasses.asdict(emotion_prosody(make_truth(cat).dist, 5))
        want = dataclasses.asdict(EMOTION_PROSODY[cat])
        for k in want:
            assert got[k] == pytest.approx(want[k], abs=1e-12), (cat, k)


def test_half_angry_half_sad_at_intensity_4_hand_worked():
    dist = np.zeros(7)
    dist[CATEGORIES.index("angry")] = dist[CATEGORIES.index("sad")] = 0.5
    p = emotion_prosody(dist, 4)
    angry, sad = EMOTION_PROSODY["angry"], EMOTION_PROSODY["sad"]
    assert p.f0_shift_st == pytest.approx(0.8 * 0.5 * (angry.f0_shift_st + sad.f0_shift_st))
    assert p.rate == pytest.approx((angry.rate * sad.rate) ** (0.5 * 0.8))


@settings(max_examples=50, deadline=None)
@given(w=st.lists(st.floats(0.0, 1.0), min_size=7, max_size=7), intensity=st.integers(1, 5))
def test_prosody_blend_is_linear_in_dist(w, intensity):
    p = np.asarray(w) + 1e-6
    p = p / p.sum()
    got = emotion_prosody(p, intensity)
    g = intensity / 5
    pairs = list(zip(p, CATEGORIES, strict=True))
    want_loud = g * sum(pk * EMOTION_PROSODY[c].loudness_db for pk, c in pairs)
    want_range = np.exp(g * sum(pk * np.log(EMOTION_PROSODY[c].f0_range) for pk, c in pairs))
    assert got.loudness_db == pytest.approx(want_loud, abs=1e-9)
    assert got.f0_range == pytest.approx(want_range, rel=1e-9)


def test_profiles_follow_the_literature_directions():
    """Arousal orders F0, loudness and rate; sadness is breathier and falls at the end."""
    p = EMOTION_PROSODY
    for high in ("angry", "happy", "surprised", "fearful"):
        assert p[high].f0_shift_st > 0 > p["sad"].f0_shift_st
        assert p[high].rate > 1 > p["sad"].rate
        assert p[high].tilt < 0 < p["sad"].tilt
    assert p["angry"].loudness_db == max(q.loudness_db for q in p.values())
    assert p["surprised"].final_st == max(q.final_st for q in p.values())
    assert p["disgusted"].creak == max(q.creak for q in p.values())
    assert p["sad"].breathiness > 0 and p["sad"].final_st < 0


# --- input validation ----------------------------------------------------------------------------

@pytest.mark.parametrize("change, err, match", [
    (dict(dist=np.ones(6) / 6), ValueError, "truth.dist"),
    (dict(dist=np.full(7, np.nan)), ValueError, "truth.dist"),
    (dict(dist=np.full(7, 0.5)), ValueError, "truth.dist"),
    (dict(intensity=0), ValueError, "intensity"),
    (dict(intensity=6), ValueError, "intensity"),
    (dict(intensity=2.5), TypeError, "intensity"),
    (dict(identity=-1), ValueError, "identity"),
    (dict(style=2), ValueError, "style"),
    (dict(domain=2), ValueError, "domain"),
])
def test_bad_truth_is_rejected_with_a_named_argument(change, err, match):
    truth = dataclasses.replace(make_truth("happy"), **change)
    with pytest.raises(err, match=match):
        synthesize_utterance(truth, np.random.default_rng(0))


def test_bad_rng_and_truth_types_are_rejected():
    with pytest.raises(TypeError, match="rng"):
        synthesize_utterance(make_truth(), 0)
    with pytest.raises(TypeError, match="truth"):
        synthesize_utterance({"dist": np.ones(7) / 7}, np.random.default_rng(0))
    with pytest.raises(ValueError, match="identity"):
        speaker_voice(-3)
    with pytest.raises(TypeError, match="style"):
        speaker_voice(1, style="breathy")
