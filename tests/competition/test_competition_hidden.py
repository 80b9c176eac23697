"""Hidden labels never leave the server: the hidden-split check the pages use, and the students' download."""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seglab.competition import admin
from seglab.competition.competitions import (
    CompetitionSettings,
    create_competition,
    default_hidden_split,
    get_competition,
    hidden_split_competition,
)
from seglab.competition.downloads import hidden_images_zip
from seglab.competition.errors import CompetitionError
from seglab.competition.store import CompetitionStore
from seglab.data.shapes import ShapesDataset
from seglab.data.spec import DataSpec
from tests.helpers.competition import SMALL_SHAPES, SMALL_SPEC, make_competition


def test_the_hidden_split_is_recognised_whatever_the_other_knobs(tmp_path: Path) -> None:
    store, competition, _ = make_competition(tmp_path / "c", teams=())
    assert hidden_split_competition(store, SMALL_SPEC) == competition
    tweaked = replace(SMALL_SHAPES, test_size=500, label_noise=0.3, image_size=128)  # same scenes, redrawn
    assert hidden_split_competition(store, DataSpec(split="test", shapes=tweaked)) == competition
    assert hidden_split_competition(store, SMALL_SPEC.with_split("train")) is None
    assert hidden_split_competition(store, DataSpec(split="test", shapes=replace(SMALL_SHAPES, seed=1))) is None
    assert hidden_split_competition(None, SMALL_SPEC) is None  # no competition data at all


def test_file_data_is_refused_whenever_it_reads_a_hidden_mask(tmp_path: Path, monkeypatch) -> None:
    from tests.helpers.folders import write_mini_camvid

    root = write_mini_camvid(tmp_path / "camvid", splits=("train", "test"))
    store = CompetitionStore(tmp_path / "c")
    spec = DataSpec(kind="camvid", root=str(root), split="test")
    competition = create_competition(store, CompetitionSettings(name="camvid", spec=spec))
    monkeypatch.chdir(tmp_path)
    assert (
        hidden_split_competition(store, DataSpec(kind="camvid", root="camvid/../camvid", split="test")) == competition
    )
    assert hidden_split_competition(store, DataSpec(kind="camvid", root=str(root), split="train")) is None
    # The same files described as an image folder + mask folder: still the hidden labels.
    as_folder = DataSpec(kind="folder", images=str(root / "test"), masks=str(root / "testannot"), split="custom")
    assert hidden_split_competition(store, as_folder) == competition
    linked = tmp_path / "innocent"
    linked.symlink_to(root / "testannot")  # another path to the same masks
    assert hidden_split_competition(store, replace(as_folder, masks=str(linked))) == competition


def test_after_the_reveal_the_split_is_no_longer_hidden(tmp_path: Path) -> None:
    store, competition, _ = make_competition(tmp_path / "c", teams=())
    admin.reveal(store, competition)
    assert get_competition(store).is_revealed
    assert hidden_split_competition(store, SMALL_SPEC) is None


def test_the_download_holds_the_images_and_never_a_mask(tmp_path: Path) -> None:
    store, competition, _ = make_competition(tmp_path / "c", teams=())
    path = hidden_images_zip(store, competition)
    dataset = ShapesDataset("test", SMALL_SHAPES)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert names == ["README.txt"] + [f"{sample_id}.png" for sample_id in dataset.ids]
        for index, sample_id in enumerate(dataset.ids):
            with archive.open(f"{sample_id}.png") as stream:
                picture = np.asarray(Image.open(stream))
            image, mask = dataset.load(index)
            assert np.array_equal(picture, image)  # lossless, the exact pixels the server scores on
            assert picture.shape != mask.shape
        readme = archive.read("README.txt").decode()
    assert "6: stripe" in readme and "<id>.png" in readme
    assert hidden_images_zip(store, competition) == path  # built once
    assert path.stat().st_mtime == hidden_images_zip(store, competition).stat().st_mtime


def test_the_state_follows_freeze_and_reveal_and_test_is_hidden_by_default(tmp_path: Path) -> None:
    store, competition, _ = make_competition(tmp_path / "c", teams=())
    assert competition.state == "open"
    admin.freeze(store, competition)
    assert get_competition(store).state == "frozen"
    admin.reveal(store, get_competition(store))
    assert get_competition(store).state == "revealed"
    assert default_hidden_split(["train", "val", "test"]) == "test"
    assert default_hidden_split(["train", "val", "trainval"]) == "trainval"  # VOC: no test labels, the last split
    with pytest.raises(CompetitionError, match="no readable split"):
        default_hidden_split([])


def test_a_teams_status_line_says_open_closed_or_revealed(tmp_path: Path) -> None:
    store, competition, _ = make_competition(tmp_path / "c", teams=())
    assert competition.phase() == "open"
    assert replace(competition, deadline=100.0).phase(at=50.0) == "open"
    assert replace(competition, deadline=100.0).phase(at=200.0) == "closed"
    admin.reveal(store, competition)
    assert get_competition(store).phase() == "the final ranking is revealed"
