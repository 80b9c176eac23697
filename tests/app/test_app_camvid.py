"""Every page on real CamVid frames (a few per split from ../shared/data/camvid, skipped when absent):
11 classes, void = 11, no background class, 480x360 images. Two tiny checkpoints trained here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pages import ui
from seglab.data.spec import DataSpec
from tests.helpers.apptest import open_tab
from tests.helpers.paths import ROOT

FRAMES_PER_SPLIT = 4
PAGES = (
    "dataset",
    "failures",
    "diagnostics",
    "compare",
    "leaderboard",
    "metrics_explorer",
    "loss_inspector",
    "label_quality",
)


@pytest.fixture(scope="module")
def camvid_subset(tmp_path_factory: pytest.TempPathFactory, camvid_root: Path) -> DataSpec:
    """A CamVid folder with the first few real frames of each split, in the SegNet layout."""
    root = tmp_path_factory.mktemp("camvid")
    for split in ("train", "val", "test"):
        names = sorted(path.name for path in (camvid_root / split).glob("*.png"))[:FRAMES_PER_SPLIT]
        for folder in (split, f"{split}annot"):
            (root / folder).mkdir()
            for name in names:
                shutil.copy(camvid_root / folder / name, root / folder / name)
        (root / f"{split}.txt").write_text(
            "".join(f"/SegNet/CamVid/{split}/{n} /SegNet/CamVid/{split}annot/{n}\n" for n in names)
        )
    return DataSpec(kind="camvid", root=str(root))


@pytest.fixture(scope="module")
def runs_dir(camvid_subset: DataSpec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from seglab.engine.config import TrainConfig
    from seglab.engine.trainer import train

    runs = tmp_path_factory.mktemp("camvid-runs") / "runs"
    for name, seed, loss in (("cv-ce", 0, "ce"), ("cv-dice", 1, "ce+dice")):
        config = TrainConfig(
            data=camvid_subset,
            model="tiny_unet_small",
            epochs=1,
            crop_size=96,
            batch_size=4,
            seed=seed,
            loss=loss,
            threads=1,
            preview_images=0,
        )
        train(config, out_dir=runs / name)
    return runs


@pytest.fixture
def open_page(camvid_subset: DataSpec, runs_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(runs_dir))
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(runs_dir.parent / "cache"))

    def open_(page: str) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
        at.session_state[ui.SPEC_KEY] = camvid_subset.to_dict()
        at.run()
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, [error.value for error in at.error])
        return at

    return open_


def text_of(at: AppTest) -> str:
    return "\n".join(
        str(element.value)
        for kind in ("markdown", "caption", "info", "warning", "subheader")
        for element in at.get(kind)
    )


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_every_page_works_on_camvid(open_page, page: str) -> None:
    at = open_page(page)
    shown = text_of(at) + " ".join(str(frame.value.to_dict()) for frame in at.dataframe)
    shown += " ".join(" ".join(map(str, box.options)) for box in at.selectbox)
    if page != "leaderboard":  # it names classes once scored (test_leaderboard_scores_both_camvid_checkpoints)
        assert any(name in shown for name in ("Sky", "Building", "Road", "Pole", "Car")), page  # CamVid's classes
    assert "circle" not in shown  # not Shapes' classes


def test_inspect_and_compare_show_camvid_classes_and_the_cell_gallery(open_page) -> None:
    inspect = open_page("failures")
    assert (
        "split mIoU" in text_of(inspect) and "without" not in text_of(inspect).split("split mIoU")[1].split("\n")[0]
    )  # no background
    assert "Sky" in open_tab(inspect, "inspect_tab", "Confusion cell → images").selectbox(key="inspect_cell_gt").options
    compare = open_tab(open_page("compare"), "compare_tab", "Confusion matrices")
    picker = compare.selectbox(key="compare_cell_gt")
    picker.select_index(picker.options.index("Road")).run()
    assert not compare.exception, compare.exception
    assert "Road predicted as" in text_of(compare) or "No pixel of Road" in text_of(compare)


def test_leaderboard_scores_both_camvid_checkpoints(open_page) -> None:
    board = open_page("leaderboard")
    score = [button for button in board.button if button.label.startswith("Score")]
    if score:  # Inspect and Compare may have cached these evaluations already (same protocol, same split)
        score[0].click().run()
    assert not board.exception, board.exception
    table = board.dataframe[0].value
    assert sorted(table["run"]) == ["cv-ce", "cv-dice"] and "iou_Road" in table.columns
