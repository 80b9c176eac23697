"""Tests for seglab.metrics.confusion: hand-computed values, agreement with the seed (CSAIL) and torchmetrics."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from seglab.errors import ConfigError, LabelError
from seglab.metrics import counting
from seglab.metrics.confusion import ConfusionMatrix, SegmentationMetrics, image_confusions, per_image_metrics

IGNORE = 255


# -- reference: the seed's CSAIL functions, copied verbatim ------------------------------------
# Their ignore label is -1: ``imLab += 1`` maps it to 0, and the histograms over range=(1, K)
# with K bins count only the shifted class ids 1..K (bin width (K-1)/K puts value v in bin v-1).
def accuracy(preds, label):
    valid = label >= 0
    acc_sum = (valid * (preds == label)).sum()
    valid_sum = valid.sum()
    acc = float(acc_sum) / (valid_sum + 1e-10)
    return acc, valid_sum


def intersectionAndUnion(imPred, imLab, numClass):  # noqa: N802, N803 (seed's names)
    imPred = np.asarray(imPred).copy()
    imLab = np.asarray(imLab).copy()

    imPred += 1
    imLab += 1
    # Remove classes from unlabeled pixels in gt image.
    # We should not penalize detections in unlabeled portions of the image.
    imPred = imPred * (imLab > 0)

    # Compute area intersection:
    intersection = imPred * (imPred == imLab)
    (area_intersection, _) = np.histogram(intersection, bins=numClass, range=(1, numClass))

    # Compute area union:
    (area_pred, _) = np.histogram(imPred, bins=numClass, range=(1, numClass))
    (area_lab, _) = np.histogram(imLab, bins=numClass, range=(1, numClass))
    area_union = area_pred + area_lab - area_intersection

    return (area_intersection, area_union)


def random_masks(seed: int, shape=(3, 17, 23), num_classes=7, used_classes=None, ignore_fraction=0.1):
    """Random (pred, target) uint8 masks; classes >= ``used_classes`` never appear anywhere."""
    rng = np.random.default_rng(seed)
    used = num_classes if used_classes is None else used_classes
    target = rng.integers(0, used, shape, dtype=np.uint8)
    pred = np.where(rng.random(shape) < 0.6, target, rng.integers(0, used, shape)).astype(np.uint8)
    target[rng.random(shape) < ignore_fraction] = IGNORE
    return pred, target


def reference_matrix(pred, target, num_classes, ignore_index=IGNORE):
    """torchvision-style counting with boolean compaction: the obvious implementation."""
    target = np.asarray(target, dtype=np.int64).ravel()
    pred = np.asarray(pred, dtype=np.int64).ravel()
    keep = target != ignore_index
    pairs = num_classes * target[keep] + pred[keep]
    return np.bincount(pairs, minlength=num_classes**2).reshape(num_classes, num_classes)


# -- hand-computed example ------------------------------------------------------------------------
# 4 classes; class 3 appears nowhere. The ignore pixel (bottom right) is predicted as 0 and must
# not count. Pairs (truth, pred): (0,0) (0,1) (1,1) (1,1) (2,1).
HAND_TARGET = np.array([[0, 0, 1], [1, 2, IGNORE]], dtype=np.uint8)
HAND_PRED = np.array([[0, 1, 1], [1, 1, 0]], dtype=np.uint8)


def test_hand_computed_example():
    result = ConfusionMatrix(4).update(HAND_PRED, HAND_TARGET).compute(background_index=0)
    expected_matrix = [[1, 1, 0, 0], [0, 2, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    assert result.confusion.tolist() == expected_matrix
    nan = math.nan
    # IoU = TP / (TP + FP + FN): 1/2, 2/4, 0/1, absent
    np.testing.assert_allclose(result.iou, [0.5, 0.5, 0.0, nan])
    np.testing.assert_allclose(result.precision, [1.0, 0.5, nan, nan])  # class 2 never predicted
    np.testing.assert_allclose(result.recall, [0.5, 1.0, 0.0, nan])
    np.testing.assert_allclose(result.f1, [2 / 3, 2 / 3, 0.0, nan])
    assert result.support.tolist() == [2, 2, 1, 0]
    assert result.predicted.tolist() == [1, 4, 0, 0]
    assert result.present.tolist() == [True, True, True, False]
    assert result.total_pixels == 5
    assert result.classes_averaged == 3
    assert result.pixel_acc == pytest.approx(3 / 5)
    assert result.mean_acc == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert result.miou == pytest.approx((0.5 + 0.5 + 0.0) / 3)
    assert result.miou_no_background == pytest.approx((0.5 + 0.0) / 2)
    assert result.mean_f1 == pytest.approx((2 / 3 + 2 / 3 + 0.0) / 3)
    assert result.fwiou == pytest.approx((2 * 0.5 + 2 * 0.5 + 1 * 0.0) / 5)


def test_background_none_keeps_every_class_in_the_no_background_mean():
    result = ConfusionMatrix(4).update(HAND_PRED, HAND_TARGET).compute(background_index=None)
    assert result.miou_no_background == result.miou
    with_background_2 = ConfusionMatrix(4).update(HAND_PRED, HAND_TARGET).compute(2)
    assert with_background_2.miou_no_background == pytest.approx(0.5)


def test_absent_classes_are_nan_and_excluded_without_warnings():
    pred, target = random_masks(0, num_classes=6, used_classes=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = ConfusionMatrix(6).update(pred, target).compute()
        empty = ConfusionMatrix(6).compute()
        per_image = per_image_metrics(pred, np.full_like(target, IGNORE), 6)
    assert np.isnan(result.iou[4:]).all() and np.isfinite(result.iou[:4]).all()
    assert result.classes_averaged == 4
    assert result.miou == pytest.approx(result.iou[:4].mean())
    assert result.mean_f1 == pytest.approx(result.f1[:4].mean())
    assert math.isnan(empty.miou) and math.isnan(empty.pixel_acc) and empty.classes_averaged == 0
    assert np.isnan(per_image.miou).all() and np.isnan(per_image.pixel_acc).all()


def test_metric_arrays_are_read_only():
    result = ConfusionMatrix(4).update(HAND_PRED, HAND_TARGET).compute()
    with pytest.raises(ValueError):
        result.iou[0] = 1.0


# -- agreement with the seed's CSAIL functions ------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_seed_intersection_and_union_and_accuracy(seed):
    num_classes = 9
    pred, target = random_masks(seed, shape=(4, 31, 29), num_classes=num_classes, used_classes=8)
    csail_label = target.astype(np.int64)
    csail_label[target == IGNORE] = -1
    csail_pred = pred.astype(np.int64)

    intersections = np.zeros(num_classes, dtype=np.int64)
    unions = np.zeros(num_classes, dtype=np.int64)
    confusion = ConfusionMatrix(num_classes)
    for image in range(len(target)):
        intersection, union = intersectionAndUnion(csail_pred[image], csail_label[image], num_classes)
        intersections += intersection
        unions += union
        acc, valid = accuracy(csail_pred[image], csail_label[image])
        single = ConfusionMatrix(num_classes).update(pred[image], target[image]).compute()
        assert single.total_pixels == valid
        assert single.pixel_acc == pytest.approx(acc, abs=1e-9)
        confusion.update(pred[image], target[image])

    result = confusion.compute()
    true_positive = np.diagonal(result.confusion)
    assert true_positive.tolist() == intersections.tolist()
    assert (result.support + result.predicted - true_positive).tolist() == unions.tolist()
    with np.errstate(invalid="ignore"):
        csail_iou = intersections / unions  # CSAIL divides by (union + 1e-10): 0 for absent
    np.testing.assert_array_equal(result.iou, csail_iou)  # NaN exactly where union == 0


# -- agreement with torchmetrics ----------------------------------------------------------------
@pytest.mark.parametrize("seed", [4, 5])
def test_matches_torchmetrics(seed):
    classification = pytest.importorskip("torchmetrics.classification")
    num_classes = 8
    pred, target = random_masks(seed, shape=(4, 40, 40), num_classes=num_classes, used_classes=6)
    pred_tensor, target_tensor = torch.from_numpy(pred).long(), torch.from_numpy(target).long()

    confmat = classification.MulticlassConfusionMatrix(num_classes, ignore_index=IGNORE)
    per_class = classification.MulticlassJaccardIndex(num_classes, average=None, ignore_index=IGNORE)
    macro = classification.MulticlassJaccardIndex(num_classes, average="macro", ignore_index=IGNORE)
    ours = ConfusionMatrix(num_classes)
    for half in (slice(0, 2), slice(2, 4)):
        for metric in (confmat, per_class, macro):
            metric.update(pred_tensor[half], target_tensor[half])
        ours.update(pred[half], target[half])
    result = ours.compute()

    np.testing.assert_array_equal(ours.matrix, confmat.compute().numpy())
    # torchmetrics reports absent classes as 0.0 (zero_division) where we report NaN ...
    theirs = per_class.compute().numpy()
    assert not result.present[6:].any() and (theirs[6:] == 0).all() and np.isnan(result.iou[6:]).all()
    np.testing.assert_allclose(result.iou[:6], theirs[:6], rtol=1e-6)  # float32 there
    # ... and since 1.x its macro mean also skips classes absent from both, like ours.
    assert result.miou == pytest.approx(float(macro.compute()), rel=1e-6)


# -- inputs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64, np.uint16])
def test_numpy_and_torch_inputs_of_any_integer_dtype_agree(dtype):
    pred, target = random_masks(6)
    expected = reference_matrix(pred, target, 7)
    as_numpy = ConfusionMatrix(7).update(pred.astype(dtype), target.astype(dtype)).matrix
    as_torch = (
        ConfusionMatrix(7)
        .update(torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(target.astype(np.int64)))
        .matrix
    )
    mixed = ConfusionMatrix(7).update(torch.from_numpy(pred), target).matrix
    assert as_numpy.dtype == np.int64 and as_numpy.shape == (7, 7)
    for matrix in (as_numpy, as_torch, mixed):
        np.testing.assert_array_equal(matrix, expected)


def test_read_only_masks_are_accepted_without_warnings():
    pred, target = random_masks(18)
    pred.setflags(write=False)
    target.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        matrix = ConfusionMatrix(7).update(pred, target).matrix
    np.testing.assert_array_equal(matrix, reference_matrix(pred, target, 7))


def test_single_image_equals_batch_of_one():
    pred, target = random_masks(7)
    batch = ConfusionMatrix(7)
    for image in range(len(target)):
        batch.update(pred[image][None], target[image][None])
    singles = ConfusionMatrix(7)
    for image in range(len(target)):
        singles.update(pred[image], target[image])
    np.testing.assert_array_equal(batch.matrix, singles.matrix)
    np.testing.assert_array_equal(singles.matrix, ConfusionMatrix(7).update(pred, target).matrix)


@pytest.mark.parametrize("ignore_index", [-1, 11, -100, 65535, None])
def test_other_ignore_indices(ignore_index):
    pred, target = random_masks(8, num_classes=11)
    void = target == IGNORE
    target = target.astype(np.int64)
    target[void] = 0 if ignore_index is None else ignore_index
    expected = reference_matrix(pred, target, 11, ignore_index=ignore_index)
    matrix = ConfusionMatrix(11, ignore_index).update(pred, target).matrix
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.sum() == (target.size if ignore_index is None else (~void).sum())
    target[0, 0, 0] = 40
    with pytest.raises(LabelError, match=r"values \[40\]"):
        ConfusionMatrix(11, ignore_index).update(pred, target)


def test_more_classes_than_the_row_limit_without_an_ignore_index():
    # Over _MAX_TARGET_ROWS classes and no ignore index: nothing to remap (this used to raise a TypeError).
    num_classes = counting._MAX_TARGET_ROWS + 44
    generator = np.random.default_rng(0)
    pred = generator.integers(0, num_classes, (2, 16, 16))
    target = generator.integers(0, num_classes, (2, 16, 16))
    matrix = ConfusionMatrix(num_classes, None).update(pred, target).matrix
    np.testing.assert_array_equal(matrix, reference_matrix(pred, target, num_classes, ignore_index=None))


def test_large_input_takes_the_threaded_path(monkeypatch):
    monkeypatch.setattr(counting, "_PARALLEL_MIN_PIXELS", 1_000)
    monkeypatch.setattr(counting, "_PIECE_PIXELS", 700)
    pred, target = random_masks(9, shape=(2, 60, 50))
    np.testing.assert_array_equal(ConfusionMatrix(7).update(pred, target).matrix, reference_matrix(pred, target, 7))


def test_out_of_range_target_names_the_values():
    pred, target = random_masks(10)
    target[0, 0, :3] = [40, 7, 254]
    with pytest.raises(ValueError, match=r"\[7, 40, 254\].*ignore index 255"):
        ConfusionMatrix(7).update(pred, target)
    with pytest.raises(LabelError, match=r"\[-3\]"):
        ConfusionMatrix(7).update(pred.astype(np.int64), np.full(pred.shape, -3))


def test_out_of_range_pred_names_the_values():
    pred, target = random_masks(11)
    pred[0, 0, 0] = 9
    with pytest.raises(ValueError, match=r"pred holds values \[9\]"):
        ConfusionMatrix(7).update(pred, target)
    with pytest.raises(LabelError, match=r"\[-1\]"):
        ConfusionMatrix(7).update(np.full(target.shape, -1), target)


def test_bad_inputs_raise_clear_errors():
    pred, target = random_masks(12)
    with pytest.raises(LabelError, match="dtype float32"):
        ConfusionMatrix(7).update(pred.astype(np.float32), target)
    with pytest.raises(LabelError, match="argmax"):
        ConfusionMatrix(7).update(np.zeros((3, 7, 17, 23), np.uint8), target)
    with pytest.raises(ConfigError, match="ignore_index 3 is also a class id"):
        ConfusionMatrix(7, ignore_index=3)
    with pytest.raises(ConfigError):
        ConfusionMatrix(0)
    with pytest.raises(ConfigError, match="background_index 9"):
        ConfusionMatrix(7).compute(background_index=9)


def test_update_rejects_nothing_on_empty_input():
    matrix = ConfusionMatrix(3).update(np.zeros((0, 4, 4), np.uint8), np.zeros((0, 4, 4), np.uint8))
    assert matrix.total_pixels == 0


@settings(max_examples=60, deadline=None)
@given(
    target=arrays(
        np.uint8,
        st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)),
        elements=st.sampled_from([0, 1, 2, 3, IGNORE]),
    ),
    data=st.data(),
)
def test_matrix_counts_every_non_ignore_pixel_once(target, data):
    pred = data.draw(arrays(np.uint8, target.shape, elements=st.integers(0, 3)))
    confusion = ConfusionMatrix(4).update(pred, target)
    matrix = confusion.matrix
    assert matrix.sum() == (target != IGNORE).sum()
    assert matrix.sum(axis=1).tolist() == [(target == c).sum() for c in range(4)]
    np.testing.assert_array_equal(matrix, reference_matrix(pred, target, 4))


# -- accumulation ----------------------------------------------------------------------------------
def test_merge_equals_update_on_concatenation():
    first, second = random_masks(13), random_masks(14)
    left = ConfusionMatrix(7).update(*first)
    right = ConfusionMatrix(7).update(*second)
    together = ConfusionMatrix(7).update(np.concatenate([first[0], second[0]]), np.concatenate([first[1], second[1]]))
    summed = left + right
    np.testing.assert_array_equal(summed.matrix, together.matrix)
    np.testing.assert_array_equal(sum([left, right]).matrix, together.matrix)
    assert left.total_pixels == ConfusionMatrix(7).update(*first).total_pixels  # + copies
    assert left.merge(right) is left
    np.testing.assert_array_equal(left.matrix, together.matrix)
    with pytest.raises(ConfigError):
        left.merge(ConfusionMatrix(5))


def test_copy_reset_and_from_matrix():
    confusion = ConfusionMatrix(7).update(*random_masks(15))
    twin = confusion.copy()
    confusion.reset()
    assert confusion.total_pixels == 0 and twin.total_pixels > 0
    rebuilt = ConfusionMatrix.from_matrix(twin.matrix, ignore_index=IGNORE)
    np.testing.assert_array_equal(rebuilt.matrix, twin.matrix)
    assert rebuilt.compute().miou == twin.compute().miou
    assert isinstance(rebuilt.tensor, torch.Tensor) and rebuilt.tensor.dtype == torch.int64
    with pytest.raises(ConfigError):
        ConfusionMatrix.from_matrix(np.ones((2, 3)))
    with pytest.raises(ConfigError):
        ConfusionMatrix.from_matrix(-np.ones((2, 2)))


def test_matrix_is_a_copy():
    confusion = ConfusionMatrix(4).update(HAND_PRED, HAND_TARGET)
    confusion.matrix[0, 0] = 99
    assert confusion.matrix[0, 0] == 1


def test_all_reduce_is_a_no_op_without_a_process_group():
    confusion = ConfusionMatrix(4).update(HAND_PRED, HAND_TARGET)
    assert confusion.all_reduce() is confusion
    assert confusion.total_pixels == 5


def test_all_reduce_sums_the_tensor_in_a_process_group(tmp_path):
    distributed = torch.distributed
    if not distributed.is_available() or distributed.is_initialized():
        pytest.skip("torch.distributed unavailable or already initialised")
    distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        confusion = ConfusionMatrix(4).update(HAND_PRED, HAND_TARGET).all_reduce()
        assert confusion.total_pixels == 5
    finally:
        distributed.destroy_process_group()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_inputs_accumulate_on_the_device():
    pred, target = random_masks(16)
    confusion = ConfusionMatrix(7).update(torch.from_numpy(pred).cuda(), torch.from_numpy(target).cuda())
    assert confusion.tensor.is_cuda
    np.testing.assert_array_equal(confusion.matrix, reference_matrix(pred, target, 7))
    per_image = per_image_metrics(torch.from_numpy(pred).cuda(), torch.from_numpy(target).cuda(), 7)
    np.testing.assert_array_equal(per_image.confusion.sum(0), confusion.matrix)


# -- reporting -------------------------------------------------------------------------------------
def test_to_dict_is_json_friendly():
    result = ConfusionMatrix(4).update(HAND_PRED, HAND_TARGET).compute()
    summary = result.to_dict(["background", "car", "tree", "sign"])
    json.dumps(summary, allow_nan=False)
    for key in ("miou", "miou_no_background", "pixel_acc", "mean_acc", "fwiou", "mean_f1", "classes_averaged"):
        assert key in summary
    assert summary["iou"] == {"background": 0.5, "car": 0.5, "tree": 0.0, "sign": None}
    assert summary["per_class"]["tree"]["precision"] is None
    assert summary["per_class"]["car"] == pytest.approx(
        {"iou": 0.5, "precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 2, "predicted": 4, "present": True}
    )
    assert summary["classes_averaged"] == 3
    assert list(result.to_dict()["iou"]) == ["0", "1", "2", "3"]
    with pytest.raises(ConfigError):
        result.to_dict(["only", "three", "names"])


def test_from_confusion_is_what_compute_uses():
    confusion = ConfusionMatrix(4).update(HAND_PRED, HAND_TARGET)
    direct = SegmentationMetrics.from_confusion(confusion.matrix, background_index=None)
    assert direct.to_dict() == confusion.compute(background_index=None).to_dict()


# -- per image -------------------------------------------------------------------------------------
def test_per_image_metrics_equal_one_matrix_per_image():
    pred, target = random_masks(17, shape=(5, 21, 19), num_classes=6)
    target[2] = IGNORE  # an image with nothing to score
    pred[3] = 0  # an image predicted as background only
    batch = per_image_metrics(torch.from_numpy(pred), torch.from_numpy(target), 6)
    assert batch.confusion.shape == (5, 6, 6) and batch.iou.shape == (5, 6)
    np.testing.assert_array_equal(image_confusions(pred, target, 6), batch.confusion)
    for image in range(5):
        single = ConfusionMatrix(6).update(pred[image], target[image]).compute()
        np.testing.assert_array_equal(batch.confusion[image], single.confusion)
        np.testing.assert_array_equal(batch.iou[image], single.iou)
        np.testing.assert_array_equal(batch.present[image], single.present)
        assert batch.total_pixels[image] == single.total_pixels
        np.testing.assert_equal(batch.miou[image], single.miou)
        np.testing.assert_equal(batch.pixel_acc[image], single.pixel_acc)
    order = batch.worst_first("miou")
    assert order[-1] == 2  # NaN last
    assert (np.diff(batch.miou[order[:-1]]) >= 0).all()


def test_per_image_metrics_accepts_a_single_mask_and_checks_values():
    per_image = per_image_metrics(HAND_PRED, HAND_TARGET, 4)
    assert per_image.confusion.shape == (1, 4, 4)
    assert per_image.miou[0] == pytest.approx(1 / 3)
    with pytest.raises(LabelError, match=r"\[9\]"):
        per_image_metrics(HAND_PRED, np.where(HAND_TARGET == 2, 9, HAND_TARGET), 4)


def test_class_counts_divide_and_masked_mean_are_the_core_of_every_score():
    """One confusion-count core: metrics and the metric definitions reduce the same counts."""
    from seglab.metrics.confusion import class_counts, divide, masked_mean
    from seglab.metrics.definitions import compute_definitions

    confusion = np.array([[5, 1, 0, 2], [0, 3, 0, 1], [0, 0, 0, 0]])  # (K, K + 1): an "other" column
    counts = class_counts(confusion)
    assert counts.true_positive.tolist() == [5, 3, 0] and counts.support.tolist() == [8, 4, 0]
    assert counts.predicted.tolist() == [5, 4, 0] and counts.union.tolist() == [8, 5, 0]
    iou = divide(counts.true_positive, counts.union)
    assert iou[:2].tolist() == [5 / 8, 3 / 5] and np.isnan(iou[2])
    assert masked_mean(iou) == pytest.approx((5 / 8 + 3 / 5) / 2)
    assert np.isnan(masked_mean(iou, np.array([False, False, True])))
    assert masked_mean(np.array([[1.0, np.nan], [0.5, 0.25]]), axis=1).tolist() == [1.0, 0.375]
    square = np.array([[5, 1, 0], [0, 3, 1], [2, 0, 4]])
    metrics = SegmentationMetrics.from_confusion(square, background_index=None)
    rows = {score.name: score.value for score in compute_definitions(square[None], background_index=None)}
    assert (
        metrics.miou
        == rows["mIoU, dataset-level, present classes"]
        == masked_mean(divide(np.diag(square), square.sum(0) + square.sum(1) - np.diag(square)))
    )
