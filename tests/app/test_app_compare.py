"""AppTest tests for the Compare page (pages/compare.py): metric table, A vs B ranking, incompatible runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pages import ui
from seglab.data.label_map import ClassInfo, LabelMap
from seglab.engine.checkpoint import checkpoint_payload, save_checkpoint
from seglab.models import build_model
from tests.helpers.apptest import open_page, open_tab, use_runs_dir
from tests.helpers.trained_runs import TINY_SHAPES

SHAPES = TINY_SHAPES  # the data of the shared tiny runs
DELTA = "Δ mIoU (B − A)"


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory, tiny_runs) -> Path:
    """runs/a and runs/b: tiny Shapes checkpoints trained with other seeds and losses; runs/street: 3 other classes."""
    runs = tmp_path_factory.mktemp("compare") / "runs"
    for name, seed, loss in (("a", 0, "ce"), ("b", 1, "ce+dice")):
        tiny_runs.copy_to(runs / name, seed=seed, loss=loss)  # one epoch on SHAPES, trained once per session
    street = LabelMap(
        tuple(ClassInfo(i, name, (60 * i, 0, 0)) for i, name in enumerate(["road", "car", "sky"])), name="street"
    )
    payload = checkpoint_payload(model=build_model("tiny_unet_small", 3), config={}, label_map=street, step=0, epoch=0)
    save_checkpoint(payload, runs / "street" / "best.pt")
    (runs / "street" / "config.json").write_text(json.dumps({"model": "tiny_unet_small"}))
    return runs


@pytest.fixture
def app(runs_dir, monkeypatch) -> AppTest:
    """The app on the Compare page with the small Shapes data (val split)."""
    use_runs_dir(monkeypatch, runs_dir)
    return open_page("pages/compare.py", SHAPES)


def widget(elements, label: str):
    return next(element for element in elements if element.label.startswith(label))


def table_with(at: AppTest, column: str):
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


def test_metric_table_has_a_column_per_checkpoint_and_summary_rows(app: AppTest) -> None:
    chosen = widget(app.multiselect, "Models").value
    assert len(chosen) == 2 and not app.error
    table = app.dataframe[0].value
    reference, other = (Path(ui.checkpoint_options()[label]).parent.name for label in chosen)  # run names
    assert {reference, other} == {"a", "b"}
    assert [reference, other, f"Δ {other}", "best"] == list(table.columns)
    assert {"background", "star", "mIoU", "mIoU (no background)", "pixel accuracy", "image-wise mIoU"} <= set(
        table.index
    )
    assert any(ui.METRIC_DEFINITION in caption.value for caption in app.caption)
    iou = table.copy()

    widget(app.radio, "Per-class metric").set_value("recall").run()
    assert not app.exception
    recall = app.dataframe[0].value
    assert not recall.loc["background"].equals(iou.loc["background"])
    assert recall.loc["mIoU"].equals(iou.loc["mIoU"])  # summary rows do not depend on the per-class metric


def test_choosing_another_pair_changes_the_image_ranking(app: AppTest) -> None:
    open_tab(app, "compare_tab", "A vs B")
    before = table_with(app, DELTA)
    a_box = widget(app.selectbox, "A (reference)")
    swapped = [name for name in a_box.options if name != a_box.value][0]
    a_box.set_value(swapped).run()
    assert not app.exception
    after = table_with(app, DELTA)
    assert widget(app.selectbox, "B (the change)").value != swapped
    # Swapping A and B negates every image's delta, so the ranking changes.
    assert after[DELTA].to_dict() == pytest.approx({image: -delta for image, delta in before[DELTA].to_dict().items()})
    assert list(after.index) != list(before.index)

    widget(app.radio, "Rank images").set_value("a").run()
    reranked = table_with(app, DELTA)
    assert list(reranked[DELTA]) == sorted(reranked[DELTA])  # where A beats B most first


def test_pixel_diff_and_image_panel(app: AppTest) -> None:
    open_tab(app, "compare_tab", "A vs B")
    shares = {metric.label: metric.value for metric in app.metric}
    assert {"both right", "fixed by B", "broken by B"} <= set(shares)
    assert all(value.endswith("%") for value in shares.values())
    by_class = table_with(app, "net fixed px")
    assert list(by_class.index) == ["background", "circle", "square", "triangle", "star", "ring", "stripe"]
    image_box = widget(app.selectbox, "Image")
    ranking = table_with(app, DELTA)
    assert image_box.options[0].startswith(ranking.index[0])
    image_box.set_value(image_box.options[-1]).run()
    assert not app.exception


def test_an_incompatible_checkpoint_is_reported_and_skipped(app: AppTest) -> None:
    box = widget(app.multiselect, "Models")
    street = next(label for label in box.options if label.startswith("street"))
    box.set_value([*box.value, street]).run()
    assert not app.exception
    errors = [error.value for error in app.error]
    assert any("street is skipped" in error and "3 classes" in error for error in errors), errors
    assert "street" not in app.dataframe[0].value.columns


def test_confusion_cell_gallery_lists_the_images_of_a_cell(app: AppTest) -> None:
    def summary() -> str:
        return next(
            markdown.value
            for markdown in app.markdown
            if " px of " in markdown.value and "predicted as" in markdown.value
        )

    open_tab(app, "compare_tab", "Confusion matrices")
    assert any(subheader.value.startswith("Confusion cell → images of ") for subheader in app.subheader)
    app.selectbox(key="compare_cell_gt").select(0).run()
    app.selectbox(key="compare_cell_pred").select(0).run()
    assert not app.exception, app.exception
    assert "px of background predicted as background" in summary()
    assert not [button for button in app.button if button.label == "Inspect"]  # opening images is Inspect's job
    app.radio(key="compare_cell_region").set_value("interior").run()
    assert "(object interiors)" in summary()


def test_diagnostics_tab_shows_each_model_and_its_deltas(app):
    assert not [frame for frame in app.dataframe if "better" in frame.value.columns]  # a closed tab does not run
    open_tab(app, "compare_tab", "Diagnostics")
    frame = next(frame.value for frame in app.dataframe if "better" in frame.value.columns)
    assert {"objects found (recall)", "Boundary IoU", "ECE"} <= set(frame.index)
    deltas = [column for column in frame.columns if column.startswith("Δ ")]
    assert len(deltas) == 1
    reference, other = [column for column in frame.columns if column != "better" and not column.startswith("Δ ")]
    assert frame.loc["ECE", deltas[0]] == pytest.approx(frame.loc["ECE", other] - frame.loc["ECE", reference])
