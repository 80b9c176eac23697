"""Tests for the prediction-source commands: eval --model/--predictions, predict --model, export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from seglab.data.label_map import ClassInfo, LabelMap
from seglab.data.spec import DataSpec
from seglab.engine.checkpoint import checkpoint_payload, save_checkpoint
from seglab.engine.config import TrainConfig
from seglab.models import build_model
from seglab.sources import write_prediction_png
from tests.helpers.cli import run_cli

LABEL_MAP = LabelMap(
    classes=(
        ClassInfo(0, "ground", (0, 0, 0)),
        ClassInfo(1, "tree", (0, 200, 0)),
        ClassInfo(2, "sky", (100, 150, 255)),
    ),
    ignore_index=255,
    background_index=None,
    name="tiny",
)


@pytest.fixture
def project(tmp_path):
    """A 4-image folder dataset (3 classes and void) and an untrained checkpoint for it."""
    rng = np.random.default_rng(0)
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for index in range(4):
        mask = np.zeros((30, 36), np.uint8)
        mask[10:, :] = 1
        mask[:8, :] = 2
        mask[0, :5] = 255
        image = (rng.random((30, 36, 3)) * 60 + LABEL_MAP.palette()[mask] * 0.7).astype(np.uint8)
        Image.fromarray(image).save(images / f"frame{index}.png")
        Image.fromarray(mask).save(masks / f"frame{index}.png")
    LABEL_MAP.save(tmp_path / "labels.json")
    data = [
        "--data",
        "folder",
        "--images",
        str(images),
        "--masks",
        str(masks),
        "--label-map",
        str(tmp_path / "labels.json"),
        "--split",
        "val",
    ]
    config = TrainConfig()
    config.data = DataSpec(kind="folder", images=str(images), masks=str(masks), label_map=str(tmp_path / "labels.json"))
    torch.manual_seed(0)
    payload = checkpoint_payload(
        model=build_model("tiny_unet_small", 3), config=config.to_dict(), label_map=LABEL_MAP, step=0, epoch=0
    )
    return tmp_path, save_checkpoint(payload, tmp_path / "run" / "best.pt"), data


SAME_KEYS = ("miou", "miou_no_background", "pixel_acc", "mean_acc", "fwiou", "mean_f1", "iou", "per_class", "confusion")


def test_predictions_of_a_checkpoint_give_the_checkpoints_json(capsys, project):
    folder, checkpoint, data = project
    code, out, _ = run_cli(capsys, "eval", "--checkpoint", checkpoint, *data, "--json")
    assert code == 0
    reference = json.loads(out)
    predictions = folder / "predictions"
    code, out, err = run_cli(
        capsys, "predict", "--checkpoint", checkpoint, *sorted((folder / "images").iterdir()), "--out", predictions
    )
    assert code == 0, err
    code, out, err = run_cli(capsys, "eval", "--predictions", predictions, *data, "--json")  # reads the *_labels.png
    assert code == 0, err
    summary = json.loads(out)
    assert {key: summary[key] for key in SAME_KEYS} == {key: reference[key] for key in SAME_KEYS}
    assert summary["predictions"] == str(predictions.resolve()) and summary["data"] == reference["data"]


@pytest.mark.slow
def test_export_then_eval_and_predict_with_the_exported_model(capsys, project):
    folder, checkpoint, data = project
    code, out, err = run_cli(capsys, "export", checkpoint, "--format", "onnx", "--out", folder / "exported" / "m.onnx")
    assert code == 0, err
    assert "max |logit difference|" in out and "labels agree on 100.00%" in out
    assert (folder / "exported" / "m.onnx.seglab.json").is_file()
    code, out, _ = run_cli(capsys, "eval", "--checkpoint", checkpoint, *data, "--json")
    reference = json.loads(out)
    code, out, err = run_cli(capsys, "eval", "--model", folder / "exported" / "m.onnx", *data, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["miou"] == pytest.approx(reference["miou"], abs=1e-6) and summary["notes"] == []
    code, out, err = run_cli(
        capsys,
        "predict",
        "--model",
        folder / "exported" / "m.onnx",
        folder / "images" / "frame0.png",
        "--out",
        folder / "out",
    )
    assert code == 0, err
    labels = np.asarray(Image.open(folder / "out" / "frame0_labels.png"))
    assert labels.shape == (30, 36) and labels.max() <= 2


def test_a_mapping_file_and_the_table_report(capsys, project):
    folder, _, data = project
    predictions = folder / "renamed"
    predictions.mkdir()
    for index in range(4):
        mask = np.asarray(Image.open(folder / "masks" / f"frame{index}.png"))
        write_prediction_png(np.where(mask == 255, 3, mask), predictions / f"frame{index}.png")
    description = {"kind": "predictions", "path": ".", "class_names": ["earth", "tree", "sky", "cloud"]}
    (predictions / "model.seglab.json").write_text(json.dumps(description))
    (folder / "mapping.json").write_text(json.dumps({"earth": "ground"}))
    code, out, err = run_cli(capsys, "eval", "--predictions", predictions, *data, "--mapping", folder / "mapping.json")
    assert code == 0, err
    assert "earth->ground" in err and "cloud" in err
    code, out, err = run_cli(capsys, "eval", "--predictions", predictions, *data, "--json")
    summary = json.loads(out)
    # Without the mapping "earth" matches no dataset class: every ground pixel (2 rows x 36 x 4 images) is other.
    assert summary["predicted_other"] == {"ground": 288, "tree": 0, "sky": 0}
    assert summary["per_class"]["ground"]["recall"] == 0.0 and summary["iou"]["tree"] == 1.0


@pytest.mark.parametrize(
    ("arguments", "needle"),
    [
        (["eval"], "give exactly one of --checkpoint, --model or --predictions"),
        (["eval", "--checkpoint", "a.pt", "--model", "b.onnx"], "(got --checkpoint, --model)"),
        (["eval", "--model", "{folder}/images"], "is a folder of predictions; pass it with --predictions"),
        (["eval", "--predictions", "{folder}/small", "{data}"], "--resize-predictions"),
        (["eval", "--model", "{folder}/labels.json"], "cannot tell what"),
        (["eval", "--model", "{folder}/nothing.onnx"], "does not exist"),
        (["eval", "--model", "{folder}/run/best.pt", "--timeout-s", "0"], "--timeout-s must be positive"),
    ],
)
def test_bad_source_arguments_are_one_line_errors(capsys, project, arguments, needle):
    folder, _, data = project
    (folder / "small").mkdir()
    for index in range(4):
        write_prediction_png(np.zeros((15, 18), np.uint8), folder / "small" / f"frame{index}.png")
    argv = []
    for argument in arguments:
        argv += data if argument == "{data}" else [argument.format(folder=folder)]
    code, _, err = run_cli(capsys, *argv)
    lines = [line for line in err.splitlines() if line.strip() and "%|" not in line]
    assert code == 2 and len(lines) == 1 and needle in lines[0], err
