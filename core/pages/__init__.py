"""What the app's pages show, computed without Streamlit: one module per page and piece
(``<page>_<piece>.py``), so ``app/views`` only lays out widgets and every rule a page applies is
tested here."""
