"""AppTest helpers: open a page the way a visitor does, point the app at a runs folder, read what a page shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pages import ui
from seglab.data.spec import DataSpec
from tests.helpers.paths import ROOT


def use_runs_dir(monkeypatch: pytest.MonkeyPatch, runs_dir: Path, cache_dir: Path | None = None) -> None:
    """Point the app at ``runs_dir`` and a cache folder (default: ``cache`` beside the runs folder)."""
    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(runs_dir))
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(cache_dir or runs_dir.parent / "cache"))


def open_page(page: str, spec: DataSpec | None = None, *, timeout: float = 120) -> AppTest:
    """The app on ``page`` (``pages/<name>.py``) with data ``spec`` chosen; fails on an exception.

    AppTest needs one run of the app before ``switch_page`` can find a ``st.navigation`` page.
    """
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    if spec is not None:
        at.session_state[ui.SPEC_KEY] = spec.to_dict()
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def open_tab(at: AppTest, key: str, label: str) -> AppTest:
    """Select tab ``label`` of the ``st.tabs`` keyed ``key``, as a click would, and rerun.

    Pages run only their open tab (``pages.widgets.LAZY_TABS``), so a test opens the tab it reads.
    """
    at.session_state[key] = label
    at.run()
    assert not at.exception, at.exception
    return at


def metrics_shown(at: AppTest) -> dict[str, str]:
    """Label -> value of every ``st.metric`` on the page."""
    return {metric.label: metric.value for metric in at.metric}


def page_text(at: AppTest) -> str:
    """The page's markdown, captions and info boxes, one per line."""
    return "\n".join(str(element.value) for element in [*at.markdown, *at.caption, *at.info])
