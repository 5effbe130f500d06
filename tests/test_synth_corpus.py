"""The generated corpus: truth sampling, labels, splits, the written directory, determinism."""

import io
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

from affectlab.data.contract import load_dataset
from affectlab.data.synth import corpus as C
from affectlab.data.synth.truth import CATEGORIES, CIRCUMPLEX
from affectlab.paths import NotProductDirError, is_product_dir

K = len(CATEGORIES)


# Stand-in renderers (module level, so worker processes can unpickle them).
def fake_face(truth, rng):
    base = np.full((64, 64), 20 + 30 * truth.dominant, dtype=np.int16)
    return (base + rng.integers(0, 10, (64, 64))).astype(np.uint8)


def fake_speech(truth, rng):
    t = np.arange(1600) / 16000.0
    return (0.5 * np.sin(2 * np.pi * (200 + 50 * truth.dominant) * t)
            + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def loud_speech(truth, rng):
    return np.full(400, 3.0, dtype=np.float32)  # out of [-1, 1]: must be clipped


def failing_face(truth, rng):
    if truth.identity == 3:
        raise RuntimeError("renderer broke")
    return fake_face(truth, rng)


def wrong_shape_face(truth, rng):
    return np.zeros((32, 32), dtype=np.uint8)


def _gen(tmp_path, name="ds", modality="face", n=60, seed=0, renderer=None, **kw):
    renderer = renderer or (fake_face if modality == "face" else fake_speech)
    kw.setdefault("flip_rate", 0.1)
    return C.generate_corpus(modality, n, seed, kw.pop("n_domains", 2), kw.pop("flip_rate"),
                             tmp_path / name, overwrite=kw.pop("overwrite", False),
                             progress=False, renderer=renderer, **kw)


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def truths():
    return C.sample_truths(4000, np.random.default_rng(11))


# -- truth sampling --------------------------------------------------------------------------

def test_truth_distributions_are_dominated_by_their_label(truths):
    np.testing.assert_allclose(truths.dist.sum(axis=1), 1.0)
    assert (truths.dist >= 0).all()
    np.testing.assert_array_equal(truths.dist.argmax(axis=1), truths.dominant)
    assert (truths.second != truths.dominant).all()
    rows = np.arange(len(truths))
    top = truths.dist[rows, truths.dominant]
    assert (top >= 1 - C.AMBIGUITY_MAX - C.SPREAD).all()
    # the dominant's lead over the second shrinks with the ambiguity: 1 − 2a − σ + spread terms
    lead = top - truths.dist[rows, truths.second]
    assert np.corrcoef(lead, truths.ambiguity)[0, 1] < -0.95
    assert ((truths.ambiguity >= 0) & (truths.ambiguity < C.AMBIGUITY_MAX)).all()
    # all categories occur about equally (uniform class prior)
    freq = np.bincount(truths.dominant, minlength=K) / len(truths)
    assert np.abs(freq - 1 / K).max() < 0.03


def test_second_category_prefers_circumplex_neighbours(truths):
    a, f, h = (CATEGORIES.index(c) for c in ("angry", "fearful", "happy"))
    second = truths.second[truths.dominant == a]
    assert (second == f).mean() > 3 * (second == h).mean()


def test_valence_arousal_follow_the_weighted_circumplex(truths):
    pos = np.array([CIRCUMPLEX[c] for c in CATEGORIES])
    expected = (0.2 + 0.2 * truths.intensity)[:, None] * (truths.dist @ pos)
    got = np.stack([truths.valence, truths.arousal], axis=1)
    inside = (np.abs(got) < 0.999).all(axis=1)  # clipping aside, the residual is N(0, 0.05²)
    resid = (got - expected)[inside]
    assert np.abs(resid.mean(axis=0)).max() < 0.005
    np.testing.assert_allclose(resid.std(axis=0), C.VA_NOISE_SD, rtol=0.1)
    assert (np.abs(got) <= 1).all()


def test_intensity_levels_and_neutral_semantics(truths):
    assert set(np.unique(truths.intensity)) == {1, 2, 3, 4, 5}
    neutral = truths.dominant == CATEGORIES.index("neutral")
    assert set(np.unique(truths.intensity[neutral])) == {1, 2}
    assert (truths.intensity[neutral] == 1).mean() == pytest.approx(0.7, abs=0.06)
    freq = np.bincount(truths.intensity[~neutral], minlength=6)[1:] / (~neutral).sum()
    np.testing.assert_allclose(freq, C.INTENSITY_PRIOR, atol=0.03)


def test_sub_class_factors(truths):
    assert set(np.unique(truths.identity)) == set(range(24))
    assert truths.style.mean() == pytest.approx(0.3, abs=0.03)
    assert set(np.unique(truths.domain)) == {0, 1}
    voices = C.sample_truths(500, np.random.default_rng(0), style_per_identity=True)
    per_speaker = pd.Series(voices.style).groupby(voices.identity).nunique()
    assert (per_speaker == 1).all()  # a voice type is a speaker's trait
    styled = {i for i, s in zip(voices.identity, voices.style, strict=True) if s}
    assert len(styled) == round(0.3 * 24)


def test_item_truth_matches_the_arrays(truths):
    t = truths.item(5)
    np.testing.assert_array_equal(t.dist, truths.dist[5])
    assert (t.intensity, t.identity, t.style, t.domain) == (
        truths.intensity[5], truths.identity[5], truths.style[5], truths.domain[5])
    assert t.dominant == truths.dominant[5]


def test_sample_truths_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n_domains"):
        C.sample_truths(10, rng, n_domains=0)
    with pytest.raises(ValueError, match="style_rate"):
        C.sample_truths(10, rng, style_rate=1.5)
    with pytest.raises(ValueError, match="class_prior"):
        C.sample_truths(10, rng, class_prior=np.ones(3))


# -- labels and splits -------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.0, 0.1, 0.37, 0.9])
def test_flip_rate_is_realised(rate, truths):
    label, flipped = C.flip_labels(truths.dominant, rate, np.random.default_rng(0))
    assert flipped.sum() == round(rate * len(truths))
    np.testing.assert_array_equal(label != truths.dominant, flipped)


def test_flipped_labels_go_uniformly_to_the_other_classes():
    true = np.zeros(14_000, dtype=int)
    label, flipped = C.flip_labels(true, 0.5, np.random.default_rng(1))
    counts = np.bincount(label[flipped], minlength=K)
    assert counts[0] == 0
    expected = flipped.sum() / (K - 1)
    assert np.abs(counts[1:] - expected).max() < 5 * math.sqrt(expected)


def test_label_helpers_reject_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="true_label"):
        C.flip_labels(np.array([0, 7]), 0.1, rng)
    with pytest.raises(ValueError, match="true_label"):
        C.flip_labels(np.array([0.5, 1.0]), 0.1, rng)
    with pytest.raises(ValueError, match="flip_rate"):
        C.flip_labels(np.array([0, 1]), 0.95, rng)
    with pytest.raises(ValueError, match="n must be"):
        C.assign_splits(0, rng)


