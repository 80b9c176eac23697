"""Tests for seglab/cli/commands.py, called in-process through ``main([...])`` (plus one real subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seglab.cli.commands import main
from seglab.data.label_map import camvid_label_map, shapes_label_map, voc_label_map
from seglab.data.spec import DataSpec
from seglab.engine.config import TrainConfig
from tests.helpers.cli import run_cli
from tests.helpers.paths import ROOT

TINY_SHAPES = ["--shapes", "train_size=8", "--shapes", "val_size=4", "--shapes", "image_size=32"]
TINY_TRAIN = [
    "--data",
    "shapes",
    *TINY_SHAPES,
    "--model",
    "tiny_unet_small",
    "--epochs",
    "1",
    "--batch-size",
    "4",
    "--crop-size",
    "0",
    "--scale-min",
    "1",
    "--scale-max",
    "1",
    "--preview-images",
    "1",
    "--device",
    "cpu",
    "--threads",
    "1",
    "--quiet",
]


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip() and "%|" not in line]  # drop progress bars
    assert len(lines) == 1, err
    assert lines[0].startswith("seglab ") and "error:" in lines[0] and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A one-epoch CLI training run shared by the eval/predict/runs tests."""
    runs = tmp_path_factory.mktemp("checkpoints")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGLAB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        previous_handler = signal.getsignal(signal.SIGTERM)
        code = main(["train", *TINY_TRAIN, "--out", str(runs / "tiny")])
        assert signal.getsignal(signal.SIGTERM) == previous_handler  # in-process callers get it back
    assert code == 0
    return runs / "tiny"


# -- stats --------------------------------------------------------------------------------------------
def test_stats_shapes_prints_every_class_and_the_baseline(capsys):
    code, out, _ = run_cli(capsys, "stats", "--data", "shapes", "--split", "val")
    assert code == 0
    lines = out.splitlines()
    for name in shapes_label_map().names:
        assert sum(line.startswith(name + " ") for line in lines) == 1, name
    assert "trivial baseline (predict 'background' everywhere)" in out
    assert "mIoU without background 0.000" in out and "images: 100" in out


@pytest.mark.slow
def test_stats_camvid(capsys, camvid_root):
    code, out, _ = run_cli(capsys, "stats", "--data", "camvid", "--root", str(camvid_root), "--split", "val")
    assert code == 0
    for name in camvid_label_map().names:
        assert any(line.startswith(name + " ") for line in out.splitlines()), name
    assert "images: 101" in out and "predict 'Road' everywhere" in out


def write_tiny_voc(root: Path) -> Path:
    """JPEG images, palette masks with void borders and a train list: the VOC-2012 layout."""
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    palette = voc_label_map().palette().ravel().tolist()
    ids = ["2007_000032", "2007_000039"]
    for position, sample_id in enumerate(ids):
        Image.fromarray(np.full((6, 8, 3), 60 * position, np.uint8)).save(root / "JPEGImages" / f"{sample_id}.jpg")
        mask = np.zeros((6, 8), np.uint8)
        mask[2:5, 2:6] = 15 if position == 0 else 12  # person / dog
        mask[0, :] = 255
        image = Image.fromarray(mask, mode="P")
        image.putpalette(palette)
        image.save(root / "SegmentationClass" / f"{sample_id}.png")
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(ids) + "\n")
    return root


def test_stats_voc(capsys, tmp_path):
    root = write_tiny_voc(tmp_path / "VOCdevkit" / "VOC2012")
    code, out, _ = run_cli(capsys, "stats", "--data", "voc", "--root", str(root), "--split", "train")
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    assert set(voc_label_map().names) <= set(rows)
    assert rows["person"][2] == "1" and rows["dog"][2] == "1" and rows["cat"][2] == "0"  # images per class
    assert "images: 2" in out and "void: 16.67%" in out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["stats", "--data", "camvid", "--root", "/nonexistent/camvid"], "/nonexistent/camvid"),
        (["stats", "--data", "voc"], "--root"),
        (
            ["stats", "--data", "folder", "--images", "/nonexistent/images", "--masks", "/nonexistent/masks"],
            "/nonexistent",
        ),
    ],
)
def test_bad_data_is_a_one_line_error_with_exit_code_2(capsys, argv, needle):
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, needle)


