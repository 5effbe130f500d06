"""Fake camera and microphone files for Chromium, generated at test time (nothing committed).

Chromium's built-in fake camera shows a test pattern with no face, so the browser tests feed it
a YUV4MPEG2 file (``--use-file-for-fake-video-capture``) whose frames show scikit-image's
astronaut photo (a smiling face: OpenCV's Haar cascade finds it and the shipped mini-Xception
reads it as happy) drifting slightly over a plain background, and a 16-bit 48 kHz WAV
(``--use-file-for-fake-audio-capture``) made of generated "happy" utterances.

Run as a script to write both files into a directory:
``python tests/browser/media.py OUT_DIR``.
"""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT, FPS = 640, 480, 10
AUDIO_RATE = 48_000
FACE_SIZE = 400  # the astronaut photo (512×512) scaled to this square inside the frame


def face_frames(n_frames: int = 30, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """(n_frames, height, width, 3) uint8 RGB frames: the astronaut on a grey background,
    moving a few pixels along a small circle so that the stream is not a still image."""
    from skimage.data import astronaut

    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if width < FACE_SIZE + 40 or height < FACE_SIZE + 40:
        raise ValueError(f"width and height must be >= {FACE_SIZE + 40}, got {width}×{height}")
    face = cv2.resize(astronaut(), (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
    frames = np.empty((n_frames, height, width, 3), dtype=np.uint8)
    x0, y0 = (width - FACE_SIZE) // 2, (height - FACE_SIZE) // 2
    for i in range(n_frames):
        angle = 2 * np.pi * i / n_frames
        dx, dy = int(round(12 * np.cos(angle))), int(round(8 * np.sin(angle)))
        frames[i] = (200, 205, 210)
        frames[i, y0 + dy:y0 + dy + FACE_SIZE, x0 + dx:x0 + dx + FACE_SIZE] = face
    return frames


def write_y4m(path: str | Path, frames: np.ndarray, fps: int = FPS) -> Path:
    """Write (n, H, W, 3) uint8 RGB frames as YUV4MPEG2 with 4:2:0 chroma (Chromium's reader
    accepts the ``C420`` family). H and W must be even (chroma is subsampled 2×2)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (n, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    n, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"frame height and width must be even for 4:2:0, got {h}×{w}")
    path = Path(path)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for frame in frames:
            # I420: the Y plane, then U and V at quarter size, exactly y4m's 4:2:0 frame layout
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def read_y4m(path: str | Path) -> np.ndarray:
    """Read a file written by :func:`write_y4m` back as (n, H, W, 3) uint8 RGB (for checks)."""
    data = Path(path).read_bytes()
    header, _, body = data.partition(b"\n")
    fields = {tok[:1]: tok[1:] for tok in header.split()[1:]}
    w, h = int(fields[b"W"]), int(fields[b"H"])
    size = w * h * 3 // 2
    frames = []
    for chunk in body.split(b"FRAME\n")[1:]:
        yuv = np.frombuffer(chunk[:size], dtype=np.uint8).reshape(h * 3 // 2, w)
        frames.append(cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420))
    return np.stack(frames)


def happy_speech(seconds: float = 6.0, rate: int = AUDIO_RATE, seed: int = 0) -> np.ndarray:
    """(round(seconds·rate),) float32 mono: generated happy utterances of a few speakers with
    short pauses, resampled from the synthesiser's rate to ``rate``."""
    from math import gcd

    from scipy.signal import resample_poly

    from affectlab.data.synth import speech
    from affectlab.data.synth.truth import CATEGORIES, CIRCUMPLEX, ItemTruth

    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    dist = np.full(len(CATEGORIES), 0.01)
    dist[CATEGORIES.index("happy")] = 1.0 - 0.01 * (len(CATEGORIES) - 1)
    valence, arousal = CIRCUMPLEX["happy"]
    rng = np.random.default_rng(seed)
    pause = np.zeros(int(0.3 * speech.SAMPLE_RATE), dtype=np.float32)
    parts, total, identity = [], 0, 0
    while total < seconds * speech.SAMPLE_RATE:
        truth = ItemTruth(dist=dist, valence=valence, arousal=arousal, intensity=5,
                          identity=identity, style=0, domain=0)
        clip = speech.synthesize_utterance(truth, rng).astype(np.float32)
        parts += [clip, pause]
        total += len(clip) + len(pause)
        identity += 1
    audio = np.concatenate(parts)
    g = gcd(rate, speech.SAMPLE_RATE)
    audio = resample_poly(audio, rate // g, speech.SAMPLE_RATE // g).astype(np.float32)
    return audio[:int(round(seconds * rate))]


def write_wav16(path: str | Path, audio: np.ndarray, rate: int = AUDIO_RATE) -> Path:
    """Write (n,) float audio in [-1, 1] as 16-bit PCM mono (Chromium's fake capture reads
    plain PCM WAV)."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 1 or not np.isfinite(audio).all():
        raise ValueError(f"audio must be (n,) finite, got shape {audio.shape}")
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    path = Path(path)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def write_fake_media(out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``camera.y4m`` (3 s, 640×480, 10 fps) and ``microphone.wav`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    video = write_y4m(out / "camera.y4m", face_frames(3 * FPS))
    audio = write_wav16(out / "microphone.wav", happy_speech())
    return video, audio


def write_face_photo(path: str | Path) -> Path:
    """The astronaut photo as a PNG (what a user would upload on the Live page)."""
    from PIL import Image
    from skimage.data import astronaut

    Image.fromarray(astronaut()).save(path)
    return Path(path)


if __name__ == "__main__":
    for written in write_fake_media(sys.argv[1] if len(sys.argv) > 1 else "."):
        print(written)
