"""Tests for seglab.metrics.definitions and class_breakdown: every definition against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seglab.errors import ConfigError
from seglab.metrics.class_breakdown import per_class_breakdown
from seglab.metrics.confusion import ConfusionMatrix, image_confusions
from seglab.metrics.definitions import APP_DEFINITION, compute_definitions
from seglab.viz import definitions_figure


def confusion(rows: list[list[int]], num_classes: int = 4) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    matrix[: len(rows), : len(rows)] = rows
    return matrix


# Two images, classes 0 (background), 1, 2 and 3; rows = ground truth, columns = prediction.
# Image A: class 2 absent (GT and prediction). Image B: class 1 not in GT but predicted on 1 pixel.
# Class 3 occurs nowhere.
IMAGE_A = confusion([[50, 2, 0], [3, 5, 0], [0, 0, 0]])
IMAGE_B = confusion([[30, 1, 4], [0, 0, 0], [1, 0, 5]])
# Per image, IoU = TP / (GT + predicted - TP):
#   A: class 0: 50 / (52 + 53 - 50) = 50/55, class 1: 5 / (8 + 7 - 5) = 5/10, class 2 absent.
#   B: class 0: 30 / (35 + 31 - 30) = 30/36, class 1: 0 / (0 + 1 - 0) = 0, class 2: 5 / (6 + 9 - 5) = 5/10.
# Summed: GT (87, 8, 6, 0), predicted (84, 8, 9, 0), TP (80, 5, 5, 0):
#   class 0: 80 / (87 + 84 - 80) = 80/91, class 1: 5 / (8 + 8 - 5) = 5/11, class 2: 5 / (6 + 9 - 5) = 5/10.
A_IOU = {0: 50 / 55, 1: 5 / 10}
B_IOU = {0: 30 / 36, 1: 0.0, 2: 5 / 10}
SPLIT_IOU = {0: 80 / 91, 1: 5 / 11, 2: 5 / 10}
CORRECT, LABELLED = 90, 101  # A: 55 of 60, B: 35 of 41


def by_key(scores) -> dict[str, float]:
    return {score.key: score.value for score in scores}


def test_every_definition_matches_the_hand_computed_value():
    values = by_key(compute_definitions([IMAGE_A, IMAGE_B], background_index=0))
    expected = {
        "dataset_miou": (80 / 91 + 5 / 11 + 5 / 10) / 3,  # class 3 absent: skipped
        "dataset_miou_no_background": (5 / 11 + 5 / 10) / 2,
        "dataset_miou_absent_zero": (80 / 91 + 5 / 11 + 5 / 10 + 0) / 4,
        "dataset_miou_absent_one": (80 / 91 + 5 / 11 + 5 / 10 + 1) / 4,
        "micro_iou": 90 / (90 + 2 * 11),  # 11 wrong pixels
        "fwiou": (87 * 80 / 91 + 8 * 5 / 11 + 6 * 5 / 10) / 101,
        "pixel_accuracy": 90 / 101,
        "mean_class_accuracy": (80 / 87 + 5 / 8 + 5 / 6) / 3,
        # A averages its present classes {0, 1}; B its present classes {0, 1 (false alarm), 2}.
        "imagewise_miou": ((50 / 55 + 5 / 10) / 2 + (30 / 36 + 0 + 5 / 10) / 3) / 2,
        "imagewise_miou_no_background": (5 / 10 + (0 + 5 / 10) / 2) / 2,
        "imagewise_miou_absent_one": ((50 / 55 + 5 / 10 + 1 + 1) / 4 + (30 / 36 + 0 + 5 / 10 + 1) / 4) / 2,
        "imagewise_miou_absent_zero": ((50 / 55 + 5 / 10) / 4 + (30 / 36 + 0 + 5 / 10) / 4) / 2,
        "pooled_pairs_miou": (50 / 55 + 5 / 10 + 30 / 36 + 0 + 5 / 10) / 5,
        "imagewise_micro_iou": (55 / (55 + 2 * 5) + 35 / (35 + 2 * 6)) / 2,
    }
    assert set(values) == set(expected)
    for key, value in expected.items():
        assert values[key] == pytest.approx(value, abs=1e-12), key


def test_each_score_says_how_it_is_computed_and_who_uses_it():
    scores = compute_definitions([IMAGE_A, IMAGE_B], background_index=0)
    assert len({score.name for score in scores}) == len(scores)
    assert all(score.formula and score.used_by and score.level in ("dataset", "image-wise") for score in scores)
    assert APP_DEFINITION in {score.key for score in scores}
    micro = next(score for score in scores if score.key == "micro_iou")
    assert "2 × wrong" in micro.formula and "micro" in micro.used_by
    row = scores[0].to_row()
    assert set(row) == {"definition", "value", "level", "formula", "who uses it", "note"}


def test_without_a_background_class_the_background_views_are_not_applicable():
    with_background = by_key(compute_definitions([IMAGE_A, IMAGE_B], background_index=0))
    scores = compute_definitions([IMAGE_A, IMAGE_B], background_index=None)
    values = by_key(scores)
    for key in ("dataset_miou_no_background", "imagewise_miou_no_background"):
        assert math.isnan(values[key])
        score = next(score for score in scores if score.key == key)
        assert score.to_row()["value"] is None and "n/a" in score.note
    assert values["dataset_miou"] == with_background["dataset_miou"]
    assert len(definitions_figure(scores).data[0].y) == len(scores) - 2  # n/a rows get no bar


def test_dataset_definitions_agree_with_confusion_matrix_compute():
    generator = np.random.default_rng(0)
    target = generator.integers(0, 5, size=(6, 20, 24))
    target[target == 4] = 255  # void
    target[:3][target[:3] == 3] = 0  # class 3 only in the last images
    pred = np.where(generator.random(target.shape) < 0.7, target, generator.integers(0, 4, size=target.shape))
    pred = np.where(pred == 255, 0, pred)
    per_image = image_confusions(pred, target, num_classes=4, ignore_index=255)
    metrics = ConfusionMatrix(4, ignore_index=255).update(pred, target).compute(background_index=0)
    values = by_key(compute_definitions(per_image, background_index=0))
    assert values["dataset_miou"] == pytest.approx(metrics.miou)
    assert values["dataset_miou_no_background"] == pytest.approx(metrics.miou_no_background)
    assert values["pixel_accuracy"] == pytest.approx(metrics.pixel_acc)
    assert values["mean_class_accuracy"] == pytest.approx(metrics.mean_acc)
    assert values["fwiou"] == pytest.approx(metrics.fwiou)
    per_class = per_class_breakdown(per_image)
    np.testing.assert_allclose([row.dataset_iou for row in per_class], metrics.iou)


@pytest.mark.slow
def test_torchmetrics_conventions_named_in_used_by_hold():
    from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex
    from torchmetrics.segmentation import MeanIoU

    generator = np.random.default_rng(1)
    target = torch.from_numpy(generator.integers(0, 4, size=(5, 16, 16)))  # class 4 never occurs
    pred = torch.where(
        torch.from_numpy(generator.random((5, 16, 16)) < 0.6),
        target,
        torch.from_numpy(generator.integers(0, 4, size=(5, 16, 16))),
    )
    target[0][target[0] == 2] = 0  # class 2 absent from the first image's ground truth
    values = by_key(compute_definitions(image_confusions(pred, target, 5, ignore_index=None), background_index=0))
    assert values["dataset_miou"] == pytest.approx(float(MulticlassJaccardIndex(5)(pred, target)), abs=1e-6)
    assert values["micro_iou"] == pytest.approx(
        float(MulticlassJaccardIndex(5, average="micro")(pred, target)), abs=1e-6
    )
    assert values["pixel_accuracy"] == pytest.approx(
        float(MulticlassAccuracy(5, average="micro")(pred, target)), abs=1e-6
    )
    assert values["mean_class_accuracy"] == pytest.approx(float(MulticlassAccuracy(5)(pred, target)), abs=1e-6)
    pooled = MeanIoU(num_classes=5, input_format="index")(pred, target)
    assert values["pooled_pairs_miou"] == pytest.approx(float(pooled), abs=1e-6)


def test_per_class_breakdown_explains_the_gap():
    rows = {row.name: row for row in per_class_breakdown([IMAGE_A, IMAGE_B], ["bg", "one", "two", "three"])}
    one = rows["one"]
    assert one.dataset_iou == pytest.approx(5 / 11) and one.imagewise_iou == pytest.approx((5 / 10 + 0) / 2)
    assert (one.images_with_class, one.images_predicted_only, one.images_scored) == (1, 1, 2)
    assert one.mean_pixels_per_image == 8 and one.pixel_share == pytest.approx(8 / 101)
    assert one.gap < 0 and "falsely predicted in 1 image " in one.explanation
    two = rows["two"]
    assert two.dataset_iou == two.imagewise_iou == pytest.approx(0.5) and "agree" in two.explanation
    three = rows["three"]
    assert math.isnan(three.dataset_iou) and "absent" in three.explanation
    assert three.to_row()["dataset IoU"] is None and rows["bg"].to_row()["images with it"] == "2/2"


def test_image_wise_is_lower_when_the_class_fails_where_it_is_small():
    # One large, well segmented instance of class 1 and three small, badly segmented ones.
    images = [confusion([[900, 0], [0, 100]], 2)] + [confusion([[95, 3], [3, 2]], 2)] * 3
    row = per_class_breakdown(images, ["bg", "thing"])[1]
    assert row.dataset_iou == pytest.approx(106 / (115 + 115 - 106))  # GT = predicted = 100 + 3 * 5
    assert row.imagewise_iou == pytest.approx((1 + 3 * 2 / 8) / 4)
    assert row.iou_where_small == pytest.approx(2 / 8) and row.iou_where_large == pytest.approx((1 + 2 / 8) / 2)
    assert "where it is small" in row.explanation and "weights each of those 4 images equally" in row.explanation


def test_dataset_iou_is_the_union_weighted_mean_of_image_ious():
    generator = np.random.default_rng(2)
    images = generator.integers(0, 20, size=(7, 3, 3))
    true_positive = np.diagonal(images, axis1=1, axis2=2)
    union = images.sum(axis=2) + images.sum(axis=1) - true_positive
    weighted = (union * (true_positive / union)).sum(axis=0) / union.sum(axis=0)
    np.testing.assert_allclose([row.dataset_iou for row in per_class_breakdown(images)], weighted)


def test_an_all_void_image_is_left_out_of_image_wise_means():
    void_image = np.zeros((4, 4), dtype=np.int64)
    values = by_key(compute_definitions([IMAGE_A, IMAGE_B, void_image]))
    reference = by_key(compute_definitions([IMAGE_A, IMAGE_B]))
    assert values == pytest.approx(reference, nan_ok=True)


@pytest.mark.parametrize("bad", [np.zeros((2, 3, 5)), -np.ones((1, 2, 2)), np.zeros((0,))])  # (N, K, K + 1) is valid
def test_bad_confusions_raise_config_error(bad):
    with pytest.raises(ConfigError):
        compute_definitions(bad)


def test_bad_background_index_and_names_raise():
    with pytest.raises(ConfigError, match="background_index"):
        compute_definitions([IMAGE_A], background_index=7)
    with pytest.raises(ConfigError, match="class names"):
        per_class_breakdown([IMAGE_A], ["only", "two"])


def test_key_choices_pick_the_definitions_they_compare_and_skip_background_without_one():
    from seglab.metrics.definitions import key_choices

    confusion = np.array([[[5, 1, 0], [0, 3, 0], [0, 0, 0]]])  # class 2 absent: the absent-class choice moves
    with_background = key_choices(compute_definitions(confusion, background_index=0))
    assert [len(choice.scores) for choice in with_background] == [2, 2, 3]
    absent = with_background[2].scores
    assert absent[1].value < absent[0].value < absent[2].value  # 0 punishes, 1 is a free point
    without = key_choices(compute_definitions(confusion, background_index=None))
    assert [choice.title for choice in without] == [with_background[0].title, with_background[2].title]
