"""Face detection, already-cropped faces, and FER2013-style 64×64 grayscale crops.

Detectors (:class:`FaceDetector`, boxes largest first):

- :class:`YuNetDetector`, the default: OpenCV's ``cv2.FaceDetectorYN`` with the Apache-2.0 YuNet
  weights shipped in ``assets/models/yunet/`` (provenance there). No new dependency.
- :class:`HaarDetector`: OpenCV's Haar cascade (``cv2.data.haarcascades``, shipped with
  opencv-python-headless 4.x), the fallback when YuNet cannot load (:func:`default_detector`).

Both detect on a copy downscaled so that its longer side is at most ``max_side`` and map the
boxes back, which is what makes YuNet fast on camera frames.

Already-cropped faces (FER2013, FER+, CK+ and JAFFE crops, RAF-DB's aligned faces): the Haar
cascade finds nothing in a 48×48 crop, so :func:`is_face_crop` decides by a documented rule
whether an image already *is* a face; :meth:`FaceCropper.process` then only resizes it. An image
where no face is found is reported (:class:`CropResult` with ``face=None`` and a reason), never
dropped silently.
"""

from __future__ import annotations

import functools
import os
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import EllipsisType

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

Box = tuple[int, int, int, int]  # (x, y, w, h) in pixels, x/y the top-left corner

CASCADE_FILE = "haarcascade_frontalface_default.xml"
YUNET_FILE = ("models", "yunet", "yunet_n_320_320.onnx")
COLOR_ORDERS = ("rgb", "bgr")

# Largest image decoded (width × height): a 48 KB PNG can claim 20000×20000 pixels, which
# would decode to 400 MB; cameras and photos stay far below this.
MAX_IMAGE_PIXELS = 40_000_000

# The already-cropped rule (see is_face_crop): small and about square.
CROP_MAX_SIDE = 128
CROP_MAX_ASPECT = 1.25


class ImageLoadError(ValueError):
    """A file could not be decoded as an image. The message names the path."""


def is_face_crop(image) -> bool:
    """Whether an image is taken as an already-cropped face (no detection, only a resize).

    The rule: its longer side is at most ``CROP_MAX_SIDE`` (128) pixels and its sides differ by
    at most ``CROP_MAX_ASPECT`` (longer ≤ 1.25 × shorter). That holds for FER2013 / FER+ (48×48),
    RAF-DB aligned (100×100), the generated corpus (64×64) and most aligned face sets (112×96,
    112×112), and for no camera frame or ordinary photo, which still go through detection.
    ``image`` is an array or its shape ``(H, W[, C])``.
    """
    shape = image if isinstance(image, tuple) else np.shape(image)
    if len(shape) < 2:
        raise ValueError(f"image must be at least 2-D, got shape {shape}")
    h, w = int(shape[0]), int(shape[1])
    if h < 1 or w < 1:
        return False
    return max(h, w) <= CROP_MAX_SIDE and max(h, w) <= CROP_MAX_ASPECT * min(h, w)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes, in [0, 1]."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class CropResult:
    """Outcome of :meth:`FaceCropper.process` for one image.

    face:     (size, size) uint8 crop of the largest face, or None when no face was found
    box:      (x, y, w, h) of that face, or None (also None for an already-cropped image)
    reason:   what was done, for people: "already a face crop (48×48): resized to 64×64",
              "face detected by YuNet at (x, y, w, h)", "no face detected", …
    n_faces:  how many faces the detector returned (1 for an already-cropped image)
    faces:    every face's crop, largest first (``faces[0] is face``)
    boxes:    every face's box, largest first (empty for an already-cropped image)
    source:   "crop" (taken as a face crop), "detected" or "none"
    detector: the detector's name ("YuNet", "Haar"), or None when none ran
    """

    face: np.ndarray | None
    box: Box | None
    reason: str
    n_faces: int = 0
    faces: tuple[np.ndarray, ...] = ()
    boxes: tuple[Box, ...] = ()
    source: str = "none"
    detector: str | None = None

    @property
    def ok(self) -> bool:
        return self.face is not None


