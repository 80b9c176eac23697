"""``seglab eval`` reports diagnostics under stable JSON keys, takes a tags CSV and refuses bad options early."""

from __future__ import annotations

import json

import pytest

from seglab.data.label_map import shapes_label_map
from tests.helpers.cli import run_cli


@pytest.fixture(scope="module")
def trained_run(tiny_runs):
    """The session's shared tiny Shapes run (trained once for every module that needs one)."""
    return tiny_runs.run()


def test_eval_json_has_the_diagnostics(capsys, trained_run, tmp_path):
    tags = tmp_path / "tags.csv"
    tags.write_text("id,tag\nval-000000,first\nval-000001,first\nnot-an-image,first\n")
    code, out, _ = run_cli(
        capsys, "eval", "--checkpoint", str(trained_run / "best.pt"), "--json", "--device", "cpu", "--tags", str(tags)
    )
    assert code == 0
    diagnostics = json.loads(out)["diagnostics"]
    assert set(diagnostics) >= {"objects", "boundary", "calibration", "confidently_wrong", "slices"}
    names = shapes_label_map().names
    objects = diagnostics["objects"]
    assert set(objects["per_class"]) == set(names) and objects["cover"] == 0.5
    assert objects["objects"] == sum(row["objects"] for row in objects["per_class"].values())
    assert list(diagnostics["boundary"]["boundary_iou"]) == names and diagnostics["boundary"]["band_px"] >= 1
    calibration = diagnostics["calibration"]
    assert calibration["available"] and 0 <= calibration["ece"] <= 1 and len(calibration["reliability"]["pixels"]) == 15
    tagged = [row for row in diagnostics["slices"] if row["kind"] == "tag"]
    assert [(row["slice"], row["images"]) for row in tagged] == [("tag first", 2)]
    assert diagnostics["unknown_tag_ids"] == ["not-an-image"]


def test_eval_text_report_has_diagnostic_lines(capsys, trained_run):
    code, out, _ = run_cli(
        capsys, "eval", "--checkpoint", str(trained_run / "best.pt"), "--device", "cpu", "--detect-threshold", "0.3"
    )
    assert code == 0
    assert "objects:" in out and "Boundary IoU" in out and "ECE" in out


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--detect-threshold", "1.5", "detection threshold"),
        ("--confident", "1", "confidently-wrong"),
        ("--tags", "/nonexistent/tags.csv", "cannot read the tags file"),
    ],
)
def test_bad_diagnostic_options_are_one_line_errors(capsys, trained_run, option, value, message):
    code, out, err = run_cli(capsys, "eval", "--checkpoint", str(trained_run / "best.pt"), option, value)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1
