"""The corpus of bad inputs and faults from issue 10, through the CLI: one clear line, exit code 2,
nothing half-written, nothing lost. Called in-process through ``main([...])``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seglab.cli.commands import main
from seglab.data.label_map import ClassInfo, LabelMap
from seglab.engine.checkpoint import load_checkpoint
from seglab.engine.run_dir import RunDirectory
from tests.helpers.cli import run_cli
from tests.helpers.fs_faults import enospc, make_read_only, torch_zip_writer_failure

TINY_TRAIN = (
    "--data shapes --shapes train_size=8 --shapes val_size=4 --shapes image_size=32 --model tiny_unet_small "
    "--epochs 1 --batch-size 4 --crop-size 0 --scale-min 1 --scale-max 1 --preview-images 1 --device cpu "
    "--threads 1 --quiet"
).split()


def error_line(code: int, err: str) -> str:
    """The one error line of a failed command (progress bars and notes aside)."""
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("seglab ")
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A one-epoch CLI run (shared, read-only for the tests)."""
    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGLAB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        assert main(["train", *TINY_TRAIN, "--out", str(runs / "tiny")]) == 0
    return runs / "tiny"


def copy_run(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".lock"))
    return target


# -- options are checked before any work, in one place ---------------------------------------------
@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--device", "tpu"], "device 'tpu'"),
        (["--device", "tpu9"], "device 'tpu9'"),
        (["--num-workers", "-1"], "num_workers"),
        (["--best-metric", "bogus"], "best_metric 'bogus'"),
        (["--batch-size", "0"], "batch_size"),
    ],
)
def test_bad_train_options_are_refused_before_anything_is_written(capsys, tmp_path, argv, needle):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", *TINY_TRAIN, "--out", out, *argv)
    assert needle in error_line(code, err)
    assert not out.exists()  # refused before the run folder was created, let alone trained


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--device", "tpu"], "device 'tpu'"),
        (["--device", "tpu9"], "device 'tpu9'"),
        (["--batch-size", "0"], "batch size 0"),
        (["--scales", "abc"], "--scales 'abc'"),
        (["--scales", "0"], "scale 0.0"),
        (["--scales", "-1"], "scale -1.0"),
        (["--scales", "1,nan"], "scale nan"),
    ],
)
def test_bad_eval_options_are_refused_before_the_checkpoint_is_read(capsys, tmp_path, argv, needle):
    # The checkpoint does not exist: the option's error must come first, before any work.
    code, _, err = run_cli(capsys, "eval", "--checkpoint", tmp_path / "missing.pt", *argv)
    line = error_line(code, err)
    assert needle in line and "missing.pt" not in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_eval_on_cuda_without_a_gpu_says_so(capsys, trained):
    code, _, err = run_cli(capsys, "eval", "--checkpoint", trained, "--device", "cuda")
    assert "CUDA is not available" in error_line(code, err)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--alpha", "5"], "alpha 5.0"),
        (["--alpha", "nan"], "alpha nan"),
        (["--tile-size", "0"], "tile size 0"),
        (["--scales", "abc"], "--scales 'abc'"),
        (["--scales", "0"], "scale 0.0"),
    ],
)
def test_bad_predict_options_are_refused_before_any_file_is_written(capsys, tmp_path, trained, argv, needle):
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(image)
    out = tmp_path / "predictions"
    code, _, err = run_cli(capsys, "predict", "--checkpoint", trained, image, "--out", out, *argv)
    assert needle in error_line(code, err)
    assert not out.exists()  # no partial file: --alpha used to be checked after inference


def test_scales_zero_no_longer_predicts_one_class_everywhere(capsys, trained):
    """--scales 0 used to shrink every image to one pixel (mIoU 0.0021 instead of 0.0225 on CamVid)."""
    code, _, err = run_cli(capsys, "eval", "--checkpoint", trained, "--scales", "0", "--json")
    assert "scale 0.0 must be a number > 0" in error_line(code, err)


# -- nothing lost: run folders ---------------------------------------------------------------------
def test_train_into_an_existing_run_is_refused_and_the_run_is_untouched(capsys, tmp_path, trained):
    run = copy_run(trained, tmp_path / "run")
    before = {path.name: path.read_bytes() for path in run.iterdir() if path.is_file() and path.name != ".lock"}
    code, _, err = run_cli(capsys, "train", *TINY_TRAIN, "--out", run, "--seed", "3")
    line = error_line(code, err)
    assert "already exists and holds a run (finished, step 2" in line
    assert "--resume" in line and "--overwrite" in line and "new --out name" in line
    after = {path.name: path.read_bytes() for path in run.iterdir() if path.is_file() and path.name != ".lock"}
    assert after == before  # best.pt not replaced, events.jsonl not appended to