def _open_bounded(file, source: str) -> Image.Image:
    """``Image.open`` (which reads only the header) refusing more than
    :data:`MAX_IMAGE_PIXELS` pixels before anything is decoded; Pillow's own
    ``DecompressionBombError`` becomes an :class:`ImageLoadError` too."""
    try:
        img = Image.open(file)
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"{source}: refused, too many pixels ({exc})") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(f"{source}: cannot decode image ({exc})") from exc
    width, height = img.size
    if width * height > MAX_IMAGE_PIXELS:
        img.close()
        raise ImageLoadError(f"{source}: refused, {width}×{height} pixels is more than the "
                             f"{MAX_IMAGE_PIXELS:,} allowed (a decompression bomb?)")
    return img


def decode_image(file, source: str, mode: str = "L") -> np.ndarray:
    """Decode an image (a path or a binary file object) in Pillow ``mode`` ("L" or "RGB") as a
    uint8 array, bounded by :data:`MAX_IMAGE_PIXELS`; :class:`ImageLoadError` naming
    ``source`` for anything undecodable or too large."""
    try:
        with _open_bounded(file, source) as img:
            img.load()  # decode now so truncated data fails here, not later
            return np.asarray(img.convert(mode), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as exc:
        if isinstance(exc, ImageLoadError):
            raise
        raise ImageLoadError(f"{source}: cannot decode image ({exc})") from exc


def check_image_file(path: str | os.PathLike) -> None:
    """Check an image file's structure and size without decoding every pixel
    (``Image.verify``); :class:`ImageLoadError` when it is unreadable or too large."""
    try:
        with _open_bounded(path, str(path)) as img:
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as exc:
        if isinstance(exc, ImageLoadError):
            raise
        raise ImageLoadError(f"{path}: {exc.__class__.__name__}: {exc}") from exc


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file (any format Pillow reads) as (H, W) uint8 grayscale.

    Raises FileNotFoundError for a missing file and :class:`ImageLoadError` (a ValueError) for
    a corrupt or unreadable one, or one of more than :data:`MAX_IMAGE_PIXELS` pixels (refused
    from its header, before decoding); both name the path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    return decode_image(path, str(path), "L")


def _as_uint8(image) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] in (3, 4):
        pass
    elif img.ndim != 2:
        raise ValueError(f"image must be (H, W) grayscale or (H, W, 3|4) RGB(A), got {img.shape}")
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"image must be non-empty, got shape {img.shape}")
    if img.dtype != np.uint8:
        if not np.issubdtype(img.dtype, np.floating):
            raise TypeError(f"image must be uint8 or float in [0, 1], got dtype {img.dtype}")
        if not np.isfinite(img).all() or img.min() < 0 or img.max() > 1:
            raise ValueError("float image must hold finite values in [0, 1]")
        img = np.round(img * 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def _check_color(color: str) -> None:
    if color not in COLOR_ORDERS:
        raise ValueError(f"color must be one of {COLOR_ORDERS}, got {color!r}")


def to_gray(image, color: str = "rgb") -> np.ndarray:
    """(H, W) or (H, W, 3|4) image in ``color`` channel order ("rgb" or "bgr"), uint8 or float
    in [0, 1], → (H, W) uint8."""
    _check_color(color)
    img = _as_uint8(image)
    if img.ndim == 2:
        return img
    codes = {("rgb", 3): cv2.COLOR_RGB2GRAY, ("rgb", 4): cv2.COLOR_RGBA2GRAY,
             ("bgr", 3): cv2.COLOR_BGR2GRAY, ("bgr", 4): cv2.COLOR_BGRA2GRAY}
    return cv2.cvtColor(img, codes[color, img.shape[2]])


def to_bgr(image, color: str = "rgb") -> np.ndarray:
    """Like :func:`to_gray`, → (H, W, 3) uint8 BGR (what OpenCV's networks take)."""
    _check_color(color)
    img = _as_uint8(image)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    codes = {("rgb", 3): cv2.COLOR_RGB2BGR, ("rgb", 4): cv2.COLOR_RGBA2BGR,
             ("bgr", 4): cv2.COLOR_BGRA2BGR}
    code = codes.get((color, img.shape[2]))
    return img if code is None else cv2.cvtColor(img, code)


def resize_face(gray: np.ndarray, size: int) -> np.ndarray:
    """A whole (H, W) uint8 image resized to (size, size): area averaging when shrinking."""
    if gray.shape == (size, size):
        return gray
    interp = cv2.INTER_AREA if max(gray.shape) > size else cv2.INTER_LINEAR
    return cv2.resize(gray, (size, size), interpolation=interp)


def _check_max_side(max_side) -> int | None:
    if max_side is None:
        return None
    if not isinstance(max_side, int | np.integer) or max_side < 16:
        raise ValueError(f"max_side must be an integer >= 16 or None, got {max_side!r}")
    return int(max_side)


class FaceDetector(ABC):
    """Finds faces in an image; boxes (x, y, w, h) in the image's pixels, largest area first.

    max_side: detect on a copy downscaled so that its longer side is at most this (never
              upscaled); None detects at full resolution. ``detect(..., max_side=)`` overrides it.
    Instances are thread-safe (one detection at a time).

    track_side: the side a camera stream's full detections run at (``FaceTracker``): small
                enough to be fast, large enough for the smallest faces the detector finds.
    """

    name = "detector"
    track_side = 320

    def __init__(self, max_side: int | None = None) -> None:
        self.max_side = _check_max_side(max_side)
        self._lock = threading.Lock()

    def detect(self, image, color: str = "rgb", max_side: int | None | EllipsisType = ...
               ) -> list[Box]:
        """Faces in an (H, W) or (H, W, 3|4) image whose channels are in ``color`` order;
        ``max_side`` (default: the detector's own) bounds the side detection runs at."""
        img = _as_uint8(image)
        _check_color(color)
        side = self.max_side if max_side is ... else _check_max_side(max_side)
        H, W = img.shape[:2]
        scale = 1.0 if side is None or max(H, W) <= side else side / max(H, W)
        if scale < 1.0:
            size = (max(1, round(W * scale)), max(1, round(H * scale)))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        with self._lock:
            found = self._detect(img, color)
        boxes = [_clip_box(b, scale, W, H) for b in found]
        boxes = [b for b in boxes if b is not None]
        return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)

    @abstractmethod
    def _detect(self, image: np.ndarray, color: str) -> list[tuple[float, float, float, float]]:
        """Boxes in ``image``'s own pixels (uint8, checked), any order."""


