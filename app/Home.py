"""affectlab: the Streamlit entry point. Pages hold widgets and plots only; core computes."""

import streamlit as st

st.set_page_config(page_title="affectlab", page_icon="🎭", layout="wide")

home = st.Page("pages/home.py", title="Home", icon="🏠", default=True)
data = st.Page("pages/data.py", title="Data", icon="🗂️")
nav = st.navigation([home, data])
nav.run()
