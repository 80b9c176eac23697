"""Segmentation metrics from one confusion matrix summed over a whole split.

Definitions follow MMSegmentation's ``IoUMetric``: pixels whose target is the ignore (void) index
are dropped, a single ``(K, K)`` confusion matrix (rows = ground truth, columns = prediction) is
accumulated over the split, and every score is derived from it. With ``TP`` the diagonal,
``support`` the row sums (ground-truth pixels) and ``predicted`` the column sums:

- ``iou = TP / (support + predicted - TP)``; ``f1 = 2 TP / (support + predicted)`` (the Dice score);
  both are NaN only for a class absent from both ground truth and prediction.
- ``precision = TP / predicted`` (NaN when the class is never predicted) and
  ``recall = TP / support`` (NaN when the class never occurs in the ground truth), as in MMSeg.
- Means are taken over the classes *present* (in ground truth or prediction): an absent class says
  nothing about the model, so averaging a 0 or a 1 for it would bias ``miou``. ``mean_acc``
  averages recall over the classes with ground truth.
- MMSeg derives its F-score from precision and recall, which makes it NaN (and silently dropped
  from the mean) for a class that occurs but is never predicted; the Dice form used here scores
  that class 0 instead, so ``mean_f1`` averages exactly the classes ``miou`` averages.

torchmetrics' ``MulticlassJaccardIndex`` gives the same per-class IoU on present classes and the
same ``macro`` mean (since 1.x it drops classes absent from both), but reports absent classes as
``0.0`` where this module reports NaN.

Counting is one ``torch.bincount`` of ``(target - lowest) * K + pred`` in a narrow integer dtype,
on the device of the inputs: every target value gets its own row of bins, so ignore pixels need
no boolean compaction and stray label values show up as non-empty rows (validation for free).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from seglab.errors import ConfigError
from seglab.metrics.counting import (
    LabelArray,
    as_label_pair,
    check_classes,
    count_pixels,
    raise_bad_target,
    target_rows,
)
from seglab.metrics.scores import (
    ClassCounts,
    SegmentationMetrics,
    class_counts,
    class_scores,
    divide,
    masked_mean,
    read_only,
)
from seglab.ranking import worst_first

__all__ = [
    "ClassCounts",
    "ConfusionMatrix",
    "PerImageMetrics",
    "SegmentationMetrics",
    "class_counts",
    "divide",
    "image_confusions",
    "masked_mean",
    "per_image_metrics",
    "per_image_metrics_from_confusion",
]


# -- accumulation -----------------------------------------------------------------------------
class ConfusionMatrix:
    """Pixel counts ``matrix[truth, pred]`` accumulated over many batches.

    The counts live in :attr:`tensor` (int64, on the device of the first update), so distributed
    evaluation can sum them with :meth:`all_reduce` before :meth:`compute`.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255, device: torch.device | str = "cpu") -> None:
        check_classes(num_classes, ignore_index)
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.tensor = torch.zeros((self.num_classes, self.num_classes), dtype=torch.int64, device=device)
        self._empty = True  # an empty accumulator follows the device of the first update

    def update(self, pred: LabelArray, target: LabelArray) -> ConfusionMatrix:
        """Count a batch: ``pred`` and ``target`` of equal shape, (N, H, W) or (H, W), any int dtype.

        Pixels whose target is ``ignore_index`` are skipped; other target values outside
        ``[0, K)`` and prediction values outside ``[0, K)`` raise :class:`LabelError` (a
        ``ValueError``) naming them.
        """
        counts = count_pixels(pred, target, self.num_classes, self.ignore_index, per_image=False)
        self._add(counts)
        return self

    def _add(self, counts: torch.Tensor) -> None:
        if self._empty and counts.device != self.tensor.device:
            self.tensor = self.tensor.to(counts.device)
        self.tensor += counts.to(self.tensor.device)
        self._empty = False

    @property
    def matrix(self) -> np.ndarray:
        """A (K, K) int64 numpy copy of the counts: rows = ground truth, columns = prediction."""
        return self.tensor.cpu().numpy().copy()

    @property
    def total_pixels(self) -> int:
        return int(self.tensor.sum())

    def reset(self) -> None:
        self.tensor.zero_()
        self._empty = True

    def copy(self) -> ConfusionMatrix:
        twin = ConfusionMatrix(self.num_classes, self.ignore_index, device=self.tensor.device)
        twin.tensor.copy_(self.tensor)
        twin._empty = self._empty
        return twin

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add ``other``'s counts to this one (in place) and return ``self``."""
        if not isinstance(other, ConfusionMatrix):
            raise TypeError(f"can only merge a ConfusionMatrix, got {type(other).__name__}")
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise ConfigError(
                f"cannot merge a matrix for {other.num_classes} classes (ignore {other.ignore_index}) "
                f"into one for {self.num_classes} classes (ignore {self.ignore_index})"
            )
        if not other._empty:
            self._add(other.tensor)
        return self

    def __add__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        return self.copy().merge(other)

    def __radd__(self, other: Any) -> ConfusionMatrix:
        # Lets sum(matrices) start from its default 0.
        if isinstance(other, int) and other == 0:
            return self.copy()
        return NotImplemented

    def all_reduce(self, group: Any = None) -> ConfusionMatrix:
        """Sum the counts over all processes with ``torch.distributed``; no-op when not initialised.

        With the NCCL backend the counts must already be on the GPU (update with CUDA tensors).
        """
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(self.tensor, group=group)
            self._empty = False
        return self

    def compute(self, background_index: int | None = 0) -> SegmentationMetrics:
        """All scores from the counts so far (see :class:`SegmentationMetrics`)."""
        return SegmentationMetrics.from_confusion(self.matrix, background_index)

    @classmethod
    def from_matrix(cls, matrix: LabelArray, ignore_index: int | None = 255) -> ConfusionMatrix:
        """Wrap existing (K, K) counts (rows = ground truth), e.g. loaded from a run's JSON."""
        if isinstance(matrix, torch.Tensor):
            counts = matrix.detach()
        else:
            array = np.asarray(matrix)
            if array.dtype.kind not in "iuf":
                raise ConfigError(f"a confusion matrix holds pixel counts, got dtype {array.dtype}")
            counts = torch.from_numpy(array.astype(np.float64 if array.dtype.kind == "f" else np.int64))
        if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
            raise ConfigError(f"a confusion matrix must be square (K, K), got shape {tuple(counts.shape)}")
        if counts.is_floating_point() and not torch.equal(counts, counts.round()):
            raise ConfigError("a confusion matrix holds whole pixel counts; got fractional values")
        if bool((counts < 0).any()):
            raise ConfigError("a confusion matrix holds pixel counts; got negative values")
        confusion = cls(counts.shape[0], ignore_index, device=counts.device)
        confusion._add(counts.to(torch.int64))
        return confusion

    def __repr__(self) -> str:
        return (
            f"ConfusionMatrix(num_classes={self.num_classes}, ignore_index={self.ignore_index}, "
            f"total_pixels={self.total_pixels}, device={self.tensor.device})"
        )