# -- train --------------------------------------------------------------------------------------------
def test_train_writes_a_run_folder(trained_run):
    for name in ("config.json", "label_map.json", "events.jsonl", "status.json", "last.pt", "best.pt"):
        assert (trained_run / name).is_file(), name
    config = TrainConfig.load(trained_run / "config.json")
    assert config.model == "tiny_unet_small" and config.epochs == 1 and config.threads == 1
    assert config.data.shapes.train_size == 8 and config.data.shapes.image_size == 32 and config.data.split == "train"
    assert json.loads((trained_run / "status.json").read_text())["state"] == "finished"


def test_train_prints_the_best_metrics(capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", *TINY_TRAIN, "--out", str(tmp_path / "run"), "--loss", "ce+dice")
    assert code == 0
    assert "best on val (miou" in out and "circle" in out and "mIoU" in out
    assert "training tiny_unet_small" in err
    assert TrainConfig.load(tmp_path / "run" / "config.json").loss == "ce+dice"
    assert _label_quality_report(tmp_path / "run" / "best.pt", tmp_path / "cache")  # scored in best.pt's evaluation


def _label_quality_report(checkpoint, cache):
    """The Label quality page's report of ``checkpoint`` on its validation split, if on disk."""
    from seglab.analysis.label_quality import DEFAULT_BAND, DEFAULT_MIN_PIXELS
    from seglab.analysis.label_quality.cache import label_quality_cache_path, read_label_quality
    from seglab.data.spec import build_dataset
    from seglab.sources.checkpoint_source import CheckpointSource

    config = TrainConfig.load(checkpoint.parent / "config.json")
    data = build_dataset(config.data.with_split(config.val_split))
    path = label_quality_cache_path(CheckpointSource(checkpoint), data, DEFAULT_BAND, DEFAULT_MIN_PIXELS, cache)
    return read_label_quality(path, data)


def test_train_config_file_then_flags_then_resume(capsys, trained_run, tmp_path):
    run = tmp_path / "resumed"
    shutil.copytree(trained_run, run)
    code, _, err = run_cli(
        capsys, "train", "--config", str(run / "config.json"), "--out", str(run), "--epochs", "2", "--resume", "--quiet"
    )
    assert code == 0 and "resuming" in err and "from step 2 (epoch 1)" in err
    assert json.loads((run / "status.json").read_text())["step"] == 4
    assert TrainConfig.load(run / "config.json").data.shapes.train_size == 8  # kept from the file


def folder_flags(spec: DataSpec) -> list[str]:
    """The --data folder flags of a folder ``spec``."""
    return ["--data", "folder", "--images", str(spec.images), "--masks", str(spec.masks)]


def test_train_on_photos_uses_seglabs_recipe_under_explicit_flags(capsys, photo_folder):
    from seglab.cli.commands import build_parser
    from seglab.cli.train import train_config_from_args
    from seglab.engine.run_plan import PHOTO_RECIPE

    data = folder_flags(photo_folder)
    config = train_config_from_args(build_parser().parse_args(["train", *data, "--time-budget-s", "600"]))
    note = capsys.readouterr().err
    assert "seglab's recipe for 480x360 images" in note and "any flag overrides it" in note
    assert (config.crop_size, config.batch_size, config.model) == (256, 4, PHOTO_RECIPE["model"])
    assert (config.class_weights, config.rare_class_crops, config.time_budget_s) == ("sqrt_median", 0.5, 600)
    flagged = train_config_from_args(
        build_parser().parse_args(["train", *data, "--crop-size", "128", "--class-weights", "none"])
    )
    assert (flagged.crop_size, flagged.class_weights, flagged.batch_size) == (128, "none", 4)  # flags win
    options_only = train_config_from_args(build_parser().parse_args(["train", *data, "--model-option", "depth=2"]))
    assert options_only.model == TrainConfig().model  # options given for the default model keep that model
    capsys.readouterr()
    shapes = train_config_from_args(build_parser().parse_args(["train", *TINY_TRAIN]))
    assert "recipe" not in capsys.readouterr().err and shapes.model == "tiny_unet_small"


def test_train_with_a_config_file_takes_no_recipe(capsys, tmp_path, photo_folder):
    from seglab.cli.commands import build_parser
    from seglab.cli.train import train_config_from_args

    data = folder_flags(photo_folder)
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps(TrainConfig(model="tiny_unet_small", crop_size=64).to_dict()))
    config = train_config_from_args(build_parser().parse_args(["train", "--config", str(saved), *data]))
    assert (config.model, config.crop_size, config.class_weights) == ("tiny_unet_small", 64, "none")
    assert "recipe" not in capsys.readouterr().err


