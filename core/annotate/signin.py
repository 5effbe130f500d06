"""Signing in as the owner: by password, by the one-time link ``affectlab app`` prints, and
back into a browser that signed in before (a session cookie), with sign-out.

A successful sign-in returns an :class:`OwnerGrant`, the only thing that proves a browser
session belongs to the owner. It cannot be made outside this module; it is valid until it is
signed out, its :data:`SESSION_HOURS` run out, the password changes (other sessions only) or
the server stops (grants live in this process's memory, never in the database).

- **Password** (:func:`sign_in_with_password`): the admin password of
  :mod:`affectlab.annotate.access`. Failed attempts are throttled for the whole server: after
  :data:`MAX_FAILURES` within :data:`FAILURE_WINDOW_S` seconds every password sign-in is
  refused until the window has passed.
- **One-time link** (:func:`issue_link_token`, :func:`sign_in_with_link`): at every start
  ``affectlab app`` draws a random token (32 bytes), prints ``http://host:port/?token=…`` to
  its terminal (as Jupyter does) and hands the server only the token's SHA-256, in
  ``$AFFECTLAB_SIGNIN_SHA256`` of the process it becomes. The first sign-in with it uses it up;
  it dies with the server process.
- **Browser session** (:func:`resume`): each grant carries a random session token that the
  app keeps in a session cookie (``SameSite=Strict``), so a reload or a second tab of the same
  browser needs no new sign-in; the server keeps only the token's hash.

A password never appears in output or logs; the link's token is printed once, on the
terminal that started the server, because that is what it is for.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import MutableMapping
from dataclasses import dataclass

from affectlab.annotate.access import (
    AccessDenied,
    admin_password_source,
    check_admin_password,
    set_admin_password,
)
from affectlab.annotate.store import Store

__all__ = [
    "ENV_LINK_SHA256",
    "OwnerGrant",
    "change_password",
    "issue_link_token",
    "require_grant",
    "resume",
    "sign_in_with_link",
    "sign_in_with_password",
    "sign_out",
]

ENV_LINK_SHA256 = "AFFECTLAB_SIGNIN_SHA256"
SESSION_HOURS = 12.0
MAX_FAILURES = 10
FAILURE_WINDOW_S = 60.0


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class OwnerGrant:
    """Proof that this browser session signed in as the owner (see the module docstring).

    method: how it signed in ("password" or "link"); session_token: the cookie value that
    brings the same browser back (:func:`resume`); check :meth:`valid` before trusting it.
    """

    method: str
    session_token: str
    issued_at: float
    _key: object = None

    def __post_init__(self) -> None:
        if self._key is not _GRANT_KEY:
            raise TypeError("an OwnerGrant comes only from affectlab.annotate.signin")

    def __repr__(self) -> str:  # never show the session token
        return f"OwnerGrant(method={self.method!r}, issued_at={self.issued_at:.0f})"

    def valid(self, now: float | None = None) -> bool:
        """Whether the grant is still live: not signed out, not expired, not revoked."""
        return _SESSIONS.live(_sha256(self.session_token), now)


_GRANT_KEY = object()


class _Sessions:
    """The live grants of this process: session-token hash → (expiry, method)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, tuple[float, str]] = {}

    def open(self, method: str, now: float | None = None) -> OwnerGrant:
        now = time.time() if now is None else now
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._live[_sha256(token)] = (now + SESSION_HOURS * 3600.0, method)
        return OwnerGrant(method, token, now, _GRANT_KEY)

    def live(self, digest: str, now: float | None = None) -> bool:
        return self.method(digest, now) is not None

    def method(self, digest: str, now: float | None = None) -> str | None:
        now = time.time() if now is None else now
        with self._lock:
            entry = self._live.get(digest)
            if entry is None:
                return None
            if entry[0] <= now:
                del self._live[digest]
                return None
            return entry[1]

    def close(self, digest: str) -> None:
        with self._lock:
            self._live.pop(digest, None)

    def close_all_but(self, digest: str) -> None:
        with self._lock:
            self._live = {k: v for k, v in self._live.items() if k == digest}


