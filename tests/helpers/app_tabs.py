"""AppTest helper: pages run only their open tab (``pages.widgets.LAZY_TABS``), so a test opens the tab it reads."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def open_tab(at: AppTest, key: str, label: str) -> AppTest:
    """Select tab ``label`` of the ``st.tabs`` keyed ``key``, as a click would, and rerun."""
    at.session_state[key] = label
    at.run()
    assert not at.exception, at.exception
    return at
