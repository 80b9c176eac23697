"""seglab: an interactive visual debugging lab for semantic segmentation.

Run with ``streamlit run app.py``. This file only declares the pages and draws the shared sidebar;
each page lives in ``pages/`` and every computation in the ``seglab`` library.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: idle OpenMP threads must not spin

import streamlit as st

import pages.warmup  # noqa: F401  (first: every heavy import, once, before any page runs; see pages/warmup.py)
from pages import navigation, ui

st.set_page_config(page_title="seglab", page_icon=":material/grid_on:", layout="wide")
page = navigation.app_navigation()
ui.sidebar()
page.run()
