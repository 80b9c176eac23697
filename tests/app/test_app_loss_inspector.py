"""AppTest tests for the Loss inspector page (pages/loss_inspector.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from seglab.data.label_map import shapes_label_map
from seglab.data.shapes import ShapesDataset
from tests.helpers.apptest import metrics_shown, open_page, use_runs_dir
from tests.helpers.folders import custom_folder_spec
from tests.helpers.trained_runs import TINY_SHAPES

SHAPES = TINY_SHAPES  # the data of the shared tiny runs
PAGE = "pages/loss_inspector.py"


@pytest.fixture
def app(runs_dir, monkeypatch) -> AppTest:
    use_runs_dir(monkeypatch, runs_dir)
    return open_page(PAGE, SHAPES)


def test_page_shows_losses_kept_fraction_and_pictures(app):
    chosen = app.multiselect(key="loss_images").value
    assert len(chosen) == 4
    shown = metrics_shown(app)
    assert {"plain CE", "focal", "top-k mining", "Kept by mining"} <= set(shown)
    # Defaults: top k 25 %, mining step 1000, step 500 -> ratio 0.5 -> 0.5 * 0.25 + 0.5 kept.
    assert shown["Kept by mining"] == "62.5%"
    captions = "\n".join(caption.value for caption in app.caption)
    assert "At step 500 of a 1,000-step ramp (50% of the way), mining keeps 62.5%" in captions
    assert "hardest 25%" in captions
    labels = [widget.label for widget in [*app.slider, *app.number_input]]
    assert not [label for label in labels if "_" in label]  # plain words, not parameter names
    # One row of pictures per image: ground truth, CE, focal factor, kept pixels (no weights yet).
    assert len(app.image) == 4 * 4
    classes = app.dataframe[0].value
    assert set(classes["class"]) <= set(shapes_label_map().names)
    assert classes["share of pixels"].sum() == pytest.approx(1.0)
    headline = "\n".join(markdown.value for markdown in app.markdown)
    assert "carries the most plain cross-entropy" in headline


def test_mining_sliders_change_the_kept_fraction(app):
    app.slider(key="loss_top_k").set_value(0.5).run()
    assert not app.exception and metrics_shown(app)["Kept by mining"] == "75.0%"  # 0.5 * 0.5 + 0.5
    app.slider(key="loss_step").set_value(1000).run()
    assert metrics_shown(app)["Kept by mining"] == "50.0%"  # end of the schedule: top k
    app.number_input(key="loss_mining_step").set_value(0).run()
    assert not app.exception and metrics_shown(app)["Kept by mining"] == "50.0%"  # top k at once
    assert app.slider(key="loss_step").value <= 100  # the step slider shrank with the schedule


def test_class_weights_change_the_per_class_shares(app):
    before = app.dataframe[0].value.set_index("class")
    assert "share of weighted CE" not in before.columns
    app.radio(key="loss_weights").set_value("median").run()
    assert not app.exception
    after = app.dataframe[0].value.set_index("class")
    assert {"class weight", "share of weighted CE"} <= set(after.columns)
    assert "weighted CE" in metrics_shown(app)
    np.testing.assert_allclose(after["share of plain CE"], before["share of plain CE"])  # the unweighted view stays
    assert not np.allclose(after["share of weighted CE"], after["share of plain CE"])
    assert not np.allclose(after["share of focal"], before["share of focal"])  # focal uses the weights as alpha
    assert len(app.image) == 4 * 5  # plus the weighted CE map


def test_gamma_and_image_choice_rerender(app):
    focal_before = metrics_shown(app)["focal"]
    app.slider(key="loss_gamma").set_value(0.0).run()
    shown = metrics_shown(app)
    assert shown["focal"] != focal_before and shown["focal"] == shown["plain CE"]  # gamma 0 is plain CE
    images = app.multiselect(key="loss_images")
    images.set_value(images.options[-1:]).run()
    assert not app.exception and len(app.image) == 4
    app.multiselect(key="loss_images").set_value([]).run()
    assert not app.exception and any("at least one image" in info.value for info in app.info)


def test_void_index_11_and_no_background(runs_dir, tmp_path, monkeypatch):
    # CamVid-like data: no background class and void = 11, written as a folder dataset from Shapes.
    source = ShapesDataset("val", SHAPES.shapes)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    labelled = 0
    for index in range(3):
        image, mask = source.load(index)
        mask = np.where(mask == 255, 11, mask).astype(np.uint8)
        mask[:4] = 11  # a void band, so void pixels surely occur
        labelled += int((mask != 11).sum())
        Image.fromarray(image).save(tmp_path / "images" / f"{index}.png")
        Image.fromarray(mask).save(tmp_path / "masks" / f"{index}.png")
    replace(shapes_label_map(), background_index=None, ignore_index=11, name="no-background").save(
        tmp_path / "labels.json"
    )
    spec = custom_folder_spec(tmp_path)
    use_runs_dir(monkeypatch, runs_dir)
    at = open_page(PAGE, spec)
    assert len(at.multiselect(key="loss_images").value) == 3
    at.radio(key="loss_weights").set_value("inverse").run()
    assert not at.exception and not at.error
    delta = next(metric for metric in at.metric if metric.label == "Kept by mining").delta
    assert delta.endswith(f"of {labelled:,} px") and labelled < 3 * 64 * 64  # void (11) is never counted


def test_without_a_checkpoint_the_page_points_to_train(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(tmp_path / "empty"))
    at = open_page(PAGE)
    assert any("Train" in info.value for info in at.info) and not at.metric