def test_overwrite_moves_the_old_run_aside_and_deletes_nothing(capsys, tmp_path, trained):
    run = copy_run(trained, tmp_path / "run")
    old_best = (run / "best.pt").read_bytes()
    code, _, err = run_cli(capsys, "train", *TINY_TRAIN, "--out", run, "--overwrite", "--seed", "3")
    assert code == 0, err
    moved = [path for path in tmp_path.iterdir() if path.name.startswith("run-replaced-")]
    assert len(moved) == 1 and f"to {moved[0]}" in err
    assert (moved[0] / "best.pt").read_bytes() == old_best
    assert RunDirectory(moved[0]).read_status()["state"] == "finished"
    assert load_checkpoint(run / "best.pt").config["seed"] == 3  # the new run
    assert [e["type"] for e in RunDirectory(run).read_events()].count("start") == 1


def test_resume_and_overwrite_together_are_refused(capsys, tmp_path, trained):
    run = copy_run(trained, tmp_path / "run")
    code, _, err = run_cli(capsys, "train", *TINY_TRAIN, "--out", run, "--resume", "--overwrite")
    assert "only one of them" in error_line(code, err)


def test_train_into_a_folder_that_is_not_a_run_is_refused(capsys, tmp_path):
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, "train", *TINY_TRAIN, "--out", folder, "--overwrite")
    assert "is not empty and is not a seglab run folder" in error_line(code, err)
    assert sorted(p.name for p in folder.iterdir() if p.name != ".lock") == ["notes.txt"]


@pytest.mark.parametrize("where", ["file", "below a file"])
def test_out_pointing_at_a_file_or_an_impossible_place(capsys, tmp_path, where):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    out = blocker if where == "file" else blocker / "run"
    for command in (["train", *TINY_TRAIN], ["predict", "--checkpoint", tmp_path / "none.pt", tmp_path / "x.png"]):
        code, _, err = run_cli(capsys, *command, "--out", out)
        line = error_line(code, err)
        assert str(out) in line and ("is a file, not a folder" in line or "cannot create" in line)
    assert blocker.read_text() == "x"


@pytest.mark.parametrize(
    "where, message", [("inside", "cannot create the --out folder"), ("itself", "cannot write into the --out folder")]
)
def test_train_into_a_read_only_folder(capsys, tmp_path, monkeypatch, where, message):
    read_only = tmp_path / "readonly"
    out = read_only / "run" if where == "inside" else read_only
    make_read_only(read_only, monkeypatch)
    code, _, err = run_cli(capsys, "train", *TINY_TRAIN, "--out", out)
    line = error_line(code, err)
    assert message in line and "permission denied" in line
    monkeypatch.undo()
    assert list(read_only.iterdir()) == []


def test_predict_into_a_read_only_folder(capsys, tmp_path, trained, monkeypatch):
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(image)
    out = tmp_path / "predictions"
    make_read_only(out, monkeypatch)
    code, _, err = run_cli(capsys, "predict", "--checkpoint", trained, image, "--out", out)
    line = error_line(code, err)
    assert "cannot write into the --out folder" in line and "permission denied" in line
    monkeypatch.undo()
    assert list(out.iterdir()) == []


def test_predict_gives_images_with_the_same_name_distinct_outputs(capsys, tmp_path, trained):
    """a/ok.png and b/ok.jpg used to both write ok_*: the second overwrote the first."""
    rng = np.random.default_rng(0)
    sizes = {"a/ok.png": (20, 30), "b/ok.jpg": (24, 16), "c/ok.png": (12, 12)}
    for name, size in sizes.items():
        (tmp_path / name).parent.mkdir()
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(tmp_path / name)
    out = tmp_path / "predictions"
    code, stdout, err = run_cli(
        capsys, "predict", "--checkpoint", trained, *(tmp_path / n for n in sizes), "--out", out
    )
    assert code == 0, err
    labels = sorted(out.glob("*_labels.png"))
    assert len(labels) == 3 and len(list(out.iterdir())) == 9
    shapes = sorted(np.asarray(Image.open(path)).shape for path in labels)
    assert shapes == sorted(sizes.values())  # each image's own prediction survived
    for name in sizes:  # the output line of each input names its own files
        line = next(line for line in stdout.splitlines() if line.startswith(str(tmp_path / name)))
        assert len({Path(p.strip()).name for p in line.split(": ", 1)[1].split(",")}) == 3


# -- nothing broken kept: checkpoints ----------------------------------------------------------------
def poison(checkpoint: Path, target: Path) -> Path:
    payload = torch.load(checkpoint, weights_only=True)
    name = next(key for key, value in payload["model_state"].items() if value.is_floating_point())
    payload["model_state"][name][0] = float("inf")
    torch.save(payload, target)  # written around save_checkpoint, as a diverged run used to
    return target


def test_eval_refuses_a_checkpoint_with_non_finite_weights(capsys, tmp_path, trained):
    path = poison(trained / "best.pt", tmp_path / "diverged.pt")
    code, out, err = run_cli(capsys, "eval", "--checkpoint", path, "--json")
    line = error_line(code, err)
    assert "NaN or infinite weights" in line and "lower --lr" in line
    assert out == ""  # no normal-looking metrics


