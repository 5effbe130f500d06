"""Who may do what: the admin password (campaign owner) and campaign invite tokens (raters).

Admin password, in this order:

1. ``$AFFECTLAB_ADMIN_PASSWORD``;
2. ``admin_password`` in ``.streamlit/secrets.toml`` (working directory);
3. otherwise one is generated on first use (:func:`ensure_admin_password`): 16 random bytes,
   URL-safe, printed once on stdout and returned so the app can show it once; only its salted
   PBKDF2-SHA256 hash is kept, in the store's ``settings`` table. To reset it, set one of the
   two above, or delete the ``admin_password_hash`` row.

Every comparison uses :func:`hmac.compare_digest`.

Campaign tokens come from :func:`secrets.token_urlsafe` (32 bytes); the store keeps only their
SHA-256 (a 256-bit random token needs no salt or stretching), so a copy of the database does not
let anyone join a campaign.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tomllib
from pathlib import Path
from urllib.parse import urlencode

from affectlab.annotate.store import Setting, Store

__all__ = [
    "AccessDenied",
    "check_admin_password",
    "configured_admin_password",
    "ensure_admin_password",
    "hash_token",
    "invite_link",
    "new_token",
]

ENV_ADMIN_PASSWORD = "AFFECTLAB_ADMIN_PASSWORD"
SECRETS_FILE = Path(".streamlit") / "secrets.toml"
_SETTING_KEY = "admin_password_hash"
_PBKDF2_ROUNDS = 200_000


class AccessDenied(PermissionError):
    """Wrong admin password or an unknown / revoked campaign token."""


def configured_admin_password(secrets_file: str | os.PathLike | None = None) -> str | None:
    """The admin password from the environment or ``.streamlit/secrets.toml``, else None."""
    env = os.environ.get(ENV_ADMIN_PASSWORD)
    if env:
        return env
    path = Path(secrets_file) if secrets_file is not None else SECRETS_FILE
    if path.is_file():
        try:
            value = tomllib.loads(path.read_text()).get("admin_password")
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: invalid TOML ({exc})") from exc
        if value:
            if not isinstance(value, str):
                raise TypeError(f"{path}: admin_password must be a string")
            return value
    return None


def _pbkdf2(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _PBKDF2_ROUNDS)


def _encode_hash(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _pbkdf2(password, salt)
    parts = ("pbkdf2_sha256", str(_PBKDF2_ROUNDS), base64.b64encode(salt).decode(),
             base64.b64encode(digest).decode())
    return "$".join(parts)


def _verify_hash(password: str, encoded: str) -> bool:
    try:
        scheme, rounds, salt, digest = encoded.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    got = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(rounds))
    return hmac.compare_digest(got, base64.b64decode(digest))


def ensure_admin_password(store: Store, *, secrets_file: str | os.PathLike | None = None,
                          announce: bool = True) -> str | None:
    """Make sure an admin password exists; return it only when it was generated just now.

    Returns None when a password is configured (env / secrets.toml) or was generated before.
    A new password is printed once (``announce``) and never retrievable again.
    """
    if configured_admin_password(secrets_file) is not None:
        return None
    with store.write() as session:
        if session.get(Setting, _SETTING_KEY) is not None:
            return None
        password = secrets.token_urlsafe(16)
        session.add(Setting(key=_SETTING_KEY, value=_encode_hash(password)))
    if announce:
        print(f"affectlab: generated admin password (shown once, store it now): {password}",
              flush=True)
    return password


def check_admin_password(store: Store, password: str, *,
                         secrets_file: str | os.PathLike | None = None) -> None:
    """Raise :class:`AccessDenied` unless ``password`` is the admin password."""
    if not isinstance(password, str):
        raise TypeError(f"password must be a str, got {type(password).__name__}")
    configured = configured_admin_password(secrets_file)
    if configured is not None:
        if hmac.compare_digest(password.encode(), configured.encode()):
            return
        raise AccessDenied("wrong admin password")
    with store.read() as session:
        row = session.get(Setting, _SETTING_KEY)
    if row is None:
        raise AccessDenied("no admin password is set yet: call ensure_admin_password() first "
                           f"or set ${ENV_ADMIN_PASSWORD}")
    if not _verify_hash(password, row.value):
        raise AccessDenied("wrong admin password")


def new_token() -> str:
    """A fresh campaign token (43 URL-safe characters)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a campaign token (what the store keeps)."""
    if not isinstance(token, str) or not token:
        raise AccessDenied("campaign token must be a non-empty string")
    return hashlib.sha256(token.encode()).hexdigest()


def invite_link(token: str, base_url: str = "http://localhost:8501/annotate") -> str:
    """The link a rater opens: ``base_url?campaign=<token>``."""
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}{urlencode({'campaign': token})}"
