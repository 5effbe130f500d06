"""Signing in as the owner: by password, by the one-time link ``affectlab app`` prints, and
back into a browser that signed in before (a session cookie), with sign-out.

A successful sign-in returns an :class:`OwnerGrant`, the only thing that proves a browser
session belongs to the owner. It cannot be made outside this module; it is valid until it is
signed out, its :data:`SESSION_HOURS` run out, the password changes (other sessions only) or
the server stops (grants live in this process's memory, never in the database).

- **Password** (:func:`sign_in_with_password`): the admin password of
  :mod:`affectlab.annotate.access`. Failed attempts are throttled **per client** (the address
  the app passes as ``client``), so a stranger's guesses do not lock the owner out:

  - per client, exponential backoff: after :data:`MAX_FAILURES` failures within
    :data:`FAILURE_WINDOW_S` seconds that client is refused until the window has passed; each
    further lockout without a success in between doubles it (at most :data:`MAX_LOCKOUT_S`).
    A success clears the client's record.
  - over the whole server, a ceiling that slows guessing spread over many addresses without
    locking anyone out: while more than :data:`GLOBAL_MAX_FAILURES` failures happened in the
    last :data:`FAILURE_WINDOW_S` seconds, clients that have not signed in since the server
    started must wait for the oldest to age out (a second or so under a steady flood), so the
    server checks at most that many wrong passwords a minute whatever the number of
    addresses. Clients that signed in before (the owner's own) pass, and so does the one-time
    link, which is never throttled.

  The counts live in this process's memory (one app server process). Without a ``client``
  (callers that cannot tell clients apart) every attempt counts as one unknown client's.
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
MAX_FAILURES = 10           # per client within FAILURE_WINDOW_S, then a lockout
FAILURE_WINDOW_S = 60.0
MAX_LOCKOUT_S = 3600.0      # the longest a client's doubled lockout gets
GLOBAL_MAX_FAILURES = 100   # over all clients within FAILURE_WINDOW_S, then slowed
MAX_CLIENTS = 10_000        # clients remembered; beyond, the longest idle are forgotten
UNKNOWN_CLIENT = "?"


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


def _binding(client: str | None) -> str | None:
    """The part of a client key a session cookie is bound to: a network address
    (``ip:…``); a key drawn for one browser session changes at every reload, so it binds
    nothing."""
    return client if isinstance(client, str) and client.startswith("ip:") else None


class _Sessions:
    """The live grants of this process: session-token hash → (expiry, method, address bound).

    A grant opened from a known address (the app's client key, ``ip:…``) comes back by its
    cookie only to that address: a cookie read by another page of the same host (cookies are
    shared across ports) and replayed from elsewhere signs nobody in."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, tuple[float, str, str | None]] = {}

    def open(self, method: str, now: float | None = None, client: str | None = None
             ) -> OwnerGrant:
        now = time.time() if now is None else now
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._live[_sha256(token)] = (now + SESSION_HOURS * 3600.0, method, _binding(client))
        return OwnerGrant(method, token, now, _GRANT_KEY)

    def live(self, digest: str, now: float | None = None) -> bool:
        return self.method(digest, now) is not None

    def method(self, digest: str, now: float | None = None, client: object = None
               ) -> str | None:
        """The grant's method while it is live; with ``client`` (a cookie coming back), None
        too when the grant is bound to another address."""
        now = time.time() if now is None else now
        with self._lock:
            entry = self._live.get(digest)
            if entry is None:
                return None
            if entry[0] <= now:
                del self._live[digest]
                return None
            if client is not None and entry[2] is not None and entry[2] != client:
                return None
            return entry[1]

    def close(self, digest: str) -> None:
        with self._lock:
            self._live.pop(digest, None)

    def close_all_but(self, digest: str) -> None:
        with self._lock:
            self._live = {k: v for k, v in self._live.items() if k == digest}


@dataclass
class _Client:
    """One client's failed sign-ins: the failures of the current window, the lockouts since
    its last success, and when the current lockout ends."""

    failures: deque[float]
    strikes: int = 0
    locked_until: float = 0.0
    seen: float = 0.0


class _Throttle:
    """Failed password sign-ins, per client and for the whole server (the module docstring)."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = FAILURE_WINDOW_S,
                 global_limit: int = GLOBAL_MAX_FAILURES) -> None:
        self.limit, self.window, self.global_limit = limit, window, global_limit
        self._lock = threading.Lock()
        self._clients: dict[str, _Client] = {}
        self._failures: deque[float] = deque()   # every client's, for the ceiling
        self._trusted: set[str] = set()           # clients that signed in since the start

    def check(self, client: str, now: float) -> None:
        """:class:`AccessDenied` when ``client`` must wait before its next attempt."""
        with self._lock:
            entry = self._clients.get(client)
            if entry is not None and entry.locked_until > now:
                raise AccessDenied("too many failed sign-ins; try again in "
                                   f"{entry.locked_until - now:.0f} s")
            while self._failures and self._failures[0] <= now - self.window:
                self._failures.popleft()
            if len(self._failures) >= self.global_limit and client not in self._trusted:
                wait = max(1.0, self._failures[0] + self.window - now)
                raise AccessDenied("too many failed sign-ins on this server just now; try "
                                   f"again in {wait:.0f} s (or open the one-time sign-in link)")

    def fail(self, client: str, now: float) -> None:
        with self._lock:
            self._failures.append(now)
            entry = self._clients.setdefault(client, _Client(deque()))
            entry.seen = now
            while entry.failures and entry.failures[0] <= now - self.window:
                entry.failures.popleft()
            entry.failures.append(now)
            if len(entry.failures) >= self.limit:
                lockout = min(self.window * 2 ** entry.strikes, MAX_LOCKOUT_S)
                entry.locked_until = entry.failures[0] + lockout
                entry.strikes += 1
                entry.failures.clear()
            self._forget_idle()

    def succeed(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)
            if client != UNKNOWN_CLIENT and len(self._trusted) < MAX_CLIENTS:
                self._trusted.add(client)

    def _forget_idle(self) -> None:
        """Past :data:`MAX_CLIENTS`, keep the half seen last (the ceiling still holds)."""
        if len(self._clients) > MAX_CLIENTS:
            recent = sorted(self._clients.items(), key=lambda kv: kv[1].seen)
            self._clients = dict(recent[-(MAX_CLIENTS // 2):])


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


def sign_in_with_link(token: object, now: float | None = None, client: str | None = None
                      ) -> OwnerGrant:
    """A grant for the one-time link's token, which is used up; :class:`AccessDenied` for
    any other value, a used token, or a server started without a link. ``client``: the
    browser's key (its cookie then comes back only from that address, :func:`resume`)."""
    expected = os.environ.get(ENV_LINK_SHA256, "")
    if not isinstance(token, str) or not token or len(token) > 200 or not expected:
        raise AccessDenied("this sign-in link is not valid")
    with _LINK_LOCK:
        if expected in _USED_LINKS or not hmac.compare_digest(_sha256(token), expected):
            raise AccessDenied("this sign-in link is not valid or was already used; restart "
                               "the app for a new one, or sign in with the password")
        _USED_LINKS.add(expected)
    return _SESSIONS.open("link", now, client)


def sign_in_with_password(store: Store, password: object, *,
                          secrets_file: str | os.PathLike | None = None,
                          now: float | None = None, client: str | None = None) -> OwnerGrant:
    """A grant for the admin password; :class:`AccessDenied` (wrong password, none set yet,
    or too many failed attempts just now). ``client``: who is asking (the app passes the
    browser's address, or a key of its browser session when it has none); failures are
    throttled per client, see the module docstring."""
    now = time.time() if now is None else now
    client = client[:200] if isinstance(client, str) and client else UNKNOWN_CLIENT
    _THROTTLE.check(client, now)
    if not isinstance(password, str) or not password:
        raise AccessDenied("enter the owner password")
    if admin_password_source(store, secrets_file=secrets_file) is None:
        raise AccessDenied("no owner password is set yet: open the one-time sign-in link that "
                           "`affectlab app` printed in its terminal, then set one on the "
                           "Account page (or set $AFFECTLAB_ADMIN_PASSWORD)")
    try:
        check_admin_password(store, password, secrets_file=secrets_file)
    except AccessDenied:
        _THROTTLE.fail(client, now)
        raise AccessDenied("wrong owner password") from None
    _THROTTLE.succeed(client)
    return _SESSIONS.open("password", now, client)


def resume(session_token: object, now: float | None = None, client: str | None = None
           ) -> OwnerGrant | None:
    """The grant of a browser that signed in before (its session cookie), or None; a grant
    signed in from a known address comes back only to ``client`` with that address (see
    :class:`_Sessions`)."""
    if not isinstance(session_token, str) or not session_token or len(session_token) > 200:
        return None
    method = _SESSIONS.method(_sha256(session_token), now, client if client else "")
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
