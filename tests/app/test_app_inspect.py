"""AppTest tests for the Inspect page (pages/failures.py), plus the upload validation it relies on."""

from __future__ import annotations

import json
import struct
import zlib
from io import BytesIO

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from pages import ui
from seglab.data.io import read_image_bytes
from seglab.data.label_map import ClassInfo, LabelMap
from seglab.errors import DatasetError
from tests.helpers.apptest import metrics_shown, open_page, open_tab, page_text, use_runs_dir
from tests.helpers.folders import custom_folder_spec
from tests.helpers.trained_runs import TINY_SHAPES

SHAPES = TINY_SHAPES  # the data of the shared tiny runs


@pytest.fixture
def app(runs_dir, tmp_path, monkeypatch) -> AppTest:
    """The app on the Inspect page, with the tiny checkpoint and the small Shapes data."""
    use_runs_dir(monkeypatch, runs_dir)
    return open_page("pages/failures.py", SHAPES)


def widget(elements, label: str):
    return next(element for element in elements if element.label == label)


def test_ranking_table_lists_every_image_worst_first(app):
    table = app.dataframe[0].value
    assert len(table) == 8 and list(table["rank"]) == list(range(1, 9))
    assert table["mIoU"].is_monotonic_increasing
    assert {"pixel acc", "mIoU", "mIoU w/o background"} <= set(table.columns)
    assert "averaged over the classes" in page_text(app) or "mean IoU over the classes" in page_text(app)
    assert widget(app.selectbox, "Image").value == table["sample"][0]  # the worst image is shown first
    per_class = app.dataframe[1]
    assert "mostly confused with" in per_class.value.columns
    assert json.loads(per_class.proto.columns)["mostly confused with"]["width"] == "large"  # name and pixel count fit
    assert app.session_state[ui.SAMPLE_KEY] == table["sample"][0]


def test_selecting_another_image_changes_the_metrics_shown(app):
    before = metrics_shown(app)
    table = app.dataframe[0].value
    last = table["sample"].iloc[-1]
    widget(app.selectbox, "Image").select(last).run()
    assert not app.exception
    after = metrics_shown(app)
    assert after["Image mIoU"] == f"{table['mIoU'].iloc[-1]:.3f}" and after != before
    assert app.session_state[ui.SAMPLE_KEY] == last and app.query_params["sample"] in (last, [last])
    assert any("predicted as" in text or "No confused" in text for text in page_text(app).splitlines())


def test_class_filter_keeps_images_with_the_class_ranked_by_its_iou(app):
    everything = app.dataframe[0].value
    widget(app.selectbox, "Image").select(everything["sample"].iloc[-1]).run()  # look at another image first
    widget(app.selectbox, "Class filter").select(1).run()  # circle
    assert not app.exception
    table = app.dataframe[0].value
    assert "IoU circle" in table.columns and table["IoU circle"].is_monotonic_increasing
    assert len(table) <= len(everything)
    assert ((table["circle px (GT)"] > 0) | (table["circle px (pred)"] > 0)).all()
    assert "IoU circle" in metrics_shown(app)
    # The detail view follows the new ranking: its first row, not the image shown before the filter changed.
    assert widget(app.selectbox, "Image").value == table["sample"].iloc[0]
    assert metrics_shown(app)["IoU circle"] == f"{table['IoU circle'].iloc[0]:.3f}"


def test_choosing_a_confusion_cell_lists_its_images(app):
    assert not [box for box in app.selectbox if box.label == "Ground-truth class"]  # a closed tab does not run
    open_tab(app, "inspect_tab", "Confusion cell → images")
    widget(app.selectbox, "Ground-truth class").select(0).run()
    widget(app.selectbox, "Predicted class").select(0).run()  # background kept as background: in every image
    assert not app.exception
    summary = next(text for text in page_text(app).splitlines() if "px of background predicted as background" in text)
    assert "within 2 px of a ground-truth edge" in summary
    buttons = [button for button in app.button if button.label == "Inspect"]
    assert len(buttons) == 8
    widget(app.radio, "Pixels").set_value("interior").run()
    interior = next(text for text in page_text(app).splitlines() if "px of background predicted as background" in text)
    assert "(object interiors)" in interior
    target = buttons[-1].key.removeprefix("inspect_cell_open_")
    next(button for button in app.button if button.key == f"inspect_cell_open_{target}").click().run()
    assert not app.exception and widget(app.selectbox, "Image").value == target


def test_without_a_checkpoint_the_page_points_to_train(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(tmp_path / "empty"))
    at = open_page("pages/failures.py")
    assert any("Train" in info.value for info in at.info) and not at.dataframe


def test_a_checkpoint_for_other_classes_shows_an_error(runs_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(runs_dir))
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "masks" / "a.png")
    classes = tuple(ClassInfo(i, name, (i * 80, 0, 0)) for i, name in enumerate(["sky", "sea", "boat"]))
    LabelMap(classes=classes, name="boats").save(tmp_path / "labels.json")
    spec = custom_folder_spec(tmp_path)
    at = open_page("pages/failures.py", spec)
    assert any("7 classes" in error.value and "3" in error.value for error in at.error)


# -- upload validation (the page's file_uploader goes through read_image_bytes) -----------------------
def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` with almost no pixel data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def encoded(array: np.ndarray, format: str) -> bytes:
    buffer = BytesIO()
    Image.fromarray(array).save(buffer, format=format)
    return buffer.getvalue()


def test_read_image_bytes_accepts_png_and_jpeg():
    rgb = np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    np.testing.assert_array_equal(read_image_bytes(encoded(rgb, "PNG"), max_pixels=1000), rgb)
    assert read_image_bytes(encoded(rgb, "JPEG"), max_pixels=1000).shape == (12, 20, 3)
    gray = read_image_bytes(encoded(rgb[..., 0], "PNG"), max_pixels=1000)
    assert gray.shape == (12, 20, 3) and gray.dtype == np.uint8


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is not an image at all" * 10, "not a PNG or JPEG"),
        (encoded(np.zeros((8, 8, 3), np.uint8), "GIF"), "not a PNG or JPEG"),
        (encoded(np.full((64, 64, 3), 7, np.uint8), "PNG")[:-40], "corrupt or truncated"),
        (png_header(5000, 5000), r"5000x5000 \(25.0 MP\), more than the 2.0 MP"),
    ],
    ids=["empty", "garbage", "gif", "truncated", "huge-header"],
)
def test_read_image_bytes_rejects_bad_files_clearly(data, message):
    with pytest.raises(DatasetError, match=message):
        read_image_bytes(data, max_pixels=2_000_000)


def test_read_image_bytes_keeps_pillows_bomb_limit():
    assert not __import__("PIL.ImageFile").ImageFile.LOAD_TRUNCATED_IMAGES
    with pytest.raises(DatasetError, match="too large to decode safely"):
        read_image_bytes(png_header(100_000, 100_000), max_pixels=10**12)
