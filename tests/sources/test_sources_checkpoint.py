"""Tests for seglab checkpoints as prediction sources (seglab/sources/checkpoint_source.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from seglab.data.folder import FolderDataset
from seglab.data.label_map import ClassInfo, LabelMap
from seglab.data.shapes import ShapesConfig, ShapesDataset
from seglab.engine.evaluation import (
    Protocol,
    evaluate_checkpoint,
    evaluate_source,
    evaluation_cache_path,
    source_cache_path,
)
from seglab.sources import CheckpointSource, open_source
from tests.helpers.checkpoints import write_tiny_checkpoint

pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture
def checkpoint(tmp_path):
    return write_tiny_checkpoint(tmp_path / "run" / "best.pt", seed=2)


def test_a_run_folder_opens_as_a_checkpoint_source_with_the_old_cache_key(tmp_path, checkpoint):
    dataset = ShapesDataset("val", ShapesConfig(train_size=1, val_size=3, image_size=32, seed=6))
    source, description = open_source(tmp_path / "run")
    assert isinstance(source, CheckpointSource) and description.kind == "checkpoint" and source.path == checkpoint
    for protocol in (Protocol(), Protocol(flip=True)):
        assert source_cache_path(CheckpointSource(checkpoint, protocol=protocol), dataset) == evaluation_cache_path(
            checkpoint, dataset, protocol
        )
    reference = evaluate_checkpoint(checkpoint, dataset)
    evaluation = evaluate_source(source, dataset)  # read from the cache evaluate_checkpoint wrote
    assert evaluation.metrics.to_dict() == reference.metrics.to_dict() and evaluation.source == reference.source
    assert "tiny_unet_small" in reference.source and reference.notes == []


def test_a_checkpoint_of_other_classes_is_mapped_by_name_onto_a_subset(tmp_path, checkpoint):
    label_map = LabelMap(
        classes=(
            ClassInfo(0, "Background", (0, 0, 0)),
            ClassInfo(1, "Circle", (255, 0, 0)),
            ClassInfo(2, "sky", (0, 0, 255)),
        ),
        ignore_index=255,
        background_index=0,
        name="subset",
    )
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(images / f"s{index}.png")
        Image.fromarray(rng.integers(0, 3, (24, 24), dtype=np.uint8)).save(masks / f"s{index}.png")
    dataset = FolderDataset(images, masks, label_map=label_map)
    evaluation = evaluate_source(CheckpointSource(checkpoint), dataset, use_cache=False)
    assert evaluation.other_label == 3 and evaluation.metrics.confusion.shape == (3, 4)
    assert "dataset classes no source class maps to: sky" in evaluation.notes
    assert any("count as 'other'" in note and "square" in note for note in evaluation.notes)
    predicted = np.concatenate([result.labels.ravel() for result in evaluation.results])
    assert set(np.unique(predicted)) <= {0, 1, 3}
