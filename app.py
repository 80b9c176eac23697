"""seglab: an interactive visual debugging lab for semantic segmentation.

Run with ``streamlit run app.py``. This file only declares the pages and draws the shared sidebar;
each page lives in ``pages/`` and every computation in the ``seglab`` library.
"""

import streamlit as st

from pages import ui

st.set_page_config(page_title="seglab", page_icon=":material/grid_on:", layout="wide")

navigation = st.navigation(
    {
        "Data": [
            st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
            st.Page("pages/dataset.py", title="Dataset", icon=":material/photo_library:"),
        ],
        "Models": [
            st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
            st.Page("pages/failures.py", title="Inspect", icon=":material/search:"),
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
)
ui.sidebar()
navigation.run()
