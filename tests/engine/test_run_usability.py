"""One definition of a usable run (RunDirectory.problem), the same on every surface: `seglab runs`,
the app's checkpoint picker and the Leaderboard."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from seglab.analysis.leaderboard import build_leaderboard, find_checkpoints
from seglab.cli.commands import main
from seglab.data.shapes import ShapesConfig, ShapesDataset
from seglab.engine.run_dir import RunDirectory
from seglab.engine.runs import list_runs
from tests.helpers.paths import ROOT

SHAPES = ShapesConfig(train_size=8, val_size=4, test_size=4, image_size=32)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_runs) -> Path:
    """good/ (a finished run), truncated/ (its best.pt cut short), headless/ (checkpoints, no config.json)."""
    root = tmp_path_factory.mktemp("usable") / "runs"
    tiny_runs.copy_to(root / "good")  # a tiny Shapes run trained once per session
    shutil.copytree(root / "good", root / "truncated", ignore=shutil.ignore_patterns(".lock"))
    best = root / "truncated" / "best.pt"
    best.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    shutil.copytree(root / "good", root / "headless", ignore=shutil.ignore_patterns(".lock"))
    (root / "headless" / "config.json").unlink()
    (root / "notes").mkdir()  # not a run at all: nowhere
    return root


def test_the_definition(runs):
    assert RunDirectory(runs / "good").problem() is None
    assert "best.pt is truncated or damaged" in RunDirectory(runs / "truncated").problem()
    assert "no config.json" in RunDirectory(runs / "headless").problem()
    (runs / "empty-best").mkdir(exist_ok=True)
    shutil.copy(runs / "good" / "config.json", runs / "empty-best" / "config.json")
    (runs / "empty-best" / "best.pt").write_bytes(b"")
    try:
        assert "best.pt is empty" in RunDirectory(runs / "empty-best").problem()
    finally:
        shutil.rmtree(runs / "empty-best")


def test_list_runs_shows_unusable_runs_with_their_reason_and_offers_no_checkpoint(runs):
    listed = {run.name: run for run in list_runs(runs)}
    assert set(listed) == {"good", "truncated", "headless"}
    assert listed["good"].usable and listed["good"].checkpoint == runs / "good" / "best.pt"
    for name in ("truncated", "headless"):
        assert not listed[name].usable and listed[name].checkpoint is None and listed[name].problem


def test_seglab_runs_marks_them_unusable(capsys, runs):
    assert main(["runs", "--dir", str(runs)]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert "unusable: best.pt is truncated" in rows["truncated"]
    assert "unusable: no config.json" in rows["headless"]
    assert "unusable" not in rows["good"]


def test_the_leaderboard_scores_only_usable_runs_and_says_why_not_the_others(runs, tmp_path):
    dataset = ShapesDataset("test", SHAPES)
    board = build_leaderboard(find_checkpoints(runs), dataset, cache_dir=tmp_path)
    assert [row.run for row in board.rows] == ["good"]
    reasons = {Path(skip.path).parent.name: skip.reason for skip in board.skipped}
    assert "no config.json" in reasons["headless"]  # used to be scored while hidden everywhere else
    assert "truncated" in reasons["truncated"]


@pytest.mark.slow
def test_the_apps_checkpoint_picker_offers_only_usable_runs(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(tmp_path / "cache"))
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not app.exception, app.exception
    picker = next(box for box in app.selectbox if box.label == "Model / predictions")
    assert [option.split(" ")[0] for option in picker.options] == ["good"]
