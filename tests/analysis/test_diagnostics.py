"""Diagnostics on hand-built masks with known answers (objects, boundaries, calibration, slices)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from seglab.analysis.diagnostics import DiagnosticsAccumulator, diagnostics_summary
from seglab.analysis.diagnostics.accumulator import Diagnostics
from seglab.analysis.diagnostics.boundary import band_width, boundary_counts, boundary_f1, boundary_iou
from seglab.analysis.diagnostics.calibration import (
    calibration_counts,
    class_calibration_error,
    confidently_wrong,
    expected_calibration_error,
    reliability_bins,
    wrong_confidence_histogram,
)
from seglab.analysis.diagnostics.objects import SizeBuckets, find_objects, missed_objects, object_summary
from seglab.analysis.diagnostics.slices import builtin_slices, read_tags, slice_table, tag_slices
from seglab.errors import ConfigError

VOID = 255


# -- objects -------------------------------------------------------------------------------------
def _two_objects() -> tuple[np.ndarray, np.ndarray]:
    """A 100x100 image: a 10x10 class-1 object exactly half covered, a 4x4 one predicted as class 2,
    a 3x3 false class-1 blob far from both, and a void stripe."""
    target = np.zeros((100, 100), np.uint8)
    target[10:20, 10:20] = 1
    target[50:54, 50:54] = 1
    target[:, 95:] = VOID
    pred = np.zeros_like(target)
    pred[10:20, 10:15] = 1  # left half of the first object
    pred[50:54, 50:54] = 2
    pred[80:83, 80:83] = 1  # false blob
    pred[:, 97:] = 1  # on void: neither an object nor a blob
    return pred, target


def test_objects_half_covered_missed_and_false_blob() -> None:
    pred, target = _two_objects()
    objects, blobs = find_objects(pred, target, num_classes=3, ignore_index=VOID, image=7)
    ones = objects.select(objects.class_id == 1)
    order = np.argsort(-ones.area)
    assert ones.area[order].tolist() == [100, 16]
    assert ones.coverage[order].tolist() == [0.5, 0.0]
    assert ones.dice[order][0] == pytest.approx(2 * 50 / (100 + 50))
    assert ones.wrong_class[order].tolist() == [0, 2]  # what the model said instead
    assert set(ones.image.tolist()) == {7}
    assert (ones.x[order][0], ones.y[order][0], ones.w[order][0], ones.h[order][0]) == (10, 10, 10, 10)
    # The 3x3 class-1 blob on background, and the class-2 prediction over the missed object.
    assert blobs.class_id.tolist() == [1, 2] and blobs.area.tolist() == [9, 16] and blobs.wrong_class.tolist() == [0, 1]

    sizes = SizeBuckets(small=0.005, large=0.05, min_share=1e-4, min_pixels=5)  # 16 px small, 100 px medium
    summary = object_summary(objects, blobs, ["bg", "thing", "other"], cover=0.5, sizes=sizes)
    thing = summary["per_class"]["thing"]
    assert (thing["objects"], thing["detected"], thing["recall"]) == (2, 1, 0.5)
    assert thing["recall_small"] == 0.0 and thing["recall_medium"] == 1.0 and thing["recall_large"] is None
    assert thing["lesion_dice"] == pytest.approx((2 / 3 + 0) / 2)  # the missed object counts 0
    assert thing["false_blobs"] == 1 and thing["false_blobs_small"] == 1
    stricter = object_summary(objects, blobs, ["bg", "thing", "other"], cover=0.6, sizes=sizes)
    assert stricter["per_class"]["thing"]["detected"] == 0

    missed = missed_objects(objects, cover=0.6, sizes=sizes, class_id=1)
    assert missed.area.tolist() == [16, 100]
    assert missed_objects(objects, cover=0.6, sizes=sizes, class_id=1, largest_first=True).area.tolist() == [100, 16]


def test_objects_use_eight_connectivity_and_skip_specks() -> None:
    target = np.zeros((50, 50), np.uint8)
    target[5, 5] = target[6, 6] = 1  # diagonal neighbours: one object
    objects, _ = find_objects(target, target, 2, VOID)
    assert sorted(objects.select(objects.class_id == 1).area.tolist()) == [2]
    summary = object_summary(
        objects,
        objects.select(np.zeros(len(objects), bool)),
        ["a", "b"],
        sizes=SizeBuckets(min_share=0.001, min_pixels=1),
    )  # 2 px < 2.5 px: a speck
    assert summary["per_class"]["b"]["objects"] == 0
    summary = object_summary(
        objects, objects.select(np.zeros(len(objects), bool)), ["a", "b"], sizes=SizeBuckets(min_share=0, min_pixels=3)
    )  # 2 px < 3 px: a speck too
    assert summary["per_class"]["b"]["objects"] == 0
    kept = object_summary(
        objects, objects.select(np.zeros(len(objects), bool)), ["a", "b"], sizes=SizeBuckets(min_share=0, min_pixels=2)
    )
    assert kept["per_class"]["b"]["objects"] == 1
    with pytest.raises(ConfigError):
        SizeBuckets(small=0.2, large=0.1)


# -- boundaries ----------------------------------------------------------------------------------
def _square(shift: int = 0) -> np.ndarray:
    mask = np.zeros((10, 10), np.uint8)
    mask[3:7, 3 + shift : 7 + shift] = 1
    return mask


def test_boundary_iou_of_a_square_shifted_by_two_pixels() -> None:
    counts = boundary_counts(_square(2), _square(), num_classes=2, ignore_index=VOID, width=1)
    # Each 4x4 square's band is its 12-pixel ring; the rings share 4 pixels: 4 / (12 + 12 - 4).
    assert counts[:, 1].tolist() == [4, 12, 12]
    assert boundary_iou(counts)[1] == pytest.approx(0.2)
    same = boundary_counts(_square(), _square(), 2, VOID, width=1)
    assert boundary_iou(same).tolist() == [1.0, 1.0]


def _reference_boundary(mask: np.ndarray, dilation: int) -> np.ndarray:
    """Cheng et al.'s mask_to_boundary (boundary_iou_api): pad with zeros, erode d times, subtract."""
    padded = cv2.copyMakeBorder(mask.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=dilation)[1:-1, 1:-1]
    return mask.astype(bool) & ~eroded.astype(bool)


