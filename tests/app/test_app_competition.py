"""AppTest checks of the Competition pages: the teacher's admin page, a team's page, the standings, and the
hidden split refused on the analysis pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pages import ui
from seglab.competition.competitions import get_competition
from seglab.competition.store import CompetitionStore
from seglab.competition.submissions import all_submissions
from seglab.competition.teams import list_teams
from tests.helpers.competition import DEMO_CHECKPOINT, SMALL_SPEC, constant_masks, make_competition, mask_zip
from tests.helpers.paths import ROOT

PASSWORD = "correct horse battery staple"


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SEGLAB_COMPETITION_DIR", str(tmp_path / "competition"))
    monkeypatch.setenv("SEGLAB_COMPETITION_WORKER", "off")  # no background process from a unit test
    monkeypatch.setenv("SEGLAB_ADMIN_PASSWORD", PASSWORD)
    return tmp_path / "competition"


def open_page(page: str, state: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state[ui.SPEC_KEY] = SMALL_SPEC.with_split("train").to_dict()
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label.startswith(label))


def texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


# -- admin ------------------------------------------------------------------------------------------------
def test_admin_page_needs_a_configured_password(folders: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEGLAB_ADMIN_PASSWORD")
    at = open_page("pages/competition_admin.py")
    assert "No admin password is set" in texts(at.error) and not at.text_input
    (folders / "seglab-competition.toml").write_text(f'admin_password = "{PASSWORD}"\n')
    at.run()
    assert not at.error and at.text_input[0].label == "Admin password"


def test_wrong_password_is_refused_and_never_in_the_url(folders: Path) -> None:
    at = open_page("pages/competition_admin.py")
    at.text_input[0].input("guess")
    at.button[0].click().run()
    assert "Wrong password" in texts(at.error)
    assert not any(b.label.startswith("Create competition") for b in at.button)
    at.text_input[0].input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception and "Create the competition" in texts(at.subheader)
    assert PASSWORD not in str(dict(at.query_params)) and "password" not in str(dict(at.query_params)).lower()


def test_teacher_creates_a_competition_with_teams_and_sees_the_tokens_once(folders: Path) -> None:
    at = open_page("pages/competition_admin.py", {"competition_admin": True})
    name = next(t for t in at.text_input if t.label == "Name")
    name.input("cup")
    next(t for t in at.text_area if t.label.startswith("Teams")).input("Alpha\nBeta\n")
    next(s for s in at.selectbox if s.label.startswith("Hidden split")).select("test")
    button(at, "Create competition").click().run()
    assert not at.exception, at.exception
    store = CompetitionStore(folders)
    competition = get_competition(store, "cup")
    assert competition.hidden_split == "test" and competition.spec.shapes.test_size == 12
    assert [team.name for team in list_teams(store, competition)] == ["Alpha", "Beta"]
    sheet = at.code[0].value
    assert "Alpha" in sheet and "Beta" in sheet and sheet.count("T") >= 2
    assert "shown only once" in texts(at.success)
    button(at, "I have saved the tokens").click().run()
    assert not at.code  # gone for good
    assert "cup" in texts(at.markdown)


def test_teacher_freezes_reveals_and_disqualifies(folders: Path) -> None:
    store, competition, issued = make_competition(folders, teams=("Alpha",))
    from seglab.competition.submissions import submit

    submit(store, competition, issued[0].team, mask_zip(constant_masks()), "preds.zip")
    at = open_page("pages/competition_admin.py", {"competition_admin": True})
    assert "preds.zip" in str(at.dataframe[0].value["file"].tolist())
    button(at, "Freeze the public leaderboard").click().run()
    assert get_competition(store).is_frozen
    next(t for t in at.text_input if t.label.startswith("Reason")).input("copied")
    button(at, "Disqualify").click().run()
    assert all_submissions(store, competition)[0].disqualified_reason == "copied"
    reveal = button(at, "Reveal the private ranking")
    assert reveal.disabled  # needs the confirmation first
    next(c for c in at.checkbox if c.label.startswith("Submissions close")).check().run()
    button(at, "Reveal the private ranking").click().run()
    assert get_competition(store).is_revealed
    actions = at.dataframe[-1].value["action"].tolist()
    assert actions[:4] == ["reveal", "disqualify", "freeze", "add teams"]


# -- a team -------------------------------------------------------------------------------------------------
def test_a_team_joins_submits_and_sees_its_public_score_only(folders: Path) -> None:
    store, competition, issued = make_competition(folders, teams=("Alpha", "Beta"), quota_count=3)
    at = open_page("pages/competition_student.py")
    at.text_input[0].input("T1-wrongwrongwrong")
    button(at, "Join").click().run()
    assert "does not open a team" in texts(at.error)
    at.text_input[0].input(issued[0].token)
    button(at, "Join").click().run()
    assert not at.exception and "Team Alpha" in texts(at.subheader)
    assert issued[0].token not in str(dict(at.query_params))
    assert at.metric[0].value == "3 of 3"

    uploader = at.get("file_uploader")[0]
    uploader.set_value(("preds.zip", mask_zip(constant_masks(), lambda f: f.pop("test-000001.png")), "application/zip"))
    button(at, "Submit").click().run()
    assert "Not accepted" in texts(at.error) and "lacks masks" in texts(at.error)
    assert at.metric[0].value == "3 of 3"  # an invalid upload costs nothing

    at.selectbox[-1].select("checkpoint")
    at.get("file_uploader")[0].set_value(("best.pt", DEMO_CHECKPOINT.read_bytes(), "application/octet-stream"))
    button(at, "Submit").click().run()
    assert "Submission #1 accepted and queued" in texts(at.success)
    assert at.metric[0].value == "2 of 3"
    table = at.dataframe[0].value
    assert table["status"].tolist() == ["⏳ queued"] and "private" not in " ".join(table.columns)


def test_a_team_chooses_its_final_submissions(folders: Path) -> None:
    from seglab.competition.worker import ScoringWorker

    store, competition, issued = make_competition(folders, teams=("Alpha",), max_finals=1)
    from seglab.competition.submissions import submit

    for _ in range(2):
        submit(store, competition, issued[0].team, mask_zip(constant_masks()), "preds.zip")
    ScoringWorker(store, log=lambda message: None).run(once=True)
    at = open_page("pages/competition_student.py", {"competition_token": issued[0].token})
    finals = next(m for m in at.multiselect if m.label.startswith("Final submissions"))
    finals.select(2)
    button(at, "Save final choice").click().run()
    assert "Final choice saved" in texts(at.success)
    assert [s.is_final for s in all_submissions(store, competition)] == [False, True]


def test_the_student_page_without_a_competition(folders: Path) -> None:
    at = open_page("pages/competition_student.py")
    assert "No competition on this server yet" in texts(at.info)
    assert not folders.exists()  # visiting creates nothing


def test_standings_show_the_public_board_then_the_final_one(folders: Path) -> None:
    from seglab.competition import admin
    from seglab.competition.submissions import submit
    from seglab.competition.worker import ScoringWorker

    store, competition, issued = make_competition(folders, teams=("Alpha", "<b>Beta</b>"))
    submit(store, competition, issued[0].team, mask_zip(constant_masks()), "preds.zip")
    ScoringWorker(store, log=lambda message: None).run(once=True)
    at = open_page("pages/competition_board.py")
    page = texts(at.markdown) + texts(at.get("html"))
    assert "Public leaderboard" in page and "Alpha" in page
    assert "Not ranked yet: <b>Beta</b>" in texts(at.caption)  # shown as text, not markup
    admin.reveal(store, competition)
    at.run()
    assert "Final ranking (private images)" in texts(at.markdown)


# -- the hidden split on the analysis pages -----------------------------------------------------------------
@pytest.mark.parametrize("page", ["pages/dataset.py", "pages/failures.py", "pages/compare.py"])
def test_the_hidden_split_is_refused_unless_the_teacher_is_signed_in(folders: Path, page: str) -> None:
    import shutil

    shutil.copytree(DEMO_CHECKPOINT.parent, folders.parent / "runs" / "shapes-ce")  # Inspect and Compare need a run
    make_competition(folders, teams=())
    at = open_page(page, {ui.SPLIT_KEY: "test"})
    assert "hidden test set of the competition **cup**" in texts(at.warning)
    assert not at.get("imgs") and not at.dataframe
    at = open_page(page, {ui.SPLIT_KEY: "test", "competition_admin": True})
    assert "hidden test set" not in texts(at.warning)
    at = open_page(page, {ui.SPLIT_KEY: "train"})
    assert "hidden test set" not in texts(at.warning)


@pytest.mark.parametrize("page", ["pages/train.py", "pages/leaderboard.py", "pages/metrics_explorer.py"])
def test_a_hidden_validation_split_is_refused_where_runs_validate_and_score(folders: Path, page: str) -> None:
    import shutil

    shutil.copytree(DEMO_CHECKPOINT.parent, folders.parent / "runs" / "shapes-ce")
    make_competition(folders, teams=(), spec=SMALL_SPEC.with_split("val"))
    state = {ui.SPLIT_KEY: "val"}
    at = open_page(page, state)
    if page.endswith("leaderboard.py"):
        next(s for s in at.selectbox if s.label == "Held-out split").select("val").run()
    assert "hidden test set of the competition **cup**" in texts(at.warning)
    assert not at.dataframe and not any(b.label.startswith(("Launch", "Score")) for b in at.button)
