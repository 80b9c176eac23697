"""End to end: a class opens the URL at once (issue 10).

A fresh server (nothing imported, every cache empty) is opened by 8 Chromium sessions at the same
moment on Home; then all 8 switch to every other page together (``tests/helpers/classroom.py``). No session
may see an exception or an error box on any page, every page must finish rendering, and the server
log must hold no traceback. This failed before the pages became a regular package warmed up at
start-up: 7 of 8 sessions met ``ImportError: cannot import name 'ui' from 'pages'`` or a
half-imported pandas. Figures (times against one session alone) come from
``benchmarks/bench_classroom.py``; nothing here asserts a time.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator

import pytest

from tests.helpers.browser import (
    AppServer,
    report,
    seed_runs,
    start_app,
    stop_server,
    stop_training_runs,
)

pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")

from tests.helpers.classroom import CLASSROOM_PAGES, class_visits, page_figures  # noqa: E402

# Longer than the suite's default time limit: 8 sessions visit every page, each within PAGE_TIMEOUT_S.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1200)]
SESSIONS = 8
PAGE_TIMEOUT_S = 240.0  # eight sessions and their browsers share two cores on CI
# Small Shapes splits (the link a teacher would share): what is tested is sessions racing, not the data's size.
SMALL_SHAPES = {"image_size": 64, "train_size": 32, "val_size": 16, "test_size": 16}
QUERY = "?" + urllib.parse.urlencode({"data": "shapes", "shapes": json.dumps(SMALL_SHAPES, separators=(",", ":"))})


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory, pytestconfig) -> Iterator[AppServer]:
    folder = tmp_path_factory.mktemp("e2e-classroom")
    runs_dir = folder / "runs"
    report(pytestconfig, f"classroom: runs folder seeded with {', '.join(seed_runs(runs_dir))}")
    env = {
        "SEGLAB_RUNS_DIR": str(runs_dir),
        "SEGLAB_CACHE_DIR": str(folder / "cache"),
        "SEGLAB_COMPETITION_DIR": str(folder / "competition"),
    }
    server = start_app(runs_dir, folder / "streamlit.log", env)
    try:
        yield server
    finally:
        try:
            stop_training_runs(runs_dir)
        finally:
            stop_server(server.process)


def test_eight_sessions_open_a_fresh_server_at_once_and_visit_every_page_together(
    fresh_server: AppServer, pytestconfig
) -> None:
    visits = class_visits(
        fresh_server.url, SESSIONS, CLASSROOM_PAGES, timeout_s=PAGE_TIMEOUT_S, query=QUERY, stop_on_problem=True
    )
    figures = page_figures(visits)
    for figure in figures:
        worst = f"{figure.worst_s:.1f} s" if figure.worst_s is not None else "-"
        report(pytestconfig, f"classroom: {figure.page}: {figure.finished}/{figure.sessions} finished, worst {worst}")
    problems = [f"{figure.page}: {problem}" for figure in figures for problem in figure.problems]
    assert not problems, "\n".join(problems) + f"\n\nserver log:\n{fresh_server.log_tail()}"
    assert [visit.page for visit in visits[::SESSIONS]] == [page.slug for page in CLASSROOM_PAGES]
    assert all(figure.finished == SESSIONS for figure in figures)
    log = fresh_server.log_path.read_text(errors="replace")
    assert "Traceback" not in log, f"the server logged an exception:\n{fresh_server.log_tail(80)}"
