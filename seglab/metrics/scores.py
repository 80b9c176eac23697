"""Scores from confusion counts: per-class IoU, precision, recall, F1 and their means over present classes
(:class:`SegmentationMetrics`), all reductions of one core (:func:`class_counts`, :func:`divide`,
:func:`masked_mean`); the definitions are in :mod:`seglab.metrics.confusion`'s docstring."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from seglab.errors import ConfigError
from seglab.io.json_values import json_number


# -- scores -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassCounts:
    """Per-class pixel counts of (..., K, K) or (..., K, K + 1) confusion matrices: the core every score reduces."""

    true_positive: np.ndarray  # (..., K) float64
    support: np.ndarray  # (..., K) ground-truth pixels; the "other" column of a mapped source is a miss...
    predicted: np.ndarray  # (..., K) ...but no class's prediction

    @property
    def union(self) -> np.ndarray:
        return self.support + self.predicted - self.true_positive


def class_counts(confusion: np.ndarray) -> ClassCounts:
    """:class:`ClassCounts` of confusion matrices (rows = ground truth), as float64."""
    counts = np.asarray(confusion, dtype=np.float64)
    num_classes = counts.shape[-2]
    return ClassCounts(
        true_positive=np.diagonal(counts, axis1=-2, axis2=-1),
        support=counts.sum(axis=-1),
        predicted=counts[..., :num_classes].sum(axis=-2),
    )


def divide(numerator: Any, denominator: Any) -> np.ndarray:
    """Elementwise ratio, NaN where the denominator is 0 (an undefined score, never 0/0 warnings)."""
    numerator, denominator = np.broadcast_arrays(np.asarray(numerator, float), np.asarray(denominator, float))
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


@overload
def masked_mean(values: np.ndarray, mask: np.ndarray | None = None, axis: None = None) -> float: ...
@overload
def masked_mean(values: np.ndarray, mask: np.ndarray | None = None, *, axis: int) -> np.ndarray: ...
def masked_mean(values: np.ndarray, mask: np.ndarray | None = None, axis: int | None = None) -> np.ndarray | float:
    """Mean of ``values`` where ``mask`` (and not NaN; default: every defined value); NaN when nothing is selected."""
    mask = ~np.isnan(values) if mask is None else mask & ~np.isnan(values)
    count = mask.sum(axis=axis)
    total = np.where(mask, values, 0.0).sum(axis=axis)
    result = divide(total, count)
    return float(result) if np.ndim(result) == 0 else result


def class_scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class counts and ratios from (..., K, K) or (..., K, K + 1) confusion matrices, NaN for 0/0."""
    counts = class_counts(confusion)
    true_positive, support, predicted = counts.true_positive, counts.support, counts.predicted
    return {
        "iou": divide(true_positive, counts.union),
        "precision": divide(true_positive, predicted),
        "recall": divide(true_positive, support),
        "f1": divide(2 * true_positive, support + predicted),
        "true_positive": true_positive,
        "support": support,
        "predicted": predicted,
    }


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else math.nan


