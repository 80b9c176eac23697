"""Tests for seglab.analysis.compare: hand-made confusion matrices and masks whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seglab import viz
from seglab.analysis import compare
from seglab.engine.predict import DatasetEvaluation, ImageResult
from seglab.engine.run_dir import RunDirectory
from seglab.errors import ConfigError
from seglab.metrics.confusion import ConfusionMatrix, SegmentationMetrics, per_image_metrics

IGNORE = 255
CLASSES = ["background", "cat", "dog"]


def _evaluation(preds: list[np.ndarray], targets: list[np.ndarray], ids: list[str] | None = None) -> DatasetEvaluation:
    """A DatasetEvaluation as evaluate_dataset would build it, from given predictions."""
    scores = per_image_metrics(np.stack(preds), np.stack(targets), len(CLASSES), IGNORE)
    ids = ids or [f"img-{i}" for i in range(len(preds))]
    results = [
        ImageResult.from_scores(
            scores,
            i,
            index=i,
            sample_id=ids[i],
            labels=preds[i].astype(np.uint8),
            confidence=np.ones(preds[i].shape, np.float16),
        )
        for i in range(len(preds))
    ]
    metrics = ConfusionMatrix.from_matrix(scores.confusion.sum(axis=0), ignore_index=IGNORE).compute(background_index=0)
    return DatasetEvaluation(results=results, metrics=metrics, class_names=list(CLASSES))


# -- metric table ------------------------------------------------------------------------------
# Rows = ground truth, columns = prediction.
CONFUSION_A = np.array([[6, 2, 0], [0, 2, 0], [0, 0, 0]])  # IoU: bg 6/8, cat 2/4, dog NaN (absent)
CONFUSION_B = np.array([[8, 0, 0], [1, 1, 0], [0, 0, 0]])  # IoU: bg 8/9, cat 1/2, dog NaN
CONFUSION_C = np.array([[7, 0, 1], [0, 2, 0], [0, 0, 0]])  # IoU: bg 7/8, cat 1, dog 0 (predicted, absent in GT)


def test_metric_table_values_deltas_and_best() -> None:
    metrics = [SegmentationMetrics.from_confusion(m) for m in (CONFUSION_A, CONFUSION_B, CONFUSION_C)]
    table = compare.metric_table(metrics, ["A", "B", "C"], CLASSES, metric="iou")

    assert table.row_names == CLASSES + ["mIoU", "mIoU (no background)", "pixel accuracy", "mean accuracy"]
    assert table.summary_rows == 4 and table.column_names == ["A", "B", "C"]
    expected_iou = np.array([[6 / 8, 8 / 9, 7 / 8], [2 / 4, 1 / 2, 1.0], [np.nan, np.nan, 0.0]])
    np.testing.assert_allclose(table.values[:3], expected_iou)
    np.testing.assert_allclose(table.values[3], [(6 / 8 + 0.5) / 2, (8 / 9 + 0.5) / 2, (7 / 8 + 1 + 0) / 3])
    np.testing.assert_allclose(table.values[5], [8 / 10, 9 / 10, 9 / 10])  # pixel accuracy
    # Deltas are against the first column; NaN when either side is undefined.
    np.testing.assert_allclose(table.deltas[:, 0], np.where(np.isnan(table.values[:, 0]), np.nan, 0.0))
    np.testing.assert_allclose(table.deltas[0], [0.0, 8 / 9 - 6 / 8, 7 / 8 - 6 / 8])
    assert np.isnan(table.deltas[2, 2])
    # Best per row: B on background, C on cat and on dog (the only defined value), a tie on pixel accuracy.
    assert table.is_best[0].tolist() == [False, True, False]
    assert table.is_best[1].tolist() == [False, False, True]
    assert table.is_best[2].tolist() == [False, False, True]
    assert table.best_names()[5] == "B = C"


def test_metric_table_records_precision_and_no_background() -> None:
    metrics = [SegmentationMetrics.from_confusion(m, background_index=None) for m in (CONFUSION_A, CONFUSION_B)]
    table = compare.metric_table(metrics, ["A", "B"], CLASSES, metric="precision")
    assert "mIoU (no background)" not in table.row_names  # no background class: it would repeat mIoU
    records = table.records()
    cat = records[1]
    assert cat["row"] == "cat" and cat["A"] == pytest.approx(2 / 4) and cat["B"] == pytest.approx(1.0)
    assert cat["Δ B"] == pytest.approx(0.5) and cat["best"] == "B"
    assert "Δ A" not in cat  # the reference has no delta column
    assert list(table.records(with_deltas=False)[0]) == ["row", "A", "B", "best"]


def test_metric_table_adds_image_wise_miou_for_evaluations() -> None:
    target = np.array([[0, 1, 1]], dtype=np.uint8)
    first = _evaluation([np.array([[0, 1, 0]]), np.array([[0, 0, 0]])], [target, target])
    second = _evaluation([target, target], [target, target])
    table = compare.metric_table([first, second], ["first", "second"], CLASSES)
    assert table.row_names[-1] == "image-wise mIoU"
    expected_first = np.mean([r.miou for r in first.results])
    np.testing.assert_allclose(table.values[-1], [expected_first, 1.0])


def test_metric_table_rejects_bad_input() -> None:
    metrics = SegmentationMetrics.from_confusion(CONFUSION_A)
    with pytest.raises(ConfigError, match="distinct"):
        compare.metric_table([metrics, metrics], ["A", "A"], CLASSES)
    with pytest.raises(ConfigError, match="metric"):
        compare.metric_table([metrics], ["A"], CLASSES, metric="accuracy")
    with pytest.raises(ConfigError, match="class names"):
        compare.metric_table([metrics], ["A"], CLASSES[:2])


def test_class_deltas_is_b_minus_a() -> None:
    a, b = SegmentationMetrics.from_confusion(CONFUSION_A), SegmentationMetrics.from_confusion(CONFUSION_C)
    deltas = compare.class_deltas(a, b)
    np.testing.assert_allclose(deltas[:2], [7 / 8 - 6 / 8, 0.5])
    assert np.isnan(deltas[2])


# -- per image ------------------------------------------------------------------------------------
def _with_mious(mious: list[float]) -> DatasetEvaluation:
    target = np.zeros((1, 2), dtype=np.uint8)
    evaluation = _evaluation([target] * len(mious), [target] * len(mious))
    for result, miou in zip(evaluation.results, mious):
        result.miou = miou
    return evaluation


def test_per_image_deltas_rank_both_ways_with_undefined_last() -> None:
    a = _with_mious([0.5, 0.2, 0.9, math.nan, 0.4])
    b = _with_mious([0.6, 0.8, 0.1, 0.7, 0.5])  # deltas: +0.1, +0.6, -0.8, NaN, +0.1
    deltas = compare.per_image_deltas(a, b)
    assert deltas.indices.tolist() == [1, 0, 4, 2, 3]  # ties (+0.1) by index, NaN last
    np.testing.assert_allclose(deltas.delta[:4], [0.6, 0.1, 0.1, -0.8])
    assert deltas.sample_ids[0] == "img-1" and deltas.positions.tolist() == [1, 0, 4, 2, 3]
    assert deltas.ranked("a").indices.tolist() == [2, 0, 4, 1, 3]
    record = deltas.records(limit=1)[0]
    assert record["image"] == "img-1" and record["Δ mIoU (B − A)"] == pytest.approx(0.6)
    assert len(deltas.records(limit=2)) == 2


def test_per_image_deltas_need_the_same_images() -> None:
    target = np.zeros((1, 2), dtype=np.uint8)
    a = _evaluation([target, target], [target, target])
    b = _evaluation([target, target], [target, target], ids=["x", "y"])
    with pytest.raises(ConfigError, match="different images"):
        compare.per_image_deltas(a, b)
    with pytest.raises(ConfigError, match="favour"):
        compare.per_image_deltas(a, a).ranked("c")


# -- pixel diff -----------------------------------------------------------------------------------
def _brute_force(pred_a, pred_b, target) -> dict[tuple[int, str], int]:
    counts: dict[tuple[int, str], int] = {}
    for a, b, t in zip(pred_a.ravel(), pred_b.ravel(), target.ravel()):
        if t == IGNORE:
            continue
        if a == t and b == t:
            name = "both right"
        elif b == t:
            name = "fixed by B"
        elif a == t:
            name = "broken by B"
        elif a == b:
            name = "both wrong (same)"
        else:
            name = "both wrong (different)"
        counts[(int(t), name)] = counts.get((int(t), name), 0) + 1
    return counts


def test_pixel_diff_matches_brute_force_on_2x3_masks() -> None:
    targets = [np.array([[0, 1, 1], [2, 255, 0]], np.uint8), np.array([[1, 1, 2], [2, 0, 255]], np.uint8)]
    preds_a = [np.array([[0, 0, 1], [1, 2, 1]], np.uint8), np.array([[1, 2, 2], [0, 0, 0]], np.uint8)]
    preds_b = [np.array([[0, 1, 2], [1, 0, 0]], np.uint8), np.array([[2, 2, 0], [2, 1, 1]], np.uint8)]
    a, b = _evaluation(preds_a, targets), _evaluation(preds_b, targets)

    diff = compare.pixel_diff(a, b, targets, IGNORE)

    names = [category.name for category in compare.DIFF_CATEGORIES]
    expected = np.zeros((3, 5), dtype=np.int64)
    for pred_a, pred_b, target in zip(preds_a, preds_b, targets):
        for (true_class, name), count in _brute_force(pred_a, pred_b, target).items():
            expected[true_class, names.index(name)] += count
    np.testing.assert_array_equal(diff.counts, expected)
    assert diff.counts.sum() == 10  # 12 pixels, 2 void
    assert diff.image_counts.shape == (2, 5) and diff.image_counts.sum() == 10
    np.testing.assert_array_equal(diff.image_counts.sum(axis=0), diff.totals)
    np.testing.assert_allclose(diff.shares, expected.sum(axis=0) / 10)
    np.testing.assert_array_equal(diff.net_fixed, expected[:, viz.FIXED_BY_B] - expected[:, viz.BROKEN_BY_B])
    rows = diff.class_records()
    assert rows[1]["class"] == "cat" and rows[1]["pixels"] == expected[1].sum()
    assert rows[1]["fixed by B"] == pytest.approx(expected[1, viz.FIXED_BY_B] / expected[1].sum())
    # Per-image pixel counts join the image ranking.
    ranked = compare.per_image_deltas(a, b).records(diff=diff)
    by_id = {row["image"]: row for row in ranked}
    assert by_id["img-0"]["fixed by B px"] == diff.image_counts[0, viz.FIXED_BY_B]
    assert by_id["img-1"]["broken by B px"] == diff.image_counts[1, viz.BROKEN_BY_B]


def test_class_change_records_put_the_iou_change_beside_each_class_pixel_shares() -> None:
    targets = [np.array([[0, 1, 1], [0, 0, 0]], np.uint8)]
    a = _evaluation([np.array([[0, 0, 1], [0, 0, 0]], np.uint8)], targets)  # IoU: bg 4/5, cat 1/2, dog NaN
    b = _evaluation([np.array([[0, 1, 1], [1, 0, 0]], np.uint8)], targets)  # IoU: bg 3/4, cat 2/3, dog NaN
    diff = compare.pixel_diff(a, b, targets, IGNORE)

    rows = compare.class_change_records(diff, a, b)

    assert [row["class"] for row in rows] == CLASSES
    assert list(rows[0])[:3] == ["class", "Δ IoU (B − A)", "pixels"]  # the change first, then the diff's columns
    assert rows[0]["Δ IoU (B − A)"] == pytest.approx(3 / 4 - 4 / 5)
    assert rows[1]["Δ IoU (B − A)"] == pytest.approx(2 / 3 - 1 / 2) and math.isnan(rows[2]["Δ IoU (B − A)"])
    assert rows[1]["fixed by B"] == pytest.approx(0.5) and rows[0]["broken by B"] == pytest.approx(0.25)
    assert [{k: v for k, v in row.items() if k != "Δ IoU (B − A)"} for row in rows[:2]] == diff.class_records()[:2]


def test_pixel_diff_absent_class_has_nan_shares_and_needs_every_mask() -> None:
    target = np.zeros((2, 3), np.uint8)
    a = _evaluation([target], [target])
    diff = compare.pixel_diff(a, a, [target], IGNORE)
    assert diff.counts[0, viz.BOTH_RIGHT] == 6
    assert np.isnan(diff.class_shares[1]).all()
    with pytest.raises(ConfigError, match="fewer masks"):
        compare.pixel_diff(a, a, [], IGNORE)


# -- training curves -------------------------------------------------------------------------------
def test_checkpoint_curves_reads_the_run_folder(tmp_path) -> None:
    run = RunDirectory(tmp_path / "run")
    run.path.mkdir()
    run.append_event({"type": "step", "step": 1, "loss": 2.0})
    run.append_event({"type": "step", "step": 2, "loss": 1.5})
    run.append_event({"type": "eval", "step": 2, "metrics": {"miou": 0.25, "pixel_acc": 0.5}})
    curves = compare.checkpoint_curves(run.path / "best.pt")
    assert curves.loss_series()["total"] == ([1.0, 2.0], [2.0, 1.5])
    assert curves.metric_series()["mIoU"] == ([2.0], [0.25])
    assert compare.checkpoint_curves(tmp_path / "loose.pt").metric_series() == {}


def test_run_curves_keep_validation_and_loss_and_name_the_runs_without_validation() -> None:
    from seglab.engine.curves import TrainingCurves

    logged = TrainingCurves.from_events(
        [{"type": "step", "step": 1, "loss": 2.0}, {"type": "eval", "step": 1, "metrics": {"miou": 0.3}}]
    )
    steps_only = TrainingCurves.from_events([{"type": "step", "step": 1, "loss": 1.0}])
    curves = compare.run_curves({"a": logged, "b": steps_only, "c": TrainingCurves()})
    assert curves.validation == {"a": ([1.0], [0.3])}
    assert curves.losses == {"a": ([1.0], [2.0]), "b": ([1.0], [1.0])}
    assert curves.missing == ["b", "c"]


# -- choosing models -----------------------------------------------------------------------------
def test_default_models_start_from_the_current_choice() -> None:
    options = {"run1 · ce": "/r1/best.pt", "run2 · dice": "/r2/best.pt", "src · onnx": "/s.json"}
    assert compare.default_models(options, "/r2/best.pt") == ["run2 · dice", "run1 · ce"]
    assert compare.default_models(options, None) == ["run1 · ce", "run2 · dice"]
    assert compare.default_models(options, "/s.json", count=3) == ["src · onnx", "run1 · ce", "run2 · dice"]
    assert compare.default_models({"only": "/o.pt"}, "/o.pt") == ["only"]


def test_short_names_are_the_run_names_unless_two_are_equal() -> None:
    assert compare.short_names(["run1 · ce · 0.5", "run2 · dice"]) == {"run1": "run1 · ce · 0.5", "run2": "run2 · dice"}
    twins = ["run · ce", "run · dice", "other"]
    assert compare.short_names(twins) == {"run · ce": "run · ce", "run · dice": "run · dice", "other": "other"}
