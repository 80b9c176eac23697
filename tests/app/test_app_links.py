"""What a shared URL or a Home form can make the app read: only paths inside the allow-list.

A link naming a folder or file outside it (``?data=folder&images=/elsewhere``, ``label_map=/etc/passwd``,
``data=camvid&root=...``, a symlink out of the data folder, ``run=..``) is refused with a message
naming the setting, and nothing under the refused path is opened: an audit hook watches every
``open``/``listdir``/``scandir`` of the process while the app runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pages import state, ui
from seglab.data.spec import DataSpec
from tests.helpers.folders import write_mini_camvid
from tests.helpers.paths import ROOT

WATCHED_EVENTS = {"open", "os.listdir", "os.scandir"}
_watched: list[str] = []  # path prefixes whose reads are recorded (empty: the hook does nothing)
_reads: list[str] = []


def _audit(event: str, args: tuple) -> None:
    if _watched and event in WATCHED_EVENTS and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(os.fspath(args[0]))
        if any(path.startswith(prefix) for prefix in _watched):
            _reads.append(f"{event} {path}")


sys.addaudithook(_audit)  # audit hooks cannot be removed: this one only acts inside `reads_under`


@contextmanager
def reads_under(*prefixes: str | os.PathLike) -> Iterator[list[str]]:
    """Record every file or folder opened under ``prefixes`` (and their real locations) meanwhile."""
    _reads.clear()
    _watched[:] = [str(prefix) for prefix in prefixes] + [os.path.realpath(prefix) for prefix in prefixes]
    try:
        yield _reads
    finally:
        _watched.clear()


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A data folder with a CamVid copy, and a CamVid copy outside every allowed root."""
    for name in ("SEGLAB_DATA_ROOTS", "SEGLAB_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    monkeypatch.setenv("SEGLAB_DATA_ROOT", str(data))
    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(tmp_path / "cache"))
    inside = write_mini_camvid(data / "camvid")
    outside = write_mini_camvid(tmp_path / "private" / "camvid")
    return {"data": data, "inside": inside, "outside": outside, "private": tmp_path / "private"}


