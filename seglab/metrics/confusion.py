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

import math
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import torch

from seglab.errors import ConfigError, LabelError
from seglab.io.json_values import json_number
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

LabelArray = np.ndarray | torch.Tensor

# Below this many pixels a CPU update runs in the calling thread: thread start-up would dominate.
_PARALLEL_MIN_PIXELS = 1 << 19
# Pieces of about 1M pixels keep the int16 index (2 MB) in cache; measured fastest on 2 cores.
_PIECE_PIXELS = 1 << 20
# Two workers: torch.bincount's counting loop is serial, while the elementwise ops around it
# already use torch's intra-op threads, so more workers would only oversubscribe the cores.
_COUNT_WORKERS = 2
# Rows of bins beyond which a far-away ignore index is remapped next to the classes.
_MAX_TARGET_ROWS = 256
_MAX_VALUES_SHOWN = 10
_DTYPE_ADVICE = "expected integer class ids (for logits or probabilities pass argmax over classes)"


# -- input handling ---------------------------------------------------------------------------
def _as_label_tensor(labels: Any, role: str) -> torch.Tensor:
    """``labels`` (numpy array or tensor of class ids) as an integer tensor, without a copy if possible."""
    if isinstance(labels, torch.Tensor):
        tensor = labels.detach()
    else:
        array = np.asarray(labels)
        if array.dtype.kind not in "biu":
            raise LabelError(f"{role} has dtype {array.dtype}; {_DTYPE_ADVICE}")
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
        if array.flags.writeable:
            tensor = torch.from_numpy(array)
        else:
            with warnings.catch_warnings():
                # Read-only masks (np.asarray of a PIL image) are common; the tensor is only read.
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                tensor = torch.from_numpy(array)
    if tensor.is_floating_point() or tensor.is_complex():
        raise LabelError(f"{role} has dtype {tensor.dtype}; {_DTYPE_ADVICE}")
    if tensor.dtype == torch.bool:
        return tensor.to(torch.uint8)
    if tensor.dtype in (torch.uint16, torch.uint32, torch.uint64):
        return tensor.to(torch.int64)  # torch lacks min/max and mixed arithmetic for these
    return tensor


