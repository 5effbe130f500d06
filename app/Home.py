"""affectlab: the Streamlit entry point. Pages hold widgets and plots only; core computes.

The navigation registers only the pages of this session's role (affectlab.auth): the owner
gets the workbench, a rater's invite link (``?campaign=…``) only the rating page, anyone else
only the sign-in page; any other address falls back to the role's first page.
"""

import streamlit as st

from affectlab.app import signin, uploads
from affectlab.auth import Role, pages_for

uploads.install()  # files reach the server's memory from owner sessions only

st.set_page_config(page_title="affectlab", page_icon="🎭", layout="wide")

PAGES = {
    "home": lambda: st.Page("views/home.py", title="Home", icon="🏠", default=True),
    "data": lambda: st.Page("views/data.py", title="Data", icon="🗂️"),
    "train": lambda: st.Page("views/train.py", title="Train", icon="🏋️"),
    "runs": lambda: st.Page("views/runs.py", title="Runs", icon="📈"),
    "study": lambda: st.Page("views/study.py", title="Study", icon="🧪"),
    "explore": lambda: st.Page("views/explore.py", title="Explore", icon="🗺️"),
    "live": lambda: st.Page("views/live.py", title="Live", icon="🎥"),
    "annotate": lambda: st.Page("views/annotate.py", title="Annotate", icon="✍️",
                                url_path="annotate"),
    "account": lambda: st.Page("views/account.py", title="Account", icon="🔑"),
    "signin": lambda: st.Page("views/signin.py", title="Sign in", icon="🔑", default=True),
}

signin.redeem_link_in_address()  # ?token= of the start-up link: signed in, token dropped
role = signin.role()
uploads.admit_session(uploads.current_session_id(),
                      signin.grant() if role is Role.OWNER else None)
pages = [PAGES[name]() for name in pages_for(role)]
if role is Role.RATER:
    # the invite link is /annotate?campaign=…; the root (and any unknown address) shows the
    # same rating page
    pages.insert(0, st.Page("views/annotate.py", title="Annotate", icon="✍️", url_path="rate",
                            default=True))
signin.clear_cookie_after_sign_out()
if role is Role.OWNER:
    with st.sidebar:
        signin.keep_browser_signed_in(signin.grant())
        signin.sign_out_button()
nav = st.navigation(pages, position="sidebar" if role is Role.OWNER else "hidden")
nav.run()
