"""Who is using a browser session of the app, and which pages it may reach (no streamlit here:
the app passes its query parameters, session state and cookies in).

Three roles:

- **owner**: the session holds a live :class:`~affectlab.annotate.signin.OwnerGrant` (signed in
  by password or the one-time link, or brought back by the browser's session cookie). Every
  workbench page and action.
- **rater**: no grant, and the address carries an invite (``?campaign=<token>``). Only the
  rating page is registered in the navigation, so no other URL leads anywhere else.
- **visitor**: neither. Only the sign-in page exists.

The owner role wins over an invite in the address, so the owner can try their own link.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from enum import StrEnum

from affectlab.annotate import signin
from affectlab.annotate.signin import OwnerGrant

__all__ = [
    "COOKIE",
    "INVITE_PARAM",
    "LINK_PARAM",
    "OWNER_GRANT",
    "OWNER_PAGES",
    "Role",
    "owner_grant",
    "pages_for",
    "session_role",
    "sign_in",
    "sign_out",
]

OWNER_GRANT = "affectlab_owner_grant"  # session-state key of the OwnerGrant
COOKIE = "affectlab_owner"             # session cookie: the grant's session token
INVITE_PARAM = "campaign"              # a rater's invite link: ?campaign=<token>
LINK_PARAM = "token"                   # the one-time sign-in link: ?token=<token>
OWNER_PAGES = ("home", "data", "train", "runs", "study", "explore", "live", "annotate",
               "account")


class Role(StrEnum):
    OWNER = "owner"
    RATER = "rater"
    VISITOR = "visitor"


def owner_grant(state: MutableMapping, cookies: Mapping[str, str] | None = None,
                client: str | None = None) -> OwnerGrant | None:
    """The session's live grant: the one in ``state``, else one the browser's session cookie
    brings back (then kept in ``state``); a grant that ended (signed out in another tab,
    expired, revoked by a password change) is dropped from ``state``."""
    grant = state.get(OWNER_GRANT)
    if isinstance(grant, OwnerGrant) and grant.valid():
        return grant
    if grant is not None:
        del state[OWNER_GRANT]
    resumed = signin.resume((cookies or {}).get(COOKIE), client=client)
    if resumed is not None:
        state[OWNER_GRANT] = resumed
    return resumed


def session_role(query: Mapping[str, str], state: MutableMapping,
                 cookies: Mapping[str, str] | None = None, client: str | None = None) -> Role:
    """The role of a session with these query parameters, state and cookies, from the
    browser ``client`` (its key: a cookie signed in from one address comes back only there)."""
    if owner_grant(state, cookies, client) is not None:
        return Role.OWNER
    if query.get(INVITE_PARAM):
        return Role.RATER
    return Role.VISITOR


def pages_for(role: Role) -> tuple[str, ...]:
    """The pages (``app/views/<name>.py``) the navigation registers for ``role``."""
    if role is Role.OWNER:
        return OWNER_PAGES
    return ("annotate",) if role is Role.RATER else ("signin",)


def sign_in(state: MutableMapping, grant: OwnerGrant) -> None:
    """Keep a fresh grant in the session."""
    state[OWNER_GRANT] = signin.require_grant(grant)


def sign_out(state: MutableMapping) -> None:
    """End the owner's browser session and clear everything this session held."""
    signin.sign_out(state.get(OWNER_GRANT))
    state.clear()
