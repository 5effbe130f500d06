"""Webcam frame → face → emotion distribution, uncertainty, map position, annotated frame.

:class:`FaceFrameProcessor` is what the Live page's ``video_frame_callback`` (and its image
upload) call; it holds no UI code. Frames are (H, W, 3) uint8 in BGR (OpenCV / av's
``bgr24``) or RGB order, or (H, W) grayscale.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from affectlab.explore.projection import MapProjection
from affectlab.features.face import Box, FaceCropper, ImageLoadError
from affectlab.labels import entropy
from affectlab.live.models import LiveModel

__all__ = ["FaceFrameResult", "FaceFrameProcessor", "annotate_frame"]

COLOR_ORDERS = ("bgr", "rgb")


@dataclass(frozen=True)
class FaceFrameResult:
    """One processed frame.

    box:         (x, y, w, h) of the face used, or None when no face was found
    face:        (64, 64) uint8 crop or None
    probs:       (K,) float64 distribution over ``class_names``, or None
    class_names: the K names
    uncertainty: normalised entropy of ``probs`` in [0, 1] (0 = certain), or None
    embedding:   (D,) float32 or None
    position:    (2,) map coordinates on the run's PCA map, or None
    annotated:   the input frame (same shape and colour order) with the box and top label drawn
    reason:      the face detector's message ("ok", "no face detected", ...)
    """

    box: Box | None
    face: np.ndarray | None
    probs: np.ndarray | None
    class_names: list[str]
    uncertainty: float | None
    embedding: np.ndarray | None
    position: np.ndarray | None
    annotated: np.ndarray
    reason: str

    @property
    def ok(self) -> bool:
        return self.probs is not None

    @property
    def top(self) -> str | None:
        return None if self.probs is None else self.class_names[int(np.argmax(self.probs))]


def _check_frame(frame) -> np.ndarray:
    arr = np.asarray(frame)
    if arr.dtype != np.uint8:
        raise TypeError(f"frame must be uint8, got dtype {arr.dtype}")
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValueError(f"frame must be (H, W) or (H, W, 3|4), got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"frame must be non-empty, got shape {arr.shape}")
    return arr


def annotate_frame(frame: np.ndarray, box: Box | None, label: str | None,
                   color: tuple[int, int, int] = (0, 200, 0)) -> np.ndarray:
    """A copy of ``frame`` with ``box`` drawn and ``label`` written above it (cv2)."""
    out = np.ascontiguousarray(_check_frame(frame)).copy()
    if box is None:
        return out
    x, y, w, h = box
    thick = max(1, round(min(out.shape[:2]) / 240))
    ink = color if out.ndim == 3 else int(np.mean(color))
    cv2.rectangle(out, (x, y), (x + w, y + h), ink, thick)
    if label:
        scale = max(0.4, min(out.shape[:2]) / 600)
        cv2.putText(out, label, (x, max(int(14 * scale), y - 6)), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, ink, thick, cv2.LINE_AA)
    return out


class FaceFrameProcessor:
    """Haar detection → 64×64 crop → model distribution (+ uncertainty, map position).

    model:      a :class:`LiveModel` (default: the pretrained mini-Xception)
    projection: a fitted :class:`MapProjection` of the same model's embeddings (a run's PCA)
                to place each face on that run's map; None for no position
    cropper:    a :class:`FaceCropper` (default settings when None)
    """

    def __init__(self, model: LiveModel | None = None, projection: MapProjection | None = None,
                 cropper: FaceCropper | None = None) -> None:
        if model is None:
            from affectlab.live.models import pretrained_face_model
            model = pretrained_face_model()
        if not isinstance(model, LiveModel):
            raise TypeError(f"model must be a LiveModel, got {type(model).__name__}")
        if model.modality != "face":
            raise ValueError(f"model must be a face model, got a {model.modality} model "
                             f"({model.source})")
        if projection is not None and not (isinstance(projection, MapProjection)
                                           and projection.fitted):
            raise TypeError("projection must be a fitted MapProjection or None")
        self.model = model
        self.projection = projection
        self.cropper = cropper if cropper is not None else FaceCropper()

    @property
    def class_names(self) -> list[str]:
        return list(self.model.class_names)

    def predict_face(self, face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(64, 64) uint8 crop → (probs (K,), embedding (D,))."""
        face = np.asarray(face)
        if face.ndim != 2 or face.dtype != np.uint8:
            raise ValueError(f"face must be a 2-D uint8 crop, got {face.shape} {face.dtype}")
        x = torch.from_numpy(face.astype(np.float32) / 255.0)[None, None]
        probs, emb = self.model.predict(x)
        return probs[0], emb[0]

    def process_image_bytes(self, data: bytes) -> FaceFrameResult:
        """An uploaded image file's bytes (any format Pillow reads) → :meth:`process` of its
        RGB pixels. Raises :class:`~affectlab.features.face.ImageLoadError` for undecodable data."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        try:
            with Image.open(io.BytesIO(bytes(data))) as img:
                img.load()
                rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ImageLoadError(f"uploaded image: cannot decode ({exc})") from exc
        return self.process(rgb, color="rgb")

    def process(self, frame, color: str = "bgr") -> FaceFrameResult:
        """One frame → :class:`FaceFrameResult`. ``color``: "bgr" or "rgb" channel order of a
        3-channel frame (ignored for grayscale)."""
        if color not in COLOR_ORDERS:
            raise ValueError(f"color must be one of {COLOR_ORDERS}, got {color!r}")
        arr = _check_frame(frame)
        if arr.ndim == 3:
            code = cv2.COLOR_BGR2GRAY if arr.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
            if color == "rgb":
                code = cv2.COLOR_RGB2GRAY if arr.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
            gray = cv2.cvtColor(np.ascontiguousarray(arr), code)
        else:
            gray = arr
        crop = self.cropper.process(gray)
        names = self.class_names
        if not crop.ok:
            return FaceFrameResult(None, None, None, names, None, None, None, arr.copy(),
                                   crop.reason)
        probs, emb = self.predict_face(crop.face)
        unc = float(entropy(probs, normalize=True))
        pos = self.projection.transform(emb) if self.projection is not None else None
        top = names[int(np.argmax(probs))]
        label = f"{top} {probs.max():.0%}"
        # cv2 draws in the array's own channel order: green is (0, 200, 0) in both orders.
        annotated = annotate_frame(arr, crop.box, label)
        return FaceFrameResult(crop.box, crop.face, probs, names, unc, emb, pos, annotated,
                               crop.reason)
