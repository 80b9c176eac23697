"""AppTest tests for the Diagnostics page (pages/diagnostics.py) on Shapes (CamVid frames: test_app_camvid.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pages import ui
from seglab.analysis.diagnostics.report import DiagnosticOptions, summarise_evaluation
from seglab.data.spec import DataSpec, build_dataset
from seglab.engine.evaluation import evaluate_checkpoint
from tests.helpers.apptest import metrics_shown, open_tab, use_runs_dir
from tests.helpers.apptest import open_page as open_app_page
from tests.helpers.trained_runs import TINY_SHAPES

SHAPES = TINY_SHAPES  # the data of the shared tiny runs


def open_page(runs_dir: Path, spec: DataSpec, monkeypatch) -> AppTest:
    use_runs_dir(monkeypatch, runs_dir)
    return open_app_page("pages/diagnostics.py", spec, timeout=180)


@pytest.fixture
def app(runs_dir, monkeypatch) -> AppTest:
    return open_page(runs_dir, SHAPES, monkeypatch)


def library_summary(runs_dir: Path, spec: DataSpec, cover: float = 0.5) -> dict:
    evaluation = evaluate_checkpoint(runs_dir / "a" / "best.pt", build_dataset(spec.with_split("val")))
    return summarise_evaluation(evaluation, options=DiagnosticOptions(cover=cover))


def test_headline_numbers_are_the_library_s(app, runs_dir):
    expected = library_summary(runs_dir, SHAPES)
    shown = metrics_shown(app)
    assert shown["ECE"] == f"{expected['calibration']['ece']:.3f}"
    assert shown["Boundary IoU"] == f"{expected['boundary']['mean_boundary_iou']:.3f}"
    assert shown["Objects found"] == f"{expected['objects']['recall']:.3f}"
    objects_table = app.dataframe[0].value
    assert list(objects_table["class"]) == list(expected["objects"]["per_class"])
    per_class = expected["objects"]["per_class"].values()
    assert list(objects_table["objects"]) == [row["objects"] for row in per_class]
    assert list(objects_table["lesion dice"]) == pytest.approx([row["lesion_dice"] for row in per_class], nan_ok=True)
    assert len(app.get("plotly_chart")) >= 1  # recall by size (each other tab draws its own when opened)
    open_tab(app, "diagnostics_tab", "Boundaries")
    open_tab(app, "diagnostics_tab", "Confidence")
    assert [chart for chart in app.get("plotly_chart")]  # the reliability diagram


def test_the_detection_threshold_changes_object_recall(app, runs_dir):
    next(s for s in app.slider if s.label.startswith("An object counts as found")).set_value(0.1).run()
    assert not app.exception
    expected = library_summary(runs_dir, SHAPES, cover=0.1)["objects"]["recall"]
    assert metrics_shown(app)["Objects found"] == f"{expected:.3f}"


def test_a_missed_object_opens_on_inspect(app):
    captions = [image.proto.imgs[0].caption for image in app.get("image")]
    missed = [caption for caption in captions if "found, predicted as" in caption]
    assert missed, captions
    button = next(button for button in app.button if button.key == "diagnostics_missed_0")
    sample = missed[0].split(":")[0]
    button.click().run()
    assert not app.exception
    assert app.session_state[ui.SAMPLE_KEY] == sample
    assert [title.value for title in app.title] == ["Inspect"]


def test_slices_table_lists_builtin_slices(app, runs_dir):
    expected = library_summary(runs_dir, SHAPES)["slices"]
    open_tab(app, "diagnostics_tab", "Slices")
    table = next(frame.value for frame in app.dataframe if "gap" in frame.value.columns)
    assert list(table["slice"]) == [row["slice"] for row in expected]


@pytest.mark.parametrize("view", ["confidently wrong", "entropy", "margin"])
def test_inspect_shows_the_uncertainty_views(runs_dir, monkeypatch, view):
    at = open_page(runs_dir, SHAPES, monkeypatch)
    at.switch_page("pages/failures.py").run()
    next(radio for radio in at.radio if radio.label == "Hover view").set_value(view).run()
    assert not at.exception, at.exception
    captions = " ".join(caption.value for caption in at.caption)
    expected = {"confidently wrong": "Red: wrong with confidence", "entropy": "Entropy", "margin": "top-2"}
    assert expected[view] in captions


def test_inspect_shows_the_image_s_bf_score(runs_dir, monkeypatch):
    import numpy as np

    at = open_page(runs_dir, SHAPES, monkeypatch)
    at.switch_page("pages/failures.py").run()
    shown = {metric.label: metric.value for metric in at.metric}
    evaluation = evaluate_checkpoint(runs_dir / "a" / "best.pt", build_dataset(SHAPES.with_split("val")))
    sample = at.session_state[ui.SAMPLE_KEY]
    position = next(i for i, result in enumerate(evaluation.results) if result.sample_id == sample)
    assert shown["BF score"] == f"{np.nanmean(evaluation.diagnostics.bf[position]):.3f}"
