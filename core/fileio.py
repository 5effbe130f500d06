"""Small file helpers shared by runs, datasets and caches.

- Tolerant readers for the small JSON/YAML files: a missing or broken file reads as {} so
  listings never fail on one bad directory (the loaders that need the file report it
  themselves).
- :func:`atomic_write`: the one way a file is replaced, so a crash mid-write leaves the
  previous file whole.
- :func:`json_safe`: plain JSON values from numpy / torch scalars, paths and non-finite floats.
- :func:`link_or_copy`: how a media file enters a new dataset directory.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import yaml

__all__ = ["atomic_write", "json_safe", "read_json_dict", "read_yaml_dict"]


def read_json_dict(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or {} when it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def read_yaml_dict(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path``, or {} when it is missing, unreadable or not a mapping."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any],
                 backup: str | os.PathLike | None = None) -> None:
    """Replace ``path`` with what ``write(binary_file)`` writes, all or nothing.

    The bytes go to a temporary file in the same directory (flushed to disk), which is then
    renamed over ``path``. ``backup``: where the file being replaced is moved first (a run's
    previous checkpoint), so the two renames never leave neither file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if backup is not None and path.exists():
            os.replace(path, backup)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_safe(value: Any) -> Any:
    """A JSON-safe copy: NaN/inf become None (JSON has no NaN), numpy/torch scalars become
    Python numbers, paths become strings, tuples become lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool | str | int) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item"):  # numpy / torch scalar
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike, link: bool = True) -> None:
    """Put ``src`` at ``dst`` (parents created): a hard link when ``link`` and the file system
    allows it (no copy; the two names share one inode, so replace such a file, never rewrite
    it in place), else a copy."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass  # another file system, or links not allowed: copy instead
    shutil.copyfile(src, dst)