class _Throttle:
    """At most ``limit`` failures within ``window`` seconds, for the whole server."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = FAILURE_WINDOW_S) -> None:
        self.limit, self.window = limit, window
        self._lock = threading.Lock()
        self._failures: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._failures and self._failures[0] <= now - self.window:
            self._failures.popleft()

    def check(self, now: float) -> None:
        with self._lock:
            self._prune(now)
            if len(self._failures) >= self.limit:
                wait = self._failures[0] + self.window - now
                raise AccessDenied(f"too many failed sign-ins; try again in {wait:.0f} s")

    def fail(self, now: float) -> None:
        with self._lock:
            self._failures.append(now)


_SESSIONS = _Sessions()
_THROTTLE = _Throttle()
_USED_LINKS: set[str] = set()
_LINK_LOCK = threading.Lock()


def issue_link_token(environ: MutableMapping[str, str] | None = None) -> str:
    """A fresh one-time sign-in token; its SHA-256 goes to ``environ[ENV_LINK_SHA256]``
    (default ``os.environ``: the server process that ``affectlab app`` execs into inherits
    it). Returns the token itself, for the link printed on the terminal."""
    env = os.environ if environ is None else environ
    token = secrets.token_urlsafe(32)
    env[ENV_LINK_SHA256] = _sha256(token)
    return token


def sign_in_with_link(token: object, now: float | None = None) -> OwnerGrant:
    """A grant for the one-time link's token, which is used up; :class:`AccessDenied` for
    any other value, a used token, or a server started without a link."""
    expected = os.environ.get(ENV_LINK_SHA256, "")
    if not isinstance(token, str) or not token or len(token) > 200 or not expected:
        raise AccessDenied("this sign-in link is not valid")
    with _LINK_LOCK:
        if expected in _USED_LINKS or not hmac.compare_digest(_sha256(token), expected):
            raise AccessDenied("this sign-in link is not valid or was already used; restart "
                               "the app for a new one, or sign in with the password")
        _USED_LINKS.add(expected)
    return _SESSIONS.open("link", now)


def sign_in_with_password(store: Store, password: object, *,
                          secrets_file: str | os.PathLike | None = None,
                          now: float | None = None) -> OwnerGrant:
    """A grant for the admin password; :class:`AccessDenied` (wrong password, none set yet,
    or too many failed attempts just now)."""
    now = time.time() if now is None else now
    _THROTTLE.check(now)
    if not isinstance(password, str) or not password:
        raise AccessDenied("enter the owner password")
    if admin_password_source(store, secrets_file=secrets_file) is None:
        raise AccessDenied("no owner password is set yet: open the one-time sign-in link that "
                           "`affectlab app` printed in its terminal, then set one on the "
                           "Account page (or set $AFFECTLAB_ADMIN_PASSWORD)")
    try:
        check_admin_password(store, password, secrets_file=secrets_file)
    except AccessDenied:
        _THROTTLE.fail(now)
        raise AccessDenied("wrong owner password") from None
    return _SESSIONS.open("password", now)


def resume(session_token: object, now: float | None = None) -> OwnerGrant | None:
    """The grant of a browser that signed in before (its session cookie), or None."""
    if not isinstance(session_token, str) or not session_token or len(session_token) > 200:
        return None
    method = _SESSIONS.method(_sha256(session_token), now)
    if method is None:
        return None
    return OwnerGrant(method, session_token, time.time() if now is None else now, _GRANT_KEY)


def sign_out(grant: OwnerGrant | None) -> None:
    """End the grant's browser session (every tab that shares its cookie)."""
    if isinstance(grant, OwnerGrant):
        _SESSIONS.close(_sha256(grant.session_token))


def change_password(store: Store, grant: OwnerGrant, new_password: str, *,
                    current: str | None = None,
                    secrets_file: str | os.PathLike | None = None) -> None:
    """Set the admin password for a signed-in owner. When a password exists already, the
    current one is needed unless this session signed in with the one-time link (which only
    the machine's terminal shows: the way back in for a forgotten password). Every other
    owner session is signed out."""
    _require(grant)
    if admin_password_source(store, secrets_file=secrets_file) == "store" \
            and grant.method != "link":
        try:
            check_admin_password(store, current if isinstance(current, str) else "",
                                 secrets_file=secrets_file)
        except AccessDenied:
            raise AccessDenied("the current password is wrong") from None
    set_admin_password(store, new_password, secrets_file=secrets_file)
    _SESSIONS.close_all_but(_sha256(grant.session_token))


def _require(grant: object) -> None:
    if not isinstance(grant, OwnerGrant) or not grant.valid():
        raise AccessDenied("sign in as the owner first")


def require_grant(grant: object) -> OwnerGrant:
    """``grant`` when it is a live :class:`OwnerGrant`, else :class:`AccessDenied`."""
    _require(grant)
    return grant  # type: ignore[return-value]


def _reset_for_tests() -> None:
    """Forget every grant, failure and used link (tests only)."""
    global _SESSIONS, _THROTTLE
    _SESSIONS, _THROTTLE = _Sessions(), _Throttle()
    _USED_LINKS.clear()
