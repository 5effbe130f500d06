"""The campaign owner's sign-in for pages other than Annotate (Explore sends a selection to the
crowd). The OwnerSession lives under the Annotate page's session key, so signing in on either
page serves both for the rest of the browser session."""

from __future__ import annotations

import streamlit as st

from affectlab.annotate import (
    AccessDenied,
    OwnerSession,
    Store,
    default_db_url,
    ensure_admin_password,
    open_owner,
)

OWNER = "annotate_owner"  # the Annotate page's key for the OwnerSession


@st.cache_resource
def _store(url: str) -> Store:
    store = Store(url)
    ensure_admin_password(store)  # prints a generated password on the console, once
    return store


def current_owner() -> OwnerSession | None:
    """The signed-in owner of this browser session, if any."""
    owner = st.session_state.get(OWNER)
    return owner if isinstance(owner, OwnerSession) else None


def _sign_in(password_key: str, message_key: str) -> None:
    try:
        st.session_state[OWNER] = open_owner(_store(default_db_url()),
                                             st.session_state.get(password_key, ""))
    except (AccessDenied, TypeError):
        st.session_state[message_key] = "Wrong admin password."


def sign_in_form(key: str) -> None:
    """A password form that signs the campaign owner in (the admin password, as on the
    Annotate page)."""
    msg = st.session_state.pop(f"{key}_msg", None)
    if msg:
        st.error(msg)
    with st.form(f"{key}_form"):
        st.text_input("Admin password", type="password", key=f"{key}_pw")
        st.form_submit_button("Sign in", on_click=_sign_in, args=(f"{key}_pw", f"{key}_msg"))
