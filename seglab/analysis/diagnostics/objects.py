"""Objects in semantic masks: which ground-truth objects a model finds, which it misses, and its false blobs.

An *object* is a connected component (8-connectivity) of one class in the ground truth; void
pixels belong to no object. Per object we keep its area, how many of its pixels the prediction
labels with the right class (``hit``), the area of the predicted same-class components that touch
it (for a lesion-wise Dice) and the class predicted most often on its missed pixels. Whether an
object counts as *detected* (``hit / area >= cover``) and which size bucket it falls in are decided
when summarising, so both thresholds can change without predicting again.

A *false blob* is a predicted component of a class (on scored pixels) that touches no ground-truth
pixel of that class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import numpy as np

from seglab.analysis.components import component_boxes, label_components
from seglab.errors import ConfigError

__all__ = [
    "SIZE_BUCKETS",
    "BlobTable",
    "ObjectTable",
    "SizeBuckets",
    "find_objects",
    "missed_objects",
    "object_summary",
]

SIZE_BUCKETS = ("small", "medium", "large")
Table = TypeVar("Table", bound="ObjectTable")
_NO_CLASS = -1  # wrong_class of an object whose every pixel was predicted right


@dataclass(frozen=True)
class SizeBuckets:
    """Object size buckets as shares of the image: small < ``small``, large >= ``large``, medium between.

    The defaults put CamVid's poles, pedestrians and sign symbols (a few hundred pixels of 480x360)
    in "small"; objects under ``min_share`` of the image or ``min_pixels`` (annotation specks, slivers
    where two regions meet) are left out.
    """

    small: float = 0.01
    large: float = 0.05
    min_share: float = 1e-4
    min_pixels: int = 5

    def __post_init__(self) -> None:
        if not 0 <= self.min_share < self.small < self.large <= 1:
            raise ConfigError(
                "size buckets need 0 <= min_share < small < large <= 1, "
                f"got {self.min_share}, {self.small}, {self.large}"
            )

    def counted(self, area: np.ndarray, image_pixels: np.ndarray) -> np.ndarray:
        """Which objects are large enough to count (not specks)."""
        return (area >= self.min_share * image_pixels) & (area >= self.min_pixels)

    def bucket(self, area: np.ndarray, image_pixels: np.ndarray) -> np.ndarray:
        """Bucket index (0 small, 1 medium, 2 large) of each object."""
        share = area / np.maximum(image_pixels, 1)
        return (share >= self.small).astype(np.int64) + (share >= self.large)

    def describe(self, image_pixels: int) -> dict[str, str]:
        """The thresholds in words, as shares and in pixels of an image of ``image_pixels``."""
        small_px, large_px = round(self.small * image_pixels), round(self.large * image_pixels)
        return {
            "small": f"< {self.small:.2%} of the image (< {small_px:,} px)",
            "medium": f"{self.small:.2%} to {self.large:.2%} ({small_px:,} to {large_px:,} px)",
            "large": f">= {self.large:.2%} (>= {large_px:,} px)",
            "ignored": f"objects under {self.min_share:.3%} of the image or {self.min_pixels} px "
            f"(< {max(self.min_share * image_pixels, self.min_pixels):.0f} px)",
        }


@dataclass
class ObjectTable:
    """One row per ground-truth object (parallel int64 arrays); ``image`` is the position in the evaluation."""

    image: np.ndarray
    class_id: np.ndarray
    area: np.ndarray
    hit: np.ndarray  # object pixels predicted as the object's class
    pred_area: np.ndarray  # area of the predicted same-class components touching the object
    wrong_class: np.ndarray  # class predicted most on the object's missed pixels, -1 if none
    image_pixels: np.ndarray
    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    h: np.ndarray

    def __len__(self) -> int:
        return len(self.area)

    @property
    def coverage(self) -> np.ndarray:
        """Share of each object's pixels predicted with its class."""
        return self.hit / np.maximum(self.area, 1)

    @property
    def dice(self) -> np.ndarray:
        """Dice of each object with the predicted same-class components touching it."""
        return 2 * self.hit / np.maximum(self.area + self.pred_area, 1)

    @classmethod
    def empty(cls: type[Table]) -> Table:
        return cls(**{f.name: np.zeros(0, np.int64) for f in fields(cls)})

    @classmethod
    def concatenate(cls: type[Table], tables: Sequence[Table]) -> Table:
        if not tables:
            return cls.empty()
        return cls(**{f.name: np.concatenate([getattr(t, f.name) for t in tables]) for f in fields(cls)})

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}{f.name}": getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_arrays(cls: type[Table], arrays: Any, prefix: str) -> Table:
        return cls(**{f.name: np.asarray(arrays[f"{prefix}{f.name}"], np.int64) for f in fields(cls)})

    def select(self: Table, keep: np.ndarray) -> Table:
        """The rows where ``keep`` is true (or at the given positions)."""
        return type(self)(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})


