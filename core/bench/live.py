"""``affectlab bench --what live``: the Live page's face and microphone paths at camera speed.

Face: a deterministic clip of real faces moving over a real photograph (scikit-image's astronaut
photo, her head cut out and pasted twice — full size and mirrored at 0.55× — over the coffee
photo, 640×480), so that every frame has known face positions. Each pipeline processes the same
frames, interleaved frame by frame (load on a shared machine hits them alike), with one torch and
one OpenCV thread:

- ``naive``: OpenCV's Haar cascade (scaleFactor 1.1, minNeighbors 5, minSize 24) on the full
  frame, then the model on every face: the Live page before YuNet and tracking;
- ``yunet``: YuNet on the frame downscaled to 320 px, every frame;
- ``haar+track``: the fallback (Haar) with tracking (full detections at 400 px);
- ``yunet+track``: what the Live page runs: YuNet, a full detection (at 320 px) every 10 frames or
  when a face is lost, a search near the last boxes in between.

``speedup`` is naive ms / pipeline ms; ``agreement`` is the fraction of frames where the naive
pipeline found a face in which the pipeline has, for each of those faces, a box with IoU ≥ 0.5;
``recall`` counts the known faces found (IoU ≥ 0.5 with the pasted face's box) and ``false_pos``
the boxes that match no known face (IoU < 0.3 with all).

Microphone: 48 kHz stereo int16 chunks (what WebRTC delivers) pushed into the processor, and the
2 s window's prediction (filterbanks + model) after every chunk, the most the page could ask.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
import torch

from affectlab.features.face import Box, FaceCropper, HaarDetector, YuNetDetector, iou

__all__ = ["moving_faces", "bench_live_face", "bench_live_audio", "live_summary"]

WIDTH, HEIGHT = 640, 480
HEAD = (117, 10, 330, 230)  # x0, y0, x1, y1 of the astronaut's head in skimage's photo
FACE_IN_PHOTO = (177, 67, 93, 93)  # her face there (Haar's box at full resolution)
SECOND_SCALE = 0.55
MATCH_IOU = 0.5
FALSE_POS_IOU = 0.3
TARGET_SPEEDUP = 10.0
TARGET_AGREEMENT = 0.95


@dataclass(frozen=True)
class FaceClip:
    """frames (n, 480, 640, 3) uint8 BGR; truth[i]: the known face boxes of frame i."""

    frames: np.ndarray
    truth: list[list[Box]]


def _paste(frame: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    h, w = patch.shape[:2]
    frame[y:y + h, x:x + w] = patch


def moving_faces(n_frames: int = 100, second_face: bool = True) -> FaceClip:
    """The bench's clip: the head moves left → right across the top half (with a slow bob),
    the mirrored smaller one right → left across the bottom; deterministic."""
    from skimage.data import astronaut, coffee

    if n_frames < 2:
        raise ValueError(f"n_frames must be >= 2, got {n_frames}")
    photo = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)
    background = cv2.resize(cv2.cvtColor(coffee(), cv2.COLOR_RGB2BGR), (WIDTH, HEIGHT),
                            interpolation=cv2.INTER_AREA)
    x0, y0, x1, y1 = HEAD
    head = photo[y0:y1, x0:x1]
    fx, fy, fw, fh = FACE_IN_PHOTO[0] - x0, FACE_IN_PHOTO[1] - y0, *FACE_IN_PHOTO[2:]
    s = SECOND_SCALE
    small = cv2.resize(head[:, ::-1], None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    frames = np.empty((n_frames, HEIGHT, WIDTH, 3), np.uint8)
    truth = []
    for i in range(n_frames):
        t = i / (n_frames - 1)
        frames[i] = background
        ax = int(round(t * (WIDTH - head.shape[1])))
        ay = int(round(20 + 15 * np.sin(4 * np.pi * t)))
        _paste(frames[i], head, ax, ay)
        boxes = [(ax + fx, ay + fy, fw, fh)]
        if second_face:
            bx = int(round((1 - t) * (WIDTH - small.shape[1])))
            by = int(round(HEIGHT - small.shape[0] - 12 - 8 * np.cos(4 * np.pi * t)))
            _paste(frames[i], small, bx, by)
            mirrored_x = head.shape[1] - fx - fw
            boxes.append((bx + int(round(mirrored_x * s)), by + int(round(fy * s)),
                          int(round(fw * s)), int(round(fh * s))))
        truth.append(boxes)
    return FaceClip(frames, truth)


@contextmanager
def _threads(n: int) -> Iterator[None]:
    torch_n, cv_n = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(n)
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        torch.set_num_threads(torch_n)
        cv2.setNumThreads(cv_n)


def _pipelines(model, redetect_every: int) -> dict[str, tuple]:
    """name → (processor, tracker or None, detector description)."""
    from affectlab.live.face import FaceFrameProcessor

    naive = FaceFrameProcessor(model, cropper=FaceCropper(HaarDetector()))
    yunet = FaceFrameProcessor(model, cropper=FaceCropper(YuNetDetector(max_side=320)))
    haar = FaceFrameProcessor(model, cropper=FaceCropper(HaarDetector()))
    return {
        "naive": (naive, None, "Haar, full frame, every frame"),
        "yunet": (yunet, None, "YuNet at 320 px, every frame"),
        "haar+track": (haar, haar.new_tracker(redetect_every=redetect_every),
                       f"Haar at 400 px every {redetect_every} frames, search in between"),
        "yunet+track": (yunet, yunet.new_tracker(redetect_every=redetect_every),
                        f"YuNet at 320 px every {redetect_every} frames, search in between"),
    }


def _matched(boxes: list[Box], targets: list[Box], threshold: float) -> int:
    """How many of ``targets`` have a box in ``boxes`` with IoU ≥ threshold."""
    return sum(any(iou(b, t) >= threshold for b in boxes) for t in targets)


def _score(found: dict[str, list[list[Box]]], truth: list[list[Box]]) -> dict[str, dict]:
    naive = found["naive"]
    with_face = [i for i, b in enumerate(naive) if b]
    out = {}
    for name, per_frame in found.items():
        agree = sum(_matched(per_frame[i], naive[i], MATCH_IOU) == len(naive[i])
                    for i in with_face)
        out[name] = {
            "agreement": agree / len(with_face) if with_face else float("nan"),
            "recall": sum(_matched(b, t, MATCH_IOU) for b, t in zip(per_frame, truth, strict=True))
            / sum(len(t) for t in truth),
            "false_pos": sum(sum(all(iou(b, t) < FALSE_POS_IOU for t in ts) for b in bs)
                             for bs, ts in zip(per_frame, truth, strict=True)),
            "naive_frames": len(with_face),
        }
    return out


def bench_live_face(n_frames: int = 100, threads: int = 1, redetect_every: int = 10,
                    model=None) -> pd.DataFrame:
    """The face rows: ms/frame (mean, p95), frames/s, speedup against ``naive``, agreement with
    ``naive``, recall of the known faces, false positives. ``model``: a face LiveModel (default:
    the shipped mini-Xception)."""
    from affectlab.live.models import pretrained_face_model

    clip = moving_faces(n_frames)
    model = model if model is not None else pretrained_face_model()
    with _threads(threads):
        pipes = _pipelines(model, redetect_every)
        for proc, _, _ in pipes.values():  # warm-up: first calls allocate
            proc.process(clip.frames[0])
        times = {name: [] for name in pipes}
        found = {name: [] for name in pipes}
        for frame in clip.frames:
            for name, (proc, tracker, _) in pipes.items():
                start = time.perf_counter()
                result = proc.process(frame, color="bgr", tracker=tracker)
                times[name].append(time.perf_counter() - start)
                found[name].append([r.box for r in result.faces])
    scores = _score(found, clip.truth)
    naive_ms = 1000 * float(np.mean(times["naive"]))
    rows = []
    for name, (_, tracker, how) in pipes.items():
        ms = 1000 * float(np.mean(times[name]))
        rows.append({"pipeline": name, "detection": how, "ms_per_frame": ms,
                     "p95_ms": 1000 * float(np.percentile(times[name], 95)),
                     "frames_per_s": 1000 / ms, "speedup": naive_ms / ms,
                     **{k: scores[name][k] for k in ("agreement", "recall", "false_pos")},
                     "full_detections": tracker.full_detections if tracker else n_frames,
                     "frames": n_frames})
    table = pd.DataFrame(rows)
    table.attrs["naive_frames"] = scores["naive"]["naive_frames"]
    return table


def _speech_model():
    from affectlab.data.synth.truth import CATEGORIES
    from affectlab.live.models import LiveModel
    from affectlab.models import create

    torch.manual_seed(0)
    net = create("convpool", num_classes=len(CATEGORIES)).eval()
    # timing only: the same network a trained speech run has, with initial weights
    return LiveModel(net, list(CATEGORIES), "convpool (untrained, for timing)", "speech")


def _mic_stream(seconds: float, rate: int, channels: int) -> np.ndarray:
    """(samples, channels) int16: a deterministic voiced-like signal (a 120–220 Hz glide with
    harmonics) plus a little noise."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 170 + 50 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 6)) * 0.15
    wave += np.random.default_rng(0).normal(0, 0.01, len(t))
    return (np.repeat(wave[:, None], channels, axis=1) * 32767).astype(np.int16)