def test_boundary_iou_matches_the_reference_implementation() -> None:
    rng = np.random.default_rng(0)
    target = cv2.resize(rng.integers(0, 4, (12, 16), dtype=np.uint8), (160, 120), interpolation=cv2.INTER_NEAREST)
    pred = np.roll(target, 3, axis=1)
    pred[40:60, 40:90] = 2
    width = band_width(target.shape, 0.02)
    assert width == 4  # 2% of a 200-pixel diagonal
    ours = boundary_iou(boundary_counts(pred, target, 4, VOID, width))
    for class_id in range(4):
        truth = _reference_boundary(target == class_id, width) & (target == class_id)
        predicted = _reference_boundary(pred == class_id, width) & (pred == class_id)
        expected = (truth & predicted).sum() / (truth | predicted).sum()
        assert ours[class_id] == pytest.approx(expected)


def test_boundary_f1_of_a_shifted_square() -> None:
    # Within 2 px every contour pixel finds its partner; within 1 px (a cross) 8 of 12 do on each side.
    assert boundary_f1(_square(2), _square(), 2, VOID, tolerance=2)[1] == pytest.approx(1.0)
    assert boundary_f1(_square(2), _square(), 2, VOID, tolerance=1)[1] == pytest.approx(2 / 3)
    absent = boundary_f1(np.zeros((10, 10), np.uint8), _square(), 3, VOID, tolerance=1)
    assert absent[1] == 0.0 and np.isnan(absent[2])  # missed class scores 0, unseen class NaN
    on_void = np.zeros((10, 10), np.uint8)
    on_void[0, :] = VOID
    only_on_void = on_void.copy()
    only_on_void[0, :] = 2
    assert np.isnan(boundary_f1(only_on_void, on_void, 3, VOID, tolerance=1)[2])  # predicted on void only: unseen


