"""``affectlab app``: start the Streamlit app that ships inside the package.

The app's scripts live in ``affectlab.app`` (``app/`` in a checkout), so an installed wheel runs
the same app as ``make app``. Streamlit reads ``.streamlit/config.toml`` from the working
directory only; :data:`SERVER_OPTIONS` carries the same settings as command-line flags so the
app behaves the same from any directory (``tests/test_packaging.py`` keeps the two in step).
"""

from __future__ import annotations

import os
import sys
from importlib.resources import files
from pathlib import Path

__all__ = ["SERVER_OPTIONS", "app_entry", "streamlit_command"]

# section.key → value, as in .streamlit/config.toml
SERVER_OPTIONS: dict[str, object] = {
    "server.headless": True,
    "server.maxUploadSize": 512,
    "server.runOnSave": False,
    "browser.gatherUsageStats": False,
    "theme.base": "light",
    "theme.primaryColor": "#6C4AB6",
    "theme.font": "sans serif",
}


def app_entry() -> Path:
    """The app's entry script (``Home.py`` of the installed ``affectlab.app``)."""
    return Path(str(files("affectlab.app") / "Home.py"))


def _flag(key: str, value: object) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return f"--{key}={text}"


def streamlit_command(port: int = 8501, address: str | None = None) -> list[str]:
    """``python -m streamlit run <Home.py>`` with :data:`SERVER_OPTIONS`, the port and, when
    given, the address to bind (default: Streamlit's, every interface)."""
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port must be 1..65535, got {port}")
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_entry())]
    cmd += [_flag(k, v) for k, v in SERVER_OPTIONS.items()]
    cmd += [f"--server.port={int(port)}"]
    if address:
        cmd += [f"--server.address={address}"]
    return cmd


def run_app(port: int = 8501, address: str | None = None) -> None:  # pragma: no cover - execs
    """Replace this process with the Streamlit server (Ctrl-C reaches it directly)."""
    cmd = streamlit_command(port, address)
    os.execv(cmd[0], cmd)
