"""AppTest tests for the Metric definitions page (pages/metrics_explorer.py)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from pages import ui
from seglab.data.label_map import shapes_label_map
from seglab.data.shapes import ShapesDataset
from seglab.data.spec import build_dataset
from seglab.metrics.definitions import compute_definitions
from tests.helpers.apptest import open_page, page_text, use_runs_dir
from tests.helpers.folders import custom_folder_spec
from tests.helpers.trained_runs import TINY_SHAPES

SHAPES = TINY_SHAPES  # the data of the shared tiny runs
PAGE = "pages/metrics_explorer.py"
DEFINITION_NAMES = [score.name for score in compute_definitions(np.zeros((1, 7, 7)))]


@pytest.fixture
def app(runs_dir, monkeypatch) -> AppTest:
    use_runs_dir(monkeypatch, runs_dir)
    return open_page(PAGE, SHAPES)


def table(at: AppTest, index: int):
    return at.dataframe[index].value


def test_definitions_table_lists_every_definition_and_marks_the_apps_own(app, runs_dir):
    from seglab.engine.evaluation import evaluate_checkpoint

    definitions = table(app, 0)
    assert list(definitions["definition"]) == DEFINITION_NAMES
    assert {"value", "formula", "who uses it", "this app"} <= set(definitions.columns)
    assert definitions["this app"].sum() == 1
    app_value = float(definitions.loc[definitions["this app"], "value"].iloc[0])
    evaluation = evaluate_checkpoint(
        runs_dir / "a" / "best.pt", build_dataset(SHAPES.with_split("val")), cache_dir=runs_dir.parent / "cache"
    )
    assert app_value == pytest.approx(evaluation.metrics.miou, abs=5e-4)  # the same number every other page shows
    assert ui.METRIC_DEFINITION in page_text(app)
    assert "n/a" not in set(definitions["value"])  # Shapes has a background class: every row applies
    assert any("MMSegmentation" in text for text in definitions["who uses it"])


def test_the_page_leads_with_the_three_choices_that_matter_each_with_a_picture(app):
    text = page_text(app)
    assert "Sum pixels over the split, or average images?" in text and "With or without the background class?" in text
    assert "skipped, 0 or 1?" in text
    pictures = [chart for chart in app.get("plotly_chart") if chart.proto.id and "metrics_choice_" in chart.proto.id]
    assert len(pictures) == 3
    first = json.loads(pictures[0].proto.spec)["data"][0]
    assert len(first["y"]) == 2  # dataset-level vs image-wise, nothing else
    expanders = [expander.label for expander in app.expander]
    assert any(label.startswith(f"All {len(DEFINITION_NAMES)} definitions") for label in expanders)


def test_level_filter_and_per_class_table(app):
    app.radio(key="metrics_level").set_value("image-wise").run()
    assert not app.exception
    rows = table(app, 0)
    assert len(rows) < len(DEFINITION_NAMES) and all("image-wise" in level for level in rows["level"])
    per_class = table(app, 1)
    assert sorted(per_class["class"]) == sorted(shapes_label_map().names)
    assert per_class["why"].str.len().min() > 20
    app.radio(key="metrics_class_order").set_value("class").run()
    assert list(table(app, 1)["class"]) == list(shapes_label_map().names)


def test_without_a_background_class_the_background_rows_say_na(runs_dir, tmp_path, monkeypatch):
    # CamVid-like data: no background class and void = 11, written as a folder dataset from Shapes.
    source = ShapesDataset("val", SHAPES.shapes)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for index in range(4):
        image, mask = source.load(index)
        Image.fromarray(image).save(tmp_path / "images" / f"{index}.png")
        Image.fromarray(np.where(mask == 255, 11, mask).astype(np.uint8)).save(tmp_path / "masks" / f"{index}.png")
    replace(shapes_label_map(), background_index=None, ignore_index=11, name="no-background").save(
        tmp_path / "labels.json"
    )
    spec = custom_folder_spec(tmp_path)
    use_runs_dir(monkeypatch, runs_dir)
    at = open_page(PAGE, spec)
    definitions = table(at, 0).set_index("definition")
    background_rows = [name for name in DEFINITION_NAMES if "without background" in name]
    assert (definitions.loc[background_rows, "value"] == "n/a").all()
    assert all("n/a" in note for note in definitions.loc[background_rows, "note"])
    assert (definitions.drop(index=background_rows)["value"] != "n/a").all()
    assert "no background class" in page_text(at)
    assert "With or without the background class?" not in page_text(at)  # that choice does not apply


def test_without_a_checkpoint_the_page_points_to_train(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(tmp_path / "empty"))
    at = open_page(PAGE)
    assert any("Train" in info.value for info in at.info) and not at.dataframe