def test_splits_are_70_15_15():
    split = C.assign_splits(1000, np.random.default_rng(0))
    assert (split == "train").sum() == 700 and (split == "val").sum() == 150
    assert (split == "test").sum() == 150


# -- the written corpus ----------------------------------------------------------------------

def test_corpus_satisfies_the_contract(tmp_path):
    ds = _gen(tmp_path, n=80)
    loaded = load_dataset(ds.root)
    items, ratings, meta = loaded.items, loaded.ratings, loaded.meta
    assert len(items) == 80 and items["item_id"].is_unique
    for col in ["item_id", "media", "modality", "split", "domain", "subject", "label",
                "true_label", "flipped", *[f"true_dist_{c}" for c in CATEGORIES],
                "true_valence", "true_arousal", "true_intensity", "identity", "style",
                "subclass", "ambiguity"]:
        assert col in items.columns, col
    assert set(meta["truth_columns"]) <= set(items.columns)
    assert meta["label_set"] == {"scale": "category", "names": list(CATEGORIES),
                                 "ordinal": False}
    assert meta["scales"]["valence"] == {"type": "likert", "low": 1, "high": 5}
    assert meta["scales"]["intensity"]["names"] == ["1", "2", "3", "4", "5"]
    prov = meta["provenance"]
    assert (prov["seed"], prov["n"], prov["n_domains"], prov["flip_rate"]) == (0, 80, 2, 0.1)
    assert prov["rater_pool"]["n_spammers"] == 3
    assert set(items["domain"]) == {"synth-A", "synth-B"}
    assert (items["subclass"] == items["subject"] + "+"
            + np.where(items["style"] == 1, "glasses", "plain")).all()
    assert set(ratings["scale"]) == {"category", "valence", "activation", "intensity"}
    assert len(ratings) == 80 * (10 + 5 + 5 + 3)
    # the truth columns hold what the votes are drawn from
    dist = items[[f"true_dist_{c}" for c in CATEGORIES]].to_numpy()
    np.testing.assert_array_equal(dist.argmax(axis=1), items["true_label"])
    for i in (0, 79):
        img = Image.open(loaded.media_path(i))
        assert img.size == (64, 64) and img.mode == "L"
    assert sorted(p.name for p in (ds.root / "media").iterdir()) == \
        sorted(Path(m).name for m in items["media"])


