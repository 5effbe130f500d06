"""Haar face detection on a real photograph, crop geometry, no-face reports, image loading."""

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from affectlab.features.face import CropResult, FaceCropper, ImageLoadError, load_image, to_gray


@pytest.fixture(scope="module")
def cropper():
    return FaceCropper()


@pytest.fixture(scope="module")
def astronaut():
    return skdata.astronaut()  # (512, 512, 3) RGB; Eileen Collins' face around x 170-270, y 60-160


def test_detects_astronaut_face(cropper, astronaut):
    boxes = cropper.detect(astronaut)
    assert len(boxes) >= 1
    x, y, w, h = boxes[0]
    cx, cy = x + w / 2, y + h / 2
    assert 190 < cx < 250 and 85 < cy < 145, boxes[0]
    assert 60 < w < 140 and 60 < h < 140, boxes[0]


def test_process_astronaut_gives_64px_crop(cropper, astronaut):
    res = cropper.process(astronaut)
    assert isinstance(res, CropResult) and res.ok
    assert res.face.shape == (64, 64) and res.face.dtype == np.uint8
    assert res.box == tuple(cropper.detect(astronaut)[0]) and res.n_faces >= 1
    # the crop shows the face region of the photograph, not a black/blank patch
    assert res.face.std() > 20


class _FakeCascade:
    """Stands in for the cascade to check ordering and selection independently of detection."""

    def __init__(self, boxes):
        self.boxes = np.asarray(boxes, dtype=np.int32)

    def detectMultiScale(self, gray, **kwargs):  # noqa: N802 - OpenCV's name
        return self.boxes


def test_boxes_sorted_largest_first_and_largest_kept():
    cropper = FaceCropper()
    cropper.classifier = _FakeCascade([[0, 0, 10, 10], [50, 50, 40, 30], [20, 20, 20, 20]])
    img = np.random.default_rng(0).integers(0, 256, (120, 120), dtype=np.uint8)
    assert cropper.detect(img) == [(50, 50, 40, 30), (20, 20, 20, 20), (0, 0, 10, 10)]
    res = cropper.process(img)
    assert res.box == (50, 50, 40, 30) and res.n_faces == 3
    assert res.reason == "3 faces detected; kept the largest"
    np.testing.assert_array_equal(res.face, cropper.crop(img, (50, 50, 40, 30)))


@pytest.mark.parametrize("kind", ["blank", "noise"])
def test_no_face_is_reported(cropper, kind, rng):
    img = (np.zeros((256, 256), np.uint8) if kind == "blank"
           else rng.integers(0, 256, (256, 256), dtype=np.uint8))
    res = cropper.process(img)
    assert not res.ok and res.face is None and res.box is None
    assert res.reason == "no face detected" and res.n_faces == 0


def test_crop_geometry_without_margin(cropper):
    img = (np.arange(100 * 100) % 251).astype(np.uint8).reshape(100, 100)
    out = cropper.crop(img, (10, 20, 30, 30), margin=0.0, size=30)
    np.testing.assert_array_equal(out, img[20:50, 10:40])


def test_crop_margin_enlarges_square_around_box_centre(cropper):
    img = np.zeros((200, 200), np.uint8)
    img[80:120, 90:110] = 255  # a 20 wide, 40 tall box
    out = cropper.crop(img, (90, 80, 20, 40), margin=0.25, size=60)
    # side = 40 * 1.5 = 60 → exact copy of rows 70..130, cols 70..130
    np.testing.assert_array_equal(out, img[70:130, 70:130])


def test_crop_replicates_edges_at_border(cropper):
    img = np.tile(np.arange(50, dtype=np.uint8)[None, :] * 5, (50, 1))  # value = 5 * column
    out = cropper.crop(img, (0, 10, 20, 20), margin=0.5, size=40)
    # side 40 centred at x = 10 → columns -10..29: the first 10 columns replicate column 0
    np.testing.assert_array_equal(out[:, :10], 0)
    np.testing.assert_array_equal(out[0, 10:], np.arange(30) * 5)


def test_crop_validates(cropper):
    img = np.zeros((50, 50), np.uint8)
    with pytest.raises(ValueError, match="width and height"):
        cropper.crop(img, (0, 0, 0, 10))
    with pytest.raises(ValueError, match="outside the image"):
        cropper.crop(img, (60, 0, 10, 10))
    with pytest.raises(TypeError, match="four integers"):
        cropper.crop(img, (1, 2, 3))
    with pytest.raises(ValueError, match="margin"):
        cropper.crop(img, (0, 0, 10, 10), margin=-1)
    with pytest.raises(ValueError, match="size"):
        FaceCropper(size=0)


def test_to_gray_conversions():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 1] = 255
    assert to_gray(rgb).shape == (4, 4) and to_gray(rgb)[0, 0] == 150  # 0.587 * 255
    np.testing.assert_array_equal(to_gray(np.full((3, 3), 1.0)), 255)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        to_gray(np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        to_gray(np.full((3, 3), 2.0))
    with pytest.raises(TypeError, match="dtype"):
        to_gray(np.zeros((3, 3), np.int64))


def test_load_image_and_errors(tmp_path, astronaut):
    png = tmp_path / "a.png"
    Image.fromarray(astronaut).save(png)
    gray = load_image(png)
    assert gray.shape == (512, 512) and gray.dtype == np.uint8
    np.testing.assert_allclose(gray.astype(int), to_gray(astronaut).astype(int), atol=1)

    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with pytest.raises(ImageLoadError, match="corrupt.png"):
        load_image(bad)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(png.read_bytes()[:2000])
    with pytest.raises(ImageLoadError, match="truncated.png"):
        load_image(truncated)
    with pytest.raises(FileNotFoundError, match="nothere.png"):
        load_image(tmp_path / "nothere.png")