def open_link(query: dict[str, str], page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    if page:
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [exception.value for exception in at.exception]
    return at


def folder_link(camvid: Path, **extra: str) -> dict[str, str]:
    return {"data": "folder", "images": str(camvid / "train"), "masks": str(camvid / "trainannot"), **extra}


def refusal(at: AppTest) -> str:
    refused = [error.value for error in at.error if "outside the folders this app may read" in error.value]
    assert len(refused) == 1, [error.value for error in at.error]
    return refused[0]


def test_a_link_to_a_folder_outside_the_data_folder_is_refused_and_nothing_is_read(places) -> None:
    with reads_under(places["private"]) as reads:
        at = open_link(folder_link(places["outside"]))
    message = refusal(at)
    assert f"image folder {places['outside'] / 'train'} is outside" in message
    assert "data_roots under [app] in" in message and "$SEGLAB_DATA_ROOTS" in message and "Showing Shapes" in message
    assert at.session_state[ui.SPEC_KEY]["kind"] == "shapes"
    assert reads == []


def test_the_dataset_page_of_a_refused_link_shows_shapes_and_reads_nothing(places) -> None:
    with reads_under(places["private"]) as reads:
        at = open_link(folder_link(places["outside"]), page="dataset")
    assert at.image and at.image[0].proto.imgs[0].caption.startswith("val-")  # Shapes samples instead
    assert reads == []


def test_label_map_etc_passwd_is_never_opened(places) -> None:
    with reads_under("/etc/passwd") as reads:
        at = open_link(folder_link(places["inside"], label_map="/etc/passwd"))
    assert refusal(at).startswith("This link's data source was not opened: label map /etc/passwd is outside")
    assert reads == [] and at.session_state[ui.SPEC_KEY]["kind"] == "shapes"


def test_a_camvid_root_outside_and_a_symlink_out_of_the_data_folder_are_refused(places) -> None:
    with reads_under(places["private"]) as reads:
        at = open_link({"data": "camvid", "root": str(places["outside"])})
    assert f"dataset folder {places['outside']} is outside" in refusal(at)
    notes = places["private"] / "notes"  # not a dataset: nothing discovery would offer
    (notes / "images").mkdir(parents=True)
    (places["data"] / "shortcut").symlink_to(notes)
    with reads_under(notes) as symlink_reads:
        escape = {"data": "folder", "images": str(places["data"] / "shortcut" / "images")}
        at = open_link({**escape, "masks": str(places["inside"] / "trainannot")})
    assert "shortcut/images is outside" in refusal(at)
    assert reads == [] and symlink_reads == []


def test_a_link_inside_the_data_folder_is_followed(places) -> None:
    at = open_link({"data": "camvid", "root": str(places["inside"]), "split": "train"})
    assert not [error.value for error in at.error]
    assert at.session_state[ui.SPEC_KEY]["root"] == str(places["inside"])
    dotted = open_link({"data": "camvid", "root": f"{places['data']}/camvid/../camvid"})  # .. that stays inside
    assert not dotted.error and dotted.session_state[ui.SPEC_KEY]["kind"] == "camvid"


def test_a_link_names_only_runs_the_sidebar_offers(places, tiny_runs) -> None:
    runs = Path(os.environ["SEGLAB_RUNS_DIR"])
    tiny_runs.copy_to(runs / "good")
    tiny_runs.copy_to(places["private"] / "elsewhere")
    (runs / "linked").symlink_to(places["private"] / "elsewhere")  # a run folder that is a symlink out of runs/
    at = open_link({"run": "good"})
    assert not at.error and at.session_state[ui.CHECKPOINT_KEY] == str(runs / "good" / "best.pt")
    picker = next(box for box in at.selectbox if box.label == "Model / predictions")
    assert [option.split(" ")[0] for option in picker.options] == ["good"]  # the symlinked run is not offered
    for name in ("..", "linked", "../runs/good"):
        with reads_under(places["private"]) as reads:
            at = open_link({"run": name})
        assert any(f"names run {name!r}, which is not a usable run" in error.value for error in at.error), name
        assert reads == [] and at.session_state[ui.CHECKPOINT_KEY] == str(runs / "good" / "best.pt")
    board = open_link({}, page="leaderboard")  # the same rule: the Leaderboard scores only checkpoints inside
    assert "1 of 1 scorable entries not scored" in board.warning[0].value and "linked" not in board.warning[0].value


def test_a_remote_user_typing_a_path_outside_on_home_is_refused_unread(places, monkeypatch) -> None:
    monkeypatch.setattr(state, "client_is_local", lambda: False)  # a browser on another machine
    at = open_link({})
    at.radio[0].set_value("camvid").run()
    assert at.text_input[0].value == str(places["inside"])  # the discovered dataset is offered and allowed
    allowed = next(caption.value for caption in at.caption if caption.value.startswith("From this browser"))
    assert str(places["data"].resolve()) in allowed and str(places["private"]) not in allowed
    assert "train: 3 images" in at.success[0].value
    with reads_under(places["private"]) as reads:
        at.text_input[0].set_value(str(places["outside"])).run()
    assert not at.exception
    assert f"dataset folder {places['outside']} is outside" in "".join(error.value for error in at.error)
    assert not at.success and not [button for button in at.button if button.label == "Use this dataset"]
    assert reads == []


def test_a_local_user_may_type_any_path_and_the_link_then_works_for_the_class(places, monkeypatch) -> None:
    monkeypatch.setattr(state, "client_is_local", lambda: True)  # a browser on the server machine
    at = open_link({})
    at.radio[0].set_value("camvid").run()
    at.text_input[0].set_value(str(places["outside"])).run()
    assert "train: 3 images" in at.success[0].value
    next(button for button in at.button if button.label == "Use this dataset").click().run()
    assert at.session_state[ui.SPEC_KEY]["root"] == str(places["outside"])
    link = {name: at.query_params[name] for name in ("data", "root")}
    monkeypatch.setattr(state, "client_is_local", lambda: False)
    student = open_link({name: value[0] if isinstance(value, list) else value for name, value in link.items()})
    assert not student.error and student.session_state[ui.SPEC_KEY]["root"] == str(places["outside"])
    assert DataSpec.from_dict(student.session_state[ui.SPEC_KEY]).kind == "camvid"


def test_a_broken_config_file_is_named_and_the_app_keeps_working(places, tmp_path, monkeypatch) -> None:
    config = tmp_path / "seglab.toml"
    config.write_text("[app\n")
    monkeypatch.setenv("SEGLAB_CONFIG", str(config))
    at = open_link({"data": "camvid", "root": str(places["inside"])})
    assert not at.error and at.session_state[ui.SPEC_KEY]["kind"] == "camvid"  # the data folder is still allowed
    assert any(f"cannot read {config}" in warning.value for warning in at.sidebar.warning)
    refused = open_link({"data": "camvid", "root": str(places["outside"])})
    assert "fix the config file: cannot read" in refusal(refused)
