"""Faces followed from frame to frame, so that a camera frame rarely needs a full detection.

A full detection of a 640×480 frame costs more than looking again where the faces just were.
:class:`FaceTracker` runs a full detection (on the frame downscaled to ``full_side``) every
``redetect_every`` frames, and at once when a face is lost or none is tracked; in between it
searches a region around each last box (the box grown by ``search_margin`` of its side on each
side, downscaled to ``search_side``). A face found touching its region's edge counts as lost (it
moved faster than the margin). A face that enters between two full detections is found at the
next one, at most ``redetect_every - 1`` frames later.
"""

from __future__ import annotations

import threading

import numpy as np

from affectlab.features.face import Box, FaceDetector, iou

__all__ = ["FaceTracker", "search_region"]


def search_region(box: Box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): ``box`` grown by ``margin`` × its larger side on each side, clipped to
    the frame."""
    x, y, w, h = box
    pad = int(round(margin * max(w, h)))
    return max(0, x - pad), max(0, y - pad), min(width, x + w + pad), min(height, y + h + pad)


def _distinct(boxes: list[Box], overlap: float = 0.5) -> list[Box]:
    """Largest first, dropping a box that overlaps a larger kept one by more than ``overlap``
    IoU (two tracks that drifted onto the same face)."""
    kept: list[Box] = []
    for b in sorted(boxes, key=lambda b: b[2] * b[3], reverse=True):
        if all(iou(b, k) <= overlap for k in kept):
            kept.append(b)
    return kept


class FaceTracker:
    """Per-stream state: the faces of the last frame (one tracker per camera stream; the
    detector may be shared).

    detector:       a :class:`~affectlab.features.face.FaceDetector`
    redetect_every: a full detection every this many frames (1: every frame, no tracking)
    full_side:      longer side the frame is downscaled to for a full detection (default: the
                    detector's ``track_side``, 320 px for YuNet, 400 for Haar)
    search_margin:  the search region around a box, as a fraction of its side on each side
    search_side:    longer side a search region is downscaled to
    """

    def __init__(self, detector: FaceDetector, redetect_every: int = 10,
                 full_side: int | None = None,
                 search_margin: float = 0.5, search_side: int = 96) -> None:
        if not isinstance(detector, FaceDetector):
            raise TypeError(f"detector must be a FaceDetector, got {type(detector).__name__}")
        if not isinstance(redetect_every, int) or redetect_every < 1:
            raise ValueError(f"redetect_every must be an integer >= 1, got {redetect_every!r}")
        if not 0.1 <= search_margin <= 2:
            raise ValueError(f"search_margin must be in [0.1, 2], got {search_margin!r}")
        full_side = detector.track_side if full_side is None else full_side
        for name, side in (("full_side", full_side), ("search_side", search_side)):
            if not isinstance(side, int) or side < 16:
                raise ValueError(f"{name} must be an integer >= 16, got {side!r}")
        self.detector = detector
        self.redetect_every = redetect_every
        self.full_side, self.search_side = full_side, search_side
        self.search_margin = float(search_margin)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget the tracked faces (the next frame gets a full detection)."""
        self._tracks: list[Box] = []
        self._since_full = 0
        self.full_detections = 0
        self.searches = 0

    @property
    def tracks(self) -> list[Box]:
        return list(self._tracks)

    def update(self, frame: np.ndarray, color: str = "bgr") -> list[Box]:
        """The faces of this frame, largest first: searched near the last ones, or a full
        detection (every ``redetect_every`` frames, or when a face was lost)."""
        with self._lock:
            if self._tracks and self._since_full < self.redetect_every:
                found = self._search(frame, color)
                if found is not None:
                    self._tracks = found
                    self._since_full += 1
                    return list(found)
            self._tracks = self.detector.detect(frame, color, max_side=self.full_side)
            self._since_full = 1
            self.full_detections += 1
            return list(self._tracks)

    def _search(self, frame: np.ndarray, color: str) -> list[Box] | None:
        """Each track's face in its search region, or None when any is lost."""
        H, W = frame.shape[:2]
        out = []
        for box in self._tracks:
            x0, y0, x1, y1 = search_region(box, self.search_margin, W, H)
            self.searches += 1
            found = self.detector.detect(frame[y0:y1, x0:x1], color, max_side=self.search_side)
            moved = [(x + x0, y + y0, w, h) for x, y, w, h in found]
            best = max(moved, key=lambda b: iou(b, box), default=None)
            if best is None or iou(best, box) == 0 or _at_edge(best, (x0, y0, x1, y1), W, H):
                return None
            out.append(best)
        return _distinct(out)


def _at_edge(box: Box, region: tuple[int, int, int, int], width: int, height: int) -> bool:
    """Whether ``box`` touches a side of the search region that is not the frame's own: the
    face may reach past it (it moved faster than the margin), so its box is not to be trusted."""
    x, y, w, h = box
    x0, y0, x1, y1 = region
    return ((x <= x0 and x0 > 0) or (y <= y0 and y0 > 0) or (x + w >= x1 and x1 < width)
            or (y + h >= y1 and y1 < height))
