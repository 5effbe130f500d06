"""affectlab: the Streamlit entry point. Pages hold widgets and plots only; core computes."""

import streamlit as st

st.set_page_config(page_title="affectlab", page_icon="🎭", layout="wide")

home = st.Page("pages/home.py", title="Home", icon="🏠", default=True)
data = st.Page("pages/data.py", title="Data", icon="🗂️")
train = st.Page("pages/train.py", title="Train", icon="🏋️")
runs = st.Page("pages/runs.py", title="Runs", icon="📈")
explore = st.Page("pages/explore.py", title="Explore", icon="🗺️")
live = st.Page("pages/live.py", title="Live", icon="🎥")
nav = st.navigation([home, data, train, runs, explore, live])
nav.run()
