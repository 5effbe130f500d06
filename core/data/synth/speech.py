"""Speech renderer of the generated corpus: 16 kHz utterances from a source-filter voice.

An utterance is a string of 3..10 nonsense syllables (consonant + vowel + optional coda) with
pauses, rendered by a Klatt-style cascade formant synthesiser:

- **source**: a Rosenberg (1971) glottal-flow pulse train, differentiated (lip radiation),
  with per-period jitter and shimmer, a one-pole spectral-tilt filter, optional creak (period
  alternation, lowered F0) and flow-modulated aspiration noise (breathiness);
- **F0 contour** (5 ms frames): speaker level, declination, one pitch accent per stressed syllable
  (peak late for rising, early for falling accents), a final boundary tone and a slow drift;
- **vocal tract**: five 2-pole resonators (Klatt 1980, unity gain at DC) whose F1..F3 move
  linearly between vowel targets (Peterson & Barney 1952, adult male means) and consonant loci,
  all scaled by the speaker's vocal-tract length; updated every 10 ms;
- **consonants**: band-passed noise for fricatives and stop bursts (added after the tract),
  closures as silence (or a weak voice bar), nasals and approximants as weak voiced segments.

Emotion enters through :class:`Prosody`, a set of deviations from the speaker's neutral voice.
Each category has a full-intensity profile following the vocal-affect literature (Banse & Scherer
1996; Scherer 2003; Juslin & Laukka 2003): arousal raises F0 level and range, loudness and rate,
and flattens the spectral tilt; sadness is low, narrow, slow, soft, breathy and falling; anger is
loud, tense, fast, with sharp onsets and jitter; fear high, fast, irregular and breathy; disgust
low, slow and creaky; surprise a large final rise; happiness bright (smile-raised formants) with
rising accents. An item's profile is the ``truth.dist``-weighted blend of the category profiles
(additive fields linearly, multiplicative fields in log space), scaled by ``intensity / 5`` like
the face renderer, so neutral items get the speaker's own voice whatever the intensity.

Speakers come from a generator seeded by the identity alone (never the caller's ``rng``): sex,
pitch level and range, vocal-tract length, rate, level and voice quality. Style 1 is a breathy
voice type. Domain 0 is a close-talk studio recording (~35 dB SNR, full band); domain 1 a
reverberant room (RT60 0.35 s) at ~15 dB SNR heard through a telephone line (300-3400 Hz,
8 kHz sampling, 8-bit mu-law). SNRs are against the reference speech level, so louder speech
is also further above the noise.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np
from scipy.signal import butter, fftconvolve, lfilter, resample_poly, sosfilt

from affectlab.data.synth.truth import CATEGORIES, ItemTruth
from affectlab.validation import as_float_array, check_distribution

SAMPLE_RATE = 16000
N_DOMAINS = 2
MIN_DURATION_S = 1.0
MAX_DURATION_S = 3.0
MIN_SYLLABLES, MAX_SYLLABLES = 3, 10

_FS = float(SAMPLE_RATE)
_FRAME = 80            # F0 control frame, samples (5 ms)
_BLOCK = 160           # formant update block, samples (10 ms)
_REF_RMS = 0.05        # active-speech RMS of a neutral speaker at 0 dB level (-26 dBFS)
_PEAK_MAX = 0.99
_SPEAKER_SEED = 0x5EEC  # namespace of the per-speaker generators
_CHANNEL_SEED = 0xC4A7  # namespace of the per-domain room responses
_DOMAIN_SNR_DB = (35.0, 15.0)

# --- phones --------------------------------------------------------------------------------------

# Peterson & Barney (1952) adult male means, F1..F3 in Hz (ARPAbet names).
VOWELS: dict[str, tuple[float, float, float]] = {
    "iy": (270.0, 2290.0, 3010.0),
    "ih": (390.0, 1990.0, 2550.0),
    "eh": (530.0, 1840.0, 2480.0),
    "ae": (660.0, 1720.0, 2410.0),
    "aa": (730.0, 1090.0, 2440.0),
    "ao": (570.0, 840.0, 2410.0),
    "uh": (440.0, 1020.0, 2240.0),
    "uw": (300.0, 870.0, 2240.0),
    "ah": (640.0, 1190.0, 2390.0),
    "er": (490.0, 1350.0, 1690.0),
}


@dataclass(frozen=True)
class _Consonant:
    manner: str                     # stop | fricative | nasal | approximant | aspirate
    voiced: bool
    locus: tuple[float, float, float] | None  # F1..F3 the formants head for (male scale)
    band: tuple[float, float] | None  # noise band of the burst / frication, Hz
    noise_gain: float               # frication RMS relative to the vowel RMS


CONSONANTS: dict[str, _Consonant] = {
    "p": _Consonant("stop", False, (250.0, 900.0, 2300.0), (400.0, 2000.0), 0.30),
    "t": _Consonant("stop", False, (250.0, 1800.0, 2700.0), (3000.0, 7000.0), 0.45),
    "k": _Consonant("stop", False, (250.0, 2000.0, 2500.0), (1500.0, 3500.0), 0.50),
    "b": _Consonant("stop", True, (250.0, 900.0, 2300.0), (400.0, 2000.0), 0.15),
    "d": _Consonant("stop", True, (250.0, 1800.0, 2700.0), (3000.0, 7000.0), 0.22),
    "g": _Consonant("stop", True, (250.0, 2000.0, 2500.0), (1500.0, 3500.0), 0.25),
    "s": _Consonant("fricative", False, (250.0, 1700.0, 2700.0), (4000.0, 7500.0), 0.35),
    "sh": _Consonant("fricative", False, (250.0, 1900.0, 2500.0), (2000.0, 5000.0), 0.40),
    "f": _Consonant("fricative", False, (250.0, 1000.0, 2300.0), (1200.0, 7500.0), 0.12),
    "z": _Consonant("fricative", True, (250.0, 1700.0, 2700.0), (4000.0, 7500.0), 0.18),
    "h": _Consonant("aspirate", False, None, None, 0.0),
    "m": _Consonant("nasal", True, (250.0, 1000.0, 2300.0), None, 0.0),
    "n": _Consonant("nasal", True, (250.0, 1500.0, 2600.0), None, 0.0),
    "l": _Consonant("approximant", True, (360.0, 1300.0, 2700.0), None, 0.0),
    "r": _Consonant("approximant", True, (420.0, 1300.0, 1600.0), None, 0.0),
    "w": _Consonant("approximant", True, (300.0, 700.0, 2200.0), None, 0.0),
    "y": _Consonant("approximant", True, (280.0, 2200.0, 2900.0), None, 0.0),
}
_ONSETS = tuple(CONSONANTS)
_CODAS = ("m", "n", "s", "f", "t", "k", "l")
_VOWEL_NAMES = tuple(VOWELS)

# Voicing amplitude of each manner relative to a stressed vowel (1.0).
_VOICE_AMP = {"nasal": 0.3, "approximant": 0.5, "fricative": 0.25, "stop": 0.08}
_F45 = (3300.0, 4250.0)                       # F4, F5 for the reference (male) tract
_BANDWIDTHS = np.array([70.0, 100.0, 140.0, 250.0, 300.0])
_REF_VTL_CM = 17.0                            # tract length the vowel table belongs to
_BASE_FINAL_ST = -1.5                         # neutral statements end falling
_DECLINATION_ST = 2.5                         # F0 drop across the utterance, semitones
_CLOSING_PER_TILT = 2.0                       # log closing-phase length per unit of tilt


# --- emotion -> prosody --------------------------------------------------------------------------

@dataclass(frozen=True)
class Prosody:
    """Deviations from a speaker's neutral voice (zero / one for neutral).

    Additive fields: ``f0_shift_st`` (semitones), ``loudness_db``, ``tilt`` (one-pole
    coefficient, + steeper / darker), ``jitter`` and ``shimmer`` (relative period / amplitude
    sd), ``breathiness`` (aspiration level), ``open_quotient``, ``final_st`` (boundary tone,
    semitones), ``accent_rise`` (-1 early-peak falling .. +1 late-peak rising accents),
    ``formant_shift`` (relative, + smile / lip spreading), ``creak`` (0..1), ``pause_prob``.
    Multiplicative fields: ``f0_range`` (accent size), ``rate`` (syllables per second),
    ``attack`` (onset ramp length; < 1 sharper).
    """

    f0_shift_st: float = 0.0
    f0_range: float = 1.0
    loudness_db: float = 0.0
    rate: float = 1.0
    tilt: float = 0.0
    jitter: float = 0.0
    shimmer: float = 0.0
    breathiness: float = 0.0
    open_quotient: float = 0.0
    final_st: float = 0.0
    accent_rise: float = 0.0
    formant_shift: float = 0.0
    creak: float = 0.0
    attack: float = 1.0
    pause_prob: float = 0.0


_MULTIPLICATIVE = frozenset({"f0_range", "rate", "attack"})
_PROSODY_FIELDS = tuple(f.name for f in fields(Prosody))

# Full-intensity (intensity 5) profiles, after Banse & Scherer (1996), Scherer (2003) and
# Juslin & Laukka (2003): directions from their tables, sizes chosen to be clearly audible.
EMOTION_PROSODY: dict[str, Prosody] = {
    "neutral": Prosody(),
    "happy": Prosody(f0_shift_st=3.5, f0_range=1.6, loudness_db=4.0, rate=1.12, tilt=-0.2,
                     final_st=2.0, accent_rise=1.0, formant_shift=0.06, attack=0.75),
    "sad": Prosody(f0_shift_st=-3.0, f0_range=0.45, loudness_db=-7.0, rate=0.68, tilt=0.3,
                   jitter=0.005, shimmer=0.03, breathiness=0.45, open_quotient=0.15,
                   final_st=-1.5, accent_rise=-0.7, formant_shift=-0.03, creak=0.15,
                   attack=2.2, pause_prob=0.2),
    "angry": Prosody(f0_shift_st=4.5, f0_range=1.75, loudness_db=9.0, rate=1.3, tilt=-0.6,
                     jitter=0.015, shimmer=0.06, breathiness=-0.05, open_quotient=-0.15,
                     final_st=-2.5, accent_rise=-0.6, formant_shift=0.01, attack=0.35,
                     pause_prob=-0.05),
    "fearful": Prosody(f0_shift_st=6.5, f0_range=1.15, loudness_db=2.5, rate=1.35, tilt=-0.2,
                       jitter=0.025, shimmer=0.05, breathiness=0.4, open_quotient=0.06,
                       final_st=1.5, accent_rise=0.3, formant_shift=0.02, attack=0.7,
                       pause_prob=0.08),
    "disgusted": Prosody(f0_shift_st=-2.5, f0_range=0.85, loudness_db=-1.5, rate=0.78,
                         tilt=0.05, jitter=0.012, shimmer=0.05, open_quotient=-0.06,
                         final_st=-3.0, accent_rise=-0.5, formant_shift=-0.04, creak=0.7,
                         attack=1.3, pause_prob=0.08),
    "surprised": Prosody(f0_shift_st=4.0, f0_range=1.7, loudness_db=4.0, rate=1.05, tilt=-0.25,
                         jitter=0.004, breathiness=0.05, final_st=8.0, accent_rise=1.0,
                         formant_shift=0.04, attack=0.7),
}
assert tuple(EMOTION_PROSODY) == CATEGORIES


def _profile_matrix() -> np.ndarray:
    """(7, n_fields) category profiles; multiplicative fields stored as logs."""
    rows = []
    for cat in CATEGORIES:
        p = EMOTION_PROSODY[cat]
        rows.append([np.log(getattr(p, f)) if f in _MULTIPLICATIVE else getattr(p, f)
                     for f in _PROSODY_FIELDS])
    return np.array(rows)


_PROFILES = _profile_matrix()


def emotion_prosody(dist, intensity: int) -> Prosody:
    """Blend the category profiles by ``dist`` (7,) and scale by ``intensity / 5``.

    Additive fields are ``intensity/5 * sum_k dist_k * v_k``; multiplicative fields
    ``exp(intensity/5 * sum_k dist_k * log v_k)`` (a geometric blend).
    """
    p = _check_dist(dist)
    gain = _check_intensity(intensity) / 5.0
    blended = gain * (p @ _PROFILES)
    values = {f: float(np.exp(v)) if f in _MULTIPLICATIVE else float(v)
              for f, v in zip(_PROSODY_FIELDS, blended, strict=True)}
    return Prosody(**values)


# --- speakers ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SpeakerVoice:
    """A speaker's neutral voice (deterministic in identity and style).

    ``formant_scale`` (3,) multiplies F1..F3: reference tract length / the speaker's, times a
    small per-formant idiosyncrasy. ``rate_sps`` is syllables per second; ``level_db`` the
    speaker's loudness against the reference level.
    """

    identity: int
    style: int
    female: bool
    f0_hz: float
    f0_range_st: float
    vtl_cm: float
    formant_scale: tuple[float, float, float]
    rate_sps: float
    level_db: float
    jitter: float
    shimmer: float
    breathiness: float
    open_quotient: float
    tilt: float
    pause_prob: float


def speaker_voice(identity: int, style: int = 0) -> SpeakerVoice:
    """The voice of speaker ``identity`` (int >= 0) in voice type ``style`` (0 modal, 1 breathy).

    Drawn from ``default_rng([seed, identity])``: the same speaker sounds the same in every item
    and in every corpus, whatever generator renders the item. Style 1 changes only the voice
    quality (aspiration, open quotient, tilt), not pitch, tract or rate.
    """
    identity = _check_int(identity, "identity", low=0)
    style = _check_int(style, "style", low=0, high=1)
    return _speaker_voice(identity, style)


@lru_cache(maxsize=4096)
def _speaker_voice(identity: int, style: int) -> SpeakerVoice:
    g = np.random.default_rng([_SPEAKER_SEED, identity])
    female = bool(g.random() < 0.5)
    if female:
        f0 = 205.0 * np.exp(g.normal(0.0, 0.1))
        vtl = g.uniform(13.5, 15.5)
    else:
        f0 = 115.0 * np.exp(g.normal(0.0, 0.1))
        vtl = g.uniform(16.0, 18.5)
    idio = g.uniform(0.97, 1.03, size=3)
    scale = tuple(float(s) for s in (_REF_VTL_CM / vtl) * idio)
    breath = g.uniform(0.02, 0.12) + (0.05 if female else 0.0)
    oq = g.uniform(0.5, 0.6) + (0.08 if female else 0.0)
    tilt = g.uniform(0.3, 0.55)
    voice = dict(
        f0_range_st=g.uniform(2.0, 4.5), rate_sps=g.uniform(3.6, 5.2),
        level_db=g.uniform(-2.0, 2.0), jitter=g.uniform(0.004, 0.008),
        shimmer=g.uniform(0.02, 0.04), pause_prob=g.uniform(0.1, 0.25),
    )
    if style == 1:  # breathy voice type: more aspiration, longer open phase, darker spectrum
        breath += 0.35
        oq += 0.15
        tilt += 0.2
    return SpeakerVoice(identity=identity, style=style, female=female, f0_hz=float(f0),
                        vtl_cm=float(vtl), formant_scale=scale, breathiness=float(breath),
                        open_quotient=float(oq), tilt=float(tilt),
                        **{k: float(v) for k, v in voice.items()})


# --- input checks --------------------------------------------------------------------------------

def _check_int(value, name: str, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def _check_intensity(intensity) -> int:
    return _check_int(intensity, "intensity", low=1, high=5)


def _check_dist(dist) -> np.ndarray:
    p = as_float_array(dist, "truth.dist", ndim=1)
    if p.shape != (len(CATEGORIES),):
        raise ValueError(f"truth.dist must have shape ({len(CATEGORIES)},), got {p.shape}")
    return check_distribution(p, "truth.dist")


def _check_truth(truth) -> None:
    if not isinstance(truth, ItemTruth):
        raise TypeError(f"truth must be an ItemTruth, got {type(truth).__name__}")
    _check_dist(truth.dist)
    _check_intensity(truth.intensity)
    _check_int(truth.identity, "truth.identity", low=0)
    _check_int(truth.style, "truth.style", low=0, high=1)
    _check_int(truth.domain, "truth.domain", low=0, high=N_DOMAINS - 1)


# --- the utterance plan --------------------------------------------------------------------------

@dataclass
class _Segment:
    kind: str                   # vowel | stop | burst | aspiration | fricative | nasal | ...
    start: int                  # samples
    end: int
    voice: float = 0.0          # voicing amplitude
    asp: float = 0.0            # aspiration noise fed to the tract ("h", stop release)
    formants: tuple[float, float, float] | None = None
    band: tuple[float, float] | None = None
    noise_gain: float = 0.0
    stressed: bool = False


@dataclass
class _Plan:
    segments: list[_Segment]
    vowels: list[_Segment]      # one per syllable, in order
    n_samples: int
    speech_start: int
    speech_end: int


def _syllable_phones(onset: str | None, coda: str | None, vowel: str, dur: float,
                     stressed: bool, attack_s: float) -> list[tuple]:
    """(kind, seconds, voice, asp, formants, band, gain) pieces of one syllable."""
    pieces = []
    v_amp = 1.0 if stressed else 0.7
    if onset is not None:
        c = CONSONANTS[onset]
        if c.manner == "stop":
            pieces.append(("closure", 0.17 * dur, _VOICE_AMP["stop"] if c.voiced else 0.0, 0.0,
                           c.locus, None, 0.0))
            pieces.append(("burst", max(0.008, 0.04 * dur), 0.15 if c.voiced else 0.0, 0.0,
                           c.locus, c.band, c.noise_gain))
            if not c.voiced:
                pieces.append(("aspiration", 0.07 * dur, 0.0, 0.5, None, None, 0.0))
        elif c.manner == "fricative":
            pieces.append(("fricative", 0.28 * dur, _VOICE_AMP["fricative"] if c.voiced else 0.0,
                           0.0, c.locus, c.band, c.noise_gain))
        elif c.manner == "aspirate":
            pieces.append(("aspiration", 0.2 * dur, 0.0, 0.6, None, None, 0.0))
        else:
            pieces.append((c.manner, 0.22 * dur, _VOICE_AMP[c.manner], 0.0, c.locus, None, 0.0))
    used = sum(p[1] for p in pieces)
    coda_dur = 0.2 * dur if coda is not None else 0.0
    vowel_dur = max(dur - used - coda_dur, 2.5 * attack_s, 0.05)
    pieces.append(("vowel", vowel_dur, v_amp, 0.0, VOWELS[vowel], None, 0.0))
    if coda is not None:
        c = CONSONANTS[coda]
        if c.manner == "stop":  # unreleased-ish: closure then a weak burst
            pieces.append(("closure", 0.7 * coda_dur, 0.0, 0.0, c.locus, None, 0.0))
            pieces.append(("burst", 0.3 * coda_dur, 0.0, 0.0, c.locus, c.band,
                           0.5 * c.noise_gain))
        elif c.manner == "fricative":
            pieces.append(("fricative", coda_dur, 0.0, 0.0, c.locus, c.band, c.noise_gain))
        else:
            pieces.append((c.manner, coda_dur, _VOICE_AMP[c.manner], 0.0, c.locus, None, 0.0))
    return pieces


def _plan_utterance(voice: SpeakerVoice, pros: Prosody, rng: np.random.Generator) -> _Plan:
    """Syllables, pauses and silences, with the count fitted so the total lies in 1..3 s."""
    n_max = MAX_SYLLABLES
    n_wanted = int(rng.integers(MIN_SYLLABLES, MAX_SYLLABLES + 1))
    mean_dur = 1.0 / (voice.rate_sps * pros.rate)
    attack_s = float(np.clip(0.015 * pros.attack, 0.004, 0.06))
    stressed = rng.random(n_max) < 0.35
    stressed[0] = rng.random() < 0.6
    if not stressed.any():
        stressed[int(rng.integers(n_max))] = True
    dur = mean_dur * rng.uniform(0.85, 1.15, n_max) * np.where(stressed, 1.2, 0.9)
    onsets = [None if u < 0.12 else _ONSETS[int(i)] for u, i in
              zip(rng.random(n_max), rng.integers(len(_ONSETS), size=n_max), strict=True)]
    codas = [_CODAS[int(i)] if u < 0.3 else None for u, i in
             zip(rng.random(n_max), rng.integers(len(_CODAS), size=n_max), strict=True)]
    vowels = [_VOWEL_NAMES[int(i)] for i in rng.integers(len(_VOWEL_NAMES), size=n_max)]
    p_pause = float(np.clip(voice.pause_prob + pros.pause_prob, 0.0, 0.6))
    pauses = np.where(rng.random(n_max) < p_pause,
                      rng.uniform(0.08, 0.22, n_max) / np.sqrt(pros.rate), 0.0)
    lead, trail = rng.uniform(0.08, 0.18), rng.uniform(0.12, 0.22)

    sylls = [_syllable_phones(onsets[i], codas[i], vowels[i], float(dur[i]), bool(stressed[i]),
                              attack_s) for i in range(n_max)]
    syl_len = np.array([sum(p[1] for p in s) for s in sylls])

    def total(n: int) -> float:
        return lead + trail + syl_len[:n].sum() + pauses[:n - 1].sum()

    n = n_wanted
    while n < n_max and total(n) < MIN_DURATION_S:
        n += 1
    while n > MIN_SYLLABLES and total(n) > MAX_DURATION_S - 0.01:
        n -= 1
    squeeze = min(1.0, (MAX_DURATION_S - 0.01 - lead - trail) / (total(n) - lead - trail))
    trail += max(0.0, MIN_DURATION_S + 0.01 - total(n))

    segments: list[_Segment] = [_Segment("silence", 0, int(round(lead * _FS)))]
    vowel_segs: list[_Segment] = []
    t = lead
    for i in range(n):
        for kind, sec, v_amp, asp, formants, band, gain in sylls[i]:
            start = int(round(t * _FS))
            t += sec * squeeze
            seg = _Segment(kind, start, int(round(t * _FS)), v_amp, asp, formants, band, gain,
                           bool(stressed[i]))
            segments.append(seg)
            if kind == "vowel":
                vowel_segs.append(seg)
        if i < n - 1 and pauses[i] > 0.0:
            start = int(round(t * _FS))
            t += pauses[i] * squeeze
            segments.append(_Segment("silence", start, int(round(t * _FS))))
    speech_end = int(round(t * _FS))
    n_samples = int(round((t + trail) * _FS))
    segments.append(_Segment("silence", speech_end, n_samples))
    return _Plan(segments, vowel_segs, n_samples, int(round(lead * _FS)), speech_end)


# --- control tracks ------------------------------------------------------------------------------

def _envelope(plan: _Plan, attr: str, ramp: int, n: int) -> np.ndarray:
    """(n,) piecewise-linear track through each segment's ``attr`` with ramps at boundaries.

    The segments tile ``[0, n)`` (silences included), so every sample gets a value.
    """
    xs, ys = [], []
    for seg in plan.segments:
        r = min(ramp, (seg.end - seg.start) // 3)
        value = getattr(seg, attr)
        xs += [seg.start + r, seg.end - r]
        ys += [value, value]
    return np.interp(np.arange(n), xs, ys)


def _formant_tracks(plan: _Plan, voice: SpeakerVoice, pros: Prosody,
                    centres: np.ndarray) -> np.ndarray:
    """(n_blocks, 5) formant frequencies at the block centres, Hz."""
    xs, targets = [], []
    for seg in plan.segments:
        if seg.formants is None:
            continue
        if seg.kind == "vowel":  # steady state over the middle half
            length = seg.end - seg.start
            xs += [seg.start + 0.3 * length, seg.end - 0.3 * length]
            targets += [seg.formants, seg.formants]
        else:
            xs.append(0.5 * (seg.start + seg.end))
            targets.append(seg.formants)
    targets = np.asarray(targets)
    f123 = np.stack([np.interp(centres, xs, targets[:, k]) for k in range(3)], axis=1)
    # lip spreading (smile) raises F2/F3 more than F1
    smile = 1.0 + pros.formant_shift * np.array([0.5, 1.0, 1.0])
    f123 = f123 * np.asarray(voice.formant_scale) * smile
    mean_scale = float(np.mean(voice.formant_scale))
    f45 = np.broadcast_to(np.array(_F45) * mean_scale, (len(centres), 2))
    out = np.concatenate([f123, f45], axis=1)
    # keep the resonators ordered and below Nyquist
    out[:, 1] = np.maximum(out[:, 1], out[:, 0] + 200.0)
    out[:, 2] = np.maximum(out[:, 2], out[:, 1] + 200.0)
    out[:, 3] = np.maximum(out[:, 3], out[:, 2] + 300.0)
    out[:, 4] = np.clip(np.maximum(out[:, 4], out[:, 3] + 300.0), None, 0.45 * _FS)
    return out


def _f0_contour(plan: _Plan, voice: SpeakerVoice, pros: Prosody,
                rng: np.random.Generator) -> np.ndarray:
    """(n_frames,) F0 in Hz at the 5 ms frame centres (before jitter and creak)."""
    n_frames = plan.n_samples // _FRAME + 2
    t = (np.arange(n_frames) + 0.5) * _FRAME
    span = max(plan.speech_end - plan.speech_start, 1)
    pos = np.clip((t - plan.speech_start) / span, 0.0, 1.0)
    st = pros.f0_shift_st + _DECLINATION_ST * (0.5 - pos)
    accent = voice.f0_range_st * pros.f0_range
    for seg in plan.vowels:
        if not seg.stressed:
            continue
        length = seg.end - seg.start
        peak = 0.5 * (seg.start + seg.end) + 0.35 * length * pros.accent_rise
        width = 0.45 * length + 0.02 * _FS
        st = st + accent * rng.uniform(0.6, 1.0) * np.exp(-0.5 * ((t - peak) / width) ** 2)
    last = plan.vowels[-1]  # the boundary tone runs from the last vowel to the end of speech
    final = np.clip((t - last.start) / max(plan.speech_end - last.start, 1), 0.0, 1.0)
    st = st + (_BASE_FINAL_ST + pros.final_st) * final
    # slow drift: smoothed noise, ~0.4 st
    drift = np.convolve(rng.standard_normal(n_frames + 40), np.hanning(41), mode="valid")
    st = st + 0.4 * drift[:n_frames] / np.sqrt(np.sum(np.hanning(41) ** 2))
    return np.clip(voice.f0_hz * 2.0 ** (st / 12.0), 60.0, 600.0)


# --- source --------------------------------------------------------------------------------------

def _rosenberg_flow(frac: np.ndarray, open_quotient: float, closing: float = 1.0) -> np.ndarray:
    """Rosenberg (1971) type-C glottal flow in [0, 1] at period fractions ``frac`` in [0, 1).

    ``closing`` scales the closing phase: a faster closure (tense, loud voice) excites more
    high-frequency energy.
    """
    tp = 0.66 * open_quotient                           # opening phase
    tn = min(0.34 * open_quotient * closing, 0.98 - tp)  # closing phase
    flow = np.zeros_like(frac)
    opening = frac < tp
    closing = ~opening & (frac < tp + tn)
    flow[opening] = 0.5 * (1.0 - np.cos(np.pi * frac[opening] / tp))
    flow[closing] = np.cos(0.5 * np.pi * (frac[closing] - tp) / tn)
    return flow


def _glottal_source(f0: np.ndarray, voicing: np.ndarray, aspiration: np.ndarray,
                    creak: np.ndarray, voice: SpeakerVoice, pros: Prosody,
                    rng: np.random.Generator) -> np.ndarray:
    """(n,) excitation: differentiated pulse train with jitter/shimmer/tilt + aspiration noise.

    ``f0``, ``voicing``, ``aspiration`` and ``creak`` are per-sample (n,) tracks.
    """
    n = len(f0)
    f0 = f0 * (1.0 - 0.45 * creak)  # creak: low, irregular, alternating periods
    inc = f0 / _FS
    n_periods = int(np.sum(inc)) + 3
    jitter = max(voice.jitter + pros.jitter, 0.0)
    shimmer = max(voice.shimmer + pros.shimmer, 0.0)
    period_scale = np.exp(jitter * np.clip(rng.standard_normal(n_periods), -3, 3))
    period_amp = np.exp(shimmer * np.clip(rng.standard_normal(n_periods), -3, 3))
    k = np.minimum(np.cumsum(inc).astype(np.int64), n_periods - 1)
    # second pass: each period's length scaled by its own jitter factor (plus creak's extra)
    irregular = 1.0 + 0.08 * creak * rng.standard_normal(n_periods)[k]
    phase = np.cumsum(inc / (period_scale[k] * np.clip(irregular, 0.7, 1.3)))
    k = np.minimum(phase.astype(np.int64), n_periods - 1)
    oq = float(np.clip(voice.open_quotient + pros.open_quotient, 0.3, 0.9))
    closing = float(np.exp(_CLOSING_PER_TILT * pros.tilt))
    flow = _rosenberg_flow(phase - np.floor(phase), oq, closing)
    exc = np.diff(flow, prepend=0.0) * period_amp[k] * (1.0 - 0.6 * creak * (k % 2))
    a = float(np.clip(voice.tilt + pros.tilt, -0.6, 0.9))
    if a >= 0.0:   # one-pole low-pass: steeper tilt
        exc = lfilter([1.0 - a], [1.0, -a], exc)
    else:          # first-difference emphasis: flatter tilt, more high-frequency energy
        exc = lfilter([1.0, a], [1.0], exc)
    voiced = voicing > 0.3
    exc = exc / (np.sqrt(np.mean(exc[voiced] ** 2)) if voiced.any() else 1.0)
    noise = lfilter([1.0, -1.0], [1.0, -0.9], rng.standard_normal(n))  # white above ~300 Hz
    breath = max(voice.breathiness + pros.breathiness, 0.0)
    noise_env = 0.8 * breath * voicing * (0.3 + flow) + aspiration
    return exc * voicing + noise * noise_env


# --- vocal tract ---------------------------------------------------------------------------------

def _resonator_polys(formants: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    """(n_blocks, 11) denominators of the cascade of five 2-pole resonators per block.

    Each resonator is ``1 - 2 r cos(theta) z^-1 + r^2 z^-2`` with ``r = exp(-pi B / fs)``,
    ``theta = 2 pi F / fs`` (Klatt 1980); the cascade is their product.
    """
    r = np.exp(-np.pi * bandwidths / _FS)
    c1 = -2.0 * r * np.cos(2.0 * np.pi * formants / _FS)
    c2 = np.broadcast_to(r * r, formants.shape)
    poly = np.ones((len(formants), 1))
    for j in range(formants.shape[1]):
        nxt = np.zeros((len(formants), poly.shape[1] + 2))
        nxt[:, :-2] += poly
        nxt[:, 1:-1] += c1[:, j:j + 1] * poly
        nxt[:, 2:] += c2[:, j:j + 1] * poly
        poly = nxt
    return poly


_ORDER = 10
# DF2T state of an all-pole filter from its last outputs: z_k = -sum_{m>k} a_m y[n+k-m].
_ZI_IDX = np.array([[_ORDER + k - m if m > k else 0 for m in range(1, _ORDER + 1)]
                    for k in range(_ORDER)])
_ZI_MASK = np.array([[1.0 if m > k else 0.0 for m in range(1, _ORDER + 1)]
                     for k in range(_ORDER)])


def _vocal_tract(source: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    """(n,) ``source`` through the time-varying resonator cascade, one setting per 10 ms block.

    Unity gain at DC per resonator. The filter state at each block start is rebuilt from the
    actual past outputs for the new coefficients (direct-form-I behaviour), so coefficient
    changes do not click.
    """
    polys = _resonator_polys(formants, bandwidths)
    gains = polys.sum(axis=1)                 # unity DC gain: b0 = A(1)
    n = len(source)
    y = np.zeros(n + _ORDER)                  # _ORDER leading zeros hold the initial history
    for i, a in enumerate(polys):
        s = i * _BLOCK
        if s >= n:
            break
        e = min(s + _BLOCK, n)
        history = y[s:s + _ORDER]             # y[s-ORDER .. s-1] in signal time
        zi = -((history[_ZI_IDX] * _ZI_MASK) @ a[1:])
        y[s + _ORDER:e + _ORDER], _ = lfilter(gains[i:i + 1], a, source[s:e], zi=zi)
    return y[_ORDER:]


# --- consonant noise -----------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _band_sos(lo: float, hi: float) -> np.ndarray:
    return butter(2, [lo, min(hi, 0.47 * _FS)], btype="bandpass", fs=_FS, output="sos")


def _add_frication(out: np.ndarray, plan: _Plan, rng: np.random.Generator) -> None:
    """Add band-passed noise for fricatives and bursts to ``out`` (n,) in place."""
    for seg in plan.segments:
        if seg.band is None or seg.end <= seg.start:
            continue
        length = seg.end - seg.start
        noise = sosfilt(_band_sos(*seg.band), rng.standard_normal(length + 64))[64:]
        noise /= np.sqrt(np.mean(noise ** 2)) + 1e-12
        if seg.kind == "burst":   # sharp onset, fast exponential decay
            env = np.exp(-np.arange(length) / max(0.3 * length, 1.0))
        else:                     # fricative: 15 ms raised-cosine ramps
            r = min(int(0.015 * _FS), length // 2)
            env = np.ones(length)
            if r > 0:
                ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(r) / r)
                env[:r] = ramp
                env[length - r:] = ramp[::-1]
        out[seg.start:seg.end] += seg.noise_gain * noise * env


# --- channel -------------------------------------------------------------------------------------

@lru_cache(maxsize=N_DOMAINS)
def _room_response(domain: int) -> np.ndarray | None:
    """Domain 1's room: direct path plus exponentially decaying noise, RT60 0.35 s."""
    if domain == 0:
        return None
    g = np.random.default_rng([_CHANNEL_SEED, domain])
    n = int(0.3 * _FS)
    t = np.arange(n) / _FS
    tail = g.standard_normal(n) * np.exp(-6.9 * t / 0.35)   # -60 dB at RT60
    tail[: int(0.004 * _FS)] = 0.0                          # first reflections after 4 ms
    tail *= 0.5 / np.sqrt(np.sum(tail ** 2))                 # direct-to-reverberant ~ +6 dB
    tail[0] = 1.0
    return tail


