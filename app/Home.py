"""affectlab: the Streamlit entry point. Pages hold widgets and plots only; core computes."""

import streamlit as st

st.set_page_config(page_title="affectlab", page_icon="🎭", layout="wide")

home = st.Page("pages/home.py", title="Home", icon="🏠", default=True)
data = st.Page("pages/data.py", title="Data", icon="🗂️")
train = st.Page("pages/train.py", title="Train", icon="🏋️")
runs = st.Page("pages/runs.py", title="Runs", icon="📈")
explore = st.Page("pages/explore.py", title="Explore", icon="🗺️")
live = st.Page("pages/live.py", title="Live", icon="🎥")
annotate = st.Page("pages/annotate.py", title="Annotate", icon="✍️", url_path="annotate")
pages = [home, data, train, runs, explore, live, annotate]
# a rater's invite link (?campaign=…) shows the rating page without the workbench menu
nav = st.navigation(pages, position="hidden" if "campaign" in st.query_params else "sidebar")
nav.run()
