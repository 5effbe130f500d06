"""app/uploads.py: Streamlit's upload manager stores a file only for an owner's session (the
browser walk sends the attack through the real endpoint)."""

from __future__ import annotations

import pytest
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.uploaded_file_manager import UploadedFileRec

from affectlab.app import uploads


class _Grant:
    def __init__(self, valid: bool = True) -> None:
        self.ok = valid

    def valid(self) -> bool:
        return self.ok


def _file(i: int = 0) -> UploadedFileRec:
    return UploadedFileRec(file_id=f"f{i}", name="x.bin", type="application/octet-stream",
                           data=b"\0" * 1000)


def test_uploads_are_stored_for_admitted_owner_sessions_only():
    uploads.install()
    uploads.install()  # once per process, however many script runs call it
    manager = MemoryUploadedFileManager("/_stcore/upload_file")
    with pytest.raises(Exception, match="owner") as refused:
        manager.add_file("visitor", _file())
    assert getattr(refused.value, "status_code", 403) == 403
    assert manager.get_files("visitor", ["f0"]) == []
    grant = _Grant()
    uploads.admit_session("owner", grant)
    manager.add_file("owner", _file())
    assert len(manager.get_files("owner", ["f0"])) == 1
    grant.ok = False  # signed out in another tab, expired, or the password changed
    with pytest.raises(Exception, match="owner"):
        manager.add_file("owner", _file(1))
    assert "owner" not in uploads.owner_sessions()
    uploads.admit_session("owner", _Grant())
    uploads.admit_session("owner", None)  # this run found no grant: a signed-out owner
    with pytest.raises(Exception, match="owner"):
        manager.add_file("owner", _file(2))


def test_an_ended_session_is_forgotten():
    uploads.install()
    manager = MemoryUploadedFileManager("/_stcore/upload_file")
    uploads.admit_session("gone", _Grant())
    manager.add_file("gone", _file())
    manager.remove_session_files("gone")
    assert "gone" not in uploads.owner_sessions()
    assert manager.get_files("gone", ["f0"]) == []