@dataclass
class BlobTable(ObjectTable):
    """One row per false blob; ``hit``/``pred_area`` are 0 and ``wrong_class`` is the ground truth under it."""


def present_classes(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int) -> list[int]:
    """Classes (< ``num_classes``) in the ground truth or the prediction (a class predicted on void pixels
    only is listed too: callers find it empty on scored pixels)."""
    in_truth = np.bincount(target.ravel(), minlength=num_classes)[:num_classes] > 0
    in_pred = np.bincount(pred.ravel(), minlength=num_classes)[:num_classes] > 0
    present = in_truth | in_pred
    if 0 <= ignore_index < num_classes:
        present[ignore_index] = False
    return [int(c) for c in np.flatnonzero(present)]


def _rows(area: np.ndarray, boxes: np.ndarray, image: int, class_id: np.ndarray, image_pixels: int, **columns) -> dict:
    n = len(area)
    return {
        "image": np.full(n, image, np.int64),
        "class_id": class_id.astype(np.int64),
        "area": area.astype(np.int64),
        "image_pixels": np.full(n, image_pixels, np.int64),
        **{name: boxes[:, i].astype(np.int64) for i, name in enumerate(("x", "y", "w", "h"))},
        **{name: np.asarray(values, np.int64) for name, values in columns.items()},
    }


def find_objects(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int, image: int = 0
) -> tuple[ObjectTable, BlobTable]:
    """The ground-truth objects and false blobs of one image (uint8 (H, W) prediction and mask).

    Every class is labelled into one id map for the ground truth and one for the prediction, then
    areas, hits, boxes and the touching pairs come from a few ``np.bincount`` over the whole image.
    """
    pred = np.ascontiguousarray(pred, np.uint8)
    target = np.ascontiguousarray(target)
    scored = target != ignore_index
    classes = present_classes(pred, target, num_classes, ignore_index)
    truth_ids, truth_class = label_components(target, classes, None)
    pred_ids, pred_class = label_components(pred, classes, scored)
    n_truth, n_pred = len(truth_class), len(pred_class)
    if n_truth == 1 and n_pred == 1:
        return ObjectTable.empty(), BlobTable.empty()
    image_pixels = int(target.size)
    values = int(pred.max()) + 1
    # Per object, the prediction's classes over its pixels: area, hit and the class predicted instead.
    table = np.bincount((truth_ids.astype(np.int64) * values + pred).ravel(), minlength=n_truth * values)
    table = table.reshape(n_truth, values)
    rows = np.arange(n_truth)
    own = np.where(truth_class < values, truth_class, 0)
    hit = np.where(truth_class < values, table[rows, own], 0)
    area = table.sum(axis=1)
    wrong_table = table.copy()
    wrong_table[rows, own] -= hit
    wrong = np.where(wrong_table.any(axis=1), wrong_table.argmax(axis=1), _NO_CLASS)
    pred_area = np.bincount(pred_ids.ravel(), minlength=n_pred)
    # (object, predicted component) pairs that share a pixel, same class by construction.
    same = (pred == target) & (pred_ids > 0)
    keys = truth_ids[same].astype(np.int64) * n_pred + pred_ids[same]
    pairs = np.flatnonzero(np.bincount(keys, minlength=1)) if n_truth * n_pred <= 1 << 22 else np.unique(keys)
    pair_truth, pair_pred = pairs // n_pred, pairs % n_pred
    touching = np.bincount(pair_truth, weights=pred_area[pair_pred], minlength=n_truth)
    objects, blobs = ObjectTable.empty(), BlobTable.empty()
    if n_truth > 1:
        columns = {"hit": hit[1:], "pred_area": np.rint(touching[1:]), "wrong_class": wrong[1:]}
        boxes = component_boxes(truth_ids, n_truth)[1:]
        objects = ObjectTable(**_rows(area[1:], boxes, image, truth_class[1:], image_pixels, **columns))
    blob = np.ones(n_pred, bool)
    blob[0] = False
    blob[pair_pred] = False
    if blob.any():
        # The ground truth under each blob (scored pixels only, so always a class).
        under_keys = (pred_ids.astype(np.int64) * 256 + target)[scored]
        under_table = np.bincount(under_keys, minlength=n_pred * 256).reshape(n_pred, 256)
        under = under_table.argmax(axis=1)[blob]
        count = int(blob.sum())
        columns = {"hit": np.zeros(count), "pred_area": np.zeros(count), "wrong_class": under}
        boxes = component_boxes(pred_ids, n_pred)[blob]
        blobs = BlobTable(**_rows(pred_area[blob], boxes, image, pred_class[blob], image_pixels, **columns))
    return objects, blobs


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator else None