def _clip_box(box, scale: float, W: int, H: int) -> Box | None:
    x, y, w, h = (float(v) / scale for v in box)
    x0, y0 = max(0, round(x)), max(0, round(y))
    x1, y1 = min(W, round(x + w)), min(H, round(y + h))
    if x1 <= x0 or y1 <= y0:
        return None
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


class HaarDetector(FaceDetector):
    """OpenCV's Haar cascade on the histogram-equalised grayscale image.

    scale_factor, min_neighbors, min_size: passed to ``CascadeClassifier.detectMultiScale``
    (min_size in the pixels of the possibly downscaled image).
    """

    name = "Haar"
    track_side = 400  # the cascade finds faces from 24 px: from ~38 px in a 640 px frame

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_size: tuple[int, int] = (24, 24), cascade_path: str | os.PathLike | None = None,
                 max_side: int | None = None) -> None:
        super().__init__(max_side)
        if not scale_factor > 1:
            raise ValueError(f"scale_factor must be > 1, got {scale_factor!r}")
        if min_neighbors < 0:
            raise ValueError(f"min_neighbors must be >= 0, got {min_neighbors!r}")
        path = Path(cascade_path) if cascade_path else Path(cv2.data.haarcascades) / CASCADE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"Haar cascade not found: {path} (opencv-python-headless 4.x "
                                    "ships it; 5.x does not)")
        self.classifier = cv2.CascadeClassifier(str(path))
        if self.classifier.empty():
            raise ValueError(f"{path}: not a valid Haar cascade file")
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = (int(min_size[0]), int(min_size[1]))

    def _detect(self, image, color):
        # Equalising first is the usual Haar practice: the cascade is sensitive to contrast.
        found = self.classifier.detectMultiScale(
            cv2.equalizeHist(to_gray(image, color)), scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors, minSize=self.min_size)
        return [tuple(b) for b in np.asarray(found).reshape(-1, 4)]