def test_rare_class_crops_train_end_to_end(capsys, tmp_path, photo_folder):
    data = folder_flags(photo_folder)
    argv = [*data, "--val-split", "train", "--model", "tiny_unet_small", "--crop-size", "64", "--batch-size", "2"]
    argv += ["--epochs", "1", "--threads", "1", "--quiet", "--preview-images", "0", "--out", str(tmp_path / "run")]
    code, out, _ = run_cli(capsys, "train", *argv)
    assert code == 0 and "best on train" in out
    saved = TrainConfig.load(tmp_path / "run" / "config.json")
    assert (saved.rare_class_crops, saved.class_weights) == (0.5, "sqrt_median")


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--loss", "cee"], "cee"),
        (["--model", "resnet9000"], "resnet9000"),
        (["--shapes", "train_sise=3"], "train_sise"),
        (["--model-option", "bogus=1"], "bogus"),
        (["--batch-size", "0"], "batch_size"),
    ],
)
def test_bad_training_options_are_one_line_errors(capsys, tmp_path, argv, needle):
    code, _, err = run_cli(capsys, "train", *TINY_TRAIN, "--out", str(tmp_path / "run"), *argv)
    assert_one_line_error(code, err, needle)


def test_train_help_mentions_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    for item in fields(TrainConfig):
        if item.name == "data":
            continue
        flag = "--model-option" if item.name == "model_options" else "--" + item.name.replace("_", "-")
        assert flag in out, flag
    for flag in ("--data", "--root", "--config", "--out", "--resume", "--shapes", "--quiet"):
        assert flag in out, flag
    assert "(default: 30)" in out  # epochs
    assert f"{TrainConfig.option_help()['crop_size']} (default: 96)" in out  # help texts: the fields' metadata


# -- eval / predict / runs ----------------------------------------------------------------------------
def test_eval_json_has_miou_pixel_acc_and_iou_by_class_name(capsys, trained_run, tmp_path):
    code, out, _ = run_cli(capsys, "eval", "--checkpoint", str(trained_run / "best.pt"), "--json", "--device", "cpu")
    assert code == 0
    summary = json.loads(out)
    assert 0 <= summary["miou"] <= 1 and 0 <= summary["pixel_acc"] <= 1
    assert list(summary["iou"]) == shapes_label_map().names
    assert summary["data"]["kind"] == "shapes" and summary["data"]["split"] == "val"
    assert summary["data"]["shapes"]["val_size"] == 4  # the run's own Shapes settings
    assert summary["confusion"] and sum(map(sum, summary["confusion"])) == summary["total_pixels"]
    assert _label_quality_report(trained_run / "best.pt", tmp_path / "cache")  # scored in the same model pass


def test_eval_table_of_a_run_folder_with_tta(capsys, trained_run):
    code, out, _ = run_cli(capsys, "eval", "--checkpoint", str(trained_run), "--tta-flip", "--scales", "0.75,1")
    assert code == 0
    assert "IoU" in out and "circle" in out and "mIoU" in out and "(4 images)" in out


def test_eval_of_a_tampered_checkpoint_is_a_one_line_error(capsys, tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'MARKER'}",))

    path = tmp_path / "tampered.pt"
    torch.save({"format": "seglab-checkpoint", "hook": Exploit()}, path)
    code, _, err = run_cli(capsys, "eval", "--checkpoint", str(path))
    assert_one_line_error(code, err, "tampered.pt")
    assert not (tmp_path / "MARKER").exists()


def test_eval_of_a_missing_or_truncated_checkpoint_is_a_one_line_error(capsys, trained_run, tmp_path):
    code, _, err = run_cli(capsys, "eval", "--checkpoint", str(tmp_path / "missing.pt"))
    assert_one_line_error(code, err, "does not exist")
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes((trained_run / "best.pt").read_bytes()[:5000])
    code, _, err = run_cli(capsys, "eval", "--checkpoint", str(truncated))
    assert_one_line_error(code, err, "cut.pt")