def object_summary(
    objects: ObjectTable,
    blobs: BlobTable,
    class_names: Sequence[str],
    *,
    cover: float = 0.5,
    sizes: SizeBuckets = SizeBuckets(),
) -> dict:
    """Per-class object counts, recall (overall and per size bucket), false blobs and lesion-wise Dice.

    ``lesion_dice`` averages each object's Dice with the predicted components touching it, a missed
    object (coverage < ``cover``) counting 0: every object weighs the same, so one missed pedestrian
    costs as much as one missed road, while pixel IoU is dominated by the large objects.
    """
    if not 0 < cover <= 1:
        raise ConfigError(f"the detection threshold must be in (0, 1], got {cover}")
    objects = objects.select(sizes.counted(objects.area, objects.image_pixels))
    blobs = blobs.select(sizes.counted(blobs.area, blobs.image_pixels))
    detected = objects.coverage >= cover
    dice = np.where(detected, objects.dice, 0.0)
    object_bucket = sizes.bucket(objects.area, objects.image_pixels)
    blob_bucket = sizes.bucket(blobs.area, blobs.image_pixels)
    per_class = {}
    for class_id, name in enumerate(class_names):
        mine, my_blobs = objects.class_id == class_id, blobs.class_id == class_id
        row: dict = {
            "objects": int(mine.sum()),
            "detected": int((mine & detected).sum()),
            "recall": _ratio((mine & detected).sum(), mine.sum()),
            "lesion_dice": float(dice[mine].mean()) if mine.any() else None,
            "false_blobs": int(my_blobs.sum()),
        }
        for bucket, bucket_name in enumerate(SIZE_BUCKETS):
            in_bucket = mine & (object_bucket == bucket)
            row[f"objects_{bucket_name}"] = int(in_bucket.sum())
            row[f"recall_{bucket_name}"] = _ratio((in_bucket & detected).sum(), in_bucket.sum())
            row[f"false_blobs_{bucket_name}"] = int((my_blobs & (blob_bucket == bucket)).sum())
        per_class[str(name)] = row
    recalls = [row["recall"] for row in per_class.values() if row["recall"] is not None]
    typical = int(np.median(objects.image_pixels)) if len(objects) else 0
    return {
        "cover": cover,
        "sizes": sizes.describe(typical) if typical else {},
        "objects": len(objects),
        "detected": int(detected.sum()),
        "recall": _ratio(detected.sum(), len(objects)),
        "mean_recall": float(np.mean(recalls)) if recalls else None,
        "lesion_dice": float(dice.mean()) if len(objects) else None,
        "false_blobs": len(blobs),
        "recall_by_size": {
            name: _ratio((detected & (object_bucket == bucket)).sum(), (object_bucket == bucket).sum())
            for bucket, name in enumerate(SIZE_BUCKETS)
        },
        "per_class": per_class,
    }


def missed_objects(
    objects: ObjectTable,
    *,
    cover: float = 0.5,
    sizes: SizeBuckets = SizeBuckets(),
    largest_first: bool = False,
    class_id: int | None = None,
) -> ObjectTable:
    """The missed objects (coverage < ``cover``, specks left out), smallest or largest first."""
    keep = (objects.coverage < cover) & sizes.counted(objects.area, objects.image_pixels)
    if class_id is not None:
        keep &= objects.class_id == class_id
    missed = objects.select(keep)
    order = np.lexsort((missed.image, -missed.area if largest_first else missed.area))
    return missed.select(order)
