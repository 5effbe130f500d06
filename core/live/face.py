"""Webcam frame → every face → emotion distribution, uncertainty, map position, annotated frame.

:class:`FaceFrameProcessor` is what the Live page's ``video_frame_callback`` (and its image
upload) call; it holds no UI code. Frames are (H, W, 3) uint8 in BGR (OpenCV / av's
``bgr24``, what streamlit-webrtc's ``frame.to_ndarray(format="bgr24")`` gives) or RGB order,
or (H, W) grayscale.

Every face in the frame gets its box, distribution and uncertainty (one batched model call); the
largest drives the result's top-level fields (the panel and the map point). Camera streams pass a
:class:`~affectlab.live.tracking.FaceTracker` (one per stream, from :meth:`new_tracker`) so that
most frames need only a search near the last boxes; without one every frame gets a full
detection.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from affectlab.explore.projection import MapProjection
from affectlab.features.face import Box, FaceCropper, decode_image
from affectlab.live.models import LiveModel
from affectlab.live.tracking import FaceTracker
from affectlab.uncertainty import probs_uncertainty

__all__ = ["FaceReading", "FaceFrameResult", "FaceFrameProcessor", "annotate_frame",
           "annotate_faces"]

COLOR_ORDERS = ("bgr", "rgb")
BOX_COLOR = (0, 200, 0)  # green in both channel orders


@dataclass(frozen=True)
class FaceReading:
    """One face of a frame: box (x, y, w, h) (the whole image for an already-cropped one),
    face (64, 64) uint8 crop, probs (K,), uncertainty (normalised entropy in [0, 1]: affectlab.uncertainty),
    embedding (D,), position (2,) on the run's map or None."""

    box: Box
    face: np.ndarray
    probs: np.ndarray
    uncertainty: float
    embedding: np.ndarray
    position: np.ndarray | None

    def label(self, class_names: list[str]) -> str:
        k = int(np.argmax(self.probs))
        return f"{class_names[k]} {self.probs[k]:.0%}"


