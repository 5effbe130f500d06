"""Where affectlab keeps its data (datasets, runs, the rating store), and the one way a name
given by a user becomes a path there.

Everything lives under one data directory: ``$AFFECTLAB_DATA`` when set, else ``data/`` in the
working directory. Nothing is written outside it.

Names (:func:`safe_name`, :func:`child_path`): a dataset, run, export or campaign name typed in
the app or given as a bare ``--out NAME`` is one path component under its kind's root, made of
:data:`NAME_RULE`. Anything else is refused with :class:`UnsafeNameError` (a ValueError naming
what was given and why): separators, ``..``, absolute paths, control characters, names that
Windows reserves (``CON``, ``NUL``, ``COM1`` …), a leading dot (hidden files), a trailing dot or
space, more than :data:`MAX_NAME_LEN` characters. The resolved path must lie inside the root,
so a symlink planted under the root does not lead out of it either.

Product directories (:func:`mark_created`, :func:`is_product_dir`): every dataset, run and
export directory affectlab writes holds a marker file, :data:`MARKER`. Overwriting removes a
directory only when it holds that marker: a typo never deletes a folder affectlab did not make.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from affectlab.errors import UserDataError

__all__ = [
    "MARKER",
    "MAX_NAME_LEN",
    "NAME_RULE",
    "NotProductDirError",
    "UnsafeNameError",
    "cache_dir",
    "child_path",
    "cli_out_path",
    "data_dir",
    "datasets_dir",
    "is_product_dir",
    "make_product_dir",
    "mark_created",
    "require_product_dir",
    "runs_dir",
    "safe_name",
    "unsafe_relative",
]

MAX_NAME_LEN = 100
NAME_RULE = ("letters, digits and . _ - + only, starting with a letter or digit, no '..', "
             f"at most {MAX_NAME_LEN} characters")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+\-]*")
# Windows device names, reserved with any extension ("con.txt" too)
_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
             *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
MARKER = ".affectlab-created"
_MARKER_TEXT = "written by affectlab; overwrite replaces only directories holding this file\n"


class UnsafeNameError(UserDataError):
    """A user-given name that cannot be one directory under a data root."""


class NotProductDirError(FileExistsError):
    """An existing directory that affectlab did not create (no marker): never overwritten."""


def data_dir() -> Path:
    """The root data directory (created on first use)."""
    root = Path(os.environ.get("AFFECTLAB_DATA", "data")).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def datasets_dir() -> Path:
    path = data_dir() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    path = data_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    path = data_dir() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _why_unsafe(name: str) -> str | None:
    if not name:
        return "it is empty"
    if len(name) > MAX_NAME_LEN:
        return f"it has {len(name)} characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it holds a control character"
    if "/" in name or "\\" in name or os.sep in name or (os.altsep and os.altsep in name):
        return "it holds a path separator"
    if ".." in name:
        return "it holds '..'"
    if name.startswith("."):
        return "it starts with a dot"
    if not _NAME_RE.fullmatch(name):
        bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "._+-"))})
        return (f"it holds {''.join(bad)!r}" if bad else "it must start with a letter or digit")
    if name.endswith("."):
        return "it ends with a dot"
    if name.split(".")[0].upper() in _RESERVED:
        return "it is a reserved device name on Windows"
    return None


def safe_name(name: object, what: str = "name") -> str:
    """``name`` itself when it is a safe single directory name (:data:`NAME_RULE`), else
    :class:`UnsafeNameError` naming ``what`` and the reason. Surrounding spaces are removed."""
    if not isinstance(name, str):
        raise UnsafeNameError(f"{what} must be a string, got {type(name).__name__}")
    text = name.strip()
    why = _why_unsafe(text)
    if why is not None:
        raise UnsafeNameError(f"{what} {name!r} is not allowed ({why}): use {NAME_RULE}")
    return text


def unsafe_relative(name: str) -> str | None:
    """Why ``name`` (a file name read from a label file or a dataset's items) is not a relative
    path that stays below its base directory, or None: absolute paths, drive letters, '..'
    and control characters are refused (the one rule for the importers and dataset subsets)."""
    if not name:
        return "empty file name"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return f"file name {name!r} holds a control character"
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or PureWindowsPath(name).drive:
        return f"file name {name!r} is an absolute path; label files must name files inside the corpus"
    if ".." in posix.parts:
        return f"file name {name!r} climbs out with '..'; label files must name files inside the corpus"
    return None


def child_path(root: str | os.PathLike, name: object, what: str = "name") -> Path:
    """``root / name`` for a :func:`safe_name`, checked to resolve inside ``root`` (a symlink
    named ``name`` under the root that points elsewhere is refused too)."""
    base = Path(root).expanduser().resolve()
    path = base / safe_name(name, what)
    resolved = path.resolve()
    if resolved != path and base not in resolved.parents:
        raise UnsafeNameError(f"{what} {name!r} leads outside {base} (a link to {resolved})")
    return path


def cli_out_path(out: str | os.PathLike, root: Path, what: str = "--out") -> Path:
    """A command line's ``--out``: a bare name (no separator) is a directory under ``root``
    (the datasets or runs directory, through :func:`child_path`); a value with a separator
    (``data/datasets/x``, ``./x``, ``/big/disk/x``) is the shell user's own explicit path, taken
    as given. The app never takes paths, only names."""
    text = os.fspath(out)
    if "/" in text or "\\" in text or text in (".", "~") or text.startswith("~"):
        return Path(text).expanduser()
    return child_path(root, text, what)


def mark_created(directory: str | os.PathLike) -> Path:
    """Write the product marker into ``directory`` (which must exist); returns the marker."""
    marker = Path(directory) / MARKER
    marker.write_text(_MARKER_TEXT)
    return marker


def make_product_dir(directory: str | os.PathLike) -> Path:
    """``mkdir -p directory``; marked (:func:`mark_created`) when it was missing or empty, so
    a folder of the user's that already held files never becomes one affectlab may replace."""
    path = Path(directory)
    fresh = not path.exists() or (path.is_dir() and not any(path.iterdir()))
    path.mkdir(parents=True, exist_ok=True)
    if fresh:
        mark_created(path)
    return path


def is_product_dir(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` is a real directory (not a link) that affectlab created."""
    path = Path(directory)
    return path.is_dir() and not path.is_symlink() and (path / MARKER).is_file()


def require_product_dir(directory: str | os.PathLike) -> None:
    """Raise :class:`NotProductDirError` unless ``directory`` may be replaced: it is missing,
    empty, or holds the product marker."""
    path = Path(directory)
    if path.is_symlink():
        raise NotProductDirError(f"{path} is a symbolic link; affectlab never replaces it")
    if not path.exists():
        return
    if not path.is_dir():
        raise NotProductDirError(f"{path} exists and is not a directory; affectlab never "
                                 "replaces it")
    if any(path.iterdir()) and not is_product_dir(path):
        raise NotProductDirError(f"{path} was not created by affectlab (it has no {MARKER} "
                                 "file), so overwrite does not remove it; move or delete it "
                                 "yourself, or choose another name")
