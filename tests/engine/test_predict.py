"""Tests for seglab/engine/predict.py: single-image inference, TTA, sliding window, whole-split evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from seglab.data.folder import FolderDataset
from seglab.data.label_map import shapes_label_map
from seglab.data.shapes import ShapesConfig, ShapesDataset
from seglab.engine.predict import (
    evaluate_dataset,
    image_to_tensor,
    images_to_batch,
    predict,
    predict_dataset,
    predict_probabilities,
    probability_entropy,
    save_prediction,
)
from seglab.metrics.confusion import ConfusionMatrix, per_image_metrics
from seglab.models import build_model

NUM_CLASSES = 7


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    """An untrained model: its predictions are arbitrary but deterministic, which is all these tests need."""
    torch.manual_seed(0)
    return build_model("tiny_unet_small", NUM_CLASSES).eval()


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)  # odd sizes on purpose


def test_predict_returns_labels_and_confidence_at_the_image_size(model, image):
    prediction = predict(model, image, return_probabilities=True)
    assert prediction.labels.shape == (37, 53) and prediction.labels.dtype == np.uint8
    assert prediction.confidence.shape == (37, 53) and prediction.confidence.dtype == np.float32
    assert prediction.probabilities.shape == (NUM_CLASSES, 37, 53) and prediction.probabilities.dtype == np.float32
    np.testing.assert_allclose(prediction.probabilities.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(prediction.labels, prediction.probabilities.argmax(axis=0))
    np.testing.assert_allclose(prediction.confidence, prediction.probabilities.max(axis=0), atol=1e-6)
    assert prediction.labels.max() < NUM_CLASSES and len(np.unique(prediction.labels)) > 1
    assert predict(model, image).probabilities is None  # only on demand


def test_flip_tta_averages_the_mirrored_prediction(model, image):
    batch = image_to_tensor(image)
    plain = predict_probabilities(model, batch)
    mirrored = predict_probabilities(model, batch.flip(-1)).flip(-1)
    flipped = predict_probabilities(model, batch, flip=True)
    torch.testing.assert_close(flipped, (plain + mirrored) / 2)
    prediction = predict(model, image, flip=True, return_probabilities=True)
    np.testing.assert_allclose(prediction.probabilities, flipped[0].numpy(), atol=1e-6)


def test_multi_scale_tta_returns_the_original_size(model, image):
    prediction = predict(model, image, scales=(0.5, 1.0, 1.5), flip=True, return_probabilities=True)
    assert prediction.labels.shape == (37, 53)
    np.testing.assert_allclose(prediction.probabilities.sum(axis=0), 1.0, atol=1e-5)
    single = predict(model, image, return_probabilities=True)
    assert not np.allclose(prediction.probabilities, single.probabilities)  # the other scales counted


def test_sliding_window_covers_the_image(model, image):
    prediction = predict(model, image, tile_size=24, return_probabilities=True)
    assert prediction.labels.shape == (37, 53) and prediction.labels.dtype == np.uint8
    np.testing.assert_allclose(prediction.probabilities.sum(axis=0), 1.0, atol=1e-5)
    whole = predict(model, image, return_probabilities=True)
    assert not np.allclose(prediction.probabilities, whole.probabilities)  # tiles really ran


@pytest.mark.parametrize("tile_size", [53, 64])
def test_sliding_window_with_a_tile_as_large_as_the_image_is_whole_image_prediction(model, image, tile_size):
    tiled = predict(model, image, tile_size=tile_size, return_probabilities=True)
    whole = predict(model, image, return_probabilities=True)
    np.testing.assert_array_equal(tiled.labels, whole.labels)
    np.testing.assert_allclose(tiled.probabilities, whole.probabilities, atol=1e-6)


def test_a_single_tile_matches_cropping_by_hand(model):
    """Tiles are averaged where they overlap: with one full tile per region the math is checkable."""
    picture = np.random.default_rng(1).integers(0, 256, (16, 40, 3), dtype=np.uint8)
    batch = image_to_tensor(picture)
    tiled = predict_probabilities(model, batch, tile_size=16, overlap=0.0)  # tiles at x = 0, 16, 24
    left = predict_probabilities(model, batch[..., :, 0:16])
    right = predict_probabilities(model, batch[..., :, 24:40])
    torch.testing.assert_close(tiled[..., :, 0:16], left)
    torch.testing.assert_close(tiled[..., :, 32:40], right[..., :, 8:16])


def test_image_to_tensor_rejects_non_rgb_uint8():
    with pytest.raises(ValueError, match="uint8 RGB"):
        image_to_tensor(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="uint8 RGB"):
        image_to_tensor(np.zeros((8, 8, 3), np.float32))


def test_a_batch_of_images_holds_image_to_tensors_values_in_channels_last_memory():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (9, 13, 3), dtype=np.uint8) for _ in range(3)]
    batch = images_to_batch(images)
    assert torch.equal(batch, torch.cat([image_to_tensor(image) for image in images]))  # bit for bit
    assert batch.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="uint8 RGB"):
        images_to_batch([images[0], np.zeros((9, 13), np.uint8)])


@pytest.fixture(scope="module")
def shapes_val():
    return ShapesDataset("val", ShapesConfig(train_size=1, val_size=6, image_size=32, seed=3))


def test_predict_dataset_scores_equal_per_image_metrics(model, shapes_val):
    calls = []
    results = list(predict_dataset(model, shapes_val, progress=lambda done, total: calls.append((done, total))))
    assert [r.index for r in results] == list(range(6)) and [r.sample_id for r in results] == shapes_val.ids
    assert calls[-1] == (6, 6)
    labels = np.stack([r.labels for r in results])
    masks = np.stack([shapes_val.load(i)[1] for i in range(6)])
    expected = per_image_metrics(labels, masks, NUM_CLASSES, shapes_val.ignore_index)
    np.testing.assert_array_equal(np.stack([r.confusion for r in results]), expected.confusion)
    np.testing.assert_allclose([r.miou for r in results], expected.miou)
    np.testing.assert_allclose([r.pixel_acc for r in results], expected.pixel_acc)
    np.testing.assert_allclose(np.stack([r.iou for r in results]), expected.iou)
    for result, (image, _) in zip(results, (shapes_val.load(i) for i in range(6))):
        np.testing.assert_array_equal(result.labels, predict(model, image).labels)
        assert result.confidence.shape == (32, 32)


def test_evaluate_dataset_split_matrix_is_the_sum_of_image_confusions(model, shapes_val):
    evaluation = evaluate_dataset(model, shapes_val, batch_size=4)
    total = sum(r.confusion for r in evaluation.results)
    matrix = ConfusionMatrix(NUM_CLASSES, ignore_index=shapes_val.ignore_index)
    for result in evaluation.results:
        matrix.update(result.labels, shapes_val.load(result.index)[1])
    np.testing.assert_array_equal(matrix.matrix, total)
    expected = matrix.compute(background_index=0)
    assert evaluation.metrics.miou == pytest.approx(expected.miou)
    np.testing.assert_allclose(evaluation.metrics.iou, expected.iou)
    assert evaluation.class_names == shapes_label_map().names
    assert evaluate_dataset(model, shapes_val, keep_results=False).results == []


def test_ranking_is_worst_first_and_images_without_the_class_come_last(model, shapes_val):
    evaluation = evaluate_dataset(model, shapes_val)
    ranked = evaluation.ranking()
    scores = [r.miou for r in ranked]
    assert scores == sorted(scores) and len(ranked) == 6
    class_id = 1
    by_class = evaluation.ranking(class_id)
    values = [r.iou[class_id] for r in by_class]
    defined = [v for v in values if not np.isnan(v)]
    assert values[: len(defined)] == sorted(defined)
    assert all(np.isnan(v) for v in values[len(defined) :])


def test_mixed_sizes_batch_by_size_and_match_one_by_one(model, tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(4)
    for index, (height, width) in enumerate([(20, 30), (20, 30), (24, 18), (20, 30)]):
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(images / f"s{index}.png")
        Image.fromarray(rng.integers(0, 3, (height, width), dtype=np.uint8)).save(masks / f"s{index}.png")
    dataset = FolderDataset(images, masks, label_map=None)
    three_class_model = build_model("tiny_unet_small", dataset.num_classes).eval()
    batched = evaluate_dataset(three_class_model, dataset, batch_size=8)
    single = evaluate_dataset(three_class_model, dataset, batch_size=1)
    for a, b in zip(batched.results, single.results):
        assert a.labels.shape == dataset.load(a.index)[1].shape
        np.testing.assert_array_equal(a.confusion, b.confusion)
    np.testing.assert_array_equal(sum(r.confusion for r in batched.results), sum(r.confusion for r in single.results))


def test_save_prediction_writes_mask_overlay_and_class_ids(model, image, tmp_path):
    prediction = predict(model, image)
    paths = save_prediction(image, prediction, shapes_label_map(), tmp_path, "photo")
    assert [p.name for p in paths] == ["photo_mask.png", "photo_overlay.png", "photo_labels.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(paths[2])), prediction.labels)
    assert np.asarray(Image.open(paths[0]).convert("RGB")).shape == (37, 53, 3)
    assert np.asarray(Image.open(paths[1]).convert("RGB")).shape == (37, 53, 3)


def test_probability_entropy_is_zero_for_certain_and_one_for_uniform():
    certain = np.zeros((4, 2, 2), np.float32)
    certain[1] = 1.0
    uniform = np.full((4, 2, 2), 0.25, np.float32)
    np.testing.assert_allclose(probability_entropy(certain), 0.0, atol=1e-6)
    np.testing.assert_allclose(probability_entropy(uniform), 1.0, atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 7, 3), (40, 33, 3)])
def test_image_to_tensor_is_what_the_evaluation_pipeline_feeds_the_model(shape):
    """Inference and the trainer's validation loader normalise through one implementation, bit for bit."""
    from seglab.data.presets import eval_transform

    image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    image.flags.writeable = False  # decoded files are read-only: no torch warning, no error
    mask = np.zeros(shape[:2], np.uint8)
    pipeline, _ = eval_transform(pad_multiple=1)(image, mask, np.random.default_rng(0))
    tensor = image_to_tensor(image)
    assert tensor.shape == (1, *pipeline.shape) and tensor.is_contiguous()
    assert torch.equal(tensor[0], pipeline)
    expected = (image.astype(np.float32) / 255 - np.array([0.485, 0.456, 0.406], np.float32)) / np.array(
        [0.229, 0.224, 0.225], np.float32
    )
    np.testing.assert_allclose(tensor[0].permute(1, 2, 0).numpy(), expected, rtol=1e-6, atol=1e-6)
