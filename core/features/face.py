"""Face detection (OpenCV's Haar cascade) and FER2013-style 64×64 grayscale crops.

The cascade file ships with opencv-python-headless 4.x (``cv2.data.haarcascades``); nothing is
downloaded. An image where no face is found is reported (:class:`CropResult` with ``face=None``
and a reason), never dropped silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

Box = tuple[int, int, int, int]  # (x, y, w, h) in pixels, x/y the top-left corner

CASCADE_FILE = "haarcascade_frontalface_default.xml"


class ImageLoadError(ValueError):
    """A file could not be decoded as an image. The message names the path."""


@dataclass(frozen=True)
class CropResult:
    """Outcome of :meth:`FaceCropper.process` for one image.

    face:   (size, size) uint8 crop, or None when no face was found
    box:    (x, y, w, h) of the face used, or None
    reason: "ok", "no face detected", or "k faces detected; kept the largest"
    n_faces: how many faces the detector returned
    """

    face: np.ndarray | None
    box: Box | None
    reason: str
    n_faces: int = 0

    @property
    def ok(self) -> bool:
        return self.face is not None


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file (any format Pillow reads) as (H, W) uint8 grayscale.

    Raises FileNotFoundError for a missing file and :class:`ImageLoadError` (a ValueError) for
    a corrupt or unreadable one; both name the path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()  # decode now so truncated data fails here, not later
            return np.asarray(img.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(f"{path}: cannot decode image ({exc})") from exc


def to_gray(image) -> np.ndarray:
    """(H, W) or (H, W, 3|4) RGB(A) image, uint8 or float in [0, 1], → (H, W) uint8."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] in (3, 4):
        img = img[..., :3]
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
    if img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(img)


class FaceCropper:
    """Haar-cascade face detector plus square crop to ``size``×``size`` grayscale.

    scale_factor, min_neighbors, min_size: passed to ``CascadeClassifier.detectMultiScale``.
    margin: fraction of the face box's side added on each side of the crop.
    size:   side of the output crop in pixels (64, FER2013-like resolution for our models).
    """

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_size: tuple[int, int] = (24, 24), margin: float = 0.2, size: int = 64,
                 cascade_path: str | os.PathLike | None = None):
        if not scale_factor > 1:
            raise ValueError(f"scale_factor must be > 1, got {scale_factor!r}")
        if min_neighbors < 0:
            raise ValueError(f"min_neighbors must be >= 0, got {min_neighbors!r}")
        _check_margin_size(margin, size)
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
        self.margin = float(margin)
        self.size = int(size)

    def detect(self, gray) -> list[Box]:
        """Face boxes (x, y, w, h) in a grayscale (or RGB) image, largest area first."""
        g = to_gray(gray)
        # Equalising first is the usual Haar practice: the cascade is sensitive to contrast.
        found = self.classifier.detectMultiScale(
            cv2.equalizeHist(g), scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors, minSize=self.min_size)
        boxes = [tuple(int(v) for v in b) for b in np.asarray(found).reshape(-1, 4)]
        return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)

    def crop(self, image, box: Box, margin: float | None = None, size: int | None = None
             ) -> np.ndarray:
        """Square crop centred on ``box`` with ``margin`` on each side, as (size, size) uint8.

        The square's side is max(w, h)·(1 + 2·margin). Where it reaches past the image border
        the edge pixels are replicated (rather than black bars, which a model would learn as a
        feature), then the square is resized to ``size`` (area averaging when shrinking).
        """
        margin = self.margin if margin is None else float(margin)
        size = self.size if size is None else int(size)
        _check_margin_size(margin, size)
        g = to_gray(image)
        x, y, w, h = _check_box(box, g.shape)
        side = max(1, int(round(max(w, h) * (1 + 2 * margin))))
        cx, cy = x + w / 2.0, y + h / 2.0
        x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
        x1, y1 = x0 + side, y0 + side
        H, W = g.shape
        pad = (max(0, -y0), max(0, y1 - H), max(0, -x0), max(0, x1 - W))
        patch = g[max(0, y0):min(H, y1), max(0, x0):min(W, x1)]
        if any(pad):
            patch = cv2.copyMakeBorder(patch, *pad, borderType=cv2.BORDER_REPLICATE)
        interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        return cv2.resize(patch, (size, size), interpolation=interp)

    def process(self, image) -> CropResult:
        """Detect, keep the largest face, crop it; report when there is none."""
        g = to_gray(image)
        boxes = self.detect(g)
        if not boxes:
            return CropResult(None, None, "no face detected", 0)
        reason = "ok" if len(boxes) == 1 else f"{len(boxes)} faces detected; kept the largest"
        return CropResult(self.crop(g, boxes[0]), boxes[0], reason, len(boxes))


def _check_margin_size(margin: float, size: int) -> None:
    if not (0 <= margin <= 2):
        raise ValueError(f"margin must be in [0, 2] (fraction of the face side), got {margin!r}")
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")


def _check_box(box, shape: tuple[int, int]) -> Box:
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
