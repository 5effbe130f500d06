"""The generated benchmark corpus (DESIGN.md, "The embedded benchmark corpus"; SPEC §7).

``generate_corpus`` samples each item's hidden truth, renders it (a 64×64 face or a 16 kHz
utterance), simulates raters, draws a single dataset label with a known fraction flipped, and
writes one dataset directory through :func:`affectlab.data.contract.write_dataset`.

Truth of one item (``sample_truths``):

- a dominant category d (uniform, or ``class_prior``) and a second one s ≠ d, drawn with
  P(s | d) ∝ exp(−‖c_d − c_s‖ / 0.5) over the circumplex positions c, so the mixtures that occur
  are the plausible ones (angry with fearful or disgusted more than with happy);
- ambiguity a = 0.43·Beta(2, 3) ∈ [0, 0.43) and a little spread σ = 0.05 over all categories:
  dist = (1 − a − σ)·onehot(d) + a·onehot(s) + σ·Dirichlet(1, …, 1). d keeps the largest mass
  (≥ 0.52 against ≤ 0.48), so ``true_label`` = argmax(dist) = d;
- intensity level I ∈ 1..5; valence and arousal = (0.2 + 0.2·I)·Σ_k dist_k·c_k + N(0, 0.05²),
  clipped to [-1, 1]: a weak expression sits near the circumplex origin, a full one (I = 5) at
  the categories' positions. **Neutral**: neutral sits at the origin, so its intensity only
  scales the trace of the second category; neutral-dominant items are weak by construction and
  get I ∈ {1, 2} (P = 0.7, 0.3) while the others get I ~ (0.10, 0.20, 0.30, 0.25, 0.15);
- identity (subject / speaker) uniform over ``n_identities``; style (face: glasses, drawn per
  item; speech: breathy voice, a trait of ``round(style_rate·n_identities)`` speakers);
- domain uniform over 0..n_domains−1 (named "synth-A", "synth-B", …), independent of identity.

Randomness: one ``np.random.SeedSequence(seed)`` with a fixed child per purpose (truths, rater
pool, ratings, labels, splits) and one per item for rendering (spawn key (100, i)), so output
does not depend on the number of worker processes and the same arguments give byte-identical
files.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affectlab.data.contract import ContractError, DatasetDir, load_dataset, write_dataset
from affectlab.data.schema import DatasetMeta, IntervalScale, LabelSet, NominalScale, OrdinalScale
from affectlab.data.synth import raters as _raters
from affectlab.data.synth.truth import CATEGORIES, CIRCUMPLEX, ItemTruth
from affectlab.paths import require_product_dir

GENERATOR = "affectlab.synth"
GENERATOR_VERSION = 1
MODALITIES = ("face", "speech")
MAX_DOMAINS = 4
MIN_ITEMS = 10
MAX_FLIP_RATE = 0.9
SPLIT_FRACTIONS = (("train", 0.70), ("val", 0.15), ("test", 0.15))
STYLE_NAMES = {"face": ("plain", "glasses"), "speech": ("modal", "breathy")}
DEFAULT_CORPORA = {"faces-default": ("face", 2000), "speech-default": ("speech", 600)}

K = len(CATEGORIES)
AMBIGUITY_MAX = 0.43
SPREAD = 0.05
VA_NOISE_SD = 0.05
INTENSITY_PRIOR = np.array([0.10, 0.20, 0.30, 0.25, 0.15])
NEUTRAL_INTENSITY_PRIOR = np.array([0.7, 0.3, 0.0, 0.0, 0.0])

# SeedSequence spawn keys: fixed per purpose so adding a stream never shifts another
_STREAM_TRUTH, _STREAM_POOL, _STREAM_RATINGS, _STREAM_LABELS, _STREAM_SPLIT = range(5)
_STREAM_RENDER = 100

Renderer = Callable[[ItemTruth, np.random.Generator], np.ndarray]


# -- truth ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TruthBatch:
    """The hidden truth of n items, as arrays. ``item(i)`` gives one :class:`ItemTruth`.

    dist (n, K) · valence, arousal (n,) in [-1, 1] · intensity (n,) 1..5 · identity (n,) ·
    style (n,) 0/1 · domain (n,) · dominant, second (n,) category indices · ambiguity (n,)
    """

    dist: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    intensity: np.ndarray
    identity: np.ndarray
    style: np.ndarray
    domain: np.ndarray
    dominant: np.ndarray
    second: np.ndarray
    ambiguity: np.ndarray

    def __len__(self) -> int:
        return int(self.dist.shape[0])

    def item(self, i: int) -> ItemTruth:
        return ItemTruth(dist=self.dist[i].copy(), valence=float(self.valence[i]),
                         arousal=float(self.arousal[i]), intensity=int(self.intensity[i]),
                         identity=int(self.identity[i]), style=int(self.style[i]),
                         domain=int(self.domain[i]))

    def take(self, idx: slice | np.ndarray) -> TruthBatch:
        return TruthBatch(**{name: getattr(self, name)[idx] for name in self.__dataclass_fields__})


def sample_truths(n: int, rng: np.random.Generator, *, n_domains: int = 2,
                  n_identities: int = 24, style_rate: float = 0.3,
                  style_per_identity: bool = False,
                  class_prior: np.ndarray | None = None) -> TruthBatch:
    """Draw n items' hidden truth (see the module docstring for the model)."""
    _check_int(n, "n", 1)
    _check_int(n_domains, "n_domains", 1, MAX_DOMAINS)
    _check_int(n_identities, "n_identities", 1)
    if not (0.0 <= style_rate <= 1.0):
        raise ValueError(f"style_rate must be in [0, 1], got {style_rate!r}")
    if class_prior is None:
        class_prior = np.full(K, 1.0 / K)
    else:
        class_prior = np.asarray(class_prior, dtype=float)
        if class_prior.shape != (K,) or (class_prior < 0).any() or class_prior.sum() <= 0:
            raise ValueError(f"class_prior must be ({K},) non-negative weights with a positive "
                             f"sum, got {class_prior!r}")
        class_prior = class_prior / class_prior.sum()

    dominant = rng.choice(K, size=n, p=class_prior)
    neighbours = _raters.circumplex_neighbours(0.5)
    second = _raters._sample_categorical(neighbours[dominant], rng)
    ambiguity = AMBIGUITY_MAX * rng.beta(2.0, 3.0, n)
    spread = SPREAD * rng.dirichlet(np.ones(K), n)
    dist = spread
    rows = np.arange(n)
    dist[rows, dominant] += 1.0 - ambiguity - SPREAD
    dist[rows, second] += ambiguity
    dist /= dist.sum(axis=1, keepdims=True)  # exact sums despite rounding

    neutral = dominant == CATEGORIES.index("neutral")
    intensity = np.where(neutral,
                         rng.choice(5, size=n, p=NEUTRAL_INTENSITY_PRIOR),
                         rng.choice(5, size=n, p=INTENSITY_PRIOR)) + 1
    positions = np.array([CIRCUMPLEX[c] for c in CATEGORIES])  # (K, 2)
    va = (0.2 + 0.2 * intensity)[:, None] * (dist @ positions)
    va = np.clip(va + rng.normal(0.0, VA_NOISE_SD, (n, 2)), -1.0, 1.0)

    identity = rng.integers(0, n_identities, n)
    if style_per_identity:
        styled = rng.permutation(n_identities)[: int(round(style_rate * n_identities))]
        style = np.isin(identity, styled).astype(np.int64)
    else:
        style = (rng.random(n) < style_rate).astype(np.int64)
    domain = rng.integers(0, n_domains, n)
    return TruthBatch(dist=dist, valence=va[:, 0], arousal=va[:, 1],
                      intensity=intensity.astype(np.int64), identity=identity, style=style,
                      domain=domain, dominant=dominant, second=second, ambiguity=ambiguity)


