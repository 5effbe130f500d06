"""Files that ship with affectlab (pretrained weights with their licence and provenance),
installed as the package ``affectlab.assets``."""

from __future__ import annotations

from pathlib import Path

__all__ = ["assets_path"]

_ROOT = Path(__file__).resolve().parent


def assets_path(*parts: str) -> Path:
    """The path of a shipped file, e.g. ``assets_path("models", "yunet", "yunet.onnx")``."""
    return _ROOT.joinpath(*parts)