# -- calibration ---------------------------------------------------------------------------------
def _pixels(confidences: list[tuple[float, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(confidence, pixels, correct) groups as flat pred/target/confidence rows (class 0 predicted)."""
    conf, correct = [], []
    for value, total, right in confidences:
        conf += [value] * total
        correct += [True] * right + [False] * (total - right)
    pred = np.zeros((1, len(conf)), np.uint8)
    target = np.where(np.array(correct), 0, 1).astype(np.uint8)[None]
    return pred, target, np.array(conf, np.float32)[None]


def test_ece_of_a_perfectly_calibrated_and_an_overconfident_model() -> None:
    calibrated = calibration_counts(*_pixels([(0.75, 100, 75), (0.95, 100, 95)]), 2, VOID)
    assert expected_calibration_error(calibrated) == pytest.approx(0.0, abs=1e-6)
    overconfident = calibration_counts(*_pixels([(0.9, 200, 120)]), 2, VOID)
    assert expected_calibration_error(overconfident) == pytest.approx(0.3, abs=1e-6)
    assert class_calibration_error(overconfident)[0] == pytest.approx(0.3, abs=1e-6)
    assert np.isnan(class_calibration_error(overconfident)[1])  # never predicted
    bins = reliability_bins(overconfident)
    assert len(bins["pixels"]) == 15 and bins["pixels"][13] == 200 and bins["accuracy"][13] == pytest.approx(0.6)


def test_ece_matches_torchmetrics() -> None:
    from torchmetrics.classification import MulticlassCalibrationError

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 32, 32, generator=generator) * 3
    target = torch.randint(0, 4, (2, 32, 32), generator=generator)
    target[:, :4] = VOID
    probabilities = logits.softmax(1)
    confidence, pred = probabilities.max(1)
    metric = MulticlassCalibrationError(num_classes=4, n_bins=15, norm="l1", ignore_index=VOID)
    expected = float(metric(probabilities, target))
    images = zip(pred.numpy(), target.numpy(), confidence.numpy(), strict=True)
    counts = sum(calibration_counts(p, t, c, 4, VOID) for p, t, c in images)
    assert expected > 0.05
    assert expected_calibration_error(counts) == pytest.approx(expected, abs=1e-5)
    # Float16 confidence (as cached) is binned by table lookup exactly like its float32 value.
    half = confidence.half().numpy()
    for p, t, c in zip(pred.numpy(), target.numpy(), half, strict=True):
        as_float = calibration_counts(p, t, c.astype(np.float32), 4, VOID)
        np.testing.assert_array_equal(calibration_counts(p, t, c, 4, VOID), as_float)


def test_confidently_wrong_histogram() -> None:
    pred, target, conf = _pixels([(0.95, 10, 4), (0.5, 10, 0)])
    histogram = wrong_confidence_histogram(pred, target, conf, VOID)
    assert histogram.sum() == 16 and confidently_wrong(histogram, 0.9) == 6


# -- slices --------------------------------------------------------------------------------------
def _confusions() -> np.ndarray:
    """Four images of two classes: images 0 and 1 perfect, images 2 and 3 with class 1 all wrong."""
    perfect = np.array([[10, 0], [0, 10]])
    wrong = np.array([[10, 0], [10, 0]])
    return np.stack([perfect, perfect, wrong, wrong])


def test_slices_from_a_tag_csv() -> None:
    tags = read_tags("id,tag\nrain_1,rain\nrain_2,rain\nsun_1,sunny\nsun_1,sunny\nghost,rain\n\n")
    assert tags == {"rain_1": ["rain"], "rain_2": ["rain"], "sun_1": ["sunny"], "ghost": ["rain"]}
    ids = ["sun_1", "sun_2", "rain_1", "rain_2"]
    slices, unknown = tag_slices(tags, ids)
    assert unknown == ["ghost"]
    rows = slice_table(_confusions(), slices, ["a", "b"])
    whole_miou = (40 / 60 + 20 / 40) / 2  # split confusion [[40, 0], [20, 20]]
    assert [row["slice"] for row in rows] == ["tag rain", "tag sunny"]  # worst gap first
    assert rows[0]["miou"] == pytest.approx(0.5 * 0.5) and rows[0]["iou"]["b"] == 0.0
    assert rows[0]["gap"] == pytest.approx(0.25 - whole_miou)
    assert rows[1]["miou"] == 1.0 and rows[1]["images"] == 1
    with pytest.raises(ConfigError, match="row 2"):
        read_tags("a,b\nonly-one-cell\n")


def test_builtin_slices() -> None:
    ids = ["seqA_1", "seqA_2", "seqB_1", "seqB_2"]
    slices = {s.name: s.positions for s in builtin_slices(ids, _confusions(), np.array([10.0, 20, 30, 40]), ["a", "b"])}
    assert slices["sequence seqA"] == (0, 1) and slices["sequence seqB"] == (2, 3)
    assert slices["brightness: darkest third"] == (0, 1) and slices["brightness: brightest third"] == (3,)
    assert "classes in the image: 1-2" not in slices  # every image: no slice
    mixed = _confusions().copy()
    mixed[0] = np.array([[10, 0], [0, 0]])  # one class only in image 0
    slices = {s.name: s.positions for s in builtin_slices(ids, mixed, np.array([10.0, 20, 30, 40]), ["a", "b"])}
    assert slices["with b"] == (1, 2, 3)


# -- the single pass -----------------------------------------------------------------------------
def test_accumulator_round_trip_and_summary() -> None:
    pred, target = _two_objects()
    confidence = np.full(pred.shape, 0.95, np.float16)
    accumulator = DiagnosticsAccumulator(num_classes=3, ignore_index=VOID)
    for _ in range(2):
        accumulator.add(np.full((100, 100, 3), 128, np.uint8), pred, target, confidence)
    diagnostics = accumulator.result()
    assert len(diagnostics.objects) == 2 * 3 and diagnostics.bf.shape == (2, 3)
    again = Diagnostics.from_arrays(diagnostics.to_arrays(), num_images=2)
    assert again is not None and np.array_equal(again.objects.area, diagnostics.objects.area)
    assert Diagnostics.from_arrays(diagnostics.to_arrays(), num_images=3) is None
    assert Diagnostics.from_arrays({}, num_images=2) is None
    confusions = np.stack([np.eye(3, dtype=np.int64) * 10] * 2)
    summary = diagnostics_summary(diagnostics, ["bg", "thing", "other"], ["a", "b"], confusions)
    assert set(summary) >= {"objects", "boundary", "calibration", "confidently_wrong", "slices"}
    assert summary["objects"]["per_class"]["thing"]["objects"] == 4
    assert summary["boundary"]["band_px"] == band_width((100, 100), 0.02) == 3
    assert 0 <= summary["calibration"]["ece"] <= 1
    wrong_pixels = int(((pred != target) & (target != VOID)).sum())
    assert summary["confidently_wrong"]["pixels"] == 2 * wrong_pixels


def test_deltas_between_two_models() -> None:
    from seglab.analysis.diagnostics.report import diagnostics_deltas

    a = {"objects": {"recall": 0.5, "false_blobs": 4, "recall_by_size": {"small": 0.25}}, "calibration": {"ece": 0.1}}
    b = {"objects": {"recall": 0.75, "false_blobs": 1, "recall_by_size": {"small": None}}, "calibration": {"ece": 0.3}}
    rows = {row["diagnostic"]: row for row in diagnostics_deltas({"A": a, "B": b})}
    assert rows["objects found (recall)"]["Δ B"] == 0.25 and rows["objects found (recall)"]["better"] == "higher"
    assert rows["false blobs"]["Δ B"] == -3 and rows["false blobs"]["better"] == "lower"
    assert rows["ECE"]["Δ B"] == pytest.approx(0.2)
    assert rows["small objects found"]["Δ B"] is None and rows["Boundary IoU"]["A"] is None


def test_uncertainty_and_confidently_wrong_pictures() -> None:
    from seglab.viz.diagnostics import confidently_wrong_map, uncertainty

    probabilities = np.zeros((4, 1, 3), np.float32)
    probabilities[:, 0, 0] = 0.25  # uniform: as unsure as it gets
    probabilities[2, 0, 1] = 1.0  # certain
    probabilities[:2, 0, 2] = 0.5  # torn between two classes
    assert uncertainty(probabilities, "entropy") == pytest.approx(np.array([[1.0, 0.0, 0.5]]), abs=1e-5)
    assert uncertainty(probabilities, "margin") == pytest.approx(np.array([[1.0, 0.0, 1.0]]), abs=1e-5)
    with pytest.raises(ValueError):
        uncertainty(probabilities, "variance")
    target = np.array([[0, 1, 2, VOID]], np.uint8)
    pred = np.array([[0, 2, 0, 1]], np.uint8)
    confidence = np.array([[0.99, 0.95, 0.5, 0.99]], np.float16)
    picture = confidently_wrong_map(np.zeros((1, 4, 3), np.uint8), pred, target, confidence, VOID, 0.9)
    assert picture[0, 1].tolist() == [220, 20, 60] and picture[0, 2].tolist() == [255, 170, 60]
    assert picture[0, 0].tolist() == picture[0, 3].tolist()  # right, and void: just the dimmed image


def test_summary_tables_for_the_page() -> None:
    from seglab.analysis.diagnostics.report import boundary_scores, calibration_rows, object_rows, slice_records

    pred, target = _two_objects()
    accumulator = DiagnosticsAccumulator(num_classes=3, ignore_index=VOID)
    accumulator.add(np.full((100, 100, 3), 128, np.uint8), pred, target, np.full(pred.shape, 0.95, np.float16))
    confusions = np.stack([np.eye(3, dtype=np.int64) * 10])
    summary = diagnostics_summary(accumulator.result(), ["bg", "thing", "other"], ["a"], confusions)

    rows = object_rows(summary, [0.9, 0.4, float("nan")])
    assert [row["class"] for row in rows] == ["bg", "thing", "other"] and [row["IoU"] for row in rows[:2]] == [0.9, 0.4]
    thing = summary["objects"]["per_class"]["thing"]
    assert rows[1]["objects"] == thing["objects"] == 2 and rows[1]["lesion dice"] == thing["lesion_dice"]
    assert not any("_" in column for row in rows for column in row)

    biou, bf = boundary_scores(summary)
    assert biou.shape == bf.shape == (3,) and biou.dtype == np.float64
    for scores, key in ((biou, "boundary_iou"), (bf, "bf_score")):
        expected = [np.nan if value is None else value for value in summary["boundary"][key].values()]
        np.testing.assert_array_equal(scores, expected)
    biou, bf = boundary_scores({"boundary": {"boundary_iou": {"a": 0.5, "b": None}, "bf_score": {"a": None, "b": 1}}})
    np.testing.assert_array_equal(biou, [0.5, np.nan])  # None (a class without boundary) -> NaN
    np.testing.assert_array_equal(bf, [np.nan, 1.0])

    ece = summary["calibration"]["ece_per_class"]
    assert calibration_rows(summary) == [{"predicted class": name, "ECE": value} for name, value in ece.items()]
    assert calibration_rows({"calibration": {"ece_per_class": {}}}) == []

    slices = [{"slice": "dark", "images": 2, "miou": 0.5, "gap": -0.1, "iou": {"bg": 0.9, "thing": 0.1}, "ids": []}]
    assert slice_records(slices) == [
        {"slice": "dark", "images": 2, "mIoU": 0.5, "gap": -0.1, "IoU bg": 0.9, "IoU thing": 0.1}
    ]
