"""AppTest tests for the Leaderboard page (pages/leaderboard.py): scoring, ranking, skips, CSV export."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers.apptest import open_page, use_runs_dir
from tests.helpers.trained_runs import TINY_SHAPES

SHAPES = TINY_SHAPES  # the data of the shared tiny runs


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory, tiny_runs) -> Path:
    """runs/a and runs/b (tiny Shapes checkpoints, other seeds and losses) and runs/broken/best.pt (garbage)."""
    runs = tmp_path_factory.mktemp("leaderboard") / "runs"
    for name, seed, loss in (("a", 0, "ce"), ("b", 1, "ce+dice")):
        tiny_runs.copy_to(runs / name, seed=seed, loss=loss)  # one epoch on SHAPES, trained once per session
    (runs / "broken").mkdir()
    (runs / "broken" / "config.json").write_text((runs / "a" / "config.json").read_text())  # a run, its best.pt damaged
    (runs / "broken" / "best.pt").write_bytes(b"\x00 truncated download")
    return runs


@pytest.fixture
def app(runs_dir, tmp_path, monkeypatch) -> AppTest:
    """The app on the Leaderboard page with an empty cache."""
    use_runs_dir(monkeypatch, runs_dir, tmp_path / "cache")
    return open_page("pages/leaderboard.py", SHAPES)


def widget(elements, label: str):
    return next(element for element in elements if element.label.startswith(label))


def test_scoring_ranks_both_checkpoints_and_lists_the_broken_one(app: AppTest) -> None:
    assert widget(app.selectbox, "Held-out split").value == "test"  # Shapes has a test split
    assert any("single scale" in info.value for info in app.info)  # the protocol is shown
    assert "3 of 3 scorable entries not scored" in app.warning[0].value
    widget(app.button, "Score 3").click().run()
    assert not app.exception, app.exception

    board, skipped = app.dataframe[0].value, app.dataframe[1].value
    assert sorted(board["run"]) == ["a", "b"]
    assert list(board.index) == [1, 2]
    assert board["miou"].is_monotonic_decreasing
    assert {"iou_background", "iou_circle", "miou_no_background", "pixel_acc"} <= set(board.columns)
    assert list(skipped["entry"]) == ["broken/best.pt"]
    assert "not a PyTorch checkpoint" in skipped["reason"][0]
    assert widget(app.get("download_button"), "Download CSV")
    assert not app.warning and not app.button  # everything is scored now


def test_scores_are_cached_and_another_split_needs_scoring(app: AppTest) -> None:
    widget(app.button, "Score 3").click().run()
    app.run()  # a plain rerun reads every score from the cache
    assert not app.button and len(app.dataframe[0].value) == 2
    widget(app.selectbox, "Held-out split").set_value("val").run()
    assert not app.exception
    assert widget(app.button, "Score 3")
    widget(app.toggle, "Also score").set_value(True).run()
    assert widget(app.button, "Score 5")  # last.pt of a and b join
