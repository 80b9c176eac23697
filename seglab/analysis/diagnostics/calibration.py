"""Confidence and calibration: top-label expected calibration error, reliability bins, confidently wrong pixels.

Each scored pixel (void excluded) has a confidence (the top class probability) and is correct or not.
Pixels are binned by confidence into 15 equal-width bins exactly as torchmetrics'
``MulticlassCalibrationError`` does (``torch.bucketize(..., right=True) - 1`` on ``linspace(0, 1, 16)``,
so a confidence of exactly 1 has a bin of its own), and

    ECE = sum over bins of |accuracy(bin) - mean confidence(bin)| * pixels(bin) / pixels.

The per-class ECE is the same sum over the pixels *predicted* as that class (top-label, class-wise).
Counts are kept per predicted class and bin, so the split's numbers are sums of the images'.
"""

from __future__ import annotations

import numpy as np
import torch

from seglab.io.json_values import json_number
from seglab.metrics.scores import divide

__all__ = [
    "CONFIDENCE_BINS",
    "WRONG_BINS",
    "calibration_counts",
    "class_calibration_error",
    "confidently_wrong",
    "expected_calibration_error",
    "reliability_bins",
    "wrong_confidence_histogram",
]

CONFIDENCE_BINS = 15
WRONG_BINS = 20  # confidently-wrong histogram: 0.05 steps, so thresholds like 0.9 are exact
_EDGES = torch.linspace(0, 1, CONFIDENCE_BINS + 1, dtype=torch.float32).numpy()


# Cached confidence is float16: one table lookup per pixel gives torchmetrics' bin of every float16 value.
_HALF_BINS = np.clip(
    np.searchsorted(_EDGES, np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32), side="right") - 1,
    0,
    CONFIDENCE_BINS,
).astype(np.int64)


def _bins(confidence: np.ndarray) -> np.ndarray:
    if confidence.dtype == np.float16:
        return _HALF_BINS[confidence.view(np.uint16)]
    return np.clip(np.searchsorted(_EDGES, confidence.astype(np.float32), side="right") - 1, 0, CONFIDENCE_BINS)


def calibration_counts(
    pred: np.ndarray, target: np.ndarray, confidence: np.ndarray, num_classes: int, ignore_index: int
) -> np.ndarray:
    """(K + 1, 16, 3) float64 of one image: per predicted class (row K: any other value) and confidence bin,
    pixel count, summed confidence and correct pixels."""
    scored = target != ignore_index
    labels = pred[scored]
    conf = confidence[scored]
    cell = np.minimum(labels, num_classes).astype(np.int64) * (CONFIDENCE_BINS + 1) + _bins(conf)
    size = (num_classes + 1) * (CONFIDENCE_BINS + 1)
    # Pixels and correct pixels from one count: cell * 2 + correct.
    split = np.bincount(cell * 2 + (labels == target[scored]), minlength=2 * size).reshape(size, 2)
    summed = np.bincount(cell, weights=conf.astype(np.float32), minlength=size)
    counts = np.stack([split.sum(axis=1), summed, split[:, 1]], axis=-1)
    return counts.reshape(num_classes + 1, CONFIDENCE_BINS + 1, 3).astype(np.float64)


def _ece(counts: np.ndarray) -> float:
    """ECE of (bins, 3) counts; NaN without pixels."""
    pixels = counts[:, 0]
    total = pixels.sum()
    if total == 0:
        return float("nan")
    gap = divide(np.abs(counts[:, 2] - counts[:, 1]), pixels)
    return float(np.nansum(gap * pixels) / total)


def expected_calibration_error(counts: np.ndarray) -> float:
    """Top-label ECE over all scored pixels from summed :func:`calibration_counts`."""
    return _ece(counts.sum(axis=0))


def class_calibration_error(counts: np.ndarray) -> np.ndarray:
    """(K,) ECE over the pixels predicted as each class; NaN for a class never predicted."""
    return np.array([_ece(row) for row in counts[:-1]])


def reliability_bins(counts: np.ndarray, class_id: int | None = None) -> dict[str, list]:
    """Accuracy and mean confidence per bin (the last bin also holds confidence exactly 1), for a diagram."""
    rows = counts.sum(axis=0) if class_id is None else counts[class_id]
    rows = np.concatenate([rows[:-2], rows[-2:].sum(axis=0, keepdims=True)])
    pixels = rows[:, 0]
    accuracy, mean_confidence = divide(rows[:, 2], pixels), divide(rows[:, 1], pixels)
    return {
        "low": _EDGES[:-1].tolist(),
        "high": _EDGES[1:].tolist(),
        "pixels": pixels.astype(np.int64).tolist(),
        "accuracy": [json_number(v) for v in accuracy],
        "confidence": [json_number(v) for v in mean_confidence],
    }


def wrong_confidence_histogram(
    pred: np.ndarray, target: np.ndarray, confidence: np.ndarray, ignore_index: int
) -> np.ndarray:
    """(20,) int64: wrong scored pixels per confidence bin of width 0.05 (confidence 1 in the last bin)."""
    wrong = (target != ignore_index) & (pred != target)
    bins = np.minimum((confidence[wrong].astype(np.float32) * WRONG_BINS).astype(np.int64), WRONG_BINS - 1)
    return np.bincount(bins, minlength=WRONG_BINS).astype(np.int64)


def confidently_wrong(histograms: np.ndarray, threshold: float) -> np.ndarray:
    """Wrong pixels with confidence >= ``threshold`` (rounded down to a 0.05 step) per row of histograms."""
    first = int(np.floor(threshold * WRONG_BINS + 1e-9))
    return np.asarray(histograms)[..., first:].sum(axis=-1)
