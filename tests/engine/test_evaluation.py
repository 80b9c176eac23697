"""Tests for seglab/engine/evaluation.py: evaluating a checkpoint once and reusing the result from disk."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import seglab.engine.evaluation as evaluation_module
from seglab.data.shapes import ShapesConfig, ShapesDataset
from seglab.engine.checkpoint import checkpoint_payload, save_checkpoint
from seglab.engine.evaluation import Protocol, evaluate_checkpoint, evaluation_cache_path, load_evaluation
from seglab.engine.predict import evaluate_dataset
from seglab.errors import CheckpointError
from seglab.models import build_model
from tests.helpers.checkpoints import write_tiny_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread", "private_cache")


class CountingLoader:
    """Stands in for load_checkpoint to count how often the model is rebuilt."""

    def __init__(self):
        self.calls = 0
        self.real = evaluation_module.load_checkpoint

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.real(*args, **kwargs)


def test_result_matches_evaluating_the_model_directly(tmp_path, dataset):
    path = write_tiny_checkpoint(tmp_path / "best.pt")
    result = evaluate_checkpoint(path, dataset)
    model = build_model("tiny_unet_small", 7)
    model.load_state_dict(torch.load(path, weights_only=True)["model_state"])
    direct = evaluate_dataset(model.eval(), dataset)
    assert result.metrics.miou == pytest.approx(direct.metrics.miou)
    for cached, fresh in zip(result.results, direct.results):
        np.testing.assert_array_equal(cached.labels, fresh.labels)
        np.testing.assert_array_equal(cached.confusion, fresh.confusion)


def test_second_call_reads_the_disk_cache_without_rebuilding_the_model(tmp_path, dataset, monkeypatch):
    path = write_tiny_checkpoint(tmp_path / "best.pt")
    first = evaluate_checkpoint(path, dataset)
    cache_file = evaluation_cache_path(path, dataset, Protocol())
    assert cache_file.is_file() and cache_file.parent == tmp_path / "cache" / "evaluations"

    def must_not_load(*args, **kwargs):
        raise AssertionError("the cached evaluation should have been used")

    monkeypatch.setattr(evaluation_module, "load_checkpoint", must_not_load)
    progress = []
    second = evaluate_checkpoint(path, dataset, progress=lambda done, total: progress.append((done, total)))
    assert progress == [(4, 4)]
    assert second.metrics.miou == pytest.approx(first.metrics.miou)
    np.testing.assert_allclose(second.metrics.iou, first.metrics.iou)
    assert second.class_names == first.class_names
    for cached, fresh in zip(second.results, first.results):
        assert (cached.index, cached.sample_id) == (fresh.index, fresh.sample_id)
        np.testing.assert_array_equal(cached.labels, fresh.labels)
        np.testing.assert_array_equal(cached.confidence, fresh.confidence)
        assert cached.miou == pytest.approx(fresh.miou, nan_ok=True)
        np.testing.assert_allclose(cached.iou, fresh.iou)


def test_a_changed_checkpoint_file_is_evaluated_again(tmp_path, dataset, monkeypatch):
    path = write_tiny_checkpoint(tmp_path / "best.pt", seed=0)
    evaluate_checkpoint(path, dataset)
    before = path.stat()
    write_tiny_checkpoint(path, seed=1)  # retrained: same path, same size, new weights
    assert path.stat().st_size == before.st_size
    loader = CountingLoader()
    monkeypatch.setattr(evaluation_module, "load_checkpoint", loader)
    evaluate_checkpoint(path, dataset)
    assert loader.calls == 1
    evaluate_checkpoint(path, dataset)
    assert loader.calls == 1  # and cached again


def test_another_protocol_has_its_own_cache_entry(tmp_path, dataset, monkeypatch):
    path = write_tiny_checkpoint(tmp_path / "best.pt")
    evaluate_checkpoint(path, dataset)
    loader = CountingLoader()
    monkeypatch.setattr(evaluation_module, "load_checkpoint", loader)
    flipped = evaluate_checkpoint(path, dataset, protocol=Protocol(flip=True))
    assert loader.calls == 1 and len(flipped.results) == 4
    assert (
        Protocol(flip=True, scales=(0.75, 1.0), tile_size=256).describe() == "scales 0.75,1 + flip sliding window 256px"
    )


def test_a_corrupt_cache_file_is_recomputed(tmp_path, dataset, monkeypatch):
    path = write_tiny_checkpoint(tmp_path / "best.pt")
    first = evaluate_checkpoint(path, dataset)
    cache_file = evaluation_cache_path(path, dataset, Protocol())
    cache_file.write_bytes(b"\x00garbage" * 50)
    assert load_evaluation(cache_file, dataset) is None
    loader = CountingLoader()
    monkeypatch.setattr(evaluation_module, "load_checkpoint", loader)
    again = evaluate_checkpoint(path, dataset)
    assert loader.calls == 1 and again.metrics.miou == pytest.approx(first.metrics.miou)
    assert load_evaluation(cache_file, dataset) is not None  # rewritten


def test_a_cache_for_other_samples_is_not_used(tmp_path, dataset):
    path = write_tiny_checkpoint(tmp_path / "best.pt")
    evaluate_checkpoint(path, dataset)
    cache_file = evaluation_cache_path(path, dataset, Protocol())
    other = ShapesDataset("test", ShapesConfig(train_size=1, val_size=4, test_size=4, image_size=32, seed=5))
    assert load_evaluation(cache_file, other) is None


def test_use_cache_false_writes_nothing(tmp_path, dataset):
    path = write_tiny_checkpoint(tmp_path / "best.pt")
    evaluate_checkpoint(path, dataset, use_cache=False)
    assert not (tmp_path / "cache").exists()


def test_a_checkpoint_for_other_classes_is_refused(tmp_path, dataset):
    from seglab.data.label_map import camvid_label_map

    torch.manual_seed(0)
    model = build_model("tiny_unet_small", 11)
    payload = checkpoint_payload(model=model, config={}, label_map=camvid_label_map(), step=0, epoch=0)
    path = save_checkpoint(payload, tmp_path / "camvid.pt")
    with pytest.raises(CheckpointError, match="11 classes"):
        evaluate_checkpoint(path, dataset)
