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


def test_affectlab_app_prints_a_one_time_sign_in_link(tmp_path):
    """`affectlab app` (what `make app` runs) prints the owner's link before the server starts,
    binds 127.0.0.1 by default, and puts only the token's hash in the server's environment."""
    import os
    import signal
    import subprocess
    import time

    from harness import free_port

    port = free_port()
    env = dict(os.environ, AFFECTLAB_DATA=str(tmp_path / "data"), PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS="1")
    env.pop("AFFECTLAB_SIGNIN_SHA256", None)
    exe = Path(sys.executable).with_name("affectlab")
    proc = subprocess.Popen([str(exe), "app", "--port", str(port), "--no-defaults"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        link = None
        deadline = time.monotonic() + 120
        while link is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "?token=" in line:
                link = line.strip()
        assert link is not None and link.startswith(f"http://127.0.0.1:{port}/?token=")
        token = link.split("token=")[1]
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                            timeout=2) as r:
                    assert r.read() == b"ok"
                    break
            except OSError:
                time.sleep(0.5)
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        hashes = [e for e in environ if e.startswith(b"AFFECTLAB_SIGNIN_SHA256=")]
        assert len(hashes) == 1 and token.encode() not in b"\0".join(environ)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
