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

Raters: at the first join a rater gets a **resume code** (:func:`new_resume_code`: 16 random
characters of an unambiguous alphabet, 80 bits, shown as ``ABCD-EFGH-JKMN-PQRS``); the store
keeps its SHA-256 only (:func:`hash_resume_code`, case, spaces and dashes ignored). Joining again
under a taken name requires it. The rating page also carries a **rater link token**
(:func:`rater_link_token`: ``<rater id>.<HMAC-SHA256>``) in its address, so a reload resumes; the
HMAC key is 32 random bytes generated once per store (``settings`` row ``rater_link_secret``),
and a revoked rater's token stops working because every rater call checks the rater row.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tomllib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy.exc import IntegrityError

from affectlab.annotate.store import Setting, Store

__all__ = [
    "AccessDenied",
    "RaterRevoked",
    "ResumeCodeRequired",
    "check_admin_password",
    "configured_admin_password",
    "ensure_admin_password",
    "hash_resume_code",
    "hash_token",
    "invite_link",
    "new_resume_code",
    "new_token",
    "parse_rater_link_token",
    "rater_link_token",
]

ENV_ADMIN_PASSWORD = "AFFECTLAB_ADMIN_PASSWORD"
SECRETS_FILE = Path(".streamlit") / "secrets.toml"
_SETTING_KEY = "admin_password_hash"
_LINK_SECRET_KEY = "rater_link_secret"
_PBKDF2_ROUNDS = 200_000
# no 0/O, 1/I/L, U: a code read aloud or copied by hand survives
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
_CODE_LEN = 16  # log2(30) * 16 ≈ 78.5 bits
_LINK_SIG_CHARS = 32


class AccessDenied(PermissionError):
    """Wrong admin password, an unknown / revoked campaign token or rater link, a closed
    campaign, a revoked rater."""


class ResumeCodeRequired(AccessDenied):
    """The name is taken in this campaign: joining under it needs that rater's resume code."""


class RaterRevoked(AccessDenied):
    """The campaign's owner revoked this rater."""


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


def new_resume_code() -> str:
    """A fresh resume code, ``XXXX-XXXX-XXXX-XXXX`` (shown once; only its hash is stored)."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LEN))
    return "-".join(raw[i:i + 4] for i in range(0, _CODE_LEN, 4))


def hash_resume_code(code: str) -> str:
    """SHA-256 hex digest of a resume code, ignoring case, spaces and dashes."""
    if not isinstance(code, str):
        raise AccessDenied("resume code must be a string")
    clean = "".join(code.split()).replace("-", "").upper()
    if not clean or len(clean) > 64:
        raise AccessDenied("resume code must be the 16 characters you were given")
    return hashlib.sha256(clean.encode()).hexdigest()


def _link_secret(store: Store) -> bytes:
    with store.read() as session:
        row = session.get(Setting, _LINK_SECRET_KEY)
    if row is None:
        try:
            with store.write() as session:
                if session.get(Setting, _LINK_SECRET_KEY) is None:
                    session.add(Setting(key=_LINK_SECRET_KEY,
                                        value=base64.b64encode(secrets.token_bytes(32)).decode()))
        except IntegrityError:
            pass  # another process created it first: read theirs
        with store.read() as session:
            row = session.get(Setting, _LINK_SECRET_KEY)
    return base64.b64decode(row.value)


def _link_signature(secret: bytes, campaign_id: int, rater_id: int) -> str:
    msg = f"affectlab-rater:{campaign_id}:{rater_id}".encode()
    digest = hmac.new(secret, msg, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:_LINK_SIG_CHARS]


def rater_link_token(store: Store, campaign_id: int, rater_id: int) -> str:
    """The token that identifies one rater in the rating page's address (``&r=<token>``)."""
    return f"{int(rater_id)}.{_link_signature(_link_secret(store), campaign_id, rater_id)}"


def parse_rater_link_token(store: Store, token: object, campaign_of: Callable[[int], int | None]
                           ) -> int:
    """The rater id in a token from :func:`rater_link_token`, after checking its signature;
    ``campaign_of(rater_id)`` gives that rater's campaign id (None: no such rater). Raises
    AccessDenied for a malformed, unknown or forged token."""
    if not isinstance(token, str) or len(token) > 100 or token.count(".") != 1:
        raise AccessDenied("this rating link is not valid")
    head, sig = token.split(".")
    if not head.isdigit() or len(head) > 18:
        raise AccessDenied("this rating link is not valid")
    rater_id = int(head)
    campaign_id = campaign_of(rater_id)
    expected = _link_signature(_link_secret(store), campaign_id or 0, rater_id)
    if campaign_id is None or not hmac.compare_digest(sig.encode(), expected.encode()):
        raise AccessDenied("this rating link is not valid")
    return rater_id
