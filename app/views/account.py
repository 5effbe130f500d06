"""Account: how the owner signed in, the owner password (set or change it), sign-out."""

import streamlit as st

from affectlab.annotate import AccessDenied
from affectlab.annotate.access import ENV_ADMIN_PASSWORD, MIN_PASSWORD_LEN, admin_password_source
from affectlab.annotate.signin import change_password
from affectlab.app.signin import owner_only, require_owner, sign_out_button, store

HOW = {"password": "with the owner password", "link": "with the one-time sign-in link"}


@owner_only
def _change(held) -> None:
    new, again = st.session_state.get("account_new", ""), st.session_state.get("account_again", "")
    current = st.session_state.get("account_current")
    for key in ("account_new", "account_again", "account_current"):
        st.session_state[key] = ""  # passwords never stay in the session
    if new != again:
        st.session_state["account_msg"] = ("error", "The two new passwords differ.")
        return
    try:
        change_password(store(), held, new, current=current)
    except (AccessDenied, ValueError) as exc:
        st.session_state["account_msg"] = ("error", f"Not changed: {exc}.")
    else:
        st.session_state["account_msg"] = ("success", "Password set. Other browsers signed in "
                                           "as the owner were signed out.")


held = require_owner()
st.title("Account")
st.caption(f"Signed in as the owner {HOW.get(held.method, '')} in this browser session.")
msg = st.session_state.pop("account_msg", None)
if msg:
    getattr(st, msg[0])(msg[1])

source = admin_password_source(store())
st.subheader("Owner password")
if source in ("environment", "secrets.toml"):
    where = f"`${ENV_ADMIN_PASSWORD}`" if source == "environment" else \
        "`admin_password` in `.streamlit/secrets.toml`"
    st.info(f"The owner password is set by {where}; change it there and restart the app.")
else:
    st.caption("No password is set yet: set one to sign in without the start-up link."
               if source is None else "Only its salted hash is stored.")
    with st.form("account_password"):
        if source == "store" and held.method != "link":
            st.text_input("Current password", type="password", key="account_current")
        st.text_input(f"New password (at least {MIN_PASSWORD_LEN} characters)", type="password",
                      key="account_new")
        st.text_input("New password again", type="password", key="account_again")
        st.form_submit_button("Set password", on_click=_change, args=(held,))

st.subheader("Sign out")
st.caption("Ends the owner session in this browser (every tab); the next visit asks again.")
sign_out_button("account_sign_out")
