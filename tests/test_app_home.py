"""AppTest checks of the Home page: choosing, checking and switching the data source; shareable URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pages import ui
from seglab.data.discover import check_source, discover_datasets
from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec
from tests.test_folder import write_mini_camvid

ROOT = Path(__file__).resolve().parents[1]
MODELS_HEADER = "Models: bring your own model or predictions"


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder holding one small CamVid layout (what ../shared/data is on a real machine)."""
    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "data"
    write_mini_camvid(root / "camvid")
    monkeypatch.setattr(ui, "DATA_ROOT", root)
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
