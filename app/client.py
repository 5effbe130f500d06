"""Who is asking: a key for the browser behind this script run, for the server's rate limits
(the owner sign-in's throttle, affectlab.annotate.signin; the rating page's join and submit
limits, affectlab.annotate.limits).

The key is the connection's address (``st.context.ip_address``; an IPv6 address counts by its
/64 network, what one subscriber usually holds), or behind a reverse proxy on this machine the
address it forwards (``X-Forwarded-For``). Without either (a browser on this machine itself)
the key is one drawn for this browser session, which a script
that opens new sessions can renew; the limits that hold across clients (the sign-in's
server-wide ceiling) cover that case."""

from __future__ import annotations

import ipaddress
import secrets

import streamlit as st

SESSION_KEY = "client_key"  # the drawn key of a session without an address


def _address() -> str | None:
    """The browser's address: the connection's, or, for a connection from this machine (a
    reverse proxy in front of the app: Streamlit then gives None), the last hop the proxy
    appended to ``X-Forwarded-For``. A client elsewhere cannot forge it: its own connection
    has an address, and the header is read only without one."""
    try:
        address = st.context.ip_address
        if address:
            return address
        return forwarded_for(st.context.headers.get("X-Forwarded-For"))
    except (AttributeError, RuntimeError):  # no browser behind this session (AppTest)
        return None


def forwarded_for(header: str | None) -> str | None:
    """The last address of an ``X-Forwarded-For`` header (the one the nearest proxy added;
    earlier ones are the client's own claims), or None."""
    if not header:
        return None
    last = header.split(",")[-1].strip()
    return last or None


def address_key(address: str | None) -> str | None:
    """``ip:<address>`` (IPv6: its /64 network), or None for no or a malformed address."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.version == 4:
        return f"ip:{ip}"
    if ip.ipv4_mapped is not None:
        return f"ip:{ip.ipv4_mapped}"
    return f"ip:{ipaddress.ip_network(f'{ip}/64', strict=False)}"


def client_key() -> str:
    """This browser's key for rate limits (see the module docstring)."""
    key = address_key(_address())
    if key is None:
        key = st.session_state.get(SESSION_KEY)
        if key is None:
            key = st.session_state[SESSION_KEY] = f"session:{secrets.token_hex(12)}"
    return key