class YuNetDetector(FaceDetector):
    """YuNet (``cv2.FaceDetectorYN``) with the shipped ONNX weights.

    score_threshold: the least face score kept (faces score 0.9+, the skimage photos without a
                     face at most 0.43); nms_threshold: boxes overlapping more are merged.
    Raises FileNotFoundError (no weights) or RuntimeError (no ``cv2.FaceDetectorYN``, or the
    file does not load) — :func:`default_detector` then falls back to Haar.
    """

    name = "YuNet"

    def __init__(self, model_path: str | os.PathLike | None = None, score_threshold: float = 0.7,
                 nms_threshold: float = 0.3, max_side: int | None = 640) -> None:
        super().__init__(max_side)
        if not 0 < score_threshold < 1:
            raise ValueError(f"score_threshold must be in (0, 1), got {score_threshold!r}")
        if not 0 < nms_threshold < 1:
            raise ValueError(f"nms_threshold must be in (0, 1), got {nms_threshold!r}")
        if model_path is None:
            from affectlab.assets import assets_path

            model_path = assets_path(*YUNET_FILE)
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"YuNet weights not found: {path} (they ship in "
                                    "assets/models/yunet/)")
        if not hasattr(cv2, "FaceDetectorYN"):
            raise RuntimeError(f"this OpenCV ({cv2.__version__}) has no cv2.FaceDetectorYN")
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320),
                                                  float(score_threshold), float(nms_threshold))
        except cv2.error as exc:
            raise RuntimeError(f"{path}: YuNet does not load ({exc})") from exc
        self._size = (320, 320)

    def _detect(self, image, color):
        bgr = to_bgr(image, color)
        size = (bgr.shape[1], bgr.shape[0])
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        _, faces = self._net.detect(bgr)
        return [] if faces is None else [tuple(f[:4]) for f in faces]


def default_detector(max_side: int | None = 640) -> FaceDetector:
    """YuNet, or the Haar cascade (with a warning saying why) when YuNet cannot load."""
    try:
        return YuNetDetector(max_side=max_side)
    except (FileNotFoundError, RuntimeError) as exc:
        warnings.warn(f"YuNet face detector unavailable ({exc}); using the Haar cascade",
                      RuntimeWarning, stacklevel=2)
        return HaarDetector()


@functools.cache
def shared_detector() -> FaceDetector:
    """One :func:`default_detector` per process (loaded on first use; detectors are
    thread-safe)."""
    return default_detector()


def detection_note(boxes, detector: str) -> str:
    """What a detection found, for people: "face detected by YuNet at (x, y, w, h)"."""
    if not boxes:
        return "no face detected"
    where = "({}, {}, {}, {})".format(*boxes[0])
    if len(boxes) == 1:
        return f"face detected by {detector} at {where}"
    return f"{len(boxes)} faces detected by {detector}; the largest at {where}"