def read_only(array: np.ndarray) -> np.ndarray:
    """``array``, made read-only (metrics are shared between sessions and caches)."""
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class SegmentationMetrics:
    """Scores of one split, derived from its (K, K) confusion matrix (rows = ground truth).

    Per-class arrays have shape (K,); ``iou``/``f1`` are NaN for classes absent from both ground
    truth and prediction, ``precision`` NaN for classes never predicted, ``recall`` NaN for
    classes without ground truth. Means skip NaN classes (see the module docstring).
    """

    confusion: np.ndarray  # (K, K) int64, rows = ground truth, columns = prediction (+ "other" column: K + 1)
    iou: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray  # Dice: 2 TP / (support + predicted)
    support: np.ndarray  # (K,) int64 ground-truth pixels per class
    predicted: np.ndarray  # (K,) int64 predicted pixels per class
    present: np.ndarray  # (K,) bool: class occurs in ground truth or prediction
    pixel_acc: float
    mean_acc: float  # mean recall over classes with ground truth
    miou: float  # mean IoU over present classes
    miou_no_background: float  # same without background_index (= miou when it is None)
    mean_f1: float
    fwiou: float  # IoU weighted by ground-truth frequency (Long et al., FCN)
    classes_averaged: int  # number of present classes, i.e. the denominator of miou
    total_pixels: int  # non-ignore pixels counted
    background_index: int | None = 0

    @property
    def num_classes(self) -> int:
        return len(self.iou)

    @property
    def has_other(self) -> bool:
        """Whether the confusion matrix has the extra "other" prediction column (K, K + 1)."""
        return self.confusion.shape[1] == self.confusion.shape[0] + 1

    @classmethod
    def from_confusion(cls, confusion: np.ndarray, background_index: int | None = 0) -> SegmentationMetrics:
        """Derive every score from a (K, K) confusion matrix (rows = ground truth).

        A (K, K + 1) matrix carries "other" predictions in its last column (see :func:`image_confusions`).
        """
        confusion = np.array(confusion, dtype=np.int64)
        if confusion.ndim != 2 or confusion.shape[1] not in (confusion.shape[0], confusion.shape[0] + 1):
            raise ConfigError(f"a confusion matrix must be (K, K) or (K, K + 1), got shape {confusion.shape}")
        num_classes = confusion.shape[0]
        if background_index is not None and not 0 <= background_index < num_classes:
            raise ConfigError(
                f"background_index {background_index} is not a class id in "
                f"[0, {num_classes}); use None for datasets without background"
            )
        scores = class_scores(confusion)
        support, predicted = scores["support"], scores["predicted"]
        present = (support + predicted) > 0
        foreground = present.copy()
        if background_index is not None:
            foreground[background_index] = False
        total = float(support.sum())
        has_truth = support > 0
        return cls(
            confusion=read_only(confusion),
            iou=read_only(scores["iou"]),
            precision=read_only(scores["precision"]),
            recall=read_only(scores["recall"]),
            f1=read_only(scores["f1"]),
            support=read_only(support.astype(np.int64)),
            predicted=read_only(predicted.astype(np.int64)),
            present=read_only(present),
            pixel_acc=_ratio(scores["true_positive"].sum(), total),
            mean_acc=float(masked_mean(scores["recall"], has_truth, axis=-1)),
            miou=float(masked_mean(scores["iou"], present, axis=-1)),
            miou_no_background=float(masked_mean(scores["iou"], foreground, axis=-1)),
            mean_f1=float(masked_mean(scores["f1"], present, axis=-1)),
            fwiou=_ratio(np.where(has_truth, support * scores["iou"], 0.0).sum(), total),
            classes_averaged=int(present.sum()),
            total_pixels=int(total),
            background_index=background_index,
        )

    def to_dict(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """JSON-friendly summary (NaN -> ``None``); classes are keyed by ``class_names``."""
        names = [str(i) for i in range(self.num_classes)] if class_names is None else list(class_names)
        if len(names) != self.num_classes or len(set(names)) != len(names):
            raise ConfigError(f"expected {self.num_classes} distinct class names, got {names}")
        per_class = {
            name: {
                "iou": json_number(self.iou[i]),
                "precision": json_number(self.precision[i]),
                "recall": json_number(self.recall[i]),
                "f1": json_number(self.f1[i]),
                "support": int(self.support[i]),
                "predicted": int(self.predicted[i]),
                "present": bool(self.present[i]),
            }
            for i, name in enumerate(names)
        }
        return {
            "miou": json_number(self.miou),
            "miou_no_background": json_number(self.miou_no_background),
            "pixel_acc": json_number(self.pixel_acc),
            "mean_acc": json_number(self.mean_acc),
            "fwiou": json_number(self.fwiou),
            "mean_f1": json_number(self.mean_f1),
            "classes_averaged": self.classes_averaged,
            "total_pixels": self.total_pixels,
            "background_index": self.background_index,
            "iou": {name: json_number(self.iou[i]) for i, name in enumerate(names)},
            "per_class": per_class,
            "confusion": self.confusion.tolist(),
            **(
                {"predicted_other": {name: int(self.confusion[i, -1]) for i, name in enumerate(names)}}
                if self.has_other
                else {}
            ),
        }
