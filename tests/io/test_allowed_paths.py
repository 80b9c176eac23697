"""The data-root allow-list (seglab.io.allowed_paths): the rule every link and form of the app goes through."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from seglab.data.spec import DataSpec
from seglab.errors import ConfigError, DatasetError, PathNotAllowedError
from seglab.io.allowed_paths import AllowList, allow_list, check_spec_paths, configured_roots, resolve
from tests.helpers.folders import write_mini_camvid


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder beside a shared/data folder, with nothing configured."""
    for name in ("SEGLAB_DATA_ROOT", "SEGLAB_DATA_ROOTS", "SEGLAB_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    project = tmp_path / "seglab"
    (project / "checkpoints").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "pets" / "images").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    return project


def default(project: Path) -> AllowList:
    return allow_list(project, project / "checkpoints")


def test_the_data_folder_and_the_runs_folder_are_allowed(project: Path) -> None:
    allowed = default(project)
    data = project.parent / "shared" / "data"
    assert allowed.check(data / "pets" / "images") == resolve(data / "pets" / "images")
    assert allowed.allows(project / "checkpoints" / "run" / "best.pt")
    assert allowed.allows(project / "data" / "mine")  # the project's own data folder
    assert not allowed.allows(project / "seglab" / "train.py")  # the rest of the project is not data
    assert not allowed.allows(project.parent / "elsewhere")


@pytest.mark.parametrize("outside", ["/etc/passwd", "/etc", "/", "~", "{data}/../../elsewhere", "{data}/pets/../../.."])
def test_absolute_paths_and_dot_dot_outside_are_refused(project: Path, outside: str) -> None:
    path = outside.format(data=project.parent / "shared" / "data")
    with pytest.raises(PathNotAllowedError) as refused:
        default(project).check(path, what="image folder")
    message = str(refused.value)
    assert message.startswith(f"image folder {path} is outside the folders this app may read")
    assert "data_roots under [app] in" in message and str(project / "seglab.toml") in message
    assert "$SEGLAB_DATA_ROOTS" in message


def test_a_path_that_cannot_be_resolved_is_refused(project: Path) -> None:
    data = project.parent / "shared" / "data"
    with pytest.raises(PathNotAllowedError, match=r"image folder .*\\x00.* is outside"):
        default(project).check(f"{data}/pets\x00/etc", what="image folder")


def test_dot_dot_that_stays_inside_is_allowed(project: Path) -> None:
    data = project.parent / "shared" / "data"
    assert default(project).check(f"{data}/pets/../pets/images") == resolve(data / "pets" / "images")


def test_a_symlink_out_of_the_data_folder_is_refused(project: Path) -> None:
    data = project.parent / "shared" / "data"
    (data / "escape").symlink_to("/etc")
    (data / "pets" / "passwd.json").symlink_to("/etc/passwd")
    allowed = default(project)
    for path in (data / "escape", data / "escape" / "passwd", data / "pets" / "passwd.json"):
        assert not allowed.allows(path), path
    pets = data / "pets"
    spec = DataSpec(kind="folder", images=str(pets / "images"), masks=str(pets), label_map=str(pets / "passwd.json"))
    with pytest.raises(PathNotAllowedError, match=r"label map .*passwd.json is outside"):
        check_spec_paths(spec, allowed)


def test_a_dataset_symlinked_into_the_data_folder_is_allowed_at_its_real_place(project: Path) -> None:
    real = write_mini_camvid(project.parent / "disk" / "camvid")
    (project.parent / "disk" / "private").mkdir()
    data = project.parent / "shared" / "data"
    (data / "camvid").symlink_to(real)
    allowed = default(project)
    assert allowed.check(data / "camvid") == real.resolve()  # what discovery finds keeps working
    assert allowed.allows(data / "camvid" / "train")
    assert not allowed.allows(project.parent / "disk" / "private")  # its neighbours are not allowed


def test_label_map_etc_passwd_is_refused_before_anything_reads_it(project: Path) -> None:
    data = project.parent / "shared" / "data" / "pets"
    spec = DataSpec(kind="folder", images=str(data / "images"), masks=str(data / "images"), label_map="/etc/passwd")
    with pytest.raises(PathNotAllowedError, match=r"^label map /etc/passwd is outside"):
        check_spec_paths(spec, default(project))
    fine = DataSpec(kind="folder", images=str(data / "images"), masks=str(data / "images"))
    assert check_spec_paths(fine, default(project)) is fine
    with pytest.raises(PathNotAllowedError, match=r"^dataset folder / is outside"):
        check_spec_paths(DataSpec(kind="camvid", root="/"), default(project))


def test_roots_from_the_environment_and_the_config_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere, more = project.parent / "elsewhere", project.parent / "more"
    more.mkdir()
    monkeypatch.setenv("SEGLAB_DATA_ROOTS", f"{elsewhere}{os.pathsep}")
    assert default(project).allows(elsewhere / "a.png") and not default(project).allows(more)
    (project / "seglab.toml").write_text(f'[app]\ndata_roots = ["{more}"]\n')
    assert configured_roots(project) == [elsewhere, more]
    assert default(project).allows(more / "x")
    other = project.parent / "other.toml"
    other.write_text('[app]\ndata_roots = "/data"\n')
    monkeypatch.setenv("SEGLAB_CONFIG", str(other))
    with pytest.raises(ConfigError, match="data_roots must be a list of paths"):
        configured_roots(project)
    broken = default(project)  # the app keeps working on the other roots and says what is wrong
    assert "data_roots must be a list of paths" in broken.problem
    assert broken.allows(elsewhere) and not broken.allows(more)
    with pytest.raises(PathNotAllowedError, match=r"fix the config file: .*must be a list"):
        broken.check(more)
    other.write_text("[app\n")
    assert re.search(r"cannot read .*other.toml", default(project).problem)


def test_a_data_root_moved_by_the_environment(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGLAB_DATA_ROOT", str(project.parent / "elsewhere"))
    allowed = default(project)
    assert allowed.allows(project.parent / "elsewhere" / "x")
    assert not allowed.allows(project.parent / "shared" / "data" / "pets")


def test_a_file_root_allows_that_file_only(project: Path) -> None:
    label_map = project.parent / "elsewhere" / "labels.json"
    label_map.write_text("{}")
    allowed = default(project).with_roots([label_map])
    assert allowed.allows(label_map)
    assert not allowed.allows(project.parent / "elsewhere" / "other.json")
    assert not allowed.allows(project.parent / "elsewhere")


@pytest.mark.parametrize("split", ["../../private/camvid/train", "..", "a/b"])
def test_a_split_name_cannot_lead_out_of_the_dataset_folder(tmp_path: Path, split: str) -> None:
    from seglab.data.spec import build_dataset

    root = write_mini_camvid(tmp_path / "data" / "camvid")
    write_mini_camvid(tmp_path / "private" / "camvid")
    with pytest.raises(DatasetError, match="is not a split name"):
        build_dataset(DataSpec(kind="camvid", root=str(root), split=split))
    assert len(build_dataset(DataSpec(kind="camvid", root=str(root), split="val"))) == 3
