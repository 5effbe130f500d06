"""Can an item's media be shown? Checked when the item is served, so a rater never gets a file
the page cannot decode (DESIGN: a stuck rater is impossible).

:func:`media_problem` decodes the file the way the page will show it (Pillow for images,
soundfile for audio) within size bounds, and returns why it cannot be shown, or None. The
reason names the file and the decoder's error; it is for the owner and the server log, never
for the rater.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

__all__ = ["MAX_MEDIA_BYTES", "MAX_PIXELS", "media_problem"]

MAX_MEDIA_BYTES = 64 * 1024 * 1024   # an uploaded photo or a clip is far below this
MAX_PIXELS = 40_000_000              # Pillow only warns up to 89 MP; a rating page needs far less


def media_problem(path: str | os.PathLike, modality: str) -> str | None:
    """None when ``path`` decodes as ``modality`` ("face": an image, "speech": audio), else the
    reason (missing, too large, undecodable: with the decoder's message)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        return f"{path}: cannot read the file ({exc.strerror or exc})"
    if not path.is_file():
        return f"{path}: not a file"
    if size > MAX_MEDIA_BYTES:
        return f"{path}: {size} bytes, more than the {MAX_MEDIA_BYTES} a rating page shows"
    try:
        return _image_problem(path) if modality == "face" else _audio_problem(path)
    except Exception as exc:  # any decoder failure means the page could not show it either
        return f"{path}: cannot decode ({type(exc).__name__}: {exc})"


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