def test_speech_corpus_writes_16bit_wav(tmp_path):
    ds = _gen(tmp_path, modality="speech", n=20)
    assert "speaker" in ds.items.columns and "subject" not in ds.items.columns
    assert ds.items["subclass"].str.endswith(("+modal", "+breathy")).all()
    info = sf.info(ds.media_path(0))
    assert (info.samplerate, info.subtype, info.channels) == (16000, "PCM_16", 1)
    wav, _ = sf.read(ds.media_path(0), dtype="float32")
    expected = C.render_item("speech", _truth_of(ds, 0), seed=0, index=0, renderer=fake_speech)
    np.testing.assert_allclose(wav, expected, atol=1 / 32767 + 1e-6)  # 16-bit quantisation


def _truth_of(ds, i):
    row = ds.items.iloc[i]
    from affectlab.data.synth.truth import ItemTruth
    return ItemTruth(dist=row[[f"true_dist_{c}" for c in CATEGORIES]].to_numpy(float),
                     valence=row.true_valence, arousal=row.true_arousal,
                     intensity=int(row.true_intensity), identity=int(row.identity),
                     style=int(row["style"]), domain=int(row.domain[-1] == "B"))


def test_speech_is_clipped_not_wrapped(tmp_path):
    ds = _gen(tmp_path, modality="speech", n=10, renderer=loud_speech)
    wav, _ = sf.read(ds.media_path(0), dtype="int16")
    assert (wav == 32767).all()


def test_labels_in_the_written_corpus(tmp_path):
    ds = _gen(tmp_path, n=200, flip_rate=0.25)
    items = ds.items
    assert items["flipped"].sum() == 50
    np.testing.assert_array_equal(items["label"] != items["true_label"], items["flipped"])
    assert items["label"].between(0, K - 1).all()
    assert items["split"].value_counts().to_dict() == {"train": 140, "val": 30, "test": 30}


def test_corpus_tables_are_the_written_tables(tmp_path):
    ds = _gen(tmp_path, n=40, seed=9, flip_rate=0.2)
    tables = C.corpus_tables("face", 40, 9, 2, 0.2)
    pd.testing.assert_frame_equal(tables.items, ds.items)
    pd.testing.assert_frame_equal(tables.ratings, ds.ratings)
    assert tables.pool.summary() == ds.meta["provenance"]["rater_pool"]
    with pytest.raises(ValueError, match="n must be"):
        C.corpus_tables("face", 5)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = _tree_bytes(_gen(tmp_path / "1", n=40, seed=5).root)
    b = _tree_bytes(_gen(tmp_path / "2", n=40, seed=5).root)
    c = _tree_bytes(_gen(tmp_path / "3", n=40, seed=6).root)
    assert a == b  # every file, meta.json included
    assert a.keys() == c.keys()
    for name in ("items.parquet", "ratings.parquet", "meta.json", "media/000000.png"):
        assert a[name] != c[name], name


def test_output_does_not_depend_on_the_number_of_workers(tmp_path):
    one = _gen(tmp_path / "1", n=50, seed=3, workers=1)
    two = _gen(tmp_path / "2", n=50, seed=3, workers=2)
    assert _tree_bytes(one.root) == _tree_bytes(two.root)


def test_parquet_round_trips_exactly(tmp_path):
    ds = _gen(tmp_path, n=30)
    back = pd.read_parquet(io.BytesIO((ds.root / "items.parquet").read_bytes()))
    pd.testing.assert_frame_equal(back, ds.items)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"n": 9}, ValueError, "n must be"),
    ({"n": 10.5}, TypeError, "n must be an integer"),
    ({"flip_rate": 1.2}, ValueError, "flip_rate"),
    ({"flip_rate": -0.1}, ValueError, "flip_rate"),
    ({"n_domains": 0}, ValueError, "n_domains"),
    ({"n_domains": 5}, ValueError, "n_domains"),
    ({"seed": -1}, ValueError, "seed"),
    ({"modality": "video"}, ValueError, "modality"),
])
def test_bad_arguments(tmp_path, kwargs, exc, match):
    args = {"modality": "face", "n": 20, "seed": 0, "n_domains": 2, "flip_rate": 0.1,
            "out": tmp_path / "x", "overwrite": False, "progress": False, **kwargs}
    with pytest.raises(exc, match=match):
        C.generate_corpus(renderer=fake_face, **args)
    assert not (tmp_path / "x").exists()


