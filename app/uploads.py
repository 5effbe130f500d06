"""Uploaded files reach the server's memory from the owner's sessions only.

Streamlit's upload endpoint (``PUT /_stcore/upload_file/<session>/<file>``) stores a file for
any live session, whether or not its page has a file uploader, and keeps it in memory until the
session ends: an anonymous visitor on the sign-in page could fill the server's memory, 64 MB a
request (the audit measured 752 MB from 8 requests, kept after the browser closed). Every
uploader of this app is on an owner page (Annotate's media, Live's photo and recording), so a
file for any other session is refused before it is stored.

:func:`install` wraps the upload manager's ``add_file`` (the one place every Streamlit version
and server backend stores an upload); every script run says whose session it is
(:func:`admit_session`). The refusal is an HTTP 403 where the server's framework has one.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["UploadRefused", "admit_session", "current_session_id", "install", "owner_sessions"]

_LOCK = threading.Lock()
_OWNERS: dict[str, Any] = {}  # session id → the OwnerGrant it holds (checked at upload time)
_INSTALLED = False


class UploadRefused(PermissionError):
    """A file sent for a session that is not the owner's."""


def _refusal(session_id: str) -> Exception:
    message = "uploads are for the workbench's owner"
    try:  # Streamlit on Starlette: a plain 403 response, not a logged server error
        from starlette.exceptions import HTTPException

        return HTTPException(status_code=403, detail=message)
    except ImportError:  # pragma: no cover - older Streamlit on Tornado
        try:
            from tornado.web import HTTPError

            return HTTPError(403, message)
        except ImportError:
            return UploadRefused(f"{message} (session {session_id[:8]}…)")


def owner_sessions() -> dict[str, Any]:
    """A copy of the sessions admitted now (session id → grant)."""
    with _LOCK:
        return dict(_OWNERS)


def admit_session(session_id: str | None, grant: Any) -> None:
    """This run's session may upload while ``grant`` (an OwnerGrant) is valid; ``grant`` None
    (a rater, a visitor, a signed-out owner): it may not."""
    if not session_id:
        return
    with _LOCK:
        if grant is None:
            _OWNERS.pop(session_id, None)
        else:
            _OWNERS[session_id] = grant


def _may_upload(session_id: str) -> bool:
    with _LOCK:
        grant = _OWNERS.get(session_id)
    if grant is not None and grant.valid():
        return True
    if grant is not None:  # expired, signed out elsewhere, revoked by a password change
        admit_session(session_id, None)
    return False


def install() -> None:
    """Wrap ``MemoryUploadedFileManager.add_file`` once per process (a class attribute: the
    server's manager, made before the first script run, looks it up at every call)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager

        original = MemoryUploadedFileManager.add_file

        def add_file(self, session_id: str, file) -> None:
            if not _may_upload(session_id):
                logger.warning("refused an upload of %d bytes for a session that is not the "
                               "owner's", len(getattr(file, "data", b"")))
                raise _refusal(session_id)
            original(self, session_id, file)

        forget = MemoryUploadedFileManager.remove_session_files

        def remove_session_files(self, session_id: str) -> None:  # the session ended
            with _LOCK:
                _OWNERS.pop(session_id, None)
            forget(self, session_id)

        add_file.__wrapped__ = original  # type: ignore[attr-defined]
        MemoryUploadedFileManager.add_file = add_file
        MemoryUploadedFileManager.remove_session_files = remove_session_files
        _INSTALLED = True


def current_session_id() -> str | None:
    """The id of the session whose script is running, or None outside one."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return None if ctx is None else ctx.session_id