def flip_labels(true_label: np.ndarray, flip_rate: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Exactly round(flip_rate·n) labels, chosen at random, moved to a uniformly drawn other
    class. true_label: (n,) ints 0..K−1. Returns (label, flipped) of shape (n,)."""
    true_label = np.asarray(true_label)
    if true_label.ndim != 1 or not np.issubdtype(true_label.dtype, np.integer):
        raise ValueError(f"true_label must be a 1-D integer array, got shape {true_label.shape} "
                         f"dtype {true_label.dtype}")
    if true_label.size and (true_label.min() < 0 or true_label.max() >= K):
        raise ValueError(f"true_label must hold class indices 0..{K - 1}, got range "
                         f"[{true_label.min()}, {true_label.max()}]")
    _check_flip_rate(flip_rate)
    n = true_label.shape[0]
    flipped = np.zeros(n, dtype=bool)
    flipped[rng.choice(n, size=int(round(flip_rate * n)), replace=False)] = True
    offset = rng.integers(1, K, size=n)  # 1..K-1: never the true class
    label = np.where(flipped, (true_label + offset) % K, true_label)
    return label.astype(np.int64), flipped


def assign_splits(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) split names: a random permutation cut at 70 % / 15 % / 15 % (rounded counts)."""
    _check_int(n, "n", 1)
    n_train = int(round(SPLIT_FRACTIONS[0][1] * n))
    n_val = int(round(SPLIT_FRACTIONS[1][1] * n))
    names = np.empty(n, dtype=object)
    order = rng.permutation(n)
    names[order[:n_train]] = "train"
    names[order[n_train:n_train + n_val]] = "val"
    names[order[n_train + n_val:]] = "test"
    return names


# -- the corpus -----------------------------------------------------------------------------

def generate_corpus(modality: str = "face", n: int = 2000, seed: int = 0, n_domains: int = 2,
                    flip_rate: float = 0.1, out: str | os.PathLike | None = None,
                    overwrite: bool = False, progress: bool = False, *,
                    name: str | None = None, workers: int | None = None,
                    renderer: Renderer | None = None,
                    rater_config: _raters.RaterConfig | None = None,
                    n_identities: int = 24, style_rate: float = 0.3) -> DatasetDir:
    """Generate a corpus with known truth and write it to ``out`` (one dataset directory).

    modality: "face" (64×64 grayscale PNG) or "speech" (16 kHz mono 16-bit WAV)
    n: number of items (≥ 10); seed: ≥ 0, the same arguments give byte-identical files
    n_domains: 1..4 rendering/recording conditions; flip_rate: fraction in [0, 0.9] of dataset
    labels moved to another class
    workers: render processes (default: up to 2, one for small corpora); output is the same for
    any number. renderer: replaces the modality's renderer, ``(ItemTruth, Generator) -> array``
    (a module-level function when workers > 1, since it is pickled)

    items.parquet: item_id, media, modality, split, domain, subject|speaker, label, true_label,
    flipped, true_dist_<category> ×7, true_valence, true_arousal, true_intensity, identity,
    style, subclass, ambiguity. ratings.parquet: item_id, rater_id, scale, value (no timestamp:
    it would break byte-identical output).
    Nothing appears at ``out`` unless the whole corpus was written.
    """
    _check_corpus_args(modality, n, seed, n_domains, flip_rate)
    if out is None:
        raise ValueError("out must be the output dataset directory, got None")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out {out} exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"out {out} already exists and is not empty "
                              "(pass overwrite=True / --overwrite to replace it)")
    require_product_dir(out)  # fail before generating, not after
    if renderer is None and n_domains > _renderer_domains(modality):
        raise ValueError(f"n_domains must be at most {_renderer_domains(modality)} for the "
                         f"{modality} renderer, got {n_domains}")
    if workers is None:
        workers = 1 if n < 400 else min(2, os.cpu_count() or 1)
    _check_int(workers, "workers", 1)
    rater_config = _raters.RaterConfig() if rater_config is None else rater_config
    tables = corpus_tables(modality, n, seed, n_domains, flip_rate, rater_config=rater_config,
                           n_identities=n_identities, style_rate=style_rate)
    meta = _meta(name or out.name, modality, seed=seed, n=n, n_domains=n_domains,
                 flip_rate=flip_rate, pool=tables.pool, rater_config=rater_config,
                 n_identities=n_identities, style_rate=style_rate)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.media.", dir=out.parent))
    try:
        (staging / "media").mkdir()
        _render_all(modality, tables.truths, seed, staging, tables.items["media"].to_numpy(),
                    renderer, workers, progress)
        return write_dataset(out, tables.items, tables.ratings, meta, media_dir=staging,
                             overwrite=overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass(frozen=True)
class CorpusTables:
    """What :func:`generate_corpus` writes, without the media: ``items`` (items.parquet),
    ``ratings`` (ratings.parquet), and the hidden ``truths`` and rater ``pool`` behind them."""

    items: pd.DataFrame
    ratings: pd.DataFrame
    truths: TruthBatch
    pool: _raters.RaterPool


def corpus_tables(modality: str = "face", n: int = 2000, seed: int = 0, n_domains: int = 2,
                  flip_rate: float = 0.1, *, rater_config: _raters.RaterConfig | None = None,
                  n_identities: int = 24, style_rate: float = 0.3) -> CorpusTables:
    """The tables of the corpus that :func:`generate_corpus` would write with these arguments
    (the same random streams, so the same items and ratings), without rendering media: what a
    study of the labels alone needs (e.g. :mod:`affectlab.data.synth.aggregation`)."""
    _check_corpus_args(modality, n, seed, n_domains, flip_rate)
    rater_config = _raters.RaterConfig() if rater_config is None else rater_config
    root = np.random.SeedSequence(seed)
    truths = sample_truths(n, _stream(root, _STREAM_TRUTH), n_domains=n_domains,
                           n_identities=n_identities, style_rate=style_rate,
                           style_per_identity=(modality == "speech"))
    width = max(6, len(str(n - 1)))
    item_ids = np.array([f"{i:0{width}d}" for i in range(n)], dtype=object)
    ext = "png" if modality == "face" else "wav"
    media = np.array([f"media/{iid}.{ext}" for iid in item_ids], dtype=object)
    pool = _raters.make_rater_pool(_stream(root, _STREAM_POOL), rater_config)
    ratings = _raters.simulate_ratings(item_ids, truths.dist, truths.valence, truths.arousal,
                                       truths.intensity, pool, _stream(root, _STREAM_RATINGS),
                                       rater_config)
    label, flipped = flip_labels(truths.dominant, flip_rate, _stream(root, _STREAM_LABELS))
    split = assign_splits(n, _stream(root, _STREAM_SPLIT))
    items = _items_table(modality, truths, item_ids, media, split, label, flipped)
    return CorpusTables(items=items, ratings=ratings, truths=truths, pool=pool)


def ensure_default_corpora(root: str | os.PathLike | None = None,
                           progress: bool = True) -> list[Path]:
    """Create ``faces-default`` (2000 faces) and ``speech-default`` (600 utterances) under
    ``root`` (default: the datasets directory) unless a valid one is already there; a directory
    that breaks the contract is regenerated. Returns both paths."""
    if root is None:
        from affectlab.paths import datasets_dir
        root = datasets_dir()
    root = Path(root)
    paths = []
    for dname, (modality, n) in DEFAULT_CORPORA.items():
        path = root / dname
        if not _is_valid_dataset(path):
            generate_corpus(modality=modality, n=n, seed=0, n_domains=2, flip_rate=0.1,
                            out=path, overwrite=True, progress=progress, name=dname)
        paths.append(path)
    return paths


# -- rendering ------------------------------------------------------------------------------

def render_item(modality: str, truth: ItemTruth, seed: int, index: int,
                renderer: Renderer | None = None) -> np.ndarray:
    """Render item ``index`` with its own generator (spawn key (100, index)), checked: a face is
    (IMAGE_SIZE, IMAGE_SIZE) uint8; an utterance is (samples,) finite float."""
    render = renderer if renderer is not None else _default_renderer(modality)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAM_RENDER, index)))
    data = np.asarray(render(truth, rng))
    if modality == "face":
        size = _image_size()
        if data.shape != (size, size) or data.dtype != np.uint8:
            raise ValueError(f"face renderer must return ({size}, {size}) uint8, got "
                             f"{data.shape} {data.dtype} for item {index}")
    else:
        if data.ndim != 1 or data.size == 0 or not np.isfinite(data).all():
            raise ValueError(f"speech renderer must return a non-empty finite 1-D waveform, got "
                             f"shape {data.shape} for item {index}")
    return data


