"""Can an item's media be shown? Checked when the item is served, so a rater never gets a file
the page cannot decode (DESIGN: a stuck rater is impossible).

:func:`media_problem` decodes the file the way the page will show it (Pillow for images,
soundfile for audio) within size bounds, and returns why it cannot be shown, or None. The
reason names the file and the decoder's error; it is for the owner and the server log, never
for the rater. A file that decoded is remembered by (path, size, modification time), so the N
raters of one item pay for one decode; a changed file is decoded again.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from PIL import Image

__all__ = ["MAX_MEDIA_BYTES", "MAX_PIXELS", "media_problem"]

MAX_MEDIA_BYTES = 64 * 1024 * 1024   # an uploaded photo or a clip is far below this
MAX_PIXELS = 40_000_000              # Pillow only warns up to 89 MP; a rating page needs far less
_DECODED_MAX = 100_000               # remembered good files (a key is ~100 bytes)
_decoded: OrderedDict[tuple, None] = OrderedDict()
_decoded_lock = threading.Lock()


def media_problem(path: str | os.PathLike, modality: str) -> str | None:
    """None when ``path`` decodes as ``modality`` ("face": an image, "speech": audio), else the
    reason (missing, too large, undecodable: with the decoder's message)."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        return f"{path}: cannot read the file ({exc.strerror or exc})"
    if not path.is_file():
        return f"{path}: not a file"
    if stat.st_size > MAX_MEDIA_BYTES:
        return (f"{path}: {stat.st_size} bytes, more than the {MAX_MEDIA_BYTES} a rating page "
                "shows")
    key = (str(path), modality, stat.st_size, stat.st_mtime_ns, MAX_PIXELS)
    with _decoded_lock:
        if key in _decoded:
            _decoded.move_to_end(key)
            return None
    try:
        problem = _image_problem(path) if modality == "face" else _audio_problem(path)
    except Exception as exc:  # any decoder failure means the page could not show it either
        return f"{path}: cannot decode ({type(exc).__name__}: {exc})"
    if problem is None:
        with _decoded_lock:
            _decoded[key] = None
            if len(_decoded) > _DECODED_MAX:
                _decoded.popitem(last=False)
    return problem


def _image_problem(path: Path) -> str | None:
    with Image.open(path) as img:
        if img.width * img.height > MAX_PIXELS:
            return f"{path}: {img.width}×{img.height} pixels, more than {MAX_PIXELS}"
        img.load()  # decode every pixel: a truncated file fails here
    return None


def _audio_problem(path: Path) -> str | None:
    from affectlab.features.audio import load_wav

    load_wav(path, target_sr=None)  # raises for undecodable or empty audio
    return None