@dataclass(frozen=True)
class FaceFrameResult:
    """One processed frame. The top-level fields describe the largest face (None when none was
    found); ``faces`` holds every face, largest first.

    box:         (x, y, w, h) of the largest face, or None when no face was found
    face:        (64, 64) uint8 crop or None
    probs:       (K,) float64 distribution over ``class_names``, or None
    class_names: the K names
    uncertainty: normalised entropy of ``probs`` in [0, 1] (0 = certain), or None
    embedding:   (D,) float32 or None
    position:    (2,) map coordinates on the run's PCA map, or None
    annotated:   the input frame (same shape and colour order) with every box and label drawn
    reason:      what was found ("face detected by YuNet at …", "no face detected", …)
    faces:       every face's :class:`FaceReading`
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
    faces: tuple[FaceReading, ...] = ()

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


def annotate_faces(frame: np.ndarray, labelled: list[tuple[Box, str | None]],
                   color: tuple[int, int, int] = BOX_COLOR) -> np.ndarray:
    """A copy of ``frame`` with each (box, label) drawn: the box, the label above it (cv2)."""
    out = np.ascontiguousarray(_check_frame(frame)).copy()
    thick = max(1, round(min(out.shape[:2]) / 240))
    scale = max(0.4, min(out.shape[:2]) / 600)
    ink = color if out.ndim == 3 else int(np.mean(color))
    for (x, y, w, h), label in labelled:
        cv2.rectangle(out, (x, y), (x + w, y + h), ink, thick)
        if label:
            cv2.putText(out, label, (x, max(int(14 * scale), y - 6)), cv2.FONT_HERSHEY_SIMPLEX,
                        scale, ink, thick, cv2.LINE_AA)
    return out


def annotate_frame(frame: np.ndarray, box: Box | None, label: str | None,
                   color: tuple[int, int, int] = BOX_COLOR) -> np.ndarray:
    """A copy of ``frame`` with ``box`` drawn and ``label`` written above it (cv2)."""
    return annotate_faces(frame, [] if box is None else [(box, label)], color)


class FaceFrameProcessor:
    """Face detection (or tracking) → 64×64 crops → model distributions (+ uncertainty, map
    position) for every face.

    model:      a :class:`LiveModel` (default: the pretrained mini-Xception)
    projection: a fitted :class:`MapProjection` of the same model's embeddings (a run's PCA)
                to place each face on that run's map; None for no position
    cropper:    a :class:`FaceCropper` (default: YuNet, Haar when YuNet cannot load)

    The processor is stateless (share it between sessions); a stream's state is its tracker.
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
        # channels-last halves the shipped mini-Xception's time on one CPU thread (4.0 → 2.0 ms
        # a face) with the same outputs; the trainer runs convolutions channels-last too.
        model.model.to(memory_format=torch.channels_last)
        self.model = model
        self.projection = projection
        self.cropper = cropper if cropper is not None else FaceCropper()

    @property
    def class_names(self) -> list[str]:
        return list(self.model.class_names)

    def new_tracker(self, **options) -> FaceTracker:
        """A tracker for one camera stream over this processor's detector (options: see
        :class:`FaceTracker`)."""
        return FaceTracker(self.cropper.detector, **options)

    def predict_faces(self, faces: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(64, 64) uint8 crops → (probs (N, K), embeddings (N, D)), one model call."""
        arrs = [np.asarray(f) for f in faces]
        if not arrs or any(f.ndim != 2 or f.dtype != np.uint8 for f in arrs):
            raise ValueError("faces must be a non-empty list of 2-D uint8 crops, got "
                             f"{[(f.shape, str(f.dtype)) for f in arrs]}")
        x = torch.from_numpy(np.stack(arrs).astype(np.float32) / 255.0)[:, None]
        return self.model.predict(x.contiguous(memory_format=torch.channels_last))

    def predict_face(self, face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(64, 64) uint8 crop → (probs (K,), embedding (D,))."""
        probs, emb = self.predict_faces([face])
        return probs[0], emb[0]

    def process_image_bytes(self, data: bytes, crop: bool | None = None) -> FaceFrameResult:
        """An uploaded image file's bytes (any format Pillow reads) → :meth:`process` of its
        RGB pixels; an already-cropped face (:func:`~affectlab.features.face.is_face_crop`,
        or ``crop=True``) is used whole. Raises
        :class:`~affectlab.features.face.ImageLoadError` for undecodable data."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        rgb = decode_image(io.BytesIO(bytes(data)), "uploaded image", "RGB")  # bounded size
        return self.process(rgb, color="rgb", crop=crop)

    def process(self, frame, color: str = "bgr", tracker: FaceTracker | None = None,
                crop: bool | None = False) -> FaceFrameResult:
        """One frame → :class:`FaceFrameResult`.

        color:   "bgr" or "rgb" channel order of a 3-channel frame (ignored for grayscale)
        tracker: the stream's :class:`FaceTracker` (None: a full detection of this frame)
        crop:    False (default, camera frames) detects; True takes the whole frame as the
                 face; None decides by :func:`~affectlab.features.face.is_face_crop`
        """
        if color not in COLOR_ORDERS:
            raise ValueError(f"color must be one of {COLOR_ORDERS}, got {color!r}")
        if tracker is not None and not isinstance(tracker, FaceTracker):
            raise TypeError(f"tracker must be a FaceTracker, got {type(tracker).__name__}")
        arr = _check_frame(frame)
        found = self.cropper.process(arr, crop=crop, color=color,
                                     find=tracker.update if tracker is not None else None)
        names = self.class_names
        if not found.ok:
            return FaceFrameResult(None, None, None, names, None, None, None, arr.copy(),
                                   found.reason)
        # an already-cropped image is one face: the whole of it
        boxes = found.boxes or ((0, 0, arr.shape[1], arr.shape[0]),)
        probs, embs = self.predict_faces(list(found.faces))
        positions = (self.projection.transform(embs) if self.projection is not None
                     else [None] * len(boxes))
        faces = tuple(FaceReading(b, f, p, float(probs_uncertainty(p)), e, pos)
                      for b, f, p, e, pos in zip(boxes, found.faces, probs, embs, positions,
                                                 strict=True))
        # cv2 draws in the array's own channel order: green is (0, 200, 0) in both orders.
        annotated = annotate_faces(arr, [(r.box, r.label(names)) for r in faces])
        big = faces[0]
        return FaceFrameResult(big.box, big.face, big.probs, names, big.uncertainty,
                               big.embedding, big.position, annotated, found.reason, faces)