@lru_cache(maxsize=N_DOMAINS)
def _channel_sos(domain: int) -> np.ndarray:
    if domain == 0:  # studio microphone: rumble filter only
        return butter(2, 60.0, btype="highpass", fs=_FS, output="sos")
    return butter(4, [300.0, 3400.0], btype="bandpass", fs=_FS, output="sos")  # telephone


def _mu_law_8bit(x: np.ndarray, mu: float = 255.0) -> np.ndarray:
    """G.711-style companding round trip: 8-bit quantisation on a logarithmic scale."""
    x = np.clip(x, -1.0, 1.0)
    code = np.round(127.0 * np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)) / 127.0
    return np.sign(code) * np.expm1(np.abs(code) * np.log1p(mu)) / mu


def _channel(speech: np.ndarray, domain: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) speech as recorded in ``domain``: room, background noise, channel.

    Domain 1's channel is a telephone line: 300-3400 Hz band-pass, 8 kHz sampling and 8-bit
    mu-law coding, played back at 16 kHz (so nothing above 4 kHz survives).
    """
    n = len(speech)
    room = _room_response(domain)
    if room is not None:
        speech = fftconvolve(speech, room)[:n]
    noise = lfilter([1.0], [1.0, -0.9], rng.standard_normal(n))  # pinkish background
    noise *= _REF_RMS * 10.0 ** (-_DOMAIN_SNR_DB[domain] / 20.0) / np.sqrt(np.mean(noise ** 2))
    out = sosfilt(_channel_sos(domain), speech + noise)
    if domain == 1:
        narrow = _mu_law_8bit(resample_poly(out, 1, 2))
        out = resample_poly(narrow, 2, 1)[:n]
    return out


# --- the renderer --------------------------------------------------------------------------------

def synthesize_utterance(truth: ItemTruth, rng: np.random.Generator) -> np.ndarray:
    """Render one utterance of ``truth`` as (n_samples,) float32 mono audio at SAMPLE_RATE.

    1 s <= n_samples / SAMPLE_RATE <= 3 s and the peak is <= 1. Deterministic given ``truth``
    and the state of ``rng`` (the speaker's voice depends on ``truth.identity`` and
    ``truth.style`` only).
    """
    _check_truth(truth)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    voice = speaker_voice(int(truth.identity), int(truth.style))
    pros = emotion_prosody(truth.dist, int(truth.intensity))

    plan = _plan_utterance(voice, pros, rng)
    n = plan.n_samples
    attack = int(np.clip(0.015 * pros.attack, 0.004, 0.06) * _FS)
    voicing = _envelope(plan, "voice", attack, n)
    voicing *= np.interp(np.arange(n), [plan.speech_start, plan.speech_end], [1.0, 0.75])
    aspiration = _envelope(plan, "asp", int(0.01 * _FS), n)
    frames = _f0_contour(plan, voice, pros, rng)
    f0 = np.interp(np.arange(n), (np.arange(len(frames)) + 0.5) * _FRAME, frames)
    # creak grows over the last 40 % of the utterance (phrase-final vocal fry)
    pos = (np.arange(n) - plan.speech_start) / max(plan.speech_end - plan.speech_start, 1)
    creak = float(np.clip(pros.creak, 0.0, 1.0)) * np.clip((pos - 0.6) / 0.3, 0.0, 1.0)

    source = _glottal_source(f0, voicing, aspiration, creak, voice, pros, rng)
    centres = (np.arange((n + _BLOCK - 1) // _BLOCK) + 0.5) * _BLOCK
    formants = _formant_tracks(plan, voice, pros, centres)
    bandwidths = _BANDWIDTHS + (40.0 * np.array([1, 0.5, 0, 0, 0]) if voice.style == 1 else 0.0)
    speech = _vocal_tract(source, formants, bandwidths)
    active = voicing > 0.3
    speech /= np.sqrt(np.mean(speech[active] ** 2)) + 1e-12
    _add_frication(speech, plan, rng)
    speech *= _REF_RMS * 10.0 ** ((voice.level_db + pros.loudness_db) / 20.0)

    out = _channel(speech, int(truth.domain), rng)
    peak = np.max(np.abs(out))
    if peak > _PEAK_MAX:  # a limiter, for the loudest angry speakers
        out *= _PEAK_MAX / peak
    return out.astype(np.float32)
