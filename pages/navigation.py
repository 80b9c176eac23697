"""The app's page list, and the way a deep link on a fresh server reaches it.

Streamlit starts every server in its legacy "pages/ folder" mode and leaves it the first time any
script calls ``st.navigation``. A deep link (``/compare``) opened before that runs
``pages/compare.py`` alone, without app.py's sidebar. :func:`start_page` notices (app.py marks each
run it starts) and calls the public ``st.navigation`` itself, then reruns: the rerun goes through
app.py. No Streamlit internals are touched.
"""

from __future__ import annotations

import streamlit as st

ENTRY_KEY = "seglab_entered_through_app"


def app_pages() -> dict[str, list]:
    """Every page of the app by section (paths relative to app.py's folder)."""
    return {
        "Data": [
            st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
            st.Page("pages/dataset.py", title="Dataset", icon=":material/photo_library:"),
        ],
        "Models": [
            st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
            st.Page("pages/failures.py", title="Inspect", icon=":material/search:"),
            st.Page("pages/diagnostics.py", title="Diagnostics", icon=":material/troubleshoot:"),
            st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
            st.Page("pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:"),
        ],
        "Insights": [
            st.Page("pages/metrics_explorer.py", title="Metric definitions", icon=":material/functions:"),
            st.Page("pages/loss_inspector.py", title="Loss inspector", icon=":material/insights:"),
            st.Page("pages/label_quality.py", title="Label quality", icon=":material/rule:"),
        ],
        "Competition": [
            st.Page("pages/competition_student.py", title="Submit", icon=":material/upload_file:"),
            st.Page("pages/competition_board.py", title="Standings", icon=":material/trophy:"),
            st.Page("pages/competition_admin.py", title="Competition admin", icon=":material/admin_panel_settings:"),
        ],
    }


def app_navigation():  # -> st.navigation's StreamlitPage
    """app.py's navigation; marks this session as entered through app.py."""
    st.session_state[ENTRY_KEY] = True
    return st.navigation(app_pages())


def start_page() -> None:
    """First line of every page: a page run outside app.py (a deep link on a fresh server) reruns through it."""
    if not st.session_state.get(ENTRY_KEY):
        st.navigation(app_pages())  # the public call that ends Streamlit's legacy pages-folder mode
        st.rerun()