# -- per image ------------------------------------------------------------------------------------
def image_confusions(
    pred: LabelArray,
    target: LabelArray,
    num_classes: int,
    ignore_index: int | None = 255,
    *,
    unassigned_label: int | None = None,
) -> np.ndarray:
    """One (K, K) confusion matrix per image of (N, H, W) masks -> (N, K, K) int64.

    With ``unassigned_label``, predicted pixels holding that value (an "other" prediction: a model
    class mapped to no dataset class) are counted in an extra last column, giving (N, K, K + 1):
    a miss of their ground-truth class and no class's false positive (MMSeg's treatment of
    predictions outside the class range).
    """
    check_classes(num_classes, ignore_index)
    if unassigned_label is None:
        counts = count_pixels(pred, target, int(num_classes), ignore_index, per_image=True)
        return counts.cpu().numpy().copy()
    pred_tensor, target_tensor = as_label_pair(pred, target)
    if 0 <= unassigned_label < num_classes or unassigned_label == ignore_index:
        raise ConfigError(f"unassigned_label {unassigned_label} must be neither a class id nor the ignore index")
    other = int(num_classes)  # the extra class the counting sees
    pred_tensor = torch.where(pred_tensor == unassigned_label, other, pred_tensor.long())
    if target_tensor.numel():
        target_rows(target_tensor, num_classes, ignore_index)  # raises on values that are neither class nor void
    counting_ignore = ignore_index
    if ignore_index == other:  # e.g. CamVid's void 11 with 11 classes: move void out of the extra class's way
        counting_ignore = other + 1
        target_tensor = torch.where(target_tensor == ignore_index, counting_ignore, target_tensor.long())
    counts = count_pixels(pred_tensor, target_tensor, other + 1, counting_ignore, per_image=True)
    if bool(counts[..., other, :].any()):  # a target pixel equal to the extra class is no class of the data
        raise_bad_target(target_tensor, num_classes, counting_ignore)
    return counts[..., :other, :].cpu().numpy().copy()


@dataclass(frozen=True, eq=False)
class PerImageMetrics:
    """Scores of each image of a batch, e.g. to rank failure cases.

    ``miou`` averages over the classes present in *that* image (ground truth or prediction).
    """

    confusion: np.ndarray  # (N, K, K) int64
    iou: np.ndarray  # (N, K), NaN where the class is absent from the image
    present: np.ndarray  # (N, K) bool
    pixel_acc: np.ndarray  # (N,), NaN for an image whose pixels are all ignored
    miou: np.ndarray  # (N,)
    total_pixels: np.ndarray  # (N,) int64 non-ignore pixels

    def worst_first(self, metric: str = "miou") -> np.ndarray:
        """Image indices sorted by ``metric`` ("miou" or "pixel_acc"), lowest first, NaN last."""
        if metric not in ("miou", "pixel_acc"):
            raise ConfigError(f"can rank images by 'miou' or 'pixel_acc', not {metric!r}")
        scores = getattr(self, metric)
        return worst_first(scores, np.arange(len(scores)))


def per_image_metrics(
    pred: LabelArray, target: LabelArray, num_classes: int, ignore_index: int | None = 255
) -> PerImageMetrics:
    """Confusion matrices and scores of every image of (N, H, W) masks in one batched bincount."""
    return per_image_metrics_from_confusion(image_confusions(pred, target, num_classes, ignore_index))


def per_image_metrics_from_confusion(confusion: np.ndarray) -> PerImageMetrics:
    """Per-image scores from (N, K, K) per-image confusion matrices (e.g. read back from a cache)."""
    confusion = np.asarray(confusion, dtype=np.int64)
    scores = class_scores(confusion)
    present = (scores["support"] + scores["predicted"]) > 0
    total = scores["support"].sum(axis=-1)
    pixel_acc = divide(scores["true_positive"].sum(axis=-1), total)
    return PerImageMetrics(
        confusion=read_only(confusion),
        iou=read_only(scores["iou"]),
        present=read_only(present),
        pixel_acc=read_only(pixel_acc),
        miou=read_only(masked_mean(scores["iou"], present, axis=-1)),
        total_pixels=read_only(total.astype(np.int64)),
    )
