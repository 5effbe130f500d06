"""The Streamlit app (pages: widgets and plots over affectlab); started by ``affectlab app``."""
