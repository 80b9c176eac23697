"""Text reports show "mIoU without background" only when the label map has a background class."""

from __future__ import annotations

import numpy as np

from seglab.cli.report import format_metrics_report
from seglab.metrics.confusion import SegmentationMetrics

CONFUSION = np.array([[50, 2, 0], [3, 20, 1], [0, 4, 9]])


def _report(background_index: int | None) -> str:
    metrics = SegmentationMetrics.from_confusion(CONFUSION, background_index=background_index)
    return format_metrics_report(metrics.to_dict(["bg", "a", "b"]), "title")


def test_the_without_background_mean_is_shown_when_there_is_a_background_class() -> None:
    metrics = SegmentationMetrics.from_confusion(CONFUSION, background_index=0)
    assert f"mIoU without background {metrics.miou_no_background:.4f}" in _report(0)


def test_the_without_background_mean_is_left_out_without_a_background_class() -> None:
    report = _report(None)
    assert "without background" not in report and "pixel acc" in report and "mIoU" in report
