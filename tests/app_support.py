"""Shared by the AppTest modules: open the app at its entry point signed in as the owner, then
switch to one page."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from affectlab.annotate.signin import issue_link_token, sign_in_with_link
from affectlab.auth import OWNER_GRANT

APP = str(Path(__file__).resolve().parents[1] / "app" / "Home.py")
TIMEOUT = 120  # the first script run imports torch, plotly and webrtc on a shared 2-core machine


def signed_in(at: AppTest) -> AppTest:
    """Give ``at``'s session the owner's grant before its next run (through the one-time
    link's own check), for a page script run without app/Home.py."""
    at.session_state[OWNER_GRANT] = sign_in_with_link(issue_link_token())
    return at


def open_home(timeout: float = TIMEOUT) -> AppTest:
    """app/Home.py opened with a fresh one-time sign-in link (``?token=``), as the owner does;
    the run must end without an exception."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.query_params["token"] = issue_link_token()
    at.run()
    assert not at.exception, at.exception
    return at


def open_page(name: str) -> AppTest:
    """The app run once through app/Home.py (signed in by the link), then switched to
    ``app/views/<name>.py``; both runs must end without an exception."""
    at = open_home()
    at.switch_page(f"views/{name}.py").run()
    assert not at.exception, at.exception
    return at
