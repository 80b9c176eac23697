"""Tests for seglab/engine/export.py: every architecture family exports to ONNX and TorchScript and loads back
as a source."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from seglab.data.shapes import ShapesConfig, ShapesDataset
from seglab.engine.export import export_checkpoint
from seglab.errors import SourceError
from seglab.sources import open_source
from tests.helpers.checkpoints import write_tiny_checkpoint

FAMILIES = [
    pytest.param("tiny_unet", {}, id="tiny_unet"),
    pytest.param(
        "unet", {"base_width": 4, "depth": 2, "upsampling": "transposed"}, id="unet-transposed", marks=pytest.mark.slow
    ),
    pytest.param("lraspp_mobilenet_v3_large", {}, id="lraspp", marks=pytest.mark.slow),
    pytest.param("deeplabv3_resnet18", {}, id="deeplabv3", marks=pytest.mark.slow),
    pytest.param("deeplabv3plus_resnet18", {"aux": False}, id="deeplabv3plus", marks=pytest.mark.slow),
    pytest.param("fcn_resnet50", {"aux": False}, id="fcn", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module")
def dataset():
    return ShapesDataset("val", ShapesConfig(train_size=1, val_size=2, image_size=44, seed=2))


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize(("name", "options"), FAMILIES)
def test_round_trip_per_architecture(tmp_path, dataset, name, options, fmt):
    checkpoint = write_tiny_checkpoint(tmp_path / "run" / "best.pt", name=name, options=options)
    out = tmp_path / ("model.onnx" if fmt == "onnx" else "model.pt")
    report = export_checkpoint(checkpoint, fmt, out, dataset=dataset, parity_images=2)
    assert report.ok and report.max_logit_difference <= 1e-3, report.summary()
    assert len(report.images) == 3 and "cropped to" in report.images[-1]  # an odd size checks dynamic shapes
    assert report.label_agreement > 0.999
    source, description = open_source(out)
    assert description.file == report.description and source.class_names == dataset.class_names
    image = dataset.load(1)[0][:37, :41]
    with source:
        prediction = source.predict(None, np.ascontiguousarray(image))
    assert prediction.labels.shape == (37, 41) and prediction.probabilities.shape == (7, 37, 41)


def test_a_failed_parity_check_writes_nothing(tmp_path, dataset):
    checkpoint = write_tiny_checkpoint(tmp_path / "run" / "best.pt")
    with pytest.raises(SourceError, match="differs from PyTorch by up to .*nothing was written"):
        export_checkpoint(checkpoint, "onnx", tmp_path / "model.onnx", dataset=dataset, tolerance=-1.0)
    assert list(tmp_path.glob("model*")) == []


def test_without_the_checkpoints_data_parity_runs_on_random_images(tmp_path):
    checkpoint = write_tiny_checkpoint(tmp_path / "run" / "best.pt")
    payload = torch.load(checkpoint, weights_only=True)
    payload["config"]["data"] = {"kind": "camvid", "root": str(tmp_path / "nowhere"), "split": "val"}
    torch.save(payload, checkpoint)
    report = export_checkpoint(checkpoint, "torchscript", tmp_path / "model.pt")
    assert report.ok and report.images[0].startswith("random") and "not available here" in report.notes[0]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("onnxscript") is None, reason="the dynamo ONNX exporter needs onnxscript")
def test_the_dynamo_exporter_when_onnxscript_is_installed(tmp_path, dataset):
    checkpoint = write_tiny_checkpoint(tmp_path / "run" / "best.pt")
    report = export_checkpoint(checkpoint, "onnx", tmp_path / "model.onnx", dataset=dataset, exporter="dynamo")
    assert report.exporter == "dynamo" and report.ok
