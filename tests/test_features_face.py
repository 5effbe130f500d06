"""Face detectors (YuNet, Haar) on a real photograph, the already-cropped rule, crop geometry,
no-face reports, image loading."""

import warnings

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from affectlab.features import face as face_mod
from affectlab.features.face import (
    CropResult,
    FaceCropper,
    FaceDetector,
    HaarDetector,
    ImageLoadError,
    YuNetDetector,
    default_detector,
    detection_note,
    iou,
    is_face_crop,
    load_image,
    to_bgr,
    to_gray,
)


@pytest.fixture(scope="module")
def cropper():
    return FaceCropper()


@pytest.fixture(scope="module")
def astronaut():
    return skdata.astronaut()  # (512, 512, 3) RGB; Eileen Collins' face around x 170-270, y 60-170


def _astronaut_face_crop(astronaut, side: int) -> np.ndarray:
    """The face region of the photograph, downscaled to side×side grayscale (a FER2013-like
    crop)."""
    return cv2.resize(to_gray(astronaut[40:200, 140:300]), (side, side),
                      interpolation=cv2.INTER_AREA)


# -- detectors -----------------------------------------------------------------------------

def test_default_detector_is_yunet(cropper):
    assert isinstance(cropper.detector, YuNetDetector) and cropper.detector.name == "YuNet"


@pytest.mark.parametrize("make", [YuNetDetector, HaarDetector], ids=["yunet", "haar"])
def test_detects_astronaut_face(make, astronaut):
    boxes = make().detect(astronaut)
    assert len(boxes) == 1, boxes
    x, y, w, h = boxes[0]
    cx, cy = x + w / 2, y + h / 2
    assert 190 < cx < 250 and 85 < cy < 145, boxes[0]
    assert 60 < w < 140 and 60 < h < 140, boxes[0]


def test_yunet_and_haar_agree_and_downscaling_keeps_the_box(astronaut):
    yunet = YuNetDetector(max_side=None)
    full = yunet.detect(astronaut)[0]
    assert iou(full, HaarDetector().detect(astronaut)[0]) > 0.7
    for side in (320, 160):
        assert iou(yunet.detect(astronaut, max_side=side)[0], full) > 0.85
    # BGR order of the same pixels, and grayscale, find the same face
    assert iou(yunet.detect(astronaut[..., ::-1], color="bgr")[0], full) > 0.95
    assert iou(yunet.detect(to_gray(astronaut))[0], full) > 0.9


def test_every_face_is_found_largest_first(cropper, astronaut):
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    scene = np.full((512, 900, 3), 180, np.uint8)
    scene[:, :512] = astronaut
    scene[128:384, 600:856] = small[:, ::-1]  # a second, smaller, mirrored face
    res = cropper.process(scene)
    assert res.n_faces == 2 and len(res.faces) == 2 and res.source == "detected"
    big, other = res.boxes
    assert big[2] * big[3] > other[2] * other[3] and big[0] < 512 <= other[0]
    assert res.reason == f"2 faces detected by YuNet; the largest at ({', '.join(map(str, big))})"
    np.testing.assert_array_equal(res.faces[1], cropper.crop(scene, other))


class _SquareFinder(FaceDetector):
    """A stand-in detector: the bounding box of the pixels above 128 (and a fixed extra box),
    to check scaling, clipping and ordering independently of any real detector."""

    name = "squares"

    def __init__(self, extra=None, max_side=None):
        super().__init__(max_side)
        self.extra, self.seen = extra or [], []

    def _detect(self, image, color):
        self.seen.append(image.shape)
        ys, xs = np.nonzero(to_gray(image) > 128)
        boxes = [] if len(xs) == 0 else [(xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                          ys.max() - ys.min() + 1)]
        return boxes + list(self.extra)


def test_detection_on_a_downscaled_copy_is_mapped_back():
    img = np.zeros((400, 600), np.uint8)
    img[100:200, 240:360] = 255  # a 120 × 100 box at (240, 100)
    det = _SquareFinder(max_side=150)
    (box,) = det.detect(img)
    assert det.seen == [(100, 150)]  # detection ran at a quarter of the size
    assert max(abs(a - b) for a, b in zip(box, (240, 100, 120, 100), strict=True)) <= 4
    assert det.detect(img, max_side=None) == [(240, 100, 120, 100)] and det.seen[-1] == (400, 600)


def test_boxes_are_clipped_and_sorted_largest_first():
    det = _SquareFinder(extra=[(-10, -5, 30, 20), (50, 50, 40, 30), (590, 10, 40, 40),
                               (700, 0, 5, 5)])
    boxes = det.detect(np.zeros((100, 600), np.uint8))
    # (-10, -5, 30, 20) → (0, 0, 20, 15); (590, 10, 40, 40) → (590, 10, 10, 40); outside: gone
    assert boxes == [(50, 50, 40, 30), (590, 10, 10, 40), (0, 0, 20, 15)]


