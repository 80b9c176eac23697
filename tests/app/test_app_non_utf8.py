"""File names that are not valid UTF-8 (a Latin-1 ``café.png``) on every page that shows sample ids.

Python reads such names with lone surrogates, which a browser, Arrow table or JSON refuses
(``UnicodeEncodeError: surrogates not allowed``): the Dataset gallery and Inspect's ranking table
used to fail. Ids go through :func:`seglab.io.names.display_name` where the dataset makes them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from pages import ui
from seglab.data.folder import FolderDataset
from seglab.data.spec import DataSpec
from seglab.io.names import display_name
from tests.helpers.paths import ROOT

LATIN1_NAME = b"caf\xe9"  # "café" in Latin-1: not valid UTF-8
SHOWN_AS = "caf\\xe9"


def test_display_name_keeps_utf8_and_escapes_undecodable_bytes() -> None:
    assert display_name("café") == "café"
    undecodable = os.fsdecode(LATIN1_NAME)
    assert display_name(undecodable) == SHOWN_AS
    display_name(undecodable).encode("utf-8")  # now safe for a browser, a URL or JSON


@pytest.fixture(scope="module")
def latin1_folder(tmp_path_factory: pytest.TempPathFactory) -> DataSpec:
    """A folder dataset of three images, one named with a Latin-1 byte."""
    root = tmp_path_factory.mktemp("latin1")
    rng = np.random.default_rng(0)
    for folder in ("images", "masks"):
        (root / folder).mkdir()
    for name in (LATIN1_NAME, b"other", b"plain"):
        mask = np.zeros((32, 32), np.uint8)
        mask[8:20, 8:20] = 1
        image = rng.integers(0, 255, (32, 32, 3), np.uint8)
        try:
            Image.fromarray(image).save(os.fsdecode(bytes(root / "images") + b"/" + name + b".png"))
            Image.fromarray(mask).save(os.fsdecode(bytes(root / "masks") + b"/" + name + b".png"))
        except (OSError, UnicodeError):
            pytest.skip("this file system refuses file names that are not UTF-8")
    return DataSpec(kind="folder", split="custom", images=str(root / "images"), masks=str(root / "masks"))


def test_the_folder_dataset_gives_display_safe_ids(latin1_folder: DataSpec) -> None:
    dataset = FolderDataset(images=latin1_folder.images, masks=latin1_folder.masks)
    assert dataset.ids == [SHOWN_AS, "other", "plain"]
    assert dataset.load(dataset.index_of(SHOWN_AS))[0].shape == (32, 32, 3)  # the file itself is still read


@pytest.fixture(scope="module")
def runs_dir(latin1_folder: DataSpec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from seglab.engine.config import TrainConfig
    from seglab.engine.trainer import train

    runs = tmp_path_factory.mktemp("latin1_runs")
    options = {"model": "tiny_unet_small", "epochs": 1, "batch_size": 3, "crop_size": 0, "preview_images": 0}
    config = TrainConfig(**options, data=latin1_folder, val_split="custom")
    train(config, out_dir=runs / "a")
    return runs


def _page(page: str, spec: DataSpec, runs: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(runs.parent / "cache"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state[ui.SPEC_KEY] = spec.to_dict()
    at.run()  # Home, the default page
    if page != "home":
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [exception.value for exception in at.exception]
    assert not at.error, [error.value for error in at.error]
    return at


def test_the_dataset_gallery_shows_a_latin1_file_name(latin1_folder, runs_dir, monkeypatch) -> None:
    at = _page("dataset", latin1_folder, runs_dir, monkeypatch)
    captions = [image.proto.imgs[0].caption for image in at.image]
    assert any(caption.startswith(SHOWN_AS + " · ") for caption in captions), captions
    assert SHOWN_AS in at.selectbox(key="dataset_sample").options


def test_inspect_ranks_a_latin1_file_name(latin1_folder, runs_dir, monkeypatch) -> None:
    at = _page("failures", latin1_folder, runs_dir, monkeypatch)
    assert sorted(at.dataframe[0].value["sample"]) == [SHOWN_AS, "other", "plain"]
    next(box for box in at.selectbox if box.label == "Image").select(SHOWN_AS).run()
    assert not at.exception, [exception.value for exception in at.exception]
    assert at.session_state[ui.SAMPLE_KEY] == SHOWN_AS


@pytest.fixture(scope="module")
def latin1_runs(runs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs, one in a folder whose name is Latin-1: the sidebar, Compare and Leaderboard list them."""
    import shutil

    runs = tmp_path_factory.mktemp("latin1_named_runs")
    skip_lock = shutil.ignore_patterns(".lock")
    shutil.copytree(runs_dir / "a", runs / "plain", ignore=skip_lock)
    shutil.copytree(runs_dir / "a", os.fsdecode(bytes(runs) + b"/run-" + LATIN1_NAME), ignore=skip_lock)
    return runs


@pytest.mark.parametrize("page", ["home", "compare", "leaderboard", "train"])
def test_a_run_folder_with_a_latin1_name_is_listed_on_every_page(page, latin1_folder, latin1_runs, monkeypatch) -> None:
    at = _page(page, latin1_folder, latin1_runs, monkeypatch)
    shown = "run-" + SHOWN_AS
    if page == "home":  # the sidebar's checkpoint picker, drawn on every page
        picker = next(box for box in at.selectbox if box.label == "Model / predictions")
        assert any(option.startswith(shown + " ") for option in picker.options), picker.options
    elif page == "compare":
        assert shown in set(at.dataframe[0].value.columns)  # the run is a column of the per-class table
    elif page == "train":
        assert shown in at.multiselect(key="train_watched_runs").options
        at.multiselect(key="train_watched_runs").set_value([shown]).run()  # the live view reads the run's files
        assert not at.exception and not at.error, [error.value for error in at.error]
        assert any(shown in markdown.value and "finished" in markdown.value for markdown in at.markdown)
        assert not any("logged no step" in caption.value for caption in at.caption)  # its curves were read
    else:
        if at.button:  # not scored yet: score them (Compare may have filled the evaluation cache)
            at.button[0].click().run()
        assert not at.exception, [exception.value for exception in at.exception]
        assert shown in set(at.dataframe[0].value["run"])


def test_a_link_names_a_latin1_run_by_its_shown_name(latin1_folder, latin1_runs, monkeypatch) -> None:
    from seglab.engine.runs import list_runs

    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(latin1_runs))
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(latin1_runs.parent / "cache"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["run"] = "run-" + SHOWN_AS
    at.run()
    assert not at.exception, [exception.value for exception in at.exception]
    wanted = next(info.checkpoint for info in list_runs(latin1_runs) if info.name == "run-" + SHOWN_AS)
    assert at.session_state[ui.CHECKPOINT_KEY] == str(wanted)


def test_a_name_that_looks_like_an_escaped_one_is_refused_as_a_duplicate(latin1_folder: DataSpec, tmp_path) -> None:
    import shutil

    from seglab.errors import DatasetError

    images, masks = tmp_path / "images", tmp_path / "masks"
    shutil.copytree(latin1_folder.images, images)
    shutil.copytree(latin1_folder.masks, masks)
    shutil.copyfile(images / "plain.png", images / f"{SHOWN_AS}.png")  # literally "caf\xe9.png", valid UTF-8
    shutil.copyfile(masks / "plain.png", masks / f"{SHOWN_AS}.png")
    with pytest.raises(DatasetError, match=r"several images are named caf\\xe9"):
        FolderDataset(images=images, masks=masks)
