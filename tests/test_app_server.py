"""Smoke test without a browser: ``streamlit run app/Home.py`` starts and answers its health check.

It catches a broken entry point or a crash at server start cheaply; the pages themselves run
only when a browser session connects (tests/browser/test_browser_walk.py).
"""

import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "browser"))
from harness import AppServer  # noqa: E402


def test_streamlit_server_starts_and_is_healthy(tmp_path):
    with AppServer(tmp_path / "data", tmp_path / "streamlit.log") as server:
        assert server.health() == "ok", server.log_tail()
        with urllib.request.urlopen(server.url + "/", timeout=10) as r:
            assert r.status == 200
            assert b'id="root"' in r.read()  # the app's HTML shell
        proc = server.proc
    assert proc.poll() is not None  # stopped with its process group
    assert server.health() is None
