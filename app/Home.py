"""affectlab: the Streamlit entry point. Pages hold widgets and plots only; core computes."""

import streamlit as st

st.set_page_config(page_title="affectlab", page_icon="🎭", layout="wide")

home = st.Page("views/home.py", title="Home", icon="🏠", default=True)
data = st.Page("views/data.py", title="Data", icon="🗂️")
train = st.Page("views/train.py", title="Train", icon="🏋️")
runs = st.Page("views/runs.py", title="Runs", icon="📈")
explore = st.Page("views/explore.py", title="Explore", icon="🗺️")
live = st.Page("views/live.py", title="Live", icon="🎥")
annotate = st.Page("views/annotate.py", title="Annotate", icon="✍️", url_path="annotate")
pages = [home, data, train, runs, explore, live, annotate]
# a rater's invite link (?campaign=…) shows the rating page without the workbench menu
nav = st.navigation(pages, position="hidden" if "campaign" in st.query_params else "sidebar")
nav.run()
