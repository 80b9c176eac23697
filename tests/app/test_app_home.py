"""AppTest checks of the Home page: choosing, checking and switching the data source; shareable URLs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from pages import ui
from seglab.data.discover import check_source, discover_datasets, sample_indices
from seglab.data.label_map import LabelMap
from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec
from tests.helpers.folders import write_mini_camvid
from tests.helpers.paths import ROOT

MODELS_HEADER = "Models: bring your own model or predictions"


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder holding one small CamVid layout (what ../shared/data is on a real machine)."""
    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "data"
    write_mini_camvid(root / "camvid")
    monkeypatch.setenv("SEGLAB_DATA_ROOT", str(root))
    return root


def _home(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for name, value in (query or {}).items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, at.exception
    return at


def test_default_is_shapes_checked_and_already_in_use(data_root: Path) -> None:
    at = _home()
    assert at.radio[0].value == "shapes"
    assert "7 classes · train: 400 images · val: 100 images · test: 100 images" in at.success[0].value
    assert not [button for button in at.button if button.label == "Use this dataset"]  # nothing to switch to
    assert any("every page uses now" in caption.value for caption in at.caption)


def test_camvid_is_found_checked_and_switched_to(data_root: Path) -> None:
    at = _home()
    at.radio[0].set_value("camvid").run()
    assert not at.exception, at.exception
    camvid = str(data_root / "camvid")
    assert at.text_input[0].value == camvid  # the discovered folder is offered
    assert "11 classes · train: 3 images · val: 3 images" in at.success[0].value
    assert any("test" in caption.value for caption in at.caption)  # the missing test split is named
    use = next(button for button in at.button if button.label == "Use this dataset")
    use.click().run()
    assert not at.exception, at.exception
    assert at.session_state[ui.SPEC_KEY]["kind"] == "camvid"
    assert at.query_params["data"] in ("camvid", ["camvid"]) and at.query_params["root"] in (camvid, [camvid])


def test_a_wrong_path_explains_what_is_missing_and_keeps_the_page(data_root: Path) -> None:
    at = _home()
    at.radio[0].set_value("voc").run()
    at.text_input[0].set_value(str(data_root / "nowhere")).run()
    assert not at.exception, at.exception
    assert at.error and "cannot be loaded yet" in at.error[0].value and "nowhere" in at.error[0].value
    assert [subheader.value for subheader in at.subheader][-2:] == [MODELS_HEADER, "Pages"]  # the rest still draws
    assert at.session_state[ui.SPEC_KEY]["kind"] == "shapes"  # nothing was switched


def test_a_shared_link_restores_tuned_shapes(data_root: Path) -> None:
    tuned = ShapesConfig(label_noise=0.2, class_frequencies=(1, 1, 1, 1, 1, 0.5))
    at = _home({"data": "shapes", "shapes": tuned.to_query(), "split": "test"})
    spec = DataSpec.from_dict(at.session_state[ui.SPEC_KEY])
    assert spec.shapes == tuned
    assert at.selectbox(key=ui.SPLIT_KEY).value == "test"
    broken = _home({"data": "shapes", "shapes": "{not json"})  # a mangled link falls back to the defaults
    assert DataSpec.from_dict(broken.session_state[ui.SPEC_KEY]).shapes == ShapesConfig()


def test_shapes_query_round_trip_names_only_changed_options() -> None:
    assert ShapesConfig().to_query() == ""
    tuned = ShapesConfig(seed=3, boundary_blur=1.5)
    assert tuned.to_query() == '{"seed":3,"boundary_blur":1.5}'
    assert ShapesConfig.from_query(tuned.to_query()) == tuned
    with pytest.raises(ValueError, match="unknown Shapes option"):
        ShapesConfig.from_query('{"wobble": 1}')


def test_discover_and_check_a_data_folder(tmp_path: Path) -> None:
    write_mini_camvid(tmp_path / "camvid")
    (tmp_path / "camvid" / "train" / "extra").mkdir()  # image folders are not searched further
    found = discover_datasets(tmp_path)
    assert [(spec.kind, Path(spec.root)) for spec in found] == [("camvid", tmp_path / "camvid")]
    assert discover_datasets(tmp_path / "absent") == []
    report = check_source(found[0])
    assert report.ok and report.splits == {"train": 3, "val": 3}
    assert set(report.problems) == {"test"} and report.ignore_index == 11
    missing = check_source(DataSpec(kind="voc", root=str(tmp_path / "absent")))
    assert not missing.ok and set(missing.problems) == {"train", "val", "trainval"}


def test_the_folder_source_asks_for_folders_in_plain_words_before_checking(data_root: Path) -> None:
    at = _home()
    at.radio[0].set_value("folder").run()
    assert not at.exception, at.exception
    assert not at.error  # nothing typed yet: no error, and no command-line words
    assert any("Type the image folder and the mask folder" in info.value for info in at.info)
    shown = " ".join(
        element.value for element in [*at.info, *at.caption, *at.markdown] if isinstance(element.value, str)
    )
    assert "--" not in shown
    example = next(code.value for code in at.code)
    assert LabelMap.from_dict(json.loads(example)).names == ["background", "road", "car"]  # the example is valid
    at.text_input[0].set_value(str(data_root / "camvid" / "train")).run()
    assert not at.error and any("Type the image folder" in info.value for info in at.info)  # masks still missing
    at.text_input[1].set_value(str(data_root / "camvid" / "trainannot")).run()
    assert not at.exception, at.exception
    assert "3 images" in at.success[0].value


def write_folder_with_bad_masks(root: Path) -> dict[str, str]:
    """Four pairs of a 3-class folder: b's mask has the wrong size, d's holds label 7; a and c are fine."""
    from tests.helpers.folders import PETS, mask_values, write_image, write_index_mask

    for seed, name in enumerate("abcd"):
        write_image(root / "images" / f"{name}.png", seed)
        values = mask_values(seed)
        if name == "b":
            values = np.zeros((3, 3), np.uint8)
        if name == "d":
            values[2, 2] = 7
        write_index_mask(root / "masks" / f"{name}.png", values)
    PETS.save(root / "pets.json")
    return {"images": str(root / "images"), "masks": str(root / "masks"), "label_map": str(root / "pets.json")}


def test_check_source_reads_a_sample_of_pairs_and_names_the_bad_masks(tmp_path: Path) -> None:
    paths = write_folder_with_bad_masks(tmp_path)
    report = check_source(DataSpec(kind="folder", split="custom", **paths))
    assert report.ok and report.splits == {"custom": 4} and report.sampled == {"custom": 4}
    problems = report.sample_problems["custom"]
    assert len(problems) == 2
    assert "b.png is 3x3" in problems[0] and "8x6" in problems[0] and "image's size" in problems[0]
    assert "d.png holds label values 7" in problems[1] and "'pets'" in problems[1]
    assert check_source(DataSpec(kind="folder", split="custom", **paths), mask_sample=0).sample_problems == {}
    assert sample_indices(100, 8)[0] == 0 and sample_indices(100, 8)[-1] == 99 and len(sample_indices(100, 8)) == 8
    assert sample_indices(3, 8) == [0, 1, 2] and sample_indices(0, 8) == []


def test_home_says_when_sampled_masks_do_not_fit(data_root: Path) -> None:
    paths = write_folder_with_bad_masks(data_root / "pets")
    at = _home()
    at.radio[0].set_value("folder").run()
    fields = {"Image folder": paths["images"], "Mask folder": paths["masks"], "Label map JSON": paths["label_map"]}
    for label, value in fields.items():
        next(box for box in at.text_input if box.label == label).set_value(value).run()
    assert not at.exception, at.exception
    assert "custom: 4 images" in at.success[0].value
    warning = at.warning[0].value
    assert "2 of 4 sampled image/mask pairs cannot be used" in warning
    assert "b.png is 3x3" in warning and "d.png holds label values 7" in warning
    good = write_folder_with_bad_masks(data_root / "fine")
    for name in ("b", "d"):  # the same folder with masks that fit
        (data_root / "fine" / "masks" / f"{name}.png").unlink()
    next(box for box in at.text_input if box.label == "Image folder").set_value(good["images"]).run()
    next(box for box in at.text_input if box.label == "Mask folder").set_value(good["masks"]).run()
    assert not at.warning and any("2 sampled image/mask pairs read and checked" in c.value for c in at.caption)
