"""Importers for real corpora (affectlab.data.importers): one tiny fixture per published layout."""

from __future__ import annotations

import os
from pathlib import Path

import fixtures_importers as fx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from affectlab.data.contract import ContractError, load_dataset
from affectlab.data.importers import FORMATS, BadRow, ImportError_, ImportReport, import_corpus
from affectlab.data.importers._common import group_splits, split_sizes, undecodable_at
from affectlab.data.importers.emodb import parse_name as parse_emodb_name
from affectlab.data.importers.folder import infer_range
from affectlab.data.importers.iemocap import parse_categories, parse_dimensions
from affectlab.data.importers.ravdess import parse_name


def soft_label(ds, item_id: str, weighted: bool = True) -> np.ndarray:
    """The item's category distribution derived from the long ratings table (votes, or weights)."""
    r = ds.ratings[(ds.ratings["item_id"] == item_id) & (ds.ratings["scale"] == "category")]
    w = r["weight"].to_numpy() if weighted and "weight" in r else np.ones(len(r))
    counts = np.bincount(r["value"].to_numpy().astype(int), weights=w,
                         minlength=len(ds.class_names))
    return counts / counts.sum()


def ratings_of(ds, item_id: str, scale: str) -> list[tuple[str, float]]:
    r = ds.ratings[(ds.ratings["item_id"] == item_id) & (ds.ratings["scale"] == scale)]
    return sorted(zip(r["rater_id"], r["value"], strict=True))


def run(fmt: str, writer, tmp_path: Path, **kw) -> tuple[ImportReport, object]:
    src = writer(tmp_path / "src")
    report = import_corpus(fmt, src, tmp_path / "out", **kw)
    return report, load_dataset(tmp_path / "out")


# --------------------------------------------------------------------------- registry & errors

def test_registry_names_every_format_with_a_one_line_description():
    assert set(FORMATS) == {"ferplus", "rafdb", "affectnet", "cremad", "ravdess", "emodb",
                            "iemocap", "msp", "folder"}
    for name, importer in FORMATS.items():
        assert importer.name == name
        assert importer.description and "\n" not in importer.description


def test_unknown_format_lists_the_known_ones(tmp_path):
    with pytest.raises(ImportError_, match="unknown format 'fer'.*affectnet.*ferplus") as exc:
        import_corpus("fer", tmp_path, tmp_path / "out")
    assert isinstance(exc.value, ValueError)
    assert not (tmp_path / "out").exists()


