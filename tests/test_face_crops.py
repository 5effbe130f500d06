"""Already-cropped faces end to end: ``affectlab predict`` (with --crop/--no-crop), the
importers' face check and the dataset loader, by the one rule of ``is_face_crop``."""

import json
import logging

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import data as skdata
from typer.testing import CliRunner

from affectlab.cli import app
from affectlab.data.contract import write_dataset
from affectlab.data.dataset import EmotionDataset
from affectlab.data.importers import import_corpus
from affectlab.data.importers._common import ImportError_
from affectlab.features.face import FaceCropper, load_image, to_gray

runner = CliRunner()


@pytest.fixture(scope="module")
def astronaut():
    return skdata.astronaut()


def _face48(astronaut) -> np.ndarray:
    """A FER2013-like crop: her face cut from the photograph, grayscale, 48×48."""
    return cv2.resize(to_gray(astronaut[40:200, 140:300]), (48, 48), interpolation=cv2.INTER_AREA)


def _save(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _predict(*args):
    res = runner.invoke(app, ["predict", "--model", "mini_xception", *map(str, args)])
    return res, [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


# -- predict -------------------------------------------------------------------------------

def test_predict_on_a_48px_crop_returns_a_distribution(tmp_path, astronaut):
    res, (out,) = _predict(_save(tmp_path / "face.png", _face48(astronaut)))
    assert res.exit_code == 0, res.output
    assert out["note"] == "already a face crop (48×48): resized to 64×64"
    assert sum(out["distribution"].values()) == pytest.approx(1.0, abs=1e-5)
    assert out["predicted"] == "happy"


def test_predict_on_a_large_photo_without_a_face_says_so(tmp_path):
    res, (out,) = _predict(_save(tmp_path / "coffee.png", skdata.coffee()))
    assert res.exit_code == 1 and out["error"] == "no face detected"


def test_predict_on_a_photo_names_the_detector_and_box(tmp_path, astronaut):
    res, (out,) = _predict(_save(tmp_path / "astronaut.png", astronaut))
    box = FaceCropper().detect(to_gray(astronaut))[0]
    assert out["note"] == "face detected by YuNet at ({}, {}, {}, {})".format(*box)
    assert out["predicted"] == "happy" and "faces" not in out


def test_crop_switch(tmp_path, astronaut):
    photo = _save(tmp_path / "astronaut.png", astronaut)
    _, (whole,) = _predict("--crop", photo)
    assert whole["note"] == "taken whole as a face crop, as asked (512×512): resized to 64×64"
    _, (detected,) = _predict("--no-crop", _save(tmp_path / "f100.png", cv2.resize(
        to_gray(astronaut[40:200, 140:300]), (100, 100))))
    assert detected["note"].startswith("face detected by YuNet at")


def test_predict_lists_every_face_largest_first(tmp_path, astronaut):
    scene = np.full((512, 900, 3), 180, np.uint8)
    scene[:, :512] = astronaut
    scene[128:384, 600:856] = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    res, (out,) = _predict(_save(tmp_path / "two.png", scene))
    assert res.exit_code == 0, res.output
    assert out["note"].startswith("2 faces detected by YuNet; the largest at")
    big, small = out["faces"]
    assert big["box"][2] * big["box"][3] > small["box"][2] * small["box"][3]
    assert big["distribution"] == out["distribution"] and big["predicted"] == out["predicted"]
    assert small["box"][0] >= 512 and sum(small["distribution"].values()) == pytest.approx(1, abs=1e-5)


# -- importers and the dataset loader --------------------------------------------------------

def _folder(root, images: dict[str, np.ndarray]):
    for name, pixels in images.items():
        _save(root / "train" / name.split("/")[0] / name.split("/")[1], pixels)
    return root


def test_import_reports_a_large_image_without_a_face(tmp_path, astronaut):
    src = _folder(tmp_path / "src", {"happy/face48.png": _face48(astronaut),
                                     "happy/photo.png": astronaut,
                                     "sad/coffee.png": skdata.coffee(),
                                     "sad/noise48.png": np.random.default_rng(0).integers(
                                         0, 256, (48, 48), dtype=np.uint8)})
    with pytest.raises(ImportError_, match=r"coffee.png: no face detected \(a 600×400 image"):
        import_corpus("folder", src, tmp_path / "out")
    report = import_corpus("folder", src, tmp_path / "out", skip_bad=True)
    assert report.items == 3 and report.n_skipped == 1  # a 48×48 crop is never second-guessed


def _dataset(root, images: dict[str, np.ndarray]):
    """A dataset directory written through the contract: one item per image, one vote each."""
    stage = root.parent / f"{root.name}-stage"
    items, ratings = [], []
    for k, (iid, pixels) in enumerate(images.items()):
        _save(stage / "media" / f"{iid}.png", pixels)
        items.append({"item_id": iid, "media": f"media/{iid}.png", "modality": "face",
                      "split": "train", "domain": "d"})
        ratings.append({"item_id": iid, "rater_id": "r0", "scale": "category", "value": k % 2})
    meta = {"name": root.name, "modality": "face",
            "label_set": {"scale": "category", "names": ["neutral", "happy"], "ordinal": False},
            "scales": {"category": {"type": "nominal", "names": ["neutral", "happy"]}}}
    write_dataset(root, pd.DataFrame(items), pd.DataFrame(ratings), meta, media_dir=stage)
    return root


def test_dataset_loader_crops_photos_and_resizes_crops(tmp_path, astronaut, caplog):
    face48 = _face48(astronaut)
    root = _dataset(tmp_path / "faces", {"crop": face48, "photo": astronaut,
                                         "mirrored": astronaut[:, ::-1].copy()})
    ds = EmotionDataset(root)
    assert ds.face_sources == {"box": 0, "crop": 1, "detected": 2, "whole image": 0}
    cropper = FaceCropper()
    x = {ds[i]["item_id"]: ds[i]["x"][0].numpy() for i in range(len(ds))}
    photo = load_image(root / "media" / "photo.png")  # what the loader reads: grayscale
    np.testing.assert_allclose(x["photo"], cropper.process(photo).face / 255.0, atol=1e-6)
    np.testing.assert_allclose(x["crop"], cropper.process(face48).face / 255.0, atol=1e-6)

    # a hand-made dataset with a large face-less image: used whole, and the log says so
    Image.fromarray(skdata.coffee()).save(root / "media" / "mirrored.png")
    with caplog.at_level(logging.WARNING, logger="affectlab.data.dataset"):
        again = EmotionDataset(root)
    assert again.face_sources == {"box": 0, "crop": 1, "detected": 1, "whole image": 1}
    assert "no face detected were used whole, resized to 64×64: mirrored.png" in caplog.text
    whole = {again[i]["item_id"]: again[i]["x"][0].numpy() for i in range(len(again))}
    np.testing.assert_allclose(whole["mirrored"], cv2.resize(
        load_image(root / "media" / "mirrored.png"), (64, 64), interpolation=cv2.INTER_AREA)
        / 255.0, atol=1e-6)
