"""``affectlab app``: start the Streamlit app that ships inside the package.

The app's scripts live in ``affectlab.app`` (``app/`` in a checkout), so an installed wheel runs
the same app as ``make app``. Every start prints a one-time sign-in link for the owner (see
:mod:`affectlab.annotate.signin`); the server binds 127.0.0.1 unless told otherwise.

Streamlit reads ``.streamlit/config.toml`` from the working
directory only; :data:`SERVER_OPTIONS` carries the same settings as command-line flags so the
app behaves the same from any directory (``tests/test_packaging.py`` keeps the two in step).
"""

from __future__ import annotations

import os
import sys
from importlib.resources import files
from pathlib import Path
from typing import TextIO
from urllib.parse import urlencode

__all__ = ["DEFAULT_ADDRESS", "SERVER_OPTIONS", "announce_signin", "app_entry", "signin_url",
           "streamlit_command"]

DEFAULT_ADDRESS = "127.0.0.1"  # this machine only, as Jupyter; serve others with --address
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "[::]")

# section.key → value, as in .streamlit/config.toml
SERVER_OPTIONS: dict[str, object] = {
    "server.headless": True,
    "server.maxUploadSize": 128,  # MB a file; and only the owner uploads (app/uploads.py)
    "server.runOnSave": False,
    "browser.gatherUsageStats": False,
    "client.toolbarMode": "viewer",
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


def streamlit_command(port: int = 8501, address: str | None = None, show_errors: bool = False
                      ) -> list[str]:
    """``python -m streamlit run <Home.py>`` with :data:`SERVER_OPTIONS`, the port and, when
    given, the address to bind (default: Streamlit's, every interface). An uncaught exception
    shows a generic message in the browser and its traceback in the server log, unless
    ``show_errors``: even a server bound to 127.0.0.1 serves raters through a reverse proxy, so
    the address cannot tell a developer's browser from a rater's."""
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port must be 1..65535, got {port}")
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_entry())]
    cmd += [_flag(k, v) for k, v in SERVER_OPTIONS.items()]
    cmd += [f"--server.port={int(port)}"]
    if address:
        cmd += [f"--server.address={address}"]
    cmd += [f"--client.showErrorDetails={'full' if show_errors else 'none'}"]
    return cmd


def signin_url(token: str, port: int = 8501, address: str | None = None) -> str:
    """The one-time sign-in link for a server on ``address:port`` (a wildcard address, or none,
    is shown as localhost: the owner opens it on this machine, or replaces the host)."""
    host = address if address and address not in WILDCARD_ADDRESSES else "localhost"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"http://{host}:{int(port)}/?{urlencode({'token': token})}"


def announce_signin(port: int = 8501, address: str | None = None, out: TextIO | None = None
                    ) -> str:
    """Draw this start's one-time sign-in token (its hash goes to the environment the server
    inherits: :func:`affectlab.annotate.signin.issue_link_token`), print the link to ``out``
    (default: this terminal's stdout) and return the link."""
    from affectlab.annotate.signin import issue_link_token

    link = signin_url(issue_link_token(), port, address)
    print("affectlab: sign in as the owner with this one-time link (it works once, until the "
          f"server stops):\n\n    {link}\n", file=out or sys.stdout, flush=True)
    return link


def run_app(port: int = 8501, address: str | None = DEFAULT_ADDRESS, show_errors: bool = False
            ) -> None:  # pragma: no cover - execs
    """Print the one-time sign-in link, then replace this process with the Streamlit server
    (Ctrl-C reaches it directly; the process, its environment and the link stay the same)."""
    cmd = streamlit_command(port, address, show_errors)
    announce_signin(port, address)
    os.execv(cmd[0], cmd)
