"""EmotionDataset over tiny face and speech datasets written through the contract."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from PIL import Image
from torch.utils.data import DataLoader

from affectlab.data.contract import ContractError, write_dataset
from affectlab.data.dataset import EmotionDataset, collate_speech
from affectlab.features.audio import AudioLoadError
from affectlab.features.face import ImageLoadError
from affectlab.features.fbank import CorpusNormalizer, FbankCache, fbank, num_frames

NAMES = ["neutral", "happy", "sad"]
SR = 16000

#            item  split    domain  label  category votes    valence ratings (1..5)
ITEMS = [("i0", "train", "A", 0, [0, 0, 1, 2], [2, 4]),
         ("i1", "train", "A", 1, [1, 1, 1, 0], [5]),
         ("i2", "train", "B", 2, [2, 2, 0, 2], [1, 2, 2]),
         ("i3", "val", "A", 0, [], [3]),          # no category ratings
         ("i4", "test", "B", 1, [1, 2], []),      # no valence ratings; tied category votes
         ("i5", "test", "C", 2, [2], [4])]        # domain C has no train items

# hand-computed soft labels (SPEC §1)
CATEGORY_SOFT = {"i0": [0.5, 0.25, 0.25], "i1": [0.25, 0.75, 0.0], "i2": [0.25, 0.0, 0.75],
                 "i4": [0.0, 0.5, 0.5], "i5": [0.0, 0.0, 1.0]}
# a rating r on 1..5 → [(5 − r)/4, (r − 1)/4], averaged over raters
VALENCE_SOFT = {"i0": [0.5, 0.5], "i1": [0.0, 1.0], "i2": [5 / 6, 1 / 6], "i3": [0.5, 0.5],
                "i5": [0.25, 0.75]}
SPEECH_SECONDS = {"i0": 0.30, "i1": 0.50, "i2": 0.41, "i3": 0.25, "i4": 0.62, "i5": 0.33}


def _tables(modality, ext):
    rows, ratings = [], []
    for k, (iid, split, dom, label, votes, val) in enumerate(ITEMS):
        rows.append({"item_id": iid, "media": f"media/{iid}.{ext}", "modality": modality,
                     "split": split, "domain": dom, "label": label,
                     "true_dist_sad": 0.1 * k, "true_dist_neutral": 1 - 0.2 * k,
                     "true_dist_happy": 0.1 * k, "true_valence": -0.5 + 0.1 * k,
                     "flipped": k == 2, "subclass": f"id{k % 2}"})
        ratings += [{"item_id": iid, "rater_id": f"r{j}", "scale": "category", "value": v}
                    for j, v in enumerate(votes)]
        ratings += [{"item_id": iid, "rater_id": f"r{j}", "scale": "valence", "value": v}
                    for j, v in enumerate(val)]
    meta = {"name": f"tiny-{modality}", "modality": modality,
            "label_set": {"scale": "category", "names": NAMES, "ordinal": False},
            "scales": {"category": {"type": "nominal", "names": NAMES},
                       "valence": {"type": "likert", "low": 1, "high": 5}},
            # listed out of class order on purpose: true_dist must follow the label set
            "truth_columns": ["true_dist_sad", "true_dist_neutral", "true_dist_happy",
                              "true_valence", "flipped", "subclass"]}
    return pd.DataFrame(rows), pd.DataFrame(ratings), meta


@pytest.fixture
def face_dir(tmp_path):
    rng = np.random.default_rng(7)
    media = tmp_path / "stage" / "media"
    media.mkdir(parents=True)
    images = {}
    for iid, *_ in ITEMS:
        images[iid] = rng.integers(0, 256, (64, 64), dtype=np.uint8)
        Image.fromarray(images[iid]).save(media / f"{iid}.png")
    items, ratings, meta = _tables("face", "png")
    write_dataset(tmp_path / "faces", items, ratings, meta, media_dir=tmp_path / "stage")
    return tmp_path / "faces", images


@pytest.fixture
def speech_dir(tmp_path):
    rng = np.random.default_rng(8)
    media = tmp_path / "stage" / "media"
    media.mkdir(parents=True)
    for k, (iid, _, dom, *_rest) in enumerate(ITEMS):
        n = int(SPEECH_SECONDS[iid] * SR)
        t = np.arange(n) / SR
        amp = 0.05 if dom == "A" else 0.4  # the two "corpora" differ in level
        wave = amp * np.sin(2 * np.pi * (200 + 150 * k) * t) + 0.01 * rng.standard_normal(n)
        sf.write(media / f"{iid}.wav", wave.astype(np.float32), SR, subtype="PCM_16")
    items, ratings, meta = _tables("speech", "wav")
    write_dataset(tmp_path / "speech", items, ratings, meta, media_dir=tmp_path / "stage")
    return tmp_path / "speech"


# --- faces ---

def test_face_items_shapes_and_pixels(face_dir):
    root, images = face_dir
    ds = EmotionDataset(root)
    assert len(ds) == 5 and ds.excluded == 1  # i3 has no category rating
    assert ds.excluded_reasons == {"no rating on scale 'category'": 1}
    assert list(ds.item_ids) == ["i0", "i1", "i2", "i4", "i5"]
    item = ds[0]
    assert item["x"].shape == (1, 64, 64) and item["x"].dtype == torch.float32
    np.testing.assert_allclose(item["x"][0].numpy(), images["i0"] / 255.0, atol=1e-7)
    assert float(item["x"].min()) >= 0 and float(item["x"].max()) <= 1
    assert item["index"] == 0 and item["item_id"] == "i0" and item["domain"] == "A"


def test_face_soft_labels_equal_hand_computed(face_dir):
    ds = EmotionDataset(face_dir[0])
    for i, iid in enumerate(ds.item_ids):
        np.testing.assert_allclose(ds[i]["y"].numpy(), CATEGORY_SOFT[iid], atol=1e-7)
        assert ds[i]["label"] == dict((r[0], r[3]) for r in ITEMS)[iid]  # dataset label column
    assert ds.num_classes == 3 and ds.class_names == NAMES


def test_valence_scale_soft_labels_and_argmax_label(face_dir):
    ds = EmotionDataset(face_dir[0], scale="valence")
    assert list(ds.item_ids) == ["i0", "i1", "i2", "i3", "i5"] and ds.excluded == 1
    for i, iid in enumerate(ds.item_ids):
        np.testing.assert_allclose(ds[i]["y"].numpy(), VALENCE_SOFT[iid], atol=1e-7)
    # no label column for valence: argmax of the soft label, lowest index on ties
    assert [ds[i]["label"] for i in range(len(ds))] == [0, 1, 0, 0, 1]
    assert ds.class_names == ["low", "high"]


def test_aggregator_from_meta_or_argument(face_dir, tmp_path):
    """The dataset's meta.json ``aggregator`` decides the training soft labels (default votes);
    a per-rater model is fitted on every item's ratings, so a split's labels are rows of the
    whole-dataset fit."""
    from affectlab.aggregators import aggregate_soft_labels
    from affectlab.data.contract import load_dataset

    root, _ = face_dir
    assert EmotionDataset(root).aggregator == "votes"
    items, ratings, meta = _tables("face", "png")
    write_dataset(tmp_path / "mace", items, ratings, {**meta, "aggregator": "mace"},
                  media_dir=root)
    ds = load_dataset(tmp_path / "mace")
    whole = aggregate_soft_labels(ds.ratings, ds.items["item_id"], "category",
                                  ds.schema.scale("category"), "mace")
    train = EmotionDataset(ds, split="train")
    assert train.aggregator == "mace"
    np.testing.assert_allclose(train.soft_labels, whole[:3], rtol=1e-6)
    assert not np.allclose(train.soft_labels, [CATEGORY_SOFT[i] for i in ("i0", "i1", "i2")])
    plain = EmotionDataset(ds, split="train", aggregator="votes")
    np.testing.assert_allclose(plain.soft_labels, [CATEGORY_SOFT[i] for i in ("i0", "i1", "i2")])
    with pytest.raises(ValueError, match="unknown aggregator 'best'"):
        EmotionDataset(ds, aggregator="best")


def test_split_selection(face_dir):
    root, _ = face_dir
    assert list(EmotionDataset(root, split="train").item_ids) == ["i0", "i1", "i2"]
    val = EmotionDataset(root, split="val")
    assert len(val) == 0 and val.excluded == 1
    assert list(EmotionDataset(root, split="test").item_ids) == ["i4", "i5"]


def test_target_label_is_one_hot_and_keeps_unrated(face_dir):
    ds = EmotionDataset(face_dir[0], target="label")
    assert len(ds) == 6 and ds.excluded == 0
    for i in range(len(ds)):
        y = ds[i]["y"]
        assert y.sum() == 1 and int(torch.argmax(y)) == ds[i]["label"]


def test_truth_dict(face_dir):
    ds = EmotionDataset(face_dir[0])
    truth = ds[2]["truth"]  # i2 is item k = 2
    assert set(truth) == {"true_dist", "true_valence", "flipped", "subclass"}
    # neutral, happy, sad order although meta lists sad first
    np.testing.assert_allclose(truth["true_dist"].numpy(), [0.6, 0.2, 0.2], atol=1e-6)
    assert truth["true_dist"].shape == (3,) and truth["true_dist"].dtype == torch.float32
    assert float(truth["true_valence"]) == pytest.approx(-0.3)
    assert truth["flipped"].dtype == torch.bool and bool(truth["flipped"])
    assert truth["subclass"] == "id0"


def test_transform_and_default_collate(face_dir):
    ds = EmotionDataset(face_dir[0], transform=lambda x: 1 - x)
    np.testing.assert_allclose(ds[0]["x"].numpy(), 1 - EmotionDataset(face_dir[0])[0]["x"].numpy())
    batch = next(iter(DataLoader(ds, batch_size=4, collate_fn=ds.collate_fn)))
    assert batch["x"].shape == (4, 1, 64, 64) and batch["y"].shape == (4, 3)
    assert batch["truth"]["true_dist"].shape == (4, 3)
    assert batch["index"].tolist() == [0, 1, 2, 3]


def test_face_resized_and_corrupt_image_named(tmp_path):
    media = tmp_path / "stage" / "media"
    media.mkdir(parents=True)
    for iid, *_ in ITEMS:
        Image.fromarray(np.full((96, 80), 200, np.uint8)).save(media / f"{iid}.png")
    items, ratings, meta = _tables("face", "png")
    root = tmp_path / "faces"
    write_dataset(root, items, ratings, meta, media_dir=tmp_path / "stage")
    x = EmotionDataset(root)[0]["x"]
    assert x.shape == (1, 64, 64)
    np.testing.assert_allclose(x.numpy(), 200 / 255, atol=1e-6)
    (root / "media" / "i1.png").write_bytes(b"broken")
    with pytest.raises(ContractError, match=r"dataset 'tiny-face', item 'i1': .*i1\.png: cannot "
                       "decode image") as exc:
        EmotionDataset(root)
    assert isinstance(exc.value.__cause__, ImageLoadError)


def test_argument_validation(face_dir):
    root, _ = face_dir
    with pytest.raises(ValueError, match="split"):
        EmotionDataset(root, split="training")
    with pytest.raises(ValueError, match="scale 'arousal'"):
        EmotionDataset(root, scale="arousal")
    with pytest.raises(ValueError, match="target"):
        EmotionDataset(root, target="hard")
    with pytest.raises(TypeError, match="transform"):
        EmotionDataset(root, transform=3)
    with pytest.raises(IndexError):
        EmotionDataset(root)[5]


# --- speech ---

def test_speech_shapes_and_frames(speech_dir):
    ds = EmotionDataset(speech_dir)
    assert len(ds) == 5 and ds.excluded == 1
    for i, iid in enumerate(ds.item_ids):
        x = ds[i]["x"]
        assert x.dtype == torch.float32
        assert x.shape == (num_frames(int(SPEECH_SECONDS[iid] * SR)), 40)
        np.testing.assert_allclose(ds[i]["y"].numpy(), CATEGORY_SOFT[iid], atol=1e-7)
    assert ds[0]["truth"]["true_dist"].shape == (3,)


def test_speech_normalised_with_train_stats_of_its_domain(speech_dir):
    ds = EmotionDataset(speech_dir, feature_cache=False)
    raw = {iid: fbank(sf.read(speech_dir / "media" / f"{iid}.wav", dtype="float32")[0])
           for iid in SPEECH_SECONDS}
    # domain A train items are i0, i1 (i3 is val); B train: i2; C has none → all of C (i5)
    expected = {"A": CorpusNormalizer().fit([raw["i0"], raw["i1"]]),
                "B": CorpusNormalizer().fit([raw["i2"]]),
                "C": CorpusNormalizer().fit([raw["i5"]])}
    assert set(ds.normalizers) == {"A", "B", "C"}
    for dom, norm in expected.items():
        np.testing.assert_allclose(ds.normalizers[dom].mean_, norm.mean_, rtol=1e-6)
        np.testing.assert_allclose(ds.normalizers[dom].std_, norm.std_, rtol=1e-6)
    for i, iid in enumerate(ds.item_ids):
        np.testing.assert_allclose(ds[i]["x"].numpy(),
                                   expected[ds.domains[i]].transform(raw[iid]), atol=1e-5)
    z = np.concatenate([ds[i]["x"].numpy() for i in range(2)])  # i0, i1 = all A train frames
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-3)


def test_test_split_uses_train_statistics(speech_dir):
    train = EmotionDataset(speech_dir, split="train")
    test = EmotionDataset(speech_dir, split="test")  # i4 (B), i5 (C)
    np.testing.assert_allclose(test.normalizers["B"].mean_, train.normalizers["B"].mean_)
    given = EmotionDataset(speech_dir, split="test", normalizers={
        "B": train.normalizers["B"], "C": CorpusNormalizer().fit([np.zeros((3, 40))])})
    np.testing.assert_array_equal(given[0]["x"].numpy(), test[0]["x"].numpy())
    with pytest.raises(ValueError, match="domain"):
        EmotionDataset(speech_dir, split="test", normalizers={"B": train.normalizers["B"]})


def test_speech_disk_cache_used(speech_dir, tmp_path):
    cache = FbankCache(tmp_path / "fb")
    first = EmotionDataset(speech_dir, feature_cache=cache)
    # i3 (val, no category rating) is never decoded: not in the dataset, not a train item
    assert cache.misses == 5 and len(list((tmp_path / "fb").glob("*.npy"))) == 5
    again = EmotionDataset(speech_dir, feature_cache=cache)
    assert cache.misses == 5 and cache.hits == 5
    nocache = EmotionDataset(speech_dir, feature_cache=False)
    for i in range(len(first)):
        np.testing.assert_array_equal(first[i]["x"].numpy(), again[i]["x"].numpy())
        np.testing.assert_array_equal(first[i]["x"].numpy(), nocache[i]["x"].numpy())


def test_short_clip_excluded_and_reported(speech_dir):
    sf.write(speech_dir / "media" / "i1.wav", np.zeros(300, np.float32), SR, subtype="PCM_16")
    ds = EmotionDataset(speech_dir, feature_cache=False)
    assert "i1" not in ds.item_ids and ds.excluded == 2
    assert ds.excluded_reasons["shorter than one 25 ms frame"] == 1


def test_corrupt_wav_named(speech_dir):
    (speech_dir / "media" / "i2.wav").write_bytes(b"not audio")
    with pytest.raises(ContractError, match=r"item 'i2': .*i2\.wav: cannot decode audio") as exc:
        EmotionDataset(speech_dir, feature_cache=False)
    assert isinstance(exc.value.__cause__, AudioLoadError)


def test_collate_speech_pads_and_reports_lengths(speech_dir):
    ds = EmotionDataset(speech_dir)
    items = [ds[i] for i in range(len(ds))]
    batch = collate_speech(items)
    lengths = [it["x"].shape[0] for it in items]
    assert batch["lengths"].tolist() == lengths
    assert batch["x"].shape == (len(items), max(lengths), 40)
    for j, it in enumerate(items):
        torch.testing.assert_close(batch["x"][j, : lengths[j]], it["x"])
        assert torch.all(batch["x"][j, lengths[j]:] == 0)
    assert batch["y"].shape == (len(items), 3) and batch["label"].shape == (len(items),)
    assert batch["truth"]["true_dist"].shape == (len(items), 3)
    assert batch["item_id"] == list(ds.item_ids)
    loaded = next(iter(DataLoader(ds, batch_size=2, collate_fn=ds.collate_fn)))
    assert loaded["x"].shape == (2, max(lengths[:2]), 40)
    with pytest.raises(ValueError, match="at least one"):
        collate_speech([])
    with pytest.raises(ValueError, match="same D"):
        collate_speech([{"x": torch.zeros(3, 40)}, {"x": torch.zeros(3, 20)}])


@pytest.mark.parametrize("media", ["../../etc/passwd", "/etc/passwd", "media/../../x.png",
                                   "C:\\x.png", "\\\\server\\share\\x.png", "a\x00.png", ".", ""])
def test_a_media_path_that_leads_out_of_the_dataset_is_refused(tmp_path, media):
    """An items.parquet is user data: its media paths become files only inside the directory
    (affectlab.data.contract.media_file), when a dataset is written or loaded and when an item
    is read, so a hand-made table cannot make training or a page read /etc/passwd."""
    from affectlab.data.contract import DatasetDir, load_dataset, media_file

    items, ratings, meta = _tables("face", "png")
    items.loc[1, "media"] = media
    with pytest.raises(ContractError, match=r"media .* at row 1 must be a path inside"):
        write_dataset(tmp_path / "w", items, ratings, meta)
    items.loc[1, "media"] = "media/i1.png"
    ds = write_dataset(tmp_path / "ok", items, ratings, meta)
    # a table changed after it was written: the load refuses it, and so does the item read
    changed = items.copy()
    changed.loc[1, "media"] = media
    changed.to_parquet(ds.root / "items.parquet", index=False)
    with pytest.raises(ContractError, match="at row 1 must be a path inside"):
        load_dataset(ds.root)
    unchecked = load_dataset(ds.root, validate=False)
    assert isinstance(unchecked, DatasetDir)
    with pytest.raises(ContractError, match="must be a path inside the dataset directory"):
        unchecked.media_path(1)
    assert media_file(ds.root, "media/i0.png") == ds.root / "media" / "i0.png"
    assert load_dataset(ds.root, validate=False).media_path(0) == ds.root / "media/i0.png"


def test_the_vectorised_media_prefilter_catches_every_path_the_rule_refuses():
    """The contract checks a table's media with one regex pass and the rule only on matches:
    that is sound only if every path the rule refuses matches."""
    import re

    from hypothesis import given
    from hypothesis import strategies as st

    from affectlab.data.contract import _SUSPECT_MEDIA, _leaves_directory

    parts = st.sampled_from(["a", "b.png", ".", "..", "", "/", "\\", "C:", "\x00", "~", " "])

    @given(st.lists(parts, max_size=6).map("".join) | st.text(max_size=12))
    def check(text):
        assert not _leaves_directory(text) or re.search(_SUSPECT_MEDIA, text)

    check()
