"""Tests for seglab.analysis.leaderboard: two tiny checkpoints, a garbage file and a checkpoint for other
classes, scored on a small Shapes split."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
import torch

from seglab.analysis import leaderboard as leaderboard_module
from seglab.analysis.leaderboard import build_leaderboard, find_checkpoints, held_out_split, to_csv
from seglab.data.label_map import ClassInfo, LabelMap, shapes_label_map
from seglab.data.shapes import ShapesConfig, ShapesDataset
from seglab.engine.checkpoint import checkpoint_payload, save_checkpoint
from seglab.engine.evaluation import Protocol, evaluate_checkpoint
from seglab.models import build_model

SHAPES = ShapesConfig(train_size=16, val_size=8, test_size=8, image_size=64)


def _save(path: Path, seed: int, loss: str, label_map: LabelMap) -> None:
    """An untrained tiny UNet checkpoint: different seeds give different (poor) predictions, which is
    all a ranking needs, without the seconds a training run costs."""
    torch.manual_seed(seed)
    model = build_model("tiny_unet_small", label_map.num_classes)
    payload = checkpoint_payload(model=model, config={"loss": loss}, label_map=label_map, step=seed, epoch=0)
    save_checkpoint(payload, path)
    (path.parent / "config.json").write_text(json.dumps({"loss": loss}))  # a run folder, as every listing expects
    label_map.save(path.parent / "label_map.json")  # as the trainer writes next to every run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """runs/a and runs/b (two seeds), runs/other (3 other classes), runs/garbage.pt."""
    root = tmp_path_factory.mktemp("runs")
    _save(root / "a" / "best.pt", 0, "ce", shapes_label_map())
    _save(root / "a" / "last.pt", 0, "ce", shapes_label_map())
    _save(root / "b" / "best.pt", 1, "ce+dice", shapes_label_map())
    street = LabelMap(
        tuple(ClassInfo(i, name, (40 * i, 0, 0)) for i, name in enumerate(["road", "car", "sky"])), name="street"
    )
    _save(root / "other" / "best.pt", 2, "ce", street)
    (root / "garbage.pt").write_bytes(b"this is not a checkpoint")
    return root


@pytest.fixture(scope="module")
def dataset() -> ShapesDataset:
    return ShapesDataset("test", SHAPES)


def test_find_checkpoints_prefers_best_and_skips_hidden_files(runs: Path, tmp_path: Path) -> None:
    found = find_checkpoints(runs)
    assert found == sorted(
        [runs / "a" / "best.pt", runs / "b" / "best.pt", runs / "garbage.pt", runs / "other" / "best.pt"]
    )
    assert runs / "a" / "last.pt" in find_checkpoints(runs, include_last=True)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"x")
    (tmp_path / "run" / ".best.pt.123.tmp").write_bytes(b"x")
    (tmp_path / "run" / ".hidden.pt").write_bytes(b"x")
    assert find_checkpoints(tmp_path) == [tmp_path / "run" / "last.pt"]  # no best.pt: last.pt enters
    assert find_checkpoints(tmp_path / "missing") == []


def test_held_out_split_prefers_test_then_val() -> None:
    assert held_out_split(["train", "val", "test"]) == "test"
    assert held_out_split(["train", "val"]) == "val"  # CamVid here, VOC
    assert held_out_split(["custom"]) == "custom"
    assert held_out_split([]) is None


def test_build_ranks_by_miou_and_skips_unusable_checkpoints(runs: Path, dataset: ShapesDataset, tmp_path: Path) -> None:
    calls = []
    board = build_leaderboard(
        find_checkpoints(runs), dataset, progress=lambda done, text: calls.append(done), cache_dir=tmp_path
    )

    assert [row.run for row in board.rows] and {row.run for row in board.rows} == {"a", "b"}
    expected = {
        run: evaluate_checkpoint(runs / run / "best.pt", dataset, cache_dir=tmp_path).metrics for run in ("a", "b")
    }
    ordered = sorted(expected, key=lambda run: -expected[run].miou)
    assert [row.run for row in board.rows] == ordered
    assert [row.rank for row in board.rows] == [1, 2]
    for row in board.rows:
        assert row.miou == pytest.approx(expected[row.run].miou)
        assert row.pixel_acc == pytest.approx(expected[row.run].pixel_acc)
        assert row.iou["circle"] == pytest.approx(expected[row.run].iou[1], nan_ok=True)
        assert row.model == "tiny_unet_small" and row.file == "best.pt" and len(row.sha256) == 64
    assert {row.run: row.loss for row in board.rows} == {"a": "ce", "b": "ce+dice"}
    reasons = {
        Path(skip.path).name if skip.path.endswith("garbage.pt") else "other": skip.reason for skip in board.skipped
    }
    assert "not a PyTorch checkpoint" in reasons["garbage.pt"]
    assert "3 classes" in reasons["other"]
    assert calls and calls[-1] == 1.0 and calls == sorted(calls)
    assert board.class_names == dataset.class_names and board.protocol == Protocol() and board.pending == []


def test_second_build_reads_the_cache_and_loads_no_model(
    runs: Path, dataset: ShapesDataset, tmp_path: Path, monkeypatch
) -> None:
    paths = find_checkpoints(runs)
    offered = build_leaderboard(paths, dataset, cache_dir=tmp_path, cached_only=True)
    # Only what can be scored is pending; the street run (other classes) is listed once with its reason.
    assert offered.pending == [str(p) for p in paths if p.parent.name != "other"]
    assert [skip.path for skip in offered.skipped if "trained on classes road, car, sky" in skip.reason] == [
        str(runs / "other" / "best.pt")
    ]
    first = build_leaderboard(paths, dataset, cache_dir=tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded although the result is cached")

    monkeypatch.setattr(leaderboard_module, "load_checkpoint", refuse)
    monkeypatch.setattr(leaderboard_module, "evaluate_checkpoint", refuse)
    second = build_leaderboard(paths, dataset, cache_dir=tmp_path, cached_only=True)
    assert second.rows == first.rows and second.skipped == first.skipped and second.pending == []
    # Another protocol is another competition: nothing is reused.
    assert (
        len(build_leaderboard(paths, dataset, Protocol(flip=True), cache_dir=tmp_path, cached_only=True).pending)
        == len(paths) - 1
    )


def test_csv_has_one_line_per_row_and_the_documented_columns(
    runs: Path, dataset: ShapesDataset, tmp_path: Path
) -> None:
    board = build_leaderboard(find_checkpoints(runs), dataset, cache_dir=tmp_path)
    lines = list(csv.DictReader(io.StringIO(to_csv(board))))
    header = ["rank", "run", "file", "model", "loss", "step", "miou", "miou_no_background", "pixel_acc", "mean_acc"]
    header += [f"iou_{name}" for name in dataset.class_names] + ["sha256", "dataset", "protocol"]
    assert list(lines[0]) == header
    assert len(lines) == len(board.rows) == 2
    for line, row in zip(lines, board.rows):
        assert int(line["rank"]) == row.rank and line["run"] == row.run and line["sha256"] == row.sha256
        assert float(line["miou"]) == pytest.approx(row.miou, abs=1e-6)
        assert line["protocol"] == "single scale"
        for name in dataset.class_names:
            value = row.iou[name]
            assert (
                line[f"iou_{name}"] == ""
                if math.isnan(value)
                else float(line[f"iou_{name}"]) == pytest.approx(value, abs=1e-6)
            )
    empty = leaderboard_module.Leaderboard([], [], dataset.class_names, Protocol(), "x")
    assert to_csv(empty).strip().split(",") == header


def test_entries_are_named_run_and_file_or_by_their_source_file() -> None:
    from seglab.analysis.leaderboard import Leaderboard, SkippedCheckpoint, entry_name

    assert entry_name("/runs/shapes-ce/best.pt") == "shapes-ce/best.pt"
    assert entry_name("/runs/sources/demo-onnx.seglab.json") == "demo-onnx.seglab.json"
    board = Leaderboard(
        rows=[],
        skipped=[SkippedCheckpoint("/runs/a/last.pt", "NaN weights"), SkippedCheckpoint("/s/x.seglab.json", "gone")],
        class_names=["bg"],
        protocol=Protocol(),
        dataset="shapes [test]",
    )
    assert board.skipped_records() == [
        {"entry": "a/last.pt", "reason": "NaN weights"},
        {"entry": "x.seglab.json", "reason": "gone"},
    ]