def bench_live_audio(seconds: float = 10.0, chunk_ms: float = 20.0, window_s: float = 2.0,
                     rate: int = 48_000, channels: int = 2, threads: int = 1,
                     model=None) -> pd.DataFrame:
    """The microphone row: per chunk, the push (to mono, resample to 16 kHz, ring buffer) and the
    window's prediction (filterbanks + model); real-time factor = processing time / audio time
    (below 1 keeps up)."""
    from affectlab.live.audio import AudioChunkProcessor

    if seconds <= window_s:
        raise ValueError(f"seconds must exceed window_s ({window_s}), got {seconds}")
    proc = AudioChunkProcessor(model if model is not None else _speech_model(), window_s=window_s)
    stream = _mic_stream(seconds, rate, channels)
    step = int(round(rate * chunk_ms / 1000))
    push, window = [], []
    with _threads(threads):
        for start in range(0, len(stream) - step + 1, step):
            t0 = time.perf_counter()
            proc.push(stream[start:start + step], rate)
            t1 = time.perf_counter()
            result = proc.predict()
            t2 = time.perf_counter()
            push.append(t1 - t0)
            if result is not None and proc.buffered_seconds >= window_s:
                window.append(t2 - t1)  # full windows only: the steady state
    push_ms, window_ms = 1000 * np.asarray(push), 1000 * np.asarray(window)
    per_chunk = push_ms[-len(window_ms):] + window_ms
    return pd.DataFrame([{
        "input": f"{rate // 1000} kHz × {channels}, {chunk_ms:g} ms chunks, {window_s:g} s window",
        "push_ms": float(np.median(push_ms)), "window_ms": float(np.median(window_ms)),
        "latency_ms": float(np.median(per_chunk)), "p95_ms": float(np.percentile(per_chunk, 95)),
        "real_time_factor": float(per_chunk.mean() / chunk_ms), "chunks": len(window_ms),
        "meets": bool(per_chunk.mean() < chunk_ms)}])


def live_summary(face: pd.DataFrame, pipeline: str = "yunet+track") -> str:
    """One line for the README: the Live pipeline against the naive one, with agreement."""
    naive = face.set_index("pipeline").loc["naive"]
    ours = face.set_index("pipeline").loc[pipeline]
    meets = ours["speedup"] >= TARGET_SPEEDUP and ours["agreement"] >= TARGET_AGREEMENT
    return (f"live face: {ours['speedup']:.1f}× the naive pipeline ({ours['ms_per_frame']:.1f} vs "
            f"{naive['ms_per_frame']:.1f} ms/frame, {ours['frames_per_s']:.0f} vs "
            f"{naive['frames_per_s']:.1f} frames/s), agreement {ours['agreement']:.0%} of "
            f"{face.attrs.get('naive_frames', '?')} frames where the naive pipeline found a face"
            f" (target ≥ {TARGET_SPEEDUP:.0f}× and ≥ {TARGET_AGREEMENT:.0%}: "
            f"{'met' if meets else 'NOT met'})")