class FaceCropper:
    """Already-cropped faces resized, other images through a face detector, to square
    ``size``×``size`` grayscale crops.

    detector: a :class:`FaceDetector` (default: :func:`shared_detector`, loaded on first use)
    margin:   fraction of the face box's side added on each side of the crop
    size:     side of the output crop in pixels (64, FER2013-like resolution for our models)
    """

    def __init__(self, detector: FaceDetector | None = None, margin: float = 0.2,
                 size: int = 64) -> None:
        if detector is not None and not isinstance(detector, FaceDetector):
            raise TypeError(f"detector must be a FaceDetector, got {type(detector).__name__}")
        _check_margin_size(margin, size)
        self._detector = detector
        self.margin = float(margin)
        self.size = int(size)

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = shared_detector()
        return self._detector

    def detect(self, image, color: str = "rgb") -> list[Box]:
        """Face boxes (x, y, w, h) in a grayscale or colour image, largest area first."""
        return self.detector.detect(image, color)

    def crop(self, image, box: Box, margin: float | None = None, size: int | None = None,
             color: str = "rgb") -> np.ndarray:
        """Square crop centred on ``box`` with ``margin`` on each side, as (size, size) uint8.

        The square's side is max(w, h)·(1 + 2·margin). Where it reaches past the image border
        the edge pixels are replicated (rather than black bars, which a model would learn as a
        feature), then the square is resized to ``size`` (area averaging when shrinking).
        """
        margin = self.margin if margin is None else float(margin)
        size = self.size if size is None else int(size)
        _check_margin_size(margin, size)
        g = to_gray(image, color)
        x, y, w, h = check_box(box, g.shape)
        side = max(1, int(round(max(w, h) * (1 + 2 * margin))))
        cx, cy = x + w / 2.0, y + h / 2.0
        x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
        x1, y1 = x0 + side, y0 + side
        H, W = g.shape
        pad = (max(0, -y0), max(0, y1 - H), max(0, -x0), max(0, x1 - W))
        patch = g[max(0, y0):min(H, y1), max(0, x0):min(W, x1)]
        if any(pad):
            patch = cv2.copyMakeBorder(patch, *pad, borderType=cv2.BORDER_REPLICATE)
        return resize_face(patch, size)

    def process(self, image, crop: bool | None = None, color: str = "rgb",
                find: Callable[[np.ndarray, str], list[Box]] | None = None) -> CropResult:
        """One image → its face crop(s).

        crop: True takes the whole image as the face, False always detects, None (default)
              decides by :func:`is_face_crop`. Otherwise every detected face is cropped
              (largest first); none found is reported.
        find: ``find(image, color)`` → boxes largest first, instead of a full detection (a
              camera stream's tracker)
        """
        if crop not in (None, True, False):
            raise TypeError(f"crop must be True, False or None, got {crop!r}")
        g = to_gray(image, color)
        if crop or (crop is None and is_face_crop(g)):
            H, W = g.shape
            how = "already a face crop" if crop is None else "taken whole as a face crop, as asked"
            done = "used as is" if g.shape == (self.size, self.size) else \
                f"resized to {self.size}×{self.size}"
            face = resize_face(g, self.size)
            return CropResult(face, None, f"{how} ({W}×{H}): {done}", 1, (face,), (), "crop")
        detector = self.detector
        boxes = (find or detector.detect)(image, color)
        if not boxes:
            return CropResult(None, None, "no face detected", 0, detector=detector.name)
        faces = tuple(self.crop(g, b) for b in boxes)
        return CropResult(faces[0], boxes[0], detection_note(boxes, detector.name), len(boxes),
                          faces, tuple(boxes), "detected", detector.name)


def _check_margin_size(margin: float, size: int) -> None:
    if not (0 <= margin <= 2):
        raise ValueError(f"margin must be in [0, 2] (fraction of the face side), got {margin!r}")
    if not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")


def check_box(box, shape: tuple[int, int]) -> Box:
    """``box`` as four ints (x, y, w, h) when it has a positive size and overlaps an image of
    ``shape`` (H, W); TypeError or ValueError saying why not."""
    try:
        x, y, w, h = (int(v) for v in box)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"box must be four integers (x, y, w, h), got {box!r}") from exc
    H, W = shape
    if w <= 0 or h <= 0:
        raise ValueError(f"box width and height must be > 0, got {box!r}")
    if x >= W or y >= H or x + w <= 0 or y + h <= 0:
        raise ValueError(f"box {box!r} lies outside the image of shape {shape}")
    return x, y, w, h
