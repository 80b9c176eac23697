"""AppTest checks of the Dataset page on a small Shapes config (and CamVid when present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from seglab.data.shapes import ShapesConfig, ShapesDataset
from seglab.data.spec import DataSpec
from tests.helpers.paths import ROOT

SMALL = ShapesConfig(image_size=48, train_size=8, val_size=30, test_size=4, seed=1)
SPEC_KEY = "seglab_data_spec"  # pages/ui.py SPEC_KEY


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")  # shared by the module: stats are computed once


def _page(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cache_dir: Path,
    spec: DataSpec | None = None,
    sample: str | None = None,
) -> AppTest:
    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(cache_dir))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state[SPEC_KEY] = (spec or DataSpec(shapes=SMALL)).to_dict()
    if sample:
        at.query_params["sample"] = sample
    at.switch_page("pages/dataset.py").run()
    assert not at.exception, at.exception
    assert not at.error, [error.value for error in at.error]
    return at


def _percent(text: str) -> float:
    return float(text.rstrip("%")) / 100


def _sample_table(at: AppTest):
    return at.dataframe[0].value  # the per-class table of the selected sample comes first


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache_dir: Path) -> AppTest:
    return _page(monkeypatch, tmp_path, cache_dir)


def test_page_shows_widgets_gallery_and_sections(page: AppTest) -> None:
    assert page.slider(key="dataset_opacity").value == 0.5
    assert page.toggle(key="dataset_outlines").value is True
    assert page.selectbox(key="dataset_filter").value == "all images"
    assert len(page.selectbox(key="dataset_sample").options) == SMALL.val_size
    assert len(page.image) == 12 + 3  # a page of thumbnails, then the sample's image, mask and legend
    assert page.image[0].proto.imgs[0].caption.startswith("val-000000 · ")
    assert [subheader.value for subheader in page.subheader][1:] == [
        "Gallery",
        "Sample",
        "Class imbalance",
        "Class weights",
    ]
    weights = page.dataframe[1].value
    assert list(weights["class"]) == ["background", "circle", "square", "triangle", "star", "ring", "stripe"]


def test_choosing_another_sample_changes_the_table_and_url(page: AppTest) -> None:
    sample = page.selectbox(key="dataset_sample")
    first_id, first_table = sample.value, _sample_table(page)
    assert first_id == "val-000000" and page.query_params["sample"] == first_id
    other = next(
        sample_id
        for sample_id in sample.options[1:]
        if not _sample_table(page.selectbox(key="dataset_sample").select(sample_id).run()).equals(first_table)
    )
    assert page.session_state["seglab_sample"] == other and page.query_params["sample"] == other
    assert page.query_params["data"] == "shapes" and page.query_params["split"] == "val"  # a shareable URL
    table = _sample_table(page)
    assert table["share"].sum() == pytest.approx(1.0)
    assert "background" in set(table["class"])
    page.button(key="dataset_open_val-000003").click().run()  # the thumbnail's Open button
    assert page.selectbox(key="dataset_sample").value == "val-000003"


def test_sample_comes_from_the_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache_dir: Path) -> None:
    at = _page(monkeypatch, tmp_path, cache_dir, sample="val-000017")
    assert at.selectbox(key="dataset_sample").value == "val-000017"
    assert at.number_input(key="dataset_page").value == 2  # the gallery opens on the page that holds it


def test_filter_shows_only_images_containing_the_class(page: AppTest) -> None:
    dataset = ShapesDataset("val", SMALL)
    star = dataset.class_names.index("star")
    expected = [dataset.ids[i] for i in range(len(dataset)) if (dataset.load(i)[1] == star).any()]
    assert 0 < len(expected) < len(dataset)
    page.selectbox(key="dataset_filter").select("star").run()
    assert page.selectbox(key="dataset_sample").options == expected
    shown = [image.proto.imgs[0].caption.split(" · ")[0] for image in page.image[: min(len(expected), 12)]]
    assert shown == expected[:12]  # the thumbnails, in dataset order
    assert len(page.image) == min(len(expected), 12) + 3  # then the sample's image, mask and legend
    assert "star" in set(_sample_table(page)["class"])


def test_sort_by_class_share_puts_the_largest_share_first(page: AppTest) -> None:
    page.selectbox(key="dataset_sort").select("share of circle").run()
    dataset = ShapesDataset("val", SMALL)
    shares = {}
    for index, sample_id in enumerate(dataset.ids):
        mask = dataset.load(index)[1]
        shares[sample_id] = (mask == 1).sum() / (mask != dataset.ignore_index).sum()
    ordered = page.selectbox(key="dataset_sample").options
    values = [shares[sample_id] for sample_id in ordered]
    assert values == sorted(values, reverse=True) and values[0] > 0


def test_baseline_card_shows_pixel_accuracy_flattering(page: AppTest) -> None:
    metrics = {metric.label: metric.value for metric in page.metric}
    assert _percent(metrics["Pixel accuracy"]) > 0.5
    assert _percent(metrics["mIoU without background"]) == 0.0
    assert _percent(metrics["Pixel accuracy"]) > _percent(metrics["mIoU with background"]) > 0


def test_preset_changes_the_dataset(page: AppTest) -> None:
    weights_before = page.dataframe[1].value
    page.button(key="dataset_preset_Extreme imbalance (VOC-like)").click().run()
    assert not page.exception
    spec = DataSpec.from_dict(page.session_state[SPEC_KEY])
    assert spec.shapes.class_frequencies[-1] < SMALL.class_frequencies[-1]
    assert spec.shapes.val_size == SMALL.val_size  # sizes are kept
    weights_after = page.dataframe[1].value
    assert not weights_after["pixels"].equals(weights_before["pixels"])
    assert page.button(key="dataset_preset_Extreme imbalance (VOC-like)").proto.type == "primary"


def test_knobs_form_applies_label_noise(page: AppTest) -> None:
    table_before = page.dataframe[1].value
    next(slider for slider in page.slider if slider.label == "Label noise").set_value(0.5)
    next(button for button in page.button if button.label == "Apply").click().run()
    assert not page.exception
    assert DataSpec.from_dict(page.session_state[SPEC_KEY]).shapes.label_noise == 0.5
    assert not page.dataframe[1].value["pixels"].equals(table_before["pixels"])


@pytest.mark.camvid
def test_camvid_without_background(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache_dir: Path, camvid_root: Path
) -> None:
    at = _page(monkeypatch, tmp_path, cache_dir, spec=DataSpec(kind="camvid", root=str(camvid_root)))
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["mIoU without background"] == "n/a" and _percent(metrics["Pixel accuracy"]) > _percent(
        metrics["mIoU"]
    )
    assert not any(expander.label.startswith("Shapes") for expander in at.expander)
    table = _sample_table(at)
    assert np.isclose(table["share"].sum(), 1.0) and "Void" not in set(table["class"])
