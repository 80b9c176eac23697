"""End to end in Chromium: a class competition on the real app with its real scoring worker.

The teacher signs in and creates a competition with two teams on a small Shapes split; team Red
submits the shipped demo checkpoint, team Blue a broken zip (refused at once, nothing queued); the
worker the app started scores Red; the teacher reveals; the standings page shows the final ranking,
which must equal the library's. Reuses the server and browser helpers of ``tests/helpers/browser.py``.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import (
    PAGE_TIMEOUT_MS,
    ROOT,
    VIEWPORT,
    App,
    AppServer,
    expect,
    report,
    start_app,
    stop_server,
)

pytestmark = pytest.mark.e2e
PASSWORD = "e2e-teacher-password"
SHAPES = {"test_size": 20, "image_size": 96}
SCORE_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def server(tmp_path_factory, pytestconfig) -> Iterator[AppServer]:
    folder = tmp_path_factory.mktemp("e2e-competition")
    env = {
        "SEGLAB_RUNS_DIR": str(folder / "runs"),
        "SEGLAB_CACHE_DIR": str(folder / "cache"),
        "SEGLAB_COMPETITION_DIR": str(folder / "competition"),
        "SEGLAB_ADMIN_PASSWORD": PASSWORD,
        "SEGLAB_COMPETITION_WORKER": "auto",
        "PYTHONPATH": str(ROOT),
    }
    (folder / "runs").mkdir()
    app_server = start_app(folder / "runs", folder / "streamlit.log", env)
    process = app_server.process
    report(pytestconfig, f"competition server log in {app_server.log_path}")
    try:
        yield app_server
    finally:
        stop_server(process)
        _wait_for_worker_to_stop(folder / "competition")


def _wait_for_worker_to_stop(competition_dir: Path) -> None:
    """The worker follows the server (--parent-pid): it must be gone shortly after it."""
    from seglab.competition.store import CompetitionStore
    from seglab.competition.worker import worker_running

    store = CompetitionStore.open_existing(competition_dir)
    deadline = time.monotonic() + 20
    while store is not None and worker_running(store):
        if time.monotonic() > deadline:
            pytest.fail("the scoring worker kept running after the server stopped")
        time.sleep(0.2)


def new_tab(browser, server: AppServer, artifacts: Path) -> App:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    return App(context.new_page(), server, artifacts)


def broken_zip(path: Path) -> Path:
    """Masks for only 3 of the 20 hidden images."""
    import numpy as np

    from tests.helpers.competition import mask_zip

    masks = {f"test-{index:06d}": np.zeros((96, 96), np.uint8) for index in range(3)}
    path.write_bytes(mask_zip(masks))
    return path


def join_and_submit(app: App, token: str, file: Path) -> None:
    app.page.goto(f"{app.server.url}/competition_student")
    app.settle("Competition")
    app.page.get_by_label("Team token", exact=True).fill(token)
    app.page.get_by_test_id("stFormSubmitButton").get_by_role("button", name="Join").click()
    app.settle("Competition")
    app.page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(file))
    expect(app.page.get_by_test_id("stFileChipName").filter(has_text=file.name)).to_be_visible()  # uploaded
    app.page.get_by_test_id("stFormSubmitButton").get_by_role("button", name="Submit").click()


def test_two_teams_submit_the_teacher_reveals_and_the_final_ranking_is_right(
    browser, server: AppServer, tmp_path: Path
) -> None:
    from seglab.competition.competitions import get_competition
    from seglab.competition.ranking import private_leaderboard
    from seglab.competition.store import CompetitionStore
    from seglab.competition.submissions import all_submissions
    from tests.helpers.competition import DEMO_CHECKPOINT

    # The teacher: sign in (the password travels in the form, never in the URL), create the competition.
    teacher = new_tab(browser, server, tmp_path)
    query = urllib.parse.urlencode({"data": "shapes", "shapes": json.dumps(SHAPES, separators=(",", ":"))})
    teacher.page.goto(f"{server.url}/competition_admin?{query}")
    teacher.settle("Competition admin")
    teacher.page.get_by_label("Admin password", exact=True).fill(PASSWORD)
    teacher.page.get_by_test_id("stFormSubmitButton").get_by_role("button", name="Sign in").click()
    teacher.expect_text("Create the competition")
    teacher.settle("Competition admin")
    assert PASSWORD not in teacher.page.url
    teacher.page.get_by_label("Name", exact=True).fill("e2e-cup")
    teacher.page.get_by_label("Teams, one per line", exact=True).fill("Red\nBlue")
    teacher.page.get_by_test_id("stFormSubmitButton").get_by_role("button", name="Create competition").click()
    teacher.expect_text(re.compile("shown only once"))
    teacher.settle("Competition admin")
    sheet = teacher.page.get_by_test_id("stCode").first.inner_text()
    tokens = dict(re.findall(r"^(Red|Blue)\s+(T\d+-\S+)$", sheet, re.MULTILINE))
    assert set(tokens) == {"Red", "Blue"}, sheet
    store = CompetitionStore(Path(server.log_path).parent / "competition")
    competition = get_competition(store, "e2e-cup")
    assert (competition.hidden_split, competition.spec.shapes.test_size, competition.spec.shapes.image_size) == (
        "test",
        20,
        96,
    )

    # Team Red submits the shipped demo checkpoint; team Blue a broken zip, refused at once.
    red = new_tab(browser, server, tmp_path)
    join_and_submit(red, tokens["Red"], DEMO_CHECKPOINT)
    red.expect_text(re.compile(r"Submission #1 accepted and queued"))
    blue = new_tab(browser, server, tmp_path)
    join_and_submit(blue, tokens["Blue"], broken_zip(tmp_path / "blue-preds.zip"))
    blue.expect_text(re.compile("Not accepted.*lacks masks for 17 of the 20 hidden images"))
    expect(blue.page.get_by_test_id("stMetric").first).to_contain_text("5 of 5")  # the refusal cost nothing

    # The worker the app started scores Red; Red's own list follows it (a run_every fragment).
    scored = red.page.get_by_test_id("stDataFrame").filter(has_text="scored")
    expect(scored, "Red's submission was not scored").to_be_visible(timeout=SCORE_TIMEOUT_MS)
    assert [(s.team_name, s.status) for s in all_submissions(store, competition)] == [("Red", "scored")]

    # Public standings, then the reveal, then the final ranking on the projector page.
    standings = new_tab(browser, server, tmp_path)
    standings.page.goto(f"{server.url}/competition_board")
    standings.settle("Standings")
    expect(standings.page.get_by_text("Public leaderboard", exact=False).first).to_be_visible()
    expect(standings.page.locator("table.seglab-board")).to_contain_text("Red")
    teacher.page.get_by_role("tab", name="Freeze · reveal · export · log").click()
    teacher.page.get_by_text("Submissions close and the private ranking is published").click()
    teacher.page.get_by_role("button", name="Reveal the private ranking").click()
    teacher.expect_text(re.compile(r"\(revealed\)"))
    expect(standings.page.get_by_text("Final ranking (private images)").first).to_be_visible(timeout=30_000)
    row = standings.page.locator("table.seglab-board tr").nth(1)
    final = private_leaderboard(store, get_competition(store, "e2e-cup"))
    assert [(r.rank, r.team) for r in final.rows] == [(1, "Red")] and final.unranked_teams == ["Blue"]
    expect(row).to_contain_text("Red")
    expect(row).to_contain_text(f"{final.rows[0].score:.4f}")
    expect(standings.page.get_by_text("Not ranked yet: Blue")).to_be_visible()
    standings.screenshot("competition_standings")
    for tab in (teacher, red, blue, standings):
        tab.page.context.close()
