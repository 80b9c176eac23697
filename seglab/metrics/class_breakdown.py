"""Why one class scores differently at dataset level and image-wise: counts per class and a one-line why.

Built on the same per-image confusion counts as :mod:`seglab.metrics.definitions` (see its docstring for the
identity behind most gaps: dataset-level IoU is a pixel-weighted mean of per-image IoUs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seglab.errors import ConfigError
from seglab.io.json_values import json_number
from seglab.metrics.definitions import image_counts
from seglab.metrics.scores import divide, masked_mean

__all__ = ["AGREEMENT_TOLERANCE", "ClassBreakdown", "per_class_breakdown"]

AGREEMENT_TOLERANCE = 0.02  # |image-wise - dataset-level| below this reads as "the views agree"
RARE_IMAGE_SHARE = 0.25  # a class in at most this share of the images is called rare


@dataclass(frozen=True)
class ClassBreakdown:
    """Why one class scores differently at dataset level and image-wise."""

    class_id: int
    name: str
    dataset_iou: float  # sum TP / sum U over the split (NaN when absent everywhere)
    imagewise_iou: float  # mean of per-image IoU over the images where the class is present
    images_with_class: int  # images whose ground truth holds the class
    images_predicted_only: int  # images where it is predicted but not in the ground truth (IoU 0)
    images_scored: int  # images with at least one labelled pixel
    mean_pixels_per_image: float  # ground-truth pixels per image that holds the class
    pixel_share: float  # share of the split's labelled pixels
    iou_where_small: float  # mean IoU over the half of its images where it has fewest pixels
    iou_where_large: float  # ... and over the half where it has most
    explanation: str

    @property
    def gap(self) -> float:
        """Image-wise minus dataset-level IoU."""
        return self.imagewise_iou - self.dataset_iou

    def to_row(self) -> dict[str, Any]:
        return {
            "class": self.name,
            "dataset IoU": json_number(self.dataset_iou),
            "image-wise IoU": json_number(self.imagewise_iou),
            "gap": json_number(self.gap),
            "images with it": f"{self.images_with_class}/{self.images_scored}",
            "predicted only": self.images_predicted_only,
            "mean px / image": json_number(self.mean_pixels_per_image),
            "pixel share": self.pixel_share,
            "why": self.explanation,
        }


# -- per class: why dataset-level and image-wise differ --------------------------------------------
def per_class_breakdown(per_image_confusion: Any, class_names: Sequence[str] | None = None) -> list[ClassBreakdown]:
    """Per class: dataset-level vs image-wise IoU, how many images hold it, and a one-line why."""
    counts = image_counts(per_image_confusion)
    scored = counts.scored
    true_positive, union = counts.true_positive[scored], counts.union[scored]
    support, images = counts.support[scored], int(scored.sum())
    num_classes = union.shape[1]
    names = [str(index) for index in range(num_classes)] if class_names is None else [str(name) for name in class_names]
    if len(names) != num_classes:
        raise ConfigError(f"expected {num_classes} class names, got {len(names)}")
    image_iou = divide(true_positive, union)
    dataset_iou = divide(true_positive.sum(axis=0), union.sum(axis=0))
    labelled = max(float(support.sum()), 1.0)
    rows = []
    for class_id, name in enumerate(names):
        has_truth = support[:, class_id] > 0
        predicted_only = (union[:, class_id] > 0) & ~has_truth
        small, large = _halves(image_iou[has_truth, class_id], support[has_truth, class_id])
        row: dict[str, Any] = dict(
            class_id=class_id,
            name=name,
            dataset_iou=float(dataset_iou[class_id]),
            imagewise_iou=masked_mean(image_iou[:, class_id]),
            images_with_class=int(has_truth.sum()),
            images_predicted_only=int(predicted_only.sum()),
            images_scored=images,
            mean_pixels_per_image=float(divide(support[:, class_id].sum(), has_truth.sum())),
            pixel_share=float(support[:, class_id].sum() / labelled),
            iou_where_small=small,
            iou_where_large=large,
        )
        rows.append(ClassBreakdown(**row, explanation=_explain(**row)))
    return rows


def _halves(iou: np.ndarray, pixels: np.ndarray) -> tuple[float, float]:
    """Mean IoU over the images where the class is smallest (lower half) and largest (upper half)."""
    if iou.size < 2:
        return math.nan, math.nan
    order = np.argsort(pixels, kind="stable")
    half = iou.size // 2
    return masked_mean(iou[order[:half]]), masked_mean(iou[order[-half:]])


def _images(count: int) -> str:
    return f"{count} image" if count == 1 else f"{count} images"


def _explain(
    *,
    dataset_iou: float,
    imagewise_iou: float,
    images_with_class: int,
    images_predicted_only: int,
    images_scored: int,
    mean_pixels_per_image: float,
    iou_where_small: float,
    iou_where_large: float,
    **_: Any,
) -> str:
    """One sentence on why the two numbers differ, from the counts alone."""
    if images_with_class == 0 and images_predicted_only == 0:
        return "absent from this split (ground truth and prediction): no IoU; definitions counting it as 0 or 1 move."
    if images_with_class == 0:
        return f"never in the ground truth but predicted in {_images(images_predicted_only)}: IoU 0 in both views."
    rare = images_with_class <= RARE_IMAGE_SHARE * images_scored
    share = f"{'only ' if rare else ''}{images_with_class}/{images_scored}"
    where = f"present in {share} images (~{mean_pixels_per_image:,.0f} px each)"
    images_averaged = images_with_class + images_predicted_only
    counted = (
        f"the {images_averaged} images where it is in the ground truth ({images_with_class}) or only predicted "
        f"({images_predicted_only})"
        if images_predicted_only
        else f"those {images_with_class} images"
    )
    weighting = f"image-wise averaging weights each of {counted} equally, dataset-level weights pixels"
    gap = imagewise_iou - dataset_iou
    size_effect = (not math.isnan(iou_where_small)) and abs(iou_where_large - iou_where_small) >= AGREEMENT_TOLERANCE
    sizes = f"IoU {iou_where_small:.2f} where it is small vs {iou_where_large:.2f} where it is large"
    if dataset_iou == 0:
        return (
            f"{where}: never segmented correctly (no true positive pixel), so IoU 0 in every image and in both views."
        )
    if abs(gap) < AGREEMENT_TOLERANCE:
        return f"{where}: both views agree ({imagewise_iou:.2f} vs {dataset_iou:.2f})."
    if gap < 0:
        if images_predicted_only and images_predicted_only >= 0.2 * images_averaged:
            reason = (
                f"it is falsely predicted in {_images(images_predicted_only)} without it, each an IoU of 0 image-wise "
                "but only a few false pixels dataset-wide"
            )
        elif size_effect and iou_where_small < iou_where_large:
            reason = f"it scores worse in images where it is small ({sizes})"
        else:
            reason = "its poorly segmented images have few pixels"
        return f"{where}: image-wise is lower because {reason}; {weighting}."
    if size_effect and iou_where_large < iou_where_small:
        reason = f"it scores worse in images where it is large ({sizes}) and those dominate the pixel sums"
    else:
        reason = "its well segmented images are the ones with few pixels"
    return f"{where}: image-wise is higher because {reason}; {weighting}."