def test_real_renderer_domains_limit_n_domains(tmp_path):
    pytest.importorskip("affectlab.data.synth.face")
    limit = C._renderer_domains("face")
    if limit >= C.MAX_DOMAINS:
        pytest.skip("the face renderer draws every allowed domain")
    with pytest.raises(ValueError, match="n_domains"):
        C.generate_corpus("face", 20, 0, limit + 1, 0.1, tmp_path / "x")


def test_existing_directory_needs_overwrite(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        _gen(tmp_path, "taken", n=20)
    assert (out / "keep.txt").read_text() == "mine"
    # overwrite replaces only a directory affectlab made (its marker), never the user's folder
    with pytest.raises(NotProductDirError, match="not created by affectlab"):
        _gen(tmp_path, "taken", n=20, overwrite=True)
    assert (out / "keep.txt").read_text() == "mine"
    first = _gen(tmp_path, "made", n=20)
    assert is_product_dir(first.root)
    ds = _gen(tmp_path, "made", n=30, overwrite=True)
    assert len(load_dataset(ds.root).items) == 30 and is_product_dir(ds.root)
    (tmp_path / "empty").mkdir()
    assert len(_gen(tmp_path, "empty", n=20).items) == 20  # an empty directory is fine


@pytest.mark.parametrize("workers", [1, 2])
def test_failed_render_leaves_nothing_behind(tmp_path, workers):
    before = set(os.listdir(tmp_path))
    with pytest.raises(RuntimeError, match="renderer broke"):
        _gen(tmp_path, "broken", n=120, renderer=failing_face, workers=workers)
    assert set(os.listdir(tmp_path)) == before


def test_failed_overwrite_keeps_the_old_corpus(tmp_path):
    old = _tree_bytes(_gen(tmp_path, "ds", n=20).root)
    with pytest.raises(RuntimeError):
        _gen(tmp_path, "ds", n=120, renderer=failing_face, overwrite=True)
    assert _tree_bytes(tmp_path / "ds") == old
    assert sorted(os.listdir(tmp_path)) == ["ds"]


def test_renderer_output_is_checked(tmp_path):
    with pytest.raises(ValueError, match=r"\(64, 64\) uint8"):
        _gen(tmp_path, n=10, renderer=wrong_shape_face)
    assert os.listdir(tmp_path) == []


# -- default corpora -------------------------------------------------------------------------

def _fake_default(modality):
    return fake_face if modality == "face" else fake_speech


def test_ensure_default_corpora(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "DEFAULT_CORPORA", {"faces-default": ("face", 30),
                                               "speech-default": ("speech", 12)})
    monkeypatch.setattr(C, "_default_renderer", _fake_default)
    paths = C.ensure_default_corpora(tmp_path, progress=False)
    assert [p.name for p in paths] == ["faces-default", "speech-default"]
    assert [load_dataset(p).modality for p in paths] == ["face", "speech"]
    assert load_dataset(paths[0]).name == "faces-default"
    stamp = (paths[0] / "items.parquet").stat().st_mtime_ns
    (paths[1] / "meta.json").unlink()  # broken: regenerated; valid: kept as is
    C.ensure_default_corpora(tmp_path, progress=False)
    assert (paths[0] / "items.parquet").stat().st_mtime_ns == stamp
    assert len(load_dataset(paths[1]).items) == 12


def test_ensure_default_corpora_uses_the_data_directory(monkeypatch):
    from affectlab.paths import datasets_dir
    monkeypatch.setattr(C, "DEFAULT_CORPORA", {"faces-default": ("face", 10)})
    monkeypatch.setattr(C, "_default_renderer", _fake_default)
    assert C.ensure_default_corpora(progress=False) == [datasets_dir() / "faces-default"]


# -- with the real renderers -----------------------------------------------------------------

def test_real_face_renderer_end_to_end(tmp_path):
    pytest.importorskip("affectlab.data.synth.face")
    ds = C.generate_corpus("face", 12, 0, 2, 0.1, tmp_path / "f", progress=False)
    img = np.asarray(Image.open(ds.media_path(0)))
    assert img.shape == (64, 64) and img.std() > 0


def test_real_speech_renderer_end_to_end(tmp_path):
    pytest.importorskip("affectlab.data.synth.speech")
    ds = C.generate_corpus("speech", 10, 0, 2, 0.1, tmp_path / "s", progress=False)
    wav, sr = sf.read(ds.media_path(0))
    assert sr == 16000 and wav.ndim == 1 and np.abs(wav).max() > 0


@pytest.mark.slow
def test_default_corpora_with_real_renderers(tmp_path):
    pytest.importorskip("affectlab.data.synth.face")
    pytest.importorskip("affectlab.data.synth.speech")
    paths = C.ensure_default_corpora(tmp_path, progress=False)
    sizes = [len(load_dataset(p).items) for p in paths]
    assert sizes == [2000, 600]
