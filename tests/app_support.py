"""Shared by the AppTest modules: open the app at its entry point, then switch to one page."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app" / "Home.py")
TIMEOUT = 120  # the first script run imports torch, plotly and webrtc on a shared 2-core machine


def open_page(name: str) -> AppTest:
    """The app run once through app/Home.py, then switched to ``app/views/<name>.py``; both
    runs must end without an exception."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    at.switch_page(f"views/{name}.py").run()
    assert not at.exception, at.exception
    return at