def write_media(path: Path, modality: str, data: np.ndarray) -> None:
    """PNG (Pillow, no metadata) for faces; 16-bit PCM WAV for speech, clipped to [-1, 1]."""
    if modality == "face":
        from PIL import Image
        Image.fromarray(data).save(path, format="PNG", compress_level=1)
    else:
        import soundfile as sf
        pcm = np.rint(np.clip(data, -1.0, 1.0) * 32767.0).astype(np.int16)
        sf.write(path, pcm, _sample_rate(), subtype="PCM_16", format="WAV")


def _render_chunk(modality: str, truths: TruthBatch, start: int, seed: int, staging: str,
                  media: list[str], renderer: Renderer | None) -> int:
    for j in range(len(truths)):
        data = render_item(modality, truths.item(j), seed, start + j, renderer)
        write_media(Path(staging) / media[j], modality, data)
    return len(truths)


def _render_all(modality: str, truths: TruthBatch, seed: int, staging: Path, media: np.ndarray,
                renderer: Renderer | None, workers: int, progress: bool) -> None:
    from tqdm.auto import tqdm

    n = len(truths)
    chunk = max(1, min(256, -(-n // (8 * workers))))
    bounds = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    with tqdm(total=n, desc=f"rendering {modality}", unit="item", disable=not progress) as bar:
        if workers == 1:
            for s, e in bounds:
                bar.update(_render_chunk(modality, truths.take(slice(s, e)), s, seed,
                                         str(staging), list(media[s:e]), renderer))
            return
        with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context(),
                                 initializer=_init_worker) as pool:
            futures = [pool.submit(_render_chunk, modality, truths.take(slice(s, e)), s, seed,
                                   str(staging), list(media[s:e]), renderer)
                       for s, e in bounds]
            try:
                for fut in as_completed(futures):
                    bar.update(fut.result())
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise


_WORKER_LIMITS = []


def _init_worker() -> None:
    """One BLAS/OpenMP thread per render process: the processes already fill the cores, and
    nested thread pools oversubscribe them (measured 2.5× slower on 2 cores)."""
    from threadpoolctl import threadpool_limits
    _WORKER_LIMITS.append(threadpool_limits(limits=1))
    try:
        import cv2  # the face renderer blurs with OpenCV, which has its own thread pool
    except ImportError:
        return
    cv2.setNumThreads(1)


def _mp_context():
    """fork when this process is single-threaded (fast, and scripts need no ``__main__``
    guard); otherwise forkserver/spawn, since forking a threaded parent (the Streamlit app) can
    copy a lock that some other thread holds."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _default_renderer(modality: str) -> Renderer:
    if modality == "face":
        from affectlab.data.synth.face import render_face
        return render_face
    from affectlab.data.synth.speech import synthesize_utterance
    return synthesize_utterance


def _renderer_domains(modality: str) -> int:
    """How many domains the modality's renderer draws (its ``N_DOMAINS``, else MAX_DOMAINS)."""
    module = "face" if modality == "face" else "speech"
    try:
        mod = importlib.import_module(f"affectlab.data.synth.{module}")
    except ImportError:
        return MAX_DOMAINS
    return int(getattr(mod, "N_DOMAINS", MAX_DOMAINS))


def _image_size() -> int:
    try:
        from affectlab.data.synth.face import IMAGE_SIZE
    except ImportError:  # renderer not installed: the contract's documented size
        return 64
    return int(IMAGE_SIZE)


def _sample_rate() -> int:
    try:
        from affectlab.data.synth.speech import SAMPLE_RATE
    except ImportError:
        return 16000
    return int(SAMPLE_RATE)


# -- tables ---------------------------------------------------------------------------------

def domain_name(d: int) -> str:
    return f"synth-{chr(ord('A') + int(d))}"


def _items_table(modality: str, truths: TruthBatch, item_ids: np.ndarray, media: np.ndarray,
                 split: np.ndarray, label: np.ndarray, flipped: np.ndarray) -> pd.DataFrame:
    style_names = np.asarray(STYLE_NAMES[modality], dtype=object)
    who = np.array([f"id{i:02d}" for i in truths.identity], dtype=object)
    cols: dict[str, Any] = {
        "item_id": item_ids,
        "media": media,
        "modality": np.full(len(truths), modality, dtype=object),
        "split": split,
        "domain": np.array([domain_name(d) for d in truths.domain], dtype=object),
        ("subject" if modality == "face" else "speaker"): who,
        "label": label,
        "true_label": truths.dominant.astype(np.int64),
        "flipped": flipped,
    }
    for k, cat in enumerate(CATEGORIES):
        cols[f"true_dist_{cat}"] = truths.dist[:, k]
    cols.update({
        "true_valence": truths.valence,
        "true_arousal": truths.arousal,
        "true_intensity": truths.intensity,
        "identity": truths.identity.astype(np.int64),
        "style": truths.style.astype(np.int64),
        "subclass": who + "+" + style_names[truths.style],
        "ambiguity": truths.ambiguity,
    })
    return pd.DataFrame(cols)


def truth_columns() -> list[str]:
    """Names of the hidden-truth columns of a generated items table."""
    return (["true_label", "flipped"] + [f"true_dist_{c}" for c in CATEGORIES]
            + ["true_valence", "true_arousal", "true_intensity", "identity", "style",
               "subclass", "ambiguity"])


def _meta(name: str, modality: str, *, seed: int, n: int, n_domains: int, flip_rate: float,
          pool: _raters.RaterPool, rater_config: _raters.RaterConfig, n_identities: int,
          style_rate: float) -> DatasetMeta:
    media = ({"format": "png", "size": _image_size(), "channels": 1} if modality == "face"
             else {"format": "wav", "sample_rate": _sample_rate(), "subtype": "PCM_16"})
    likert = IntervalScale(type="likert", low=_raters.LIKERT_LOW, high=_raters.LIKERT_HIGH)
    return DatasetMeta(
        name=name,
        modality=modality,
        label_set=LabelSet(scale="category", names=list(CATEGORIES), ordinal=False),
        scales={
            "category": NominalScale(names=list(CATEGORIES)),
            "valence": likert,
            "activation": likert,
            "intensity": OrdinalScale(
                names=[str(i) for i in range(1, _raters.INTENSITY_LEVELS + 1)]),
        },
        provenance={
            "source": "generated",
            "generator": GENERATOR,
            "version": GENERATOR_VERSION,
            "seed": seed,
            "n": n,
            "n_domains": n_domains,
            "domains": [domain_name(d) for d in range(n_domains)],
            "flip_rate": flip_rate,
            "n_flipped": int(round(flip_rate * n)),
            "n_identities": n_identities,
            "style_rate": style_rate,
            "style_names": list(STYLE_NAMES[modality]),
            "splits": dict(SPLIT_FRACTIONS),
            "media": media,
            "rater_config": _raters.config_summary(rater_config),
            "rater_pool": pool.summary(),
            "licence": "generated data, free to use",
        },
        truth_columns=truth_columns(),
    )


# -- checks ---------------------------------------------------------------------------------

def _stream(root: np.random.SeedSequence, key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(root.entropy, spawn_key=(key,)))


def _check_int(value, name: str, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        want = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {want}, got {value}")


def _check_corpus_args(modality: str, n: int, seed: int, n_domains: int,
                       flip_rate: float) -> None:
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    _check_int(n, "n", MIN_ITEMS)
    _check_int(seed, "seed", 0)
    _check_int(n_domains, "n_domains", 1, MAX_DOMAINS)
    _check_flip_rate(flip_rate)


def _check_flip_rate(flip_rate: float) -> None:
    if isinstance(flip_rate, bool) or not isinstance(flip_rate, int | float | np.floating):
        raise TypeError(f"flip_rate must be a number, got {type(flip_rate).__name__}")
    if not (0.0 <= float(flip_rate) <= MAX_FLIP_RATE):
        raise ValueError(f"flip_rate must be in [0, {MAX_FLIP_RATE}], got {flip_rate}")


def _is_valid_dataset(path: Path) -> bool:
    if not path.is_dir():
        return False
    try:
        load_dataset(path)
    except ContractError:
        return False
    return True