def _as_label_pair(pred: Any, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    pred_tensor = _as_label_tensor(pred, "pred")
    target_tensor = _as_label_tensor(target, "target")
    if pred_tensor.shape != target_tensor.shape:
        hint = ""
        if pred_tensor.ndim == target_tensor.ndim + 1:
            hint = "; pred looks like scores with a class axis: pass scores.argmax(1)"
        raise LabelError(
            f"pred has shape {tuple(pred_tensor.shape)} but target has shape "
            f"{tuple(target_tensor.shape)}; they must match pixel for pixel{hint}"
        )
    # The target decides the device: metrics accumulate where the labels already live.
    return pred_tensor.to(target_tensor.device), target_tensor


def _format_values(values: torch.Tensor) -> str:
    shown = [int(v) for v in values[:_MAX_VALUES_SHOWN].tolist()]
    more = f" and {len(values) - _MAX_VALUES_SHOWN} more" if len(values) > _MAX_VALUES_SHOWN else ""
    return f"{shown}{more}"


def _check_pred(pred: torch.Tensor, num_classes: int) -> None:
    """Raise :class:`LabelError` naming the prediction values outside ``[0, K)``."""
    smallest, largest = (int(v) for v in torch.aminmax(pred))
    if smallest < 0 or largest >= num_classes:
        bad = torch.unique(pred[(pred < 0) | (pred >= num_classes)]).cpu()
        raise LabelError(
            f"pred holds values {_format_values(bad)} outside the class ids [0, {num_classes}); "
            "check num_classes, or map the model's outputs to class ids first"
        )


def _raise_bad_target(target: torch.Tensor, num_classes: int, ignore_index: int | None) -> None:
    """Raise :class:`LabelError` naming the target values that are neither a class nor ignore."""
    outside = (target < 0) | (target >= num_classes)
    if ignore_index is not None:
        outside &= target != ignore_index
    bad = torch.unique(target[outside]).cpu()
    ignore = f" nor the ignore index {ignore_index}" if ignore_index is not None else ""
    raise LabelError(
        f"target holds values {_format_values(bad)} that are neither a class id in "
        f"[0, {num_classes}){ignore}; check num_classes / ignore_index against the dataset's "
        "label map"
    )


@dataclass(frozen=True)
class _TargetRows:
    """Target values mapped to rows of bins: row = value - lowest, ``rows`` rows in all."""

    target: torch.Tensor
    lowest: int
    rows: int
    ignore_row: int | None


def _target_rows(target: torch.Tensor, num_classes: int, ignore_index: int | None) -> _TargetRows:
    """Check the target's range cheaply (min/max) and choose the rows of bins it needs."""
    original = target
    if ignore_index is None:
        lowest, highest, ignore_row = 0, num_classes - 1, None
    else:
        lowest, highest = min(0, ignore_index), max(num_classes - 1, ignore_index)
        ignore_row = ignore_index - lowest
    if ignore_index is not None and highest - lowest + 1 > _MAX_TARGET_ROWS:
        # A far-away ignore index (65535, -100) would need that many empty rows: remap it to K.
        target = torch.where(target == ignore_index, num_classes, target.long())
        lowest, highest, ignore_row = 0, num_classes, num_classes
    smallest, largest = (int(v) for v in torch.aminmax(target))
    if smallest < lowest or largest > highest:
        _raise_bad_target(original, num_classes, ignore_index)
    return _TargetRows(target, lowest=lowest, rows=highest - lowest + 1, ignore_row=ignore_row)


def _class_rows(counts: torch.Tensor, rows: _TargetRows, num_classes: int, ignore_index: int | None) -> torch.Tensor:
    """The K class rows of ``counts`` (..., rows, K); raise if a value between classes and ignore occurs."""
    first_class_row = -rows.lowest
    expected_rows = num_classes if rows.ignore_row is None else num_classes + 1
    if rows.rows > expected_rows:
        # Small (rows,) array: numpy is cheaper than more tiny torch ops here.
        stray_pixels = counts.reshape(-1, rows.rows, num_classes).sum(dim=(0, 2)).cpu().numpy()
        stray_pixels[first_class_row : first_class_row + num_classes] = 0
        if rows.ignore_row is not None:
            stray_pixels[rows.ignore_row] = 0
        if stray_pixels.any():
            _raise_bad_target(rows.target, num_classes, ignore_index)
    return counts[..., first_class_row : first_class_row + num_classes, :]


def _index_dtype(bins: int) -> torch.dtype:
    """The narrowest dtype holding bin numbers: int16 halves memory traffic for K <= 128."""
    if bins <= torch.iinfo(torch.int16).max + 1:
        return torch.int16
    if bins <= torch.iinfo(torch.int32).max + 1:
        return torch.int32
    return torch.int64


def _bin_index(pred: torch.Tensor, target: torch.Tensor, lowest: int, num_classes: int, bins: int) -> torch.Tensor:
    """``(target - lowest) * K + pred`` in the narrowest dtype that holds ``bins``."""
    index = target.to(_index_dtype(bins), copy=True)
    if lowest:
        index -= lowest
    return index.mul_(num_classes).add_(pred)


def _bin_counts(pred: torch.Tensor, target: torch.Tensor, lowest: int, num_classes: int, bins: int) -> torch.Tensor:
    """Bincount of :func:`_bin_index` over flat ``pred``/``target`` -> (bins,) int64."""
    return torch.bincount(_bin_index(pred, target, lowest, num_classes, bins), minlength=bins)


def _bin_counts_parallel(
    pred: torch.Tensor, target: torch.Tensor, lowest: int, num_classes: int, bins: int
) -> torch.Tensor:
    """:func:`_bin_counts` over pieces on two threads (torch releases the GIL) for large CPU inputs."""
    pixels = target.numel()
    if target.device.type != "cpu" or pixels < _PARALLEL_MIN_PIXELS or torch.get_num_threads() < 2:
        return _bin_counts(pred, target, lowest, num_classes, bins)
    pieces = max(_COUNT_WORKERS, math.ceil(pixels / _PIECE_PIXELS))
    pred_pieces = torch.tensor_split(pred, pieces)
    target_pieces = torch.tensor_split(target, pieces)
    with ThreadPoolExecutor(max_workers=_COUNT_WORKERS) as pool:
        counts = pool.map(lambda p, t: _bin_counts(p, t, lowest, num_classes, bins), pred_pieces, target_pieces)
        return torch.stack(list(counts)).sum(dim=0)


def _count_pixels(pred: Any, target: Any, num_classes: int, ignore_index: int | None, per_image: bool) -> torch.Tensor:
    """Confusion counts (K, K), or (N, K, K) with ``per_image``, on the target's device."""
    pred_tensor, target_tensor = _as_label_pair(pred, target)
    if per_image:
        if target_tensor.ndim == 2:
            pred_tensor, target_tensor = pred_tensor[None], target_tensor[None]
        if target_tensor.ndim != 3:
            raise LabelError(
                f"per-image metrics need (N, H, W) or (H, W) masks, got shape {tuple(target_tensor.shape)}"
            )
    images = target_tensor.shape[0] if per_image else 1
    device = target_tensor.device
    if target_tensor.numel() == 0:
        shape = (images, num_classes, num_classes) if per_image else (num_classes, num_classes)
        return torch.zeros(shape, dtype=torch.int64, device=device)
    _check_pred(pred_tensor, num_classes)
    rows = _target_rows(target_tensor, num_classes, ignore_index)
    image_bins = rows.rows * num_classes
    if per_image:
        # One bincount for the batch: image n owns bins [n * image_bins, (n + 1) * image_bins).
        bins = images * image_bins
        index = _bin_index(pred_tensor, rows.target, rows.lowest, num_classes, bins)
        offsets = torch.arange(images, device=device, dtype=index.dtype) * image_bins
        index += offsets.view(images, *([1] * (index.ndim - 1)))
        counts = torch.bincount(index.reshape(-1), minlength=bins)
        counts = counts.view(images, rows.rows, num_classes)
    else:
        counts = _bin_counts_parallel(
            pred_tensor.reshape(-1), rows.target.reshape(-1), rows.lowest, num_classes, image_bins
        )
        counts = counts.view(rows.rows, num_classes)
    return _class_rows(counts, rows, num_classes, ignore_index)


def _check_classes(num_classes: int, ignore_index: int | None) -> None:
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        raise ConfigError(
            f"ignore_index {ignore_index} is also a class id (classes are 0..{num_classes - 1}); "
            "void must be a value outside the class ids, e.g. 255"
        )


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


def _class_scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
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


def _read_only(array: np.ndarray) -> np.ndarray:
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
        scores = _class_scores(confusion)
        support, predicted = scores["support"], scores["predicted"]
        present = (support + predicted) > 0
        foreground = present.copy()
        if background_index is not None:
            foreground[background_index] = False
        total = float(support.sum())
        has_truth = support > 0
        return cls(
            confusion=_read_only(confusion),
            iou=_read_only(scores["iou"]),
            precision=_read_only(scores["precision"]),
            recall=_read_only(scores["recall"]),
            f1=_read_only(scores["f1"]),
            support=_read_only(support.astype(np.int64)),
            predicted=_read_only(predicted.astype(np.int64)),
            present=_read_only(present),
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


# -- accumulation -----------------------------------------------------------------------------
class ConfusionMatrix:
    """Pixel counts ``matrix[truth, pred]`` accumulated over many batches.

    The counts live in :attr:`tensor` (int64, on the device of the first update), so distributed
    evaluation can sum them with :meth:`all_reduce` before :meth:`compute`.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255, device: torch.device | str = "cpu") -> None:
        _check_classes(num_classes, ignore_index)
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
        counts = _count_pixels(pred, target, self.num_classes, self.ignore_index, per_image=False)
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
    _check_classes(num_classes, ignore_index)
    if unassigned_label is None:
        counts = _count_pixels(pred, target, int(num_classes), ignore_index, per_image=True)
        return counts.cpu().numpy().copy()
    pred_tensor, target_tensor = _as_label_pair(pred, target)
    if 0 <= unassigned_label < num_classes or unassigned_label == ignore_index:
        raise ConfigError(f"unassigned_label {unassigned_label} must be neither a class id nor the ignore index")
    other = int(num_classes)  # the extra class the counting sees
    pred_tensor = torch.where(pred_tensor == unassigned_label, other, pred_tensor.long())
    if target_tensor.numel():
        _target_rows(target_tensor, num_classes, ignore_index)  # raises on values that are neither class nor void
    counting_ignore = ignore_index
    if ignore_index == other:  # e.g. CamVid's void 11 with 11 classes: move void out of the extra class's way
        counting_ignore = other + 1
        target_tensor = torch.where(target_tensor == ignore_index, counting_ignore, target_tensor.long())
    counts = _count_pixels(pred_tensor, target_tensor, other + 1, counting_ignore, per_image=True)
    if bool(counts[..., other, :].any()):  # a target pixel equal to the extra class is no class of the data
        _raise_bad_target(target_tensor, num_classes, counting_ignore)
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
    scores = _class_scores(confusion)
    present = (scores["support"] + scores["predicted"]) > 0
    total = scores["support"].sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pixel_acc = scores["true_positive"].sum(axis=-1) / total
    return PerImageMetrics(
        confusion=_read_only(confusion),
        iou=_read_only(scores["iou"]),
        present=_read_only(present),
        pixel_acc=_read_only(pixel_acc),
        miou=_read_only(masked_mean(scores["iou"], present, axis=-1)),
        total_pixels=_read_only(total.astype(np.int64)),
    )