def test_eval_on_data_with_other_classes_is_a_one_line_error(capsys, trained_run, camvid_root):
    code, _, err = run_cli(
        capsys,
        "eval",
        "--checkpoint",
        str(trained_run / "best.pt"),
        "--data",
        "camvid",
        "--root",
        str(camvid_root),
        "--split",
        "val",
    )
    assert_one_line_error(code, err, "7 classes", "11")


def test_predict_writes_pngs_and_reports_unreadable_images(capsys, trained_run, tmp_path):
    good = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (21, 30, 3), dtype=np.uint8)).save(good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    out_dir = tmp_path / "predictions"
    code, out, err = run_cli(
        capsys,
        "predict",
        "--checkpoint",
        str(trained_run / "best.pt"),
        str(good),
        str(broken),
        "--out",
        str(out_dir),
        "--tta-flip",
    )
    assert code == 2  # one image failed
    assert sorted(p.name for p in out_dir.iterdir()) == ["photo_labels.png", "photo_mask.png", "photo_overlay.png"]
    labels = np.asarray(Image.open(out_dir / "photo_labels.png"))
    assert labels.shape == (21, 30) and labels.max() < 7
    assert np.asarray(Image.open(out_dir / "photo_overlay.png").convert("RGB")).shape == (21, 30, 3)
    assert "photo.png:" in out
    assert "skipped" in err and "broken.jpg" in err and "Traceback" not in err
    code, _, _ = run_cli(
        capsys, "predict", "--checkpoint", str(trained_run), str(good), "--out", str(out_dir), "--tile-size", "16"
    )
    assert code == 0


def test_runs_lists_run_folders(capsys, trained_run):
    code, out, _ = run_cli(capsys, "runs", "--dir", str(trained_run.parent))
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("tiny "))
    assert "finished" in row and "tiny_unet_small" in row and "miou 0." in row
    code, out, _ = run_cli(capsys, "runs", "--dir", str(trained_run.parent / "nothing-here"))
    assert code == 0 and "no runs" in out


def test_models_lists_the_registry(capsys):
    code, out, _ = run_cli(capsys, "models")
    assert code == 0 and "tiny_unet_small" in out and "deeplabv3plus_resnet18" in out


def test_no_command_prints_help(capsys):
    code, out, _ = run_cli(capsys)
    assert code == 1 and "stats" in out and "train" in out


# -- as a program -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_python_dash_m_seglab_help_runs():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    completed = subprocess.run(
        [sys.executable, "-m", "seglab", "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    for command in ("stats", "train", "eval", "predict", "runs", "models"):
        assert command in completed.stdout


@pytest.mark.slow
def test_console_script_is_declared_and_works_if_installed():
    assert 'seglab = "seglab.cli:main"' in (ROOT / "pyproject.toml").read_text()
    script = shutil.which("seglab")
    if script is None:
        pytest.skip("seglab is not installed as a console script (pip install -e .)")
    completed = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0 and "train" in completed.stdout


@pytest.mark.slow
def test_train_and_eval_on_a_few_camvid_files(capsys, camvid_root, tmp_path):
    """End to end on real road scenes: 4 CamVid images as a folder dataset with CamVid's label map (void = 11)."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for path in sorted((camvid_root / "val").glob("*.png"))[:4]:
        shutil.copy(path, images / path.name)
        shutil.copy(camvid_root / "valannot" / path.name, masks / path.name)
    camvid_label_map().save(tmp_path / "camvid.json")
    data = [
        "--data",
        "folder",
        "--images",
        str(images),
        "--masks",
        str(masks),
        "--label-map",
        str(tmp_path / "camvid.json"),
    ]
    run = tmp_path / "run"
    code, _, err = run_cli(
        capsys,
        "train",
        *data,
        "--model",
        "tiny_unet_small",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--crop-size",
        "96",
        "--preview-images",
        "1",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--out",
        str(run),
        "--quiet",
    )
    assert code == 0, err
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    code, out, err = run_cli(capsys, "eval", "--checkpoint", str(run / "best.pt"), "--json", "--device", "cpu")
    assert code == 0, err
    summary = json.loads(out)
    assert list(summary["iou"]) == camvid_label_map().names and summary["data"]["kind"] == "folder"
    assert summary["total_pixels"] < 4 * 480 * 360  # void (11) pixels are not scored