def test_missing_source_and_missing_files_are_reported(tmp_path):
    with pytest.raises(ImportError_, match="not a directory"):
        import_corpus("ferplus", tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImportError_, match="fer2013.csv and fer2013new.csv not found"):
        import_corpus("ferplus", tmp_path / "empty", tmp_path / "out")
    with pytest.raises(ImportError_, match="list_patition_label.txt not found"):
        import_corpus("rafdb", tmp_path / "empty", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_output_inside_source_is_refused(tmp_path):
    src = fx.write_ravdess(tmp_path / "src")
    with pytest.raises(ImportError_, match="inside the source"):
        import_corpus("ravdess", src, src / "imported")
    assert not (src / "imported").exists()


def test_existing_output_needs_overwrite(tmp_path):
    src = fx.write_ravdess(tmp_path / "src")
    import_corpus("ravdess", src, tmp_path / "out")
    with pytest.raises(ImportError_, match="already exists"):
        import_corpus("ravdess", src, tmp_path / "out")
    report = import_corpus("ravdess", src, tmp_path / "out", overwrite=True)
    assert report.items == 4


# --------------------------------------------------------------------------- FER+

def test_ferplus(tmp_path):
    report, ds = run("ferplus", fx.write_ferplus, tmp_path)
    assert ds.modality == "face" and ds.meta["modality"] == "face"
    assert ds.class_names == ["neutral", "happiness", "surprise", "sadness", "anger", "disgust",
                              "fear", "contempt"]
    # rows 2 (no image name) and 4 (6 of 10 votes not-a-face) are excluded by SPEC §1's rule;
    # fer0000001 and fer0000006 are named twice: the later row wins (row 3 moves fer0000001 to
    # its place; row 8 is mostly not-a-face, so fer0000006 goes)
    assert list(ds.items["item_id"]) == ["fer0000000", "fer0000001", "fer0000004", "fer0000005"]
    assert report.splits == {"train": 2, "val": 1, "test": 1}
    assert list(ds.items["split"]) == ["train", "train", "val", "test"]
    assert report.excluded == {"FER+ row without image name (not a face)": 1,
                               "votes mostly not-a-face": 2}
    assert [(n.file, n.line) for n in report.notices] == [("fer2013new.csv", 5),
                                                          ("fer2013new.csv", 10)]
    assert "repeats line 3 of fer2013new.csv; the later row wins" in report.notices[0].reason
    assert "notice: fer2013new.csv:5: image name 'fer0000001.png'" in report.summary()
    assert set(ds.items["domain"]) == {"ferplus"}
    # the long table: 10 emotion votes, one row each, for FER+'s first row (4,0,0,1,3,2,0,0)
    # FER+ gives vote counts, not taggers: every vote is anonymous (rater_id null), never a
    # made-up "tagger<k>" that would be the same person across images
    votes = ratings_of(ds, "fer0000000", "category")
    assert len(votes) == 10 and all(pd.isna(rater) for rater, _ in votes)
    assert ds.ratings["rater_id"].isna().all()
    assert sorted(v for _, v in votes) == [0, 0, 0, 0, 3, 4, 4, 4, 5, 5]
    np.testing.assert_allclose(soft_label(ds, "fer0000000"),
                               [0.4, 0, 0, 0.1, 0.3, 0.2, 0, 0])
    # the later row of fer0000001 (0,7,0,1,0,0,0,1 + 1 unknown): unknown dropped, over 9
    np.testing.assert_allclose(soft_label(ds, "fer0000001"), [0, 7 / 9, 0, 1 / 9, 0, 0, 0, 1 / 9])
    items = ds.items.set_index("item_id")
    assert items.loc["fer0000001", "votes_unknown"] == 1
    assert items.loc["fer0000001", "fer_label"] == "happy"  # row 3's FER2013 label
    assert report.ratings == len(ds.ratings) == 10 + 9 + 10 + 10
    # the pixel string became the 48×48 PNG, pixel for pixel; a repeated name: the later row's
    png = ds.media_path("fer0000005")
    assert png.relative_to(ds.root).as_posix() == "media/FER2013Test/fer0000005.png"
    np.testing.assert_array_equal(np.asarray(Image.open(png)), fx.ferplus_pixels(6))
    np.testing.assert_array_equal(np.asarray(Image.open(ds.media_path("fer0000001"))),
                                  fx.ferplus_pixels(3))


def test_ferplus_microsoft_folders_give_the_same_items_and_votes(tmp_path):
    kaggle_report, kaggle = run("ferplus", fx.write_ferplus, tmp_path / "kaggle")
    report, ds = run("ferplus", fx.write_ferplus_folders, tmp_path / "folders")
    assert ds.meta["provenance"]["layout"] == "folders"
    assert kaggle.meta["provenance"]["layout"] == "kaggle"
    assert ds.meta["provenance"]["files"] == [f"data/{f}/label.csv"
                                              for f in fx.FERPLUS_FOLDERS.values()]
    # the same items (FER2013's own label is only in fer2013.csv), votes and pixels
    shared = [c for c in kaggle.items.columns if c != "fer_label"]
    assert list(ds.items.columns) == shared
    pd.testing.assert_frame_equal(ds.items, kaggle.items[shared])
    pd.testing.assert_frame_equal(ds.ratings, kaggle.ratings)
    for item_id, (row, _) in fx.FERPLUS_KEPT.items():
        np.testing.assert_array_equal(np.asarray(Image.open(ds.media_path(item_id))),
                                      fx.ferplus_pixels(row))
    assert report.splits == kaggle_report.splits
    # the names repeat in label.csv too, and the same rule answers them
    assert [(n.file, n.line) for n in report.notices] == [("data/FER2013Train/label.csv", 3),
                                                          ("data/FER2013Test/label.csv", 3)]
    assert report.excluded == {"votes mostly not-a-face": 2}  # label.csv lists no nameless row


def test_ferplus_folders_found_from_data_or_one_level_up(tmp_path):
    src = fx.write_ferplus_folders(tmp_path / "downloads" / "FERPlus")
    for folder in (src, src / "data", src.parent):
        out = tmp_path / "out" / folder.name
        assert import_corpus("ferplus", folder, out).items == 4


def test_ferplus_folders_without_pngs_say_to_run_the_script(tmp_path):
    src = fx.write_ferplus_folders(tmp_path / "src")
    for png in src.rglob("*.png"):
        png.unlink()
    with pytest.raises(ImportError_, match=r"FER2013Train/label\.csv lists 3 images but none is "
                       r"in data/FER2013Train; run FER\+'s generate_training_data\.py first"):
        import_corpus("ferplus", src, tmp_path / "out")


def test_ferplus_folder_label_file_bad_box_and_missing_png(tmp_path):
    src = fx.write_ferplus_folders(tmp_path / "src")
    label = src / "data/FER2013Valid/label.csv"
    label.write_text(label.read_text().replace('"(0, 0, 48, 48)"', '"(0, 0, 48)"', 1))
    (src / "data/FER2013Test/fer0000005.png").unlink()
    with pytest.raises(ImportError_, match="2 malformed") as exc:
        import_corpus("ferplus", src, tmp_path / "out")
    assert "data/FER2013Valid/label.csv:1: face box '(0, 0, 48)'" in str(exc.value)
    assert "data/FER2013Test/fer0000005.png: media file is missing" in str(exc.value)
    report = import_corpus("ferplus", src, tmp_path / "out", skip_bad=True)
    assert report.items == 3 and report.n_skipped == 2  # fer0000003 (its box) was excluded anyway


def test_ferplus_neither_layout(tmp_path):
    (tmp_path / "src").mkdir()
    fx.write_text(tmp_path / "src/fer2013new.csv", fx.FERPLUS_NEW_HEADER + "\n")
    with pytest.raises(ImportError_, match=r"neither the Kaggle layout \(fer2013\.csv not found\)"
                       r" nor FER\+'s folders"):
        import_corpus("ferplus", tmp_path / "src", tmp_path / "out")


def test_bad_row_aborts_before_anything_is_written(tmp_path):
    src = fx.write_ferplus(tmp_path / "src", bad_votes_row=5)
    with pytest.raises(ImportError_, match=r"fer2013new\.csv:7: vote counts") as exc:
        import_corpus("ferplus", src, tmp_path / "out")
    assert "nothing was written" in str(exc.value) and "\n" not in str(exc.value)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["src"]  # no staging directory left behind


def test_bad_row_skipped_with_a_count(tmp_path):
    src = fx.write_ferplus(tmp_path / "src", bad_votes_row=5)
    report = import_corpus("ferplus", src, tmp_path / "out", skip_bad=True)
    assert report.skipped == [BadRow("fer2013new.csv", 7, "vote counts must be non-negative "
                                     "integers (at most 10000)")]
    assert report.n_skipped == 1 and "fer2013new.csv:7" in report.summary()
    ds = load_dataset(tmp_path / "out")
    assert "fer0000004" not in set(ds.items["item_id"]) and report.items == 3
    assert report.splits == {"train": 2, "val": 0, "test": 1}


def test_ferplus_files_must_align(tmp_path):
    src = fx.write_ferplus(tmp_path / "src")
    lines = (src / "fer2013.csv").read_text().splitlines()
    (src / "fer2013.csv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ImportError_, match="different numbers of rows"):
        import_corpus("ferplus", src, tmp_path / "out", skip_bad=True)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- RAF-DB

def test_rafdb_single_label(tmp_path):
    report, ds = run("rafdb", fx.write_rafdb, tmp_path)
    assert ds.class_names == ["surprise", "fear", "disgust", "happiness", "sadness", "anger",
                              "neutral"]
    assert report.splits == {"train": 3, "val": 0, "test": 1}
    # "train_00001.jpg 5": label 5 = Sadness, class index 4, one rating from the dataset
    assert ratings_of(ds, "train_00001", "category") == [("dataset", 4.0)]
    items = ds.items.set_index("item_id")
    assert tuple(items.loc["test_0001", ["label", "split"]]) == ("neutral", "test")
    # the aligned image is the media, byte for byte
    src_img = tmp_path / "src/basic/Image/aligned/train_00002_aligned.jpg"
    assert ds.media_path("train_00002").read_bytes() == src_img.read_bytes()


def test_rafdb_label_distribution_becomes_weighted_ratings(tmp_path):
    _, ds = run("rafdb", lambda r: fx.write_rafdb(r, distribution=True), tmp_path)
    for name, probs in fx.RAFDB_DIST.items():
        np.testing.assert_allclose(soft_label(ds, Path(name).stem), probs)
    r = ds.ratings[ds.ratings["item_id"] == "train_00001"]
    assert set(r["rater_id"]) == {"crowd"} and r["weight"].sum() == pytest.approx(1.0)
    assert ds.items.set_index("item_id").loc["train_00001", "label"] == "sadness"


def test_rafdb_malformed_line_is_reported_with_its_line_number(tmp_path):
    src = fx.write_rafdb(tmp_path / "src", extra_line="train_00009.jpg 9")
    with pytest.raises(ImportError_, match=r"list_patition_label\.txt:3"):
        import_corpus("rafdb", src, tmp_path / "out")
    report = import_corpus("rafdb", src, tmp_path / "out", skip_bad=True)
    assert report.items == 4 and report.skipped[0].line == 3


# --------------------------------------------------------------------------- AffectNet

def test_affectnet(tmp_path):
    report, ds = run("affectnet", fx.write_affectnet, tmp_path)
    assert list(ds.items["item_id"]) == ["689/0a1b2c", "689/0d4e5f", "303/ee33ff"]
    assert report.splits == {"train": 2, "val": 0, "test": 1}
    assert report.excluded == {"expression 8 (None)": 1, "expression 10 (No-Face)": 1}
    assert ds.scale("valence").to_json() == {"type": "likert", "low": -1.0, "high": 1.0}
    assert ds.scale("activation").to_json() == {"type": "likert", "low": -1.0, "high": 1.0}
    assert ratings_of(ds, "689/0a1b2c", "category") == [("dataset", 1.0)]  # Happy
    assert ratings_of(ds, "689/0a1b2c", "valence") == [("dataset", 0.5)]
    assert ratings_of(ds, "303/ee33ff", "activation") == [("dataset", 0.8)]
    np.testing.assert_allclose(soft_label(ds, "303/ee33ff"), np.eye(8)[6])  # Anger
    row = ds.items.set_index("item_id").loc["689/0d4e5f"]
    assert (row["face_x"], row["face_width"]) == (178, 91)
    assert ds.media_path("303/ee33ff").is_file()


def test_affectnet_faces_are_cropped_in_the_published_box(tmp_path):
    """Real AffectNet images are whole photos with the face box in the list files: the loader
    crops there (no detector), a box outside the image is a bad row, and a row with a zero box
    goes through detection. Before, every such photo without a detectable face was refused."""
    from affectlab.data.dataset import EmotionDataset
    from affectlab.features.face import FaceCropper, load_image

    src = fx.write_affectnet(tmp_path / "src")
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    Image.fromarray(noise).save(src / "Manually_Annotated_Images/689/0d4e5f.jpg")  # no face
    lists = src / "Manually_Annotated_file_lists"
    text = (lists / "training.csv").read_text()
    text = text.replace("689/0d4e5f.jpg,178,65,91,111", "689/0d4e5f.jpg,30,30,196,196")
    (lists / "training.csv").write_text(text + "689/out.jpg,600,600,50,50,1.0;2.0,3,0.1,0.0\n"
                                        "689/zero.jpg,0,0,0,0,1.0;2.0,3,0.1,0.0\n")
    for name in ("out", "zero"):
        Image.fromarray(fx.affectnet_photo(9)).save(src / f"Manually_Annotated_Images/689/"
                                                    f"{name}.jpg")
    with pytest.raises(ImportError_, match=r"out\.jpg: face box \(x 600, y 600, w 50, h 50\) "
                                           r"lies outside the 512×512 image"):
        import_corpus("affectnet", src, tmp_path / "out")
    report = import_corpus("affectnet", src, tmp_path / "out", skip_bad=True)
    assert report.items == 4 and report.n_skipped == 1
    ds = EmotionDataset(tmp_path / "out", None, feature_cache=False)
    assert ds.face_sources == {"box": 3, "crop": 0, "detected": 1, "whole image": 0}
    x = {ds[i]["item_id"]: ds[i]["x"][0].numpy() for i in range(len(ds))}
    cropper = FaceCropper()
    img = load_image(tmp_path / "out/media/689/0d4e5f.jpg")
    np.testing.assert_allclose(x["689/0d4e5f"], cropper.crop(img, (30, 30, 196, 196)) / 255.0,
                               atol=1e-6)
    img = load_image(tmp_path / "out/media/689/zero.jpg")  # detected: about the same place
    np.testing.assert_allclose(x["689/zero"], cropper.process(img).face / 255.0, atol=1e-6)


def test_affectnet_sets_layout(tmp_path):
    """The newer distribution (train_set/, val_set/: cropped faces, one .npy per annotation)
    imports by the manual layout's rules, the whole image as the face box; before, it failed
    with "training.csv not found"."""
    from affectlab.data.dataset import EmotionDataset

    report, ds = run("affectnet", fx.write_affectnet_sets, tmp_path)
    assert list(ds.items["item_id"]) == ["train_set/0", "train_set/1", "val_set/12"]
    assert report.splits == {"train": 2, "val": 0, "test": 1}
    assert report.excluded == {"expression 8 (None)": 1}
    assert ratings_of(ds, "train_set/0", "category") == [("dataset", 1.0)]  # happy
    assert ratings_of(ds, "val_set/12", "activation") == [("dataset", 0.8)]
    row = ds.items.set_index("item_id").loc["train_set/1"]
    assert (row["face_x"], row["face_y"], row["face_width"], row["face_height"]) == \
        (0, 0, 224, 224)
    loaded = EmotionDataset(tmp_path / "out", None, feature_cache=False)
    assert loaded.face_sources["box"] == 3


def test_affectnet_sets_annotations_are_never_unpickled(tmp_path):
    """An annotation file that is an object array (a pickle inside the .npy), too large, or not
    one value is a bad row; the pickle's payload never runs."""
    marker = tmp_path / "ran"
    src = fx.write_affectnet_sets(tmp_path / "src")
    notes = src / "train_set" / "annotations"
    np.save(notes / "0_exp.npy", np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    np.save(notes / "1_val.npy", np.zeros(5000))
    np.save(notes / "7_aro.npy", np.array(["0.1", "0.2"]))
    with pytest.raises(ImportError_, match="3 malformed") as exc:
        import_corpus("affectnet", src, tmp_path / "out")
    assert "expression: train_set/annotations/0_exp.npy is missing or not a one-value" in \
        str(exc.value)
    assert not marker.exists()
    report = import_corpus("affectnet", src, tmp_path / "out", skip_bad=True)
    assert report.items == 1 and report.n_skipped == 3 and not marker.exists()


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_face_box_columns_go_together_and_are_numbers(tmp_path):
    from affectlab.data.contract import face_boxes

    items = pd.DataFrame({"face_x": [1, None, 3], "face_y": [1, 2, 3],
                          "face_width": [5, 5, 0], "face_height": [5, 5, 5]})
    boxes = face_boxes(items)
    np.testing.assert_array_equal(boxes[0], [1, 1, 5, 5])
    assert np.isnan(boxes[1]).all() and np.isnan(boxes[2]).all()  # a null, a zero width
    assert face_boxes(items[["face_y"]].rename(columns={"face_y": "other"})) is None
    with pytest.raises(ContractError, match=r"face-box columns \['face_x'\] without"):
        face_boxes(items[["face_x"]])
    with pytest.raises(ContractError, match="must be numbers"):
        face_boxes(items.assign(face_x=["a", "b", "c"]))


def test_affectnet_list_without_header_and_bad_values(tmp_path):
    src = fx.write_affectnet(tmp_path / "src", validation_header=False)
    with open(src / "Manually_Annotated_file_lists/training.csv", "a") as fh:
        fh.write("689/ffff.jpg,8,9,48,48,1.0;2.0,3,1.5,0.0\n")  # valence outside [-1, 1]
    with pytest.raises(ImportError_, match=r"training\.csv:6: valence/arousal \(1\.5, 0\.0\)"):
        import_corpus("affectnet", src, tmp_path / "out")
    report = import_corpus("affectnet", src, tmp_path / "out", skip_bad=True)
    assert report.splits == {"train": 2, "val": 0, "test": 1} and report.n_skipped == 1
    ds = load_dataset(tmp_path / "out")
    assert ratings_of(ds, "303/ee33ff", "valence") == [("dataset", -0.7)]


# --------------------------------------------------------------------------- CREMA-D

def test_cremad_per_rater_voice_responses(tmp_path):
    report, ds = run("cremad", fx.write_cremad, tmp_path)
    assert ds.modality == "speech"
    assert ds.class_names == ["anger", "disgust", "fear", "happy", "neutral", "sad"]
    # 1002_ITS_SAD_XX only has an audio-visual response: no rating of its audio
    assert list(ds.items["item_id"]) == ["1001_DFA_ANG_XX", "1001_IEO_HAP_HI", "1002_DFA_NEU_XX"]
    assert report.excluded == {"face or audio-visual response (not a rating of the audio)": 2,
                               "repeated response of a rater to a clip": 1,
                               "clip without voice-only responses": 1}
    assert ratings_of(ds, "1001_DFA_ANG_XX", "category") == [("O0001", 0.0), ("O0002", 0.0),
                                                              ("O0003", 1.0)]
    np.testing.assert_allclose(soft_label(ds, "1001_DFA_ANG_XX"), [2 / 3, 1 / 3, 0, 0, 0, 0])
    assert ratings_of(ds, "1001_DFA_ANG_XX", "level") == [("O0001", 60.0), ("O0002", 70.0),
                                                           ("O0003", 40.0)]
    assert ratings_of(ds, "1002_DFA_NEU_XX", "level") == [("O0003", 50.0)]  # "NA" is missing
    items = ds.items.set_index("item_id")
    assert items.loc["1001_IEO_HAP_HI", "speaker"] == "1001"
    assert items.loc["1001_IEO_HAP_HI", "intended_level"] == "HI"
    assert items.loc["1001_IEO_HAP_HI", "label"] == "happy"
    assert report.splits == {"train": 3, "val": 0, "test": 0}  # 2 actors: ranks 0, 1 → train


def test_cremad_tabulated_votes_fallback(tmp_path):
    report, ds = run("cremad", fx.write_cremad_tabulated, tmp_path)
    assert report.items == 2 and report.excluded == {"face or audio-visual vote row": 1}
    np.testing.assert_allclose(soft_label(ds, "1001_DFA_ANG_XX"), [2 / 3, 1 / 3, 0, 0, 0, 0])
    np.testing.assert_allclose(soft_label(ds, "1001_IEO_HAP_HI"), [0, 0, 0, 0.5, 0.5, 0])
    # tabulated votes are counts, not raters: anonymous (finishedResponses.csv keeps localid)
    assert ds.ratings["rater_id"].isna().all()


# --------------------------------------------------------------------------- RAVDESS

def test_ravdess(tmp_path):
    report, ds = run("ravdess", fx.write_ravdess, tmp_path)
    assert report.items == 4 and report.ratings == 8
    items = ds.items.set_index("item_id")
    fear = items.loc["03-01-06-02-02-01-01"]
    assert (fear["label"], fear["intensity"], fear["speaker"], fear["gender"]) == \
        ("fearful", "strong", "actor01", "male")
    assert fear["statement"] == "Dogs are sitting by the door"
    assert items.loc["03-02-05-02-01-01-02", "vocal_channel"] == "song"
    assert ratings_of(ds, "03-01-06-02-02-01-01", "category") == [("dataset", 5.0)]
    assert ratings_of(ds, "03-01-06-02-02-01-01", "intensity") == [("dataset", 1.0)]
    assert ds.scale("intensity").to_json() == {"type": "ordinal", "names": ["normal", "strong"]}
    np.testing.assert_allclose(soft_label(ds, "03-01-03-01-01-02-02"), np.eye(8)[2])
    assert ds.media_path("03-01-01-01-01-01-01").relative_to(ds.root).as_posix() == \
        "media/Audio_Speech_Actors_01-24/Actor_01/03-01-01-01-01-01-01.wav"


def test_ravdess_bad_file_name_both_ways(tmp_path):
    src = fx.write_ravdess(tmp_path / "src")
    fx.write_wav(src / "Audio_Speech_Actors_01-24/Actor_03/03-01-09-01-01-01-03.wav")
    with pytest.raises(ImportError_, match="03-01-09-01-01-01-03.wav: emotion 09 outside"):
        import_corpus("ravdess", src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    report = import_corpus("ravdess", src, tmp_path / "out", skip_bad=True)
    assert report.items == 4 and report.skipped[0].line is None


def test_parse_ravdess_name():
    assert parse_name("03-01-06-01-02-01-12") == {
        "modality": 3, "channel": 1, "emotion": 6, "intensity": 1, "statement": 2,
        "repetition": 1, "actor": 12}
    assert parse_name("03-01-01-02-01-01-01") == "neutral has no strong intensity"
    assert parse_name("03-01-06-01-02-01-25").startswith("actor 25")
    assert "seven two-digit" in parse_name("3-1-6-1-2-1-12")


# --------------------------------------------------------------------------- EmoDB

def test_emodb(tmp_path):
    report, ds = run("emodb", fx.write_emodb, tmp_path)
    assert ds.modality == "speech"
    assert ds.class_names == ["angry", "bored", "disgusted", "fearful", "happy", "sad",
                              "neutral"]
    assert report.items == len(fx.EMODB_FILES) == report.ratings
    items = ds.items.set_index("item_id")
    row = items.loc["08b01Ea"]
    assert (row["label"], row["speaker"], row["gender"], row["text"], row["version"]) == \
        ("disgusted", "speaker08", "female", "b01", "a")
    # every German letter to its English class: W L E A F T N
    letters = {stem[5]: items.loc[stem, "label"] for stem in fx.EMODB_FILES}
    assert letters == {"W": "angry", "L": "bored", "E": "disgusted", "A": "fearful",
                       "F": "happy", "T": "sad", "N": "neutral"}
    assert ratings_of(ds, "09a05Aa", "category") == [("dataset", 3.0)]
    np.testing.assert_allclose(soft_label(ds, "10a07Wb"), np.eye(7)[0])
    # four speakers, speaker-independent: 03 and 08 train, 09 val, 10 test
    assert report.splits == {"train": 5, "val": 2, "test": 2}
    assert items.groupby("speaker")["split"].nunique().max() == 1
    assert set(items.loc[items["split"] == "test", "speaker"]) == {"speaker10"}
    assert ds.media_path("03a01Fa").relative_to(ds.root).as_posix() == "media/wav/03a01Fa.wav"


def test_emodb_bad_names(tmp_path):
    assert parse_emodb_name("03a01Fa") == {"speaker": "03", "text": "a01", "emotion": "happy",
                                           "version": "a"}
    assert parse_emodb_name("05a01Fa").startswith("speaker 05 is not one of EmoDB's")
    assert parse_emodb_name("03a03Fa").startswith("text a03")
    assert parse_emodb_name("03a01Xa").startswith("emotion letter X")
    assert "not an EmoDB file name" in parse_emodb_name("03-01-01")
    src = fx.write_emodb(tmp_path / "src")
    fx.write_wav(src / "wav" / "03a01Ga.wav")
    with pytest.raises(ImportError_, match=r"wav/03a01Ga\.wav: emotion letter G"):
        import_corpus("emodb", src, tmp_path / "out")
    assert import_corpus("emodb", src, tmp_path / "out", skip_bad=True).items == 9
    with pytest.raises(ImportError_, match="no .wav files"):
        import_corpus("emodb", src / "lablaut", tmp_path / "out2")


# --------------------------------------------------------------------------- corrupt media

def test_corrupt_wav_is_reported_with_its_path(tmp_path):
    src = fx.write_ravdess(tmp_path / "src")
    bad = src / "Audio_Speech_Actors_01-24/Actor_01/03-01-01-01-01-01-01.wav"
    bad.write_bytes(b"RIFF\x00\x00not really a wave file")
    with pytest.raises(ImportError_, match="Actor_01/03-01-01-01-01-01-01.wav: unreadable audio"):
        import_corpus("ravdess", src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    report = import_corpus("ravdess", src, tmp_path / "out", skip_bad=True)
    assert report.items == 3
    assert report.skipped[0].file.endswith("03-01-01-01-01-01-01.wav")


def test_corrupt_and_missing_images_are_reported(tmp_path):
    src = fx.write_folder_tree(tmp_path / "src")
    (src / "train/sad/b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    report = import_corpus("folder", src, tmp_path / "out", skip_bad=True)
    assert report.items == 3
    assert report.skipped[0].file == "train/sad/b.png"
    assert "unreadable image" in report.skipped[0].reason
    src2 = fx.write_rafdb(tmp_path / "src2")
    (src2 / "basic/Image/aligned/test_0001_aligned.jpg").unlink()
    (src2 / "basic/Image/original/test_0001.jpg").unlink()
    with pytest.raises(ImportError_, match="test_0001_aligned.jpg: media file is missing"):
        import_corpus("rafdb", src2, tmp_path / "out2")


# --------------------------------------------------------------------------- text encodings, truncation

LATIN1_CSV = "path,label\nclips/s1_a.wav,Ärger\nclips/s2_b.wav,Freude\nclips/s3_c.wav,Ärger\n"


def test_label_file_that_is_not_utf8_names_file_offset_and_line(tmp_path):
    src = fx.write_folder_csv(tmp_path / "src")
    (src / "labels.csv").write_bytes(LATIN1_CSV.encode("latin-1"))
    with pytest.raises(ImportError_) as exc:
        import_corpus("folder", src, tmp_path / "out")
    message = str(exc.value)
    assert f"{src / 'labels.csv'} is not utf-8 text: byte 0xc4 at offset 26 (line 2)" in message
    assert "--encoding" in message and "\n" not in message
    assert not (tmp_path / "out").exists()
    report = import_corpus("folder", src, tmp_path / "out", encoding="latin-1")
    assert report.items == 3
    assert load_dataset(tmp_path / "out").class_names == ["Freude", "Ärger"]
    with pytest.raises(ImportError_, match="unknown text encoding 'klingon'"):
        import_corpus("folder", src, tmp_path / "out2", encoding="klingon")


def test_undecodable_at_across_chunks(tmp_path):
    path = tmp_path / "big.csv"
    # a two-byte 'ä' straddles the 1 MiB chunk boundary; the bad byte follows on line 2
    path.write_bytes(b"a" * (2**20 - 1) + "ä".encode() + b"\nok,\xff\n")
    assert undecodable_at(path, "utf-8") == (2**20 + 5, b"\xff", 2)
    path.write_bytes("fine ä\n".encode())
    assert undecodable_at(path, "utf-8") is None


def test_truncated_csv_is_a_bad_row_not_a_key_error(tmp_path):
    src = fx.write_msp_podcast(tmp_path / "src")
    consensus = src / "Labels/labels_consensus.csv"
    text = consensus.read_text()
    consensus.write_text(text[:text.index("Development") - 12])  # cut inside line 3
    with pytest.raises(ImportError_, match=r"labels_consensus\.csv:3: expected 8 fields, got 5 "
                       r"\(a truncated line\?\); nothing was written"):
        import_corpus("msp", src, tmp_path / "out")
    detailed = src / "Labels/labels_detailed.csv"
    consensus.write_text(text)
    detailed.write_text(detailed.read_text()[:-30])  # cut inside a quoted field
    with pytest.raises(ImportError_, match=r"labels_detailed\.csv:8: EmoDetail is not"):
        import_corpus("msp", src, tmp_path / "out")


# --------------------------------------------------------------------------- IEMOCAP

def test_iemocap_every_evaluator_becomes_a_rating(tmp_path):
    report, ds = run("iemocap", fx.write_iemocap, tmp_path)
    assert list(ds.items["item_id"]) == ["Ses01F_impro01_F000", "Ses01F_impro01_M001",
                                         "Ses05M_script01_1_F000"]
    assert report.splits == {"train": 2, "val": 0, "test": 1}
    items = ds.items.set_index("item_id")
    assert items.loc["Ses01F_impro01_M001", "speaker"] == "Ses01M"
    assert items.loc["Ses01F_impro01_M001", "label"] == "frustration"
    assert items.loc["Ses05M_script01_1_F000", "speaker"] == "Ses05F"
    # C-E1 ticked Frustration and Anger (weight ½ each); E3 and the actor M1 ticked Frustration
    assert ratings_of(ds, "Ses01F_impro01_M001", "category") == [
        ("E1", 1.0), ("E1", 2.0), ("E3", 1.0), ("Ses01M1", 1.0)]
    weighted = soft_label(ds, "Ses01F_impro01_M001")
    np.testing.assert_allclose(weighted[[1, 2]], [2.5 / 3, 0.5 / 3])
    np.testing.assert_allclose(soft_label(ds, "Ses01F_impro01_M001", weighted=False)[[1, 2]],
                               [3 / 4, 1 / 4])
    assert ratings_of(ds, "Ses01F_impro01_F000", "valence") == [("E3", 3.0), ("E4", 2.0),
                                                                 ("Ses01F1", 3.0)]
    assert ratings_of(ds, "Ses01F_impro01_F000", "dominance") == [("E3", 2.0), ("E4", 3.0),
                                                                   ("Ses01F1", 1.0)]
    assert ratings_of(ds, "Ses05M_script01_1_F000", "category") == [
        ("E2", 4.0), ("E5", 5.0), ("Ses05F5", 9.0)]  # Happiness, Excited, Other:amused
    assert ds.scale("activation").to_json() == {"type": "likert", "low": 1.0, "high": 5.0}


def test_iemocap_malformed_evaluator_line(tmp_path):
    text = fx.IEMOCAP_S1.replace("A-E4:\tval 2; act 3;", "A-E4:\tval 9; act 3;")
    src = fx.write_iemocap(tmp_path / "src", s1_text=text)
    with pytest.raises(ImportError_, match=r"Ses01F_impro01\.txt:9: expected 'val v"):
        import_corpus("iemocap", src, tmp_path / "out")
    report = import_corpus("iemocap", src, tmp_path / "out", skip_bad=True)
    ds = load_dataset(tmp_path / "out")
    assert report.items == 3  # only the line is skipped; the turn keeps its other ratings
    assert ratings_of(ds, "Ses01F_impro01_F000", "valence") == [("E3", 3.0), ("Ses01F1", 3.0)]


def test_iemocap_line_parsers():
    assert parse_categories("Frustration; Anger;\t()") == [1, 2]
    assert parse_categories("Neutral state;") == [0]
    assert parse_categories("Other:nervous;") == [9]
    assert parse_categories("Boredom;") is None
    assert parse_dimensions("val 3; act 2; dom  2;\t()") == (3.0, 2.0, 2.0)
    assert parse_dimensions("val 0; act 2; dom 2;") is None


# --------------------------------------------------------------------------- MSP

@pytest.mark.parametrize("shape", ["emodetail", "columns"])
def test_msp_podcast_both_detailed_shapes(tmp_path, shape):
    report, ds = run("msp", lambda r: fx.write_msp_podcast(r, shape), tmp_path)
    assert set(ds.items["domain"]) == {"msp-podcast"}
    assert report.splits == {"train": 1, "val": 1, "test": 1}
    assert ds.class_names == ["angry", "sad", "happy", "surprise", "fear", "disgust", "contempt",
                              "neutral"]
    first = "MSP-PODCAST_0001_0008"
    assert ratings_of(ds, first, "category") == [("WORKER00001", 0.0), ("WORKER00002", 0.0),
                                                 ("WORKER00003", 6.0)]
    np.testing.assert_allclose(soft_label(ds, first)[[0, 6]], [2 / 3, 1 / 3])
    assert ratings_of(ds, first, "activation") == [("WORKER00001", 5.0), ("WORKER00002", 6.0),
                                                   ("WORKER00003", 5.0)]
    assert ds.scale("valence").to_json() == {"type": "likert", "low": 1.0, "high": 7.0}
    # "Other-Concerned" is not in the label set, but its attributes are still ratings
    assert ratings_of(ds, "MSP-PODCAST_0001_0019", "category") == [("WORKER00001", 7.0)]
    assert len(ratings_of(ds, "MSP-PODCAST_0001_0019", "valence")) == 2
    assert report.excluded == {"primary emotion 'Other' (not in the label set)": 1}
    # a NaN attribute is a missing rating
    assert ratings_of(ds, "MSP-PODCAST_0002_0033", "dominance") == [("WORKER00002", 4.0)]
    assert ds.items.set_index("item_id").loc[first, "speaker"] == "127"


def test_msp_improv(tmp_path):
    report, ds = run("msp", fx.write_msp_improv, tmp_path)
    assert set(ds.items["domain"]) == {"msp-improv"}
    assert ds.class_names == ["angry", "happy", "sad", "neutral"]
    first = "MSP-IMPROV-S01A-F01-P-FM01"
    assert report.splits == {"train": 1, "val": 0, "test": 1}  # sessions 1 and 6
    assert ratings_of(ds, first, "category") == [("WORKER00001", 0.0), ("WORKER00002", 0.0),
                                                 ("WORKER00003", 3.0)]  # duplicate line once
    assert ratings_of(ds, first, "naturalness") == [("WORKER00001", 3.0), ("WORKER00002", 3.0)]
    assert report.excluded == {"duplicated annotator line for a clip": 1,
                               "primary emotion 'Other' (not in the label set)": 1}
    row = ds.items.set_index("item_id").loc[first]
    assert (row["speaker"], row["session"], row["intended"], row["label"]) == \
        ("F01", 1, "angry", "angry")


# --------------------------------------------------------------------------- folder

def test_folder_class_folders_with_splits(tmp_path):
    report, ds = run("folder", fx.write_folder_tree, tmp_path)
    assert ds.modality == "face" and ds.class_names == ["happy", "sad"]
    assert report.splits == {"train": 2, "val": 1, "test": 1}
    assert ratings_of(ds, "val/sad/c", "category") == [("dataset", 1.0)]
    assert set(ds.items["domain"]) == {"src"}


def test_folder_csv_long_table_with_declared_and_inferred_ranges(tmp_path):
    report, ds = run("folder", fx.write_folder_csv, tmp_path)
    assert ds.modality == "speech" and ds.class_names == ["happy", "neutral", "sad"]
    assert ds.scale("valence").to_json() == {"type": "likert", "low": 1.0, "high": 5.0}
    assert ds.scale("activation").to_json() == {"type": "likert", "low": 1.0, "high": 5.0}
    assert ds.meta["provenance"]["scale_ranges"] == {"valence": "1..5 (declared)",
                                                    "activation": "1..5 (inferred)"}
    assert ratings_of(ds, "clips/s1_a", "category") == [("r1", 0.0), ("r2", 1.0)]
    assert ratings_of(ds, "clips/s1_a", "activation") == [("r1", 3.0)]  # empty cell = missing
    assert ratings_of(ds, "clips/s3_c", "category") == []
    assert ratings_of(ds, "clips/s3_c", "valence") == [("r2", 5.0)]
    # three speakers, no split column: one speaker each to train, val and test
    assert report.splits == {"train": 1, "val": 1, "test": 1}
    assert list(ds.items["speaker"]) == ["s1", "s2", "s3"]


def test_folder_csv_with_ratings_only_declares_a_two_class_label_set(tmp_path):
    text = "path,valence[-1:1]\nclips/s1_a.wav,0.5\nclips/s2_b.wav,-0.25\nclips/s3_c.wav,1\n"
    _, ds = run("folder", lambda r: fx.write_folder_csv(r, text), tmp_path)
    assert ds.meta["label_set"] == {"scale": "valence", "names": ["valence_low", "valence_high"],
                                    "ordinal": True}
    assert ratings_of(ds, "clips/s2_b", "valence") == [("dataset", -0.25)]


def test_folder_csv_bad_rows(tmp_path):
    text = ("path,label\nclips/s1_a.wav,happy\nclips/s1_a.wav,sad\n../outside.wav,sad\n"
            "clips/s2_b.wav,sad\n")
    src = fx.write_folder_csv(tmp_path / "src", text)
    with pytest.raises(ImportError_, match=r"labels\.csv:3: path 'clips/s1_a.wav' repeated"):
        import_corpus("folder", src, tmp_path / "out")
    report = import_corpus("folder", src, tmp_path / "out", skip_bad=True)
    assert [r.line for r in report.skipped] == [3, 4]
    assert report.items == 2
    short = fx.write_folder_csv(tmp_path / "src2",
                                "path,label\nclips/s1_a.wav\nclips/s2_b.wav,sad\n")
    with pytest.raises(ImportError_, match=r"labels\.csv:2: expected 2 fields, got 1"):
        import_corpus("folder", short, tmp_path / "out2")


def test_infer_range():
    assert infer_range([1, 3, 5]) == (1.0, 5.0)
    assert infer_range([1, 6]) == (1.0, 7.0)
    assert infer_range([0.2, 0.9]) == (0.0, 1.0)
    assert infer_range([-0.5, 0.25]) == (-1.0, 1.0)
    assert infer_range([0.5, 3.5]) is None
    assert infer_range([]) is None


# --------------------------------------------------------------------------- source untouched

FIXTURES = {
    "ferplus": fx.write_ferplus, "rafdb": lambda r: fx.write_rafdb(r, distribution=True),
    "affectnet": fx.write_affectnet, "cremad": fx.write_cremad, "ravdess": fx.write_ravdess,
    "emodb": fx.write_emodb, "iemocap": fx.write_iemocap, "msp": fx.write_msp_podcast,
    "folder": fx.write_folder_csv,
}


@pytest.mark.parametrize("fmt", sorted(FIXTURES))
def test_import_never_modifies_the_source(tmp_path, fmt):
    src = FIXTURES[fmt](tmp_path / "src")
    before = fx.tree_hash(src)
    mtimes = {p: p.stat().st_mtime_ns for p in src.rglob("*")}
    report = import_corpus(fmt, src, tmp_path / "out")
    assert fx.tree_hash(src) == before
    assert {p: p.stat().st_mtime_ns for p in src.rglob("*")} == mtimes
    # every item's media is in the output, with the content of its source file
    ds = load_dataset(tmp_path / "out")
    assert len(ds.items) == report.items
    for i in range(len(ds.items)):
        assert ds.media_path(i).is_file()
    # replacing an output file (as any atomic writer does) leaves the source alone
    ds.media_path(0).unlink()
    ds.media_path(0).write_bytes(b"replaced")
    assert fx.tree_hash(src) == before


def test_media_are_hard_linked_on_the_same_filesystem_or_copied(tmp_path):
    src = fx.write_ravdess(tmp_path / "src")
    src_file = src / fx.RAVDESS_FILES[0]
    import_corpus("ravdess", src, tmp_path / "out")
    linked = load_dataset(tmp_path / "out").media_path("03-01-01-01-01-01-01")
    assert linked.read_bytes() == src_file.read_bytes()
    same_fs = os.stat(tmp_path).st_dev == os.stat(src).st_dev
    assert os.path.samefile(linked, src_file) == same_fs

    import_corpus("ravdess", src, tmp_path / "copied", link=False)
    copied = load_dataset(tmp_path / "copied").media_path("03-01-01-01-01-01-01")
    assert copied.read_bytes() == src_file.read_bytes()
    assert not os.path.samefile(copied, src_file)
    before = fx.tree_hash(src)
    copied.write_bytes(b"written in place")  # a copy: the source cannot change
    assert fx.tree_hash(src) == before


# --------------------------------------------------------------------------- splits

def test_group_splits_hand_values():
    ten = group_splits([f"s{i}" for i in range(10)])
    assert [ten[f"s{i}"] for i in range(10)] == ["train"] * 8 + ["val", "test"]
    actors = group_splits([f"{i:02d}" for i in range(1, 25)])
    counts = {s: list(actors.values()).count(s) for s in ("train", "val", "test")}
    assert counts == {"train": 20, "val": 2, "test": 2}  # RAVDESS's 24 actors
    assert group_splits(["b", "a", "b"]) == {"a": "train", "b": "train"}


@pytest.mark.parametrize(("n", "sizes"), [(1, (1, 0, 0)), (2, (2, 0, 0)), (3, (1, 1, 1)),
                                          (4, (2, 1, 1)), (8, (6, 1, 1)), (10, (8, 1, 1)),
                                          (24, (20, 2, 2))])
def test_split_sizes_leave_no_split_empty_from_three_groups(n, sizes):
    assert split_sizes(n) == sizes
    splits = group_splits([f"actor{i:02d}" for i in range(n)])
    got = tuple(list(splits.values()).count(s) for s in ("train", "val", "test"))
    assert got == sizes
    # ranks in order: the first groups train, then val, then test
    ranked = [splits[g] for g in sorted(splits)]
    assert ranked == sorted(ranked, key=["train", "val", "test"].index)


def test_eight_ravdess_actors_give_a_test_set(tmp_path):
    src = fx.write_ravdess_actors(tmp_path / "src", 8)
    report = import_corpus("ravdess", src, tmp_path / "out")
    assert report.splits == {"train": 12, "val": 2, "test": 1}  # actors 1-6, 7, 8 (one clip)
    items = load_dataset(tmp_path / "out").items
    assert set(items.loc[items["split"] == "test", "speaker"]) == {"actor08"}


@given(st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=60))
def test_group_splits_properties(groups):
    splits = group_splits(groups)
    assert set(splits) == set(groups)
    n = len(set(groups))
    counts = [sum(s == name for s in splits.values()) for name in ("train", "val", "test")]
    # rank r goes to train iff r < 0.8 n, to val iff 0.8 n <= r < 0.9 n (ceil in integers),
    # except that from 3 groups on val and test each get at least one group from train
    n_train, n_upto_val = (8 * n + 9) // 10, (9 * n + 9) // 10
    expected = [n_train, n_upto_val - n_train, n - n_upto_val]
    if n >= 3:
        expected[1], expected[2] = max(expected[1], 1), max(expected[2], 1)
        expected[0] = n - expected[1] - expected[2]
        assert min(counts) >= 1
    assert counts == expected
    assert group_splits(list(reversed(groups))) == splits  # order of appearance is irrelevant


# --------------------------------------------------------------------------- CLI

def test_cli_data_import(tmp_path):
    from typer.testing import CliRunner

    from affectlab.cli import app

    src = fx.write_ravdess(tmp_path / "src")
    runner = CliRunner()
    ok = runner.invoke(app, ["data", "import", "ravdess", str(src), "--out", str(tmp_path / "o")])
    assert ok.exit_code == 0 and "imported 4 items and 8 ratings" in ok.output
    bad = runner.invoke(app, ["data", "import", "nope", str(src), "--out", str(tmp_path / "p")])
    assert bad.exit_code == 2 and "known formats" in bad.output


# --------------------------------------------------------------------------- file-name case

@pytest.mark.parametrize("fmt", ["ravdess", "emodb", "cremad", "iemocap", "msp-improv"])
def test_uppercase_wav_suffixes_import_like_lowercase_ones(tmp_path, fmt):
    """Real downloads (and copies through other file systems) ship ``.WAV``: before, RAVDESS and
    EmoDB left such files out without a word, and IEMOCAP called them missing."""
    writer = {"ravdess": fx.write_ravdess, "emodb": fx.write_emodb, "cremad": fx.write_cremad,
              "iemocap": fx.write_iemocap, "msp-improv": fx.write_msp_improv}[fmt]
    fmt = fmt.removesuffix("-improv")
    want = import_corpus(fmt, writer(tmp_path / "lower"), tmp_path / "out-lower")
    src = writer(tmp_path / "upper")
    wavs = sorted(src.rglob("*.wav"))
    for wav in wavs[::2]:
        wav.rename(wav.with_suffix(".WAV"))
    got = import_corpus(fmt, src, tmp_path / "out-upper")
    assert (got.items, got.splits, got.n_skipped) == (want.items, want.splits, want.n_skipped)
    ds = load_dataset(tmp_path / "out-upper")
    assert all(ds.media_path(i).is_file() for i in range(len(ds.items)))


def test_ferplus_with_an_extra_column_reads_and_a_stray_comma_does_not(tmp_path):
    """A copy of fer2013new.csv with a column of its own (a comment, an index) imports as the
    release does; before, every row was refused ("expected 12 fields, got 13")."""
    want = import_corpus("ferplus", fx.write_ferplus(tmp_path / "plain"), tmp_path / "o1")
    src = fx.write_ferplus(tmp_path / "extra")
    lines = (src / "fer2013new.csv").read_text().splitlines()
    lines = [lines[0] + ",comment"] + [f"{line},x{i}" for i, line in enumerate(lines[1:])]
    (src / "fer2013new.csv").write_text("\n".join(lines) + "\n")
    got = import_corpus("ferplus", src, tmp_path / "o2")
    assert (got.items, got.ratings, got.splits) == (want.items, want.ratings, want.splits)
    # the extra column empty on most lines, as a column of notes is: a trailing comma there is
    # the empty value of a named column, not a stray one
    empty = [lines[0]] + [line.rsplit(",", 1)[0] + ("," if i % 2 else ",note")
                          for i, line in enumerate(lines[1:])]
    (src / "fer2013new.csv").write_text("\n".join(empty) + "\n")
    got = import_corpus("ferplus", src, tmp_path / "o2b")
    assert (got.items, got.ratings, got.splits) == (want.items, want.ratings, want.splits)
    lines[2] = lines[2].replace(",x1", ",x1,stray")
    (src / "fer2013new.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportError_, match=r"fer2013new\.csv:3: expected 13 fields \(as the "
                                           r"header\), got 14"):
        import_corpus("ferplus", src, tmp_path / "o3")


def test_a_clip_too_short_for_one_frame_is_a_bad_file_at_import(tmp_path):
    """A truncated WAV (a valid header and 8 samples) imported fine and training then left it
    out with a log line only; the import now names it (SPEC §2's 25 ms frame at 16 kHz: 400
    samples; 1,100 at 44.1 kHz, which resample to 400: the loader's own frames agree)."""
    import soundfile as sf

    src = fx.write_ravdess(tmp_path / "src")
    short = sorted(src.rglob("*.wav"))[0]
    sf.write(short, np.zeros(8), 16_000, subtype="PCM_16")
    with pytest.raises(ImportError_, match=rf"{short.name}: audio is 0\.5 ms long, shorter "
                                           r"than one 25 ms analysis frame"):
        import_corpus("ravdess", src, tmp_path / "out")
    from affectlab.features.audio import load_wav
    from affectlab.features.fbank import fbank

    for n, frames in ((1099, 0), (1100, 1)):  # resampled to 399 and 400 samples
        sf.write(short, 0.1 * np.ones(n), 44_100, subtype="PCM_16")
        assert fbank(load_wav(short)[0]).shape[0] == frames
        if frames:
            assert import_corpus("ravdess", src, tmp_path / "out").n_skipped == 0
        else:
            with pytest.raises(ImportError_, match="shorter than one 25 ms"):
                import_corpus("ravdess", src, tmp_path / "out")


def test_an_empty_split_is_a_notice_of_the_import(tmp_path):
    report = import_corpus("affectnet", fx.write_affectnet(tmp_path / "src"), tmp_path / "out")
    assert report.splits["val"] == 0
    assert [n.reason for n in report.notices] == [
        "no val items: training runs without validation metrics"]
    assert "notice: splits: no val items" in report.summary()