def test_haar_fallback_when_yunet_cannot_load(monkeypatch, tmp_path):
    with pytest.raises(FileNotFoundError, match="YuNet weights not found"):
        YuNetDetector(model_path=tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a network")
    with pytest.raises(RuntimeError, match="does not load"):
        YuNetDetector(model_path=bad)
    monkeypatch.setattr(face_mod, "YUNET_FILE", ("models", "yunet", "missing.onnx"))
    with pytest.warns(RuntimeWarning, match="using the Haar cascade"):
        det = default_detector()
    assert isinstance(det, HaarDetector)
    monkeypatch.undo()
    monkeypatch.delattr(cv2, "FaceDetectorYN")
    with pytest.raises(RuntimeError, match="no cv2.FaceDetectorYN"):
        YuNetDetector()


def test_detector_validates():
    with pytest.raises(ValueError, match="max_side"):
        YuNetDetector(max_side=8)
    with pytest.raises(ValueError, match="score_threshold"):
        YuNetDetector(score_threshold=1.5)
    with pytest.raises(ValueError, match="scale_factor"):
        HaarDetector(scale_factor=1.0)
    with pytest.raises(ValueError, match="color"):
        YuNetDetector().detect(np.zeros((20, 20, 3), np.uint8), color="hsv")
    with pytest.raises(TypeError, match="FaceDetector"):
        FaceCropper(detector="yunet")


def test_iou_by_hand():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (10, 10, 5, 5)) == 0.0
    assert iou((0, 0, 4, 4), (1, 1, 2, 2)) == pytest.approx(4 / 16)


# -- already-cropped faces -----------------------------------------------------------------

@pytest.mark.parametrize(("shape", "crop"), [
    ((48, 48), True), ((64, 64), True), ((100, 100, 3), True), ((128, 128), True),
    ((112, 96), True), ((96, 120), True),  # sides within 1.25 of each other
    ((129, 129), False), ((100, 60), False), ((480, 640, 3), False), ((512, 512), False),
])
def test_face_crop_rule(shape, crop):
    assert is_face_crop(np.zeros(shape, np.uint8)) is crop
    assert is_face_crop(shape) is crop


def test_a_48px_face_crop_is_resized_not_detected(astronaut):
    face48 = _astronaut_face_crop(astronaut, 48)
    res = FaceCropper(detector=HaarDetector()).process(face48)
    assert res.ok and res.source == "crop" and res.detector is None and res.box is None
    assert res.reason == "already a face crop (48×48): resized to 64×64"
    np.testing.assert_array_equal(res.face, cv2.resize(face48, (64, 64),
                                                       interpolation=cv2.INTER_LINEAR))
    exact = FaceCropper().process(_astronaut_face_crop(astronaut, 64))
    assert exact.reason == "already a face crop (64×64): used as is"


def test_crop_switch_overrides_the_rule(astronaut):
    cropper = FaceCropper()
    whole = cropper.process(astronaut, crop=True)
    assert whole.source == "crop"
    assert whole.reason == "taken whole as a face crop, as asked (512×512): resized to 64×64"
    np.testing.assert_array_equal(whole.face, cv2.resize(to_gray(astronaut), (64, 64),
                                                         interpolation=cv2.INTER_AREA))
    # --no-crop on a 100 px face: YuNet still finds it inside
    detected = cropper.process(_astronaut_face_crop(astronaut, 100), crop=False)
    assert detected.source == "detected" and detected.detector == "YuNet"
    with pytest.raises(TypeError, match="crop"):
        cropper.process(astronaut, crop="yes")


def test_a_large_photo_without_a_face_is_reported(cropper):
    for img in (skdata.coffee(), np.random.default_rng(0).integers(0, 256, (480, 640, 3),
                                                                    dtype=np.uint8)):
        res = cropper.process(img)
        assert not res.ok and res.reason == "no face detected" and res.source == "none"
        assert res.detector == "YuNet"


# -- crops ---------------------------------------------------------------------------------

def test_process_astronaut_gives_64px_crop(cropper, astronaut):
    res = cropper.process(astronaut)
    assert isinstance(res, CropResult) and res.ok
    assert res.face.shape == (64, 64) and res.face.dtype == np.uint8
    assert res.box == tuple(cropper.detect(astronaut)[0]) and res.n_faces == 1
    assert res.reason == detection_note([res.box], "YuNet")
    assert res.reason == "face detected by YuNet at ({}, {}, {}, {})".format(*res.box)
    # the crop shows the face region of the photograph, not a black/blank patch
    assert res.face.std() > 20


def test_largest_face_kept_with_a_fake_detector():
    cropper = FaceCropper(detector=_SquareFinder(extra=[(0, 0, 10, 10), (50, 50, 40, 30),
                                                        (20, 20, 20, 20)]))
    img = np.random.default_rng(0).integers(0, 120, (300, 300), dtype=np.uint8)
    assert cropper.detect(img) == [(50, 50, 40, 30), (20, 20, 20, 20), (0, 0, 10, 10)]
    res = cropper.process(img)
    assert res.box == (50, 50, 40, 30) and res.n_faces == 3
    assert res.reason == "3 faces detected by squares; the largest at (50, 50, 40, 30)"
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


def test_to_gray_and_to_bgr_conversions():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 1] = 255
    assert to_gray(rgb).shape == (4, 4) and to_gray(rgb)[0, 0] == 150  # 0.587 * 255
    rgb[..., 0] = 255  # red + green; in BGR order the same bytes read as blue + green
    assert to_gray(rgb)[0, 0] == 226 and to_gray(rgb, color="bgr")[0, 0] == 179
    np.testing.assert_array_equal(to_bgr(rgb), rgb[..., ::-1])
    np.testing.assert_array_equal(to_bgr(rgb, color="bgr"), rgb)
    np.testing.assert_array_equal(to_bgr(np.full((2, 2), 7, np.uint8)), 7)
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


def test_shared_detector_is_loaded_once():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # YuNet loads here: no fallback warning
        assert face_mod.shared_detector() is face_mod.shared_detector()
