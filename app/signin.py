"""The owner's sign-in in the app: the sign-in form, the guard every workbench page starts with,
the check every owner action repeats, the one-time link in the address, the browser's session
cookie and sign-out. The decisions are affectlab.auth's and affectlab.annotate.signin's; this
module only draws them."""

from __future__ import annotations

import functools
import json

import streamlit as st

from affectlab import auth
from affectlab.annotate import AccessDenied, Store, default_db_url
from affectlab.annotate.service import OwnerSession, owner_session
from affectlab.annotate.signin import OwnerGrant, sign_in_with_link, sign_in_with_password
from affectlab.app.client import client_key

MSG = "signin_msg"              # an error to show on the sign-in form once
COOKIE_SENT = "signin_cookie"   # the session token whose cookie this session has set
CLEAR_COOKIE = "signin_clear"   # set by sign-out: the next run clears the cookie
DENIED = "Sign in as the owner to do this."
SIGNIN_HELP = (
    "This workbench is for its owner. Open the **one-time sign-in link** that `affectlab app` "
    "(or `make app`) printed in its terminal when the server started, or sign in with the "
    "**owner password** (`$AFFECTLAB_ADMIN_PASSWORD`, `admin_password` in "
    "`.streamlit/secrets.toml`, or the one set on the Account page). Raters: open the invite "
    "link you were given.")


@st.cache_resource
def _cached_store(url: str) -> Store:
    return Store(url)


def store() -> Store:
    """One Store (engine and connection pool) per database URL for the whole server."""
    return _cached_store(default_db_url())


def _cookies() -> dict[str, str]:
    try:
        return dict(st.context.cookies)
    except (AttributeError, RuntimeError):  # no browser behind this session (AppTest)
        return {}


def grant() -> OwnerGrant | None:
    """This session's live owner grant, or None (a session cookie comes back only to the
    address it signed in from: :func:`affectlab.annotate.signin.resume`)."""
    return auth.owner_grant(st.session_state, _cookies(), client_key())


def role() -> auth.Role:
    return auth.session_role(st.query_params, st.session_state, _cookies(), client_key())


def redeem_link_in_address() -> None:
    """``?token=`` of the one-time link: sign in with it and take it out of the address (so it
    stays in no history or bookmark); a bad or used one leaves a message for the form."""
    token = st.query_params.get(auth.LINK_PARAM)
    if token is None:
        return
    del st.query_params[auth.LINK_PARAM]
    if grant() is not None:
        return
    try:
        auth.sign_in(st.session_state, sign_in_with_link(token, client=client_key()))
    except AccessDenied as exc:
        st.session_state[MSG] = f"{str(exc).capitalize()}."


def _password_sign_in() -> None:
    password = st.session_state.get("signin_password", "")
    st.session_state["signin_password"] = ""  # the password does not stay in the session
    try:
        auth.sign_in(st.session_state, sign_in_with_password(store(), password,
                                                             client=client_key()))
    except AccessDenied as exc:
        st.session_state[MSG] = f"{str(exc).capitalize()}."


def sign_in_form(title: str = "Sign in") -> None:
    """The owner's sign-in: the way to the link, and the password form."""
    st.title(title)
    msg = st.session_state.pop(MSG, None)
    if msg:
        st.error(msg)
    st.info(SIGNIN_HELP)
    with st.form("signin_form"):
        st.text_input("Owner password", type="password", key="signin_password",
                      max_chars=1024)
        st.form_submit_button("Sign in", type="primary", on_click=_password_sign_in)


def require_owner() -> OwnerGrant:
    """At the top of every workbench page: the owner's grant, or the sign-in form and a stop
    (a page reached without the navigation shows nothing else)."""
    held = grant()
    if held is None:
        sign_in_form()
        st.stop()
    return held


def owner_annotate_session() -> OwnerSession:
    """The campaign owner's session (the annotate service) for a signed-in owner."""
    return owner_session(store(), require_owner())


def owner_only(action):
    """Decorate an owner action (a callback or a button's handler): it runs only while the
    session holds a live grant, checked again at the moment it runs; otherwise it does nothing
    but leave :data:`DENIED` for the page (:func:`denied_message`)."""
    @functools.wraps(action)
    def guarded(*args, **kwargs):
        if grant() is None:
            st.session_state[MSG] = DENIED
            return None
        return action(*args, **kwargs)

    return guarded


def _cookie_script(value: str, max_age: int | None) -> str:
    age = "" if max_age is None else f"; max-age={max_age}"
    return ("<script>(() => { const secure = location.protocol === 'https:' ? '; Secure' : ''; "
            f"document.cookie = {json.dumps(f'{auth.COOKIE}={value}; path=/; SameSite=Strict{age}')}"
            " + secure; })();</script>")


def keep_browser_signed_in(held: OwnerGrant) -> None:
    """Once per session: the session cookie that brings this browser back after a reload."""
    if st.session_state.get(COOKIE_SENT) != held.session_token:
        st.html(_cookie_script(held.session_token, None), unsafe_allow_javascript=True)
        st.session_state[COOKIE_SENT] = held.session_token


def clear_cookie_after_sign_out() -> None:
    if st.session_state.pop(CLEAR_COOKIE, False):
        st.html(_cookie_script("", 0), unsafe_allow_javascript=True)


def sign_out() -> None:
    """End the owner's session (every tab of this browser), then clear its cookie."""
    auth.sign_out(st.session_state)
    st.session_state[CLEAR_COOKIE] = True


def sign_out_button(key: str = "signin_sign_out") -> None:
    st.button("Sign out", key=key, on_click=sign_out, help="End the owner session in this browser")
