"""Tests for seglab/options.py and construction-time checks: one place validates what the CLI, the app
and the Python API accept, before any work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seglab.engine.config import BEST_METRICS, TrainConfig
from seglab.engine.evaluation import Protocol
from seglab.errors import CacheWriteWarning, ConfigError
from seglab.metrics.confusion import ConfusionMatrix
from seglab.options import (
    InferenceOptions,
    check_alpha,
    check_device_name,
    check_tile_size,
    parse_scales,
    resolve_device,
)


@pytest.mark.parametrize(
    "text, expected", [(None, (1.0,)), ("", (1.0,)), ("1", (1.0,)), ("0.75, 1,1.25", (0.75, 1.0, 1.25))]
)
def test_parse_scales(text, expected):
    assert parse_scales(text) == expected


@pytest.mark.parametrize("text", ["abc", "0", "-1", "1,,2", "nan", "inf", "1,0", "100"])
def test_bad_scales_are_config_errors(text):
    with pytest.raises(ConfigError, match="scale"):
        parse_scales(text)


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_device_names_accepted(name):
    assert check_device_name(name) == name


@pytest.mark.parametrize("name", ["tpu", "tpu9", "cuda:x", "gpu", "", "CPU", 0, None])
def test_device_names_refused(name):
    with pytest.raises(ConfigError, match="is not one of auto, cpu, cuda"):
        check_device_name(name)
    with pytest.raises(ConfigError):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_refused_by_name():
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda:0")
    assert resolve_device("auto") == torch.device("cpu")


def test_inference_options_check_everything_on_construction():
    assert InferenceOptions().scales == (1.0,)
    for bad in (
        dict(batch_size=0),
        dict(tile_size=0),
        dict(alpha=5.0),
        dict(alpha=float("nan")),
        dict(scales=(0.0,)),
        dict(device="tpu"),
        dict(batch_size=True),
    ):
        with pytest.raises(ConfigError):
            InferenceOptions(**bad)
    assert check_alpha(0) == 0.0 and check_tile_size(None) is None and check_tile_size(16) == 16


def test_the_evaluation_protocol_refuses_a_zero_scale():
    with pytest.raises(ConfigError, match="scale 0"):
        Protocol(scales=(0.0,))
    with pytest.raises(ConfigError, match="tile size"):
        Protocol(tile_size=0)


def test_predict_refuses_a_zero_scale_instead_of_predicting_one_class():
    from seglab.engine.predict import predict
    from seglab.models import build_model

    model = build_model("tiny_unet_small", 3).eval()
    with pytest.raises(ConfigError, match="scale 0"):
        predict(model, np.zeros((16, 16, 3), np.uint8), scales=(0.0,))


def test_train_config_from_a_list_is_a_clear_error():
    with pytest.raises(ConfigError, match="must be a JSON object .* got list"):
        TrainConfig.from_dict([1, 2])


@pytest.mark.parametrize(
    "options, named",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"device": "tpu"}, "device 'tpu'"),
        ({"num_workers": -1}, "num_workers"),
        ({"best_metric": "bogus"}, "best_metric 'bogus'"),
        ({"optimizer": "lion"}, "unknown optimizer .lion."),
        ({"schedule": "warmup"}, "schedule"),
        ({"lr": float("inf")}, "lr"),
    ],
)
def test_train_config_is_rejected_at_construction(options, named):
    with pytest.raises(ConfigError, match=named):
        TrainConfig(**options)


def test_every_best_metric_choice_is_a_metric():
    summary = ConfusionMatrix(2).compute().to_dict(["a", "b"])
    assert set(BEST_METRICS) <= set(summary)
    assert all(isinstance(summary[name], (float, type(None))) for name in BEST_METRICS)


def test_a_stats_cache_that_cannot_be_written_warns_and_returns_the_statistics(tmp_path):
    from seglab.analysis.stats import compute_stats
    from seglab.data.shapes import ShapesConfig, ShapesDataset

    blocker = tmp_path / "file"
    blocker.write_text("x")
    dataset = ShapesDataset("test", ShapesConfig(test_size=3, image_size=32))
    with pytest.warns(CacheWriteWarning, match="could not write the statistics cache"):
        stats = compute_stats(dataset, cache_dir=blocker)
    assert stats.num_images == 3
