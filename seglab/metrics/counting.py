"""Confusion counting: label inputs checked and counted into ``(K, K)`` bins with one ``torch.bincount``
(the method is in :mod:`seglab.metrics.confusion`'s docstring)."""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from seglab.errors import ConfigError, LabelError

LabelArray = np.ndarray | torch.Tensor  # class ids, (N, H, W) or (H, W)

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
def as_label_tensor(labels: Any, role: str) -> torch.Tensor:
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


def as_label_pair(pred: Any, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Prediction and target as integer tensors of one shape on one device (LabelError naming the mismatch)."""
    pred_tensor = as_label_tensor(pred, "pred")
    target_tensor = as_label_tensor(target, "target")
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


def raise_bad_target(target: torch.Tensor, num_classes: int, ignore_index: int | None) -> None:
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
class TargetRows:
    """Target values mapped to rows of bins: row = value - lowest, ``rows`` rows in all."""

    target: torch.Tensor
    lowest: int
    rows: int
    ignore_row: int | None


def target_rows(target: torch.Tensor, num_classes: int, ignore_index: int | None) -> TargetRows:
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
        raise_bad_target(original, num_classes, ignore_index)
    return TargetRows(target, lowest=lowest, rows=highest - lowest + 1, ignore_row=ignore_row)


def _class_rows(counts: torch.Tensor, rows: TargetRows, num_classes: int, ignore_index: int | None) -> torch.Tensor:
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
            raise_bad_target(rows.target, num_classes, ignore_index)
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


def count_pixels(pred: Any, target: Any, num_classes: int, ignore_index: int | None, per_image: bool) -> torch.Tensor:
    """Confusion counts (K, K), or (N, K, K) with ``per_image``, on the target's device."""
    pred_tensor, target_tensor = as_label_pair(pred, target)
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
    rows = target_rows(target_tensor, num_classes, ignore_index)
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


def check_classes(num_classes: int, ignore_index: int | None) -> None:
    """ConfigError unless ``num_classes`` is positive and ``ignore_index`` is not one of the classes."""
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        raise ConfigError(
            f"ignore_index {ignore_index} is also a class id (classes are 0..{num_classes - 1}); "
            "void must be a value outside the class ids, e.g. 255"
        )