@pytest.mark.parametrize("failure", [enospc, torch_zip_writer_failure], ids=["ENOSPC", "torch-zip-writer"])
def test_disk_full_during_a_save_is_one_clear_line_and_the_stored_error_is_readable(
    capsys, tmp_path, monkeypatch, failure
):
    monkeypatch.setattr(torch, "save", failure)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", *TINY_TRAIN, "--out", out)
    line = error_line(code, err)
    assert "cannot write checkpoint" in line and "disk" in line.lower() and "free" in line
    status = RunDirectory(out).read_status()
    assert status["state"] == "failed"
    assert status["error"].startswith("cannot write checkpoint") and "enforce fail" not in status["error"].split(";")[0]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # nothing half-written
    assert not (out / "last.pt").exists() and not (out / "best.pt").exists()


# -- messages that were missing ------------------------------------------------------------------------
def test_stats_with_a_cache_that_cannot_be_written_still_prints_and_warns(capsys, tmp_path, monkeypatch):
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(blocker))
    code, out, err = run_cli(capsys, "stats", "--data", "shapes", "--split", "test")
    assert code == 0 and "trivial baseline" in out
    warnings = [line for line in err.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "could not write the statistics cache" in warnings[0]


def test_stats_with_a_read_only_cache_folder(capsys, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(cache))
    make_read_only(cache, monkeypatch)
    code, out, err = run_cli(capsys, "stats", "--data", "shapes", "--split", "test")
    assert code == 0 and "trivial baseline" in out
    assert "could not write the statistics cache" in err and "permission denied" in err


def write_folder_with_problems(root: Path) -> list[str]:
    """3 images, 2 masks (one with a colour outside the label map): what eval must mention."""
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    labels = LabelMap((ClassInfo(0, "ground", (0, 0, 0)), ClassInfo(1, "thing", (200, 0, 0))), name="two")
    labels.save(root / "labels.json")
    for name in ("a", "b", "c"):
        Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(images / f"{name}.png")
    for name in ("a", "b"):
        mask = np.zeros((16, 16, 3), np.uint8)
        mask[4:8, 4:8] = (200, 0, 0)
        if name == "b":
            mask[0, :5] = (0, 255, 0)  # not a class colour
        Image.fromarray(mask).save(masks / f"{name}.png")
    flags = {"--data": "folder", "--images": images, "--masks": masks, "--label-map": root / "labels.json"}
    return [str(item) for pair in flags.items() for item in pair]


def test_eval_says_it_skipped_images_without_masks_and_read_unknown_colours_as_void(capsys, tmp_path):
    data = write_folder_with_problems(tmp_path / "data")
    run = tmp_path / "run"
    options = (
        "--model tiny_unet_small --epochs 1 --batch-size 2 --crop-size 0 --preview-images 0 --device cpu --threads 1"
    )
    code, _, err = run_cli(capsys, "train", *data, *options.split(), "--out", run, "--quiet", "--val-split", "train")
    assert code == 0, err
    code, out, err = run_cli(capsys, "eval", "--checkpoint", run, *data, "--split", "train", "--json")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "warning:" in line]
    assert any("1 image(s) without a mask skipped" in line and "c.png" in line for line in warnings), err
    assert any("5 pixels in colours not in label map" in line and "read as void" in line for line in warnings), err
    summary = json.loads(out)
    assert len(summary["warnings"]) == 2
    _, stats_out, _ = run_cli(capsys, "stats", *data)  # the same wording as seglab stats
    for warning in summary["warnings"]:
        assert warning in stats_out


def test_predict_of_an_empty_image_is_a_clear_error(tmp_path, trained):
    from seglab.engine.predict import predict
    from seglab.errors import DatasetError

    model = load_checkpoint(trained / "best.pt").build_model()
    with pytest.raises(DatasetError, match=r"empty \(0x0 pixels\)"):
        predict(model, np.zeros((0, 0, 3), np.uint8))


def test_uncaught_os_errors_are_one_line(capsys, tmp_path, trained, monkeypatch):
    """A write failure nothing else names (here: a prediction PNG) still ends in one line, exit code 2."""
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(image)
    monkeypatch.setattr(Image.Image, "save", enospc)
    code, _, err = run_cli(capsys, "predict", "--checkpoint", trained, image, "--out", tmp_path / "out")
    assert "no space left on the device" in error_line(code, err)


def test_error_text_never_points_at_a_file_that_does_not_exist(trained, tmp_path):
    """A CLI run has no train.log: an interrupted one must not send the user there."""
    from seglab.engine.runs import run_info

    run = copy_run(trained, tmp_path / "run")
    assert not (run / "train.log").exists()
    RunDirectory(run).write_status("running", pid=2**22 + 12345)  # a pid that is not alive
    info = run_info(run)
    assert info.state == "failed" and "died without finishing" in info.error
    assert "train.log" not in info.error.replace("no train.log", "")
    assert "terminal" in info.error and "events.jsonl" in info.error and "step 2" in info.error
    assert os.path.exists(run / "events.jsonl")
