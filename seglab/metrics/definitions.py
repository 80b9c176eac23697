"""The same predictions scored under the mIoU definitions people actually use (and confuse).

Everything starts from per-image confusion matrices ``(N, K, K)`` (rows = ground truth, columns
= prediction, void pixels already dropped), so every definition sees exactly the same pixels.
Per image ``n`` and class ``c``: ``TP`` is the diagonal, ``FP`` the rest of the column, ``FN``
the rest of the row, and the union ``U = TP + FP + FN``. A class is *present* in an image (or in
the split) when ``U > 0``, i.e. it occurs in the ground truth or the prediction.

The definitions differ in two independent choices:

- **where pixels are summed**: over the whole split first (dataset-level, one confusion matrix)
  or per image (image-wise, then averaged over images);
- **what an absent class counts as**: skipped (NaN), 0, or 1.

A useful identity explains most gaps between the two levels: the dataset-level IoU of a class is
``sum_n TP_n / sum_n U_n = sum_n (U_n / sum_m U_m) * IoU_n``, a mean of per-image IoUs weighted by
each image's union pixels, while the image-wise IoU is the *unweighted* mean over the same images.
Images where a class is small (or only falsely predicted) weigh little in the first and as much as
any other image in the second.

"Who uses it" notes were checked against the libraries' sources (MMSegmentation ``IoUMetric``,
torchmetrics 1.9, segmentation_models_pytorch ``metrics.functional``, CSAIL
semantic-segmentation-pytorch ``eval.py``); defaults change between versions, so treat them as
pointers, not guarantees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seglab.errors import ConfigError
from seglab.io.json_values import json_number
from seglab.metrics.scores import ClassCounts, class_counts, divide, masked_mean

__all__ = [
    "APP_DEFINITION",
    "DefinitionScore",
    "ImageCounts",
    "compute_definitions",
    "image_counts",
    "key_choices",
]

APP_DEFINITION = "dataset_miou"  # key of the definition every other page of seglab reports


@dataclass(frozen=True)
class DefinitionScore:
    """One definition's value on the split, how it is computed and who reports it that way."""

    name: str
    value: float  # NaN when the definition does not apply (e.g. no background class)
    formula: str
    used_by: str
    note: str
    key: str = ""
    level: str = "dataset"  # "dataset" (pixels summed over the split) or "image-wise"

    def to_row(self) -> dict[str, Any]:
        """A table row; ``value`` is None when not applicable (shown as n/a)."""
        return {
            "definition": self.name,
            "value": json_number(self.value),
            "level": self.level,
            "formula": self.formula,
            "who uses it": self.used_by,
            "note": self.note,
        }


@dataclass(frozen=True)
class KeyChoice:
    """One of the few choices that move mIoU most, with the definitions it picks between."""

    title: str
    explanation: str
    scores: tuple[DefinitionScore, ...]


#: The choices a student should know first: (title, explanation, keys of the definitions compared).
KEY_CHOICES = (
    (
        "Sum pixels over the split, or average images?",
        "Dataset-level sums every image's pixels before dividing, so big objects and busy images dominate; image-wise "
        "scores each image and averages, so every image weighs the same.",
        ("dataset_miou", "imagewise_miou"),
    ),
    (
        "With or without the background class?",
        "Background is large and easy: leaving it out of the mean shows how the objects themselves are segmented.",
        ("dataset_miou", "dataset_miou_no_background"),
    ),
    (
        "A class absent from the split: skipped, 0 or 1?",
        "A class in neither the ground truth nor the prediction has no IoU (0/0). Skipping it (NaN, this app) is "
        "neutral; counting it as 0 punishes the model for data it never saw; counting it as 1 is a free point.",
        ("dataset_miou", "dataset_miou_absent_zero", "dataset_miou_absent_one"),
    ),
)


def key_choices(scores: Sequence[DefinitionScore]) -> list[KeyChoice]:
    """The :data:`KEY_CHOICES` that apply to these scores (no background class: that choice is left out)."""
    by_key = {score.key: score for score in scores}
    choices = []
    for title, explanation, keys in KEY_CHOICES:
        picked = tuple(by_key[key] for key in keys)
        if all(not math.isnan(score.value) for score in picked):
            choices.append(KeyChoice(title, explanation, picked))
    return choices


# -- counting ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageCounts(ClassCounts):
    """Per-image class counts ``(N, K)`` of a stack of confusion matrices, and which images have labelled pixels."""

    scored: np.ndarray  # (N,) bool: image has labelled pixels


def image_counts(per_image_confusion: Any) -> ImageCounts:
    """Check per-image confusions ``(N, K, K)`` (or ``(N, K, K + 1)``, or one ``(K, K)``) and count per image."""
    confusion = np.asarray(per_image_confusion, dtype=np.float64)
    if confusion.ndim == 2:
        confusion = confusion[None]
    # (N, K, K + 1): a mapped source's "other" column, a miss of the true class and no class's prediction.
    square_or_other = confusion.ndim == 3 and confusion.shape[2] in (confusion.shape[1], confusion.shape[1] + 1)
    if not square_or_other or confusion.shape[1] == 0:
        raise ConfigError(
            f"expected per-image confusion matrices (N, K, K), got shape {confusion.shape}; "
            "stack ImageResult.confusion of an evaluation"
        )
    if (confusion < 0).any() or not np.isfinite(confusion).all():
        raise ConfigError("confusion matrices hold pixel counts; got negative or non-finite values")
    counts = class_counts(confusion)
    scored = counts.support.sum(axis=1) > 0
    return ImageCounts(counts.true_positive, counts.support, counts.predicted, scored=scored)


# -- definitions ---------------------------------------------------------------------------------
def compute_definitions(per_image_confusion: Any, background_index: int | None = 0) -> list[DefinitionScore]:
    """Score the same per-image confusions ``(N, K, K)`` under every common definition.

    Dataset-level definitions sum the confusions over the split first; image-wise ones score each
    image with labelled pixels, then average over images. ``background_index`` None (CamVid) makes
    the "without background" rows NaN (not applicable).
    """
    counts = image_counts(per_image_confusion)
    num_classes = counts.union.shape[1]
    if background_index is not None and not 0 <= background_index < num_classes:
        raise ConfigError(f"background_index {background_index} is not a class id in [0, {num_classes}); use None")
    foreground = np.ones(num_classes, dtype=bool)
    if background_index is not None:
        foreground[background_index] = False
    no_background = "" if background_index is not None else "n/a: this label map has no background class. "

    # Dataset level: one confusion matrix for the split.
    true_positive, union = counts.true_positive.sum(axis=0), counts.union.sum(axis=0)
    support = counts.support.sum(axis=0)
    iou = divide(true_positive, union)
    present = union > 0
    labelled, correct = support.sum(), true_positive.sum()
    wrong = labelled - correct

    # Image-wise: only images with labelled pixels are scored (an all-void image says nothing).
    scored = counts.scored
    image_iou = divide(counts.true_positive, counts.union)[scored]
    image_present = counts.union[scored] > 0

    def image_mean(per_image: np.ndarray) -> float:
        return masked_mean(per_image) if per_image.size else math.nan

    dataset = [
        DefinitionScore(
            "mIoU, dataset-level, present classes",
            masked_mean(iou, present),
            "mean over classes present in GT or prediction of ΣₙTP / Σₙ(TP+FP+FN)",
            "seglab (every other page); MMSegmentation IoUMetric (nanmean); torchmetrics MulticlassJaccardIndex "
            "(average='macro', its default, drops classes absent from both)",
            "Large objects and frequent images dominate each class's IoU: pixels are summed before dividing.",
            key="dataset_miou",
        ),
        DefinitionScore(
            "mIoU, dataset-level, without background",
            masked_mean(iou, present & foreground) if background_index is not None else math.nan,
            "as above, background class left out of the mean",
            "seglab's 'without background' views (Dataset, Inspect); papers reporting foreground classes only",
            no_background + "Background is large and easy: leaving it out shows how the objects do.",
            key="dataset_miou_no_background",
        ),
        DefinitionScore(
            "mIoU, dataset-level, absent classes = 0",
            float(np.nan_to_num(iou, nan=0.0).mean()),
            "Σ_c IoU_c / K over all K classes, IoU = 0 for a class in neither GT nor prediction",
            "CSAIL semantic-segmentation-pytorch eval.py (I / (U + 1e-10), plain mean over classes)",
            (
                "Lower than the first row whenever a class is missing from the split: "
                "the model is penalised for data it never saw."
            ),
            key="dataset_miou_absent_zero",
        ),
        DefinitionScore(
            "mIoU, dataset-level, absent classes = 1",
            float(np.where(present, iou, 1.0).mean()),
            "Σ_c IoU_c / K over all K classes, IoU = 1 for a class in neither GT nor prediction",
            "segmentation_models_pytorch iou_score(reduction='macro') with its default zero_division=1",
            "Higher than the first row whenever a class is missing: a free 1 for every absent class.",
            key="dataset_miou_absent_one",
        ),
        DefinitionScore(
            "micro IoU (dataset-level)",
            float(divide(correct, correct + 2 * wrong)),
            "Σ_c TP / Σ_c (TP+FP+FN) = correct / (correct + 2 × wrong)",
            (
                "segmentation_models_pytorch iou_score(reduction='micro'); "
                "torchmetrics MulticlassJaccardIndex(average='micro')"
            ),
            (
                "Each wrong pixel is one FP and one FN, so this is acc / (2 − acc): "
                "a pixel-accuracy in disguise, blind to rare classes."
            ),
            key="micro_iou",
        ),
        DefinitionScore(
            "frequency-weighted IoU",
            float(divide(np.nansum(support * iou), labelled)),
            "Σ_c (GT pixels_c / all labelled pixels) × IoU_c",
            "FCN (Long et al. 2015); MMSegmentation-style reports; seglab fwIoU",
            "Weights classes by their pixels: dominated by background/road/sky.",
            key="fwiou",
        ),
        DefinitionScore(
            "pixel accuracy",
            float(divide(correct, labelled)),
            "correct pixels / labelled pixels",
            "MMSegmentation aAcc; CSAIL 'Accuracy'; torchmetrics MulticlassAccuracy(average='micro')",
            "Flatters imbalanced data: predicting the majority class everywhere already scores its pixel share.",
            key="pixel_accuracy",
        ),
        DefinitionScore(
            "mean class accuracy",
            masked_mean(divide(true_positive, support), support > 0),
            "mean over classes with GT of TP / GT pixels (mean recall)",
            "MMSegmentation mAcc; FCN 'mean accuracy'; torchmetrics MulticlassAccuracy(average='macro', its default; "
            "it also counts classes only predicted, as 0)",
            "Ignores false alarms entirely: predicting a rare class everywhere raises it.",
            key="mean_class_accuracy",
        ),
    ]
    per_image_present = masked_mean(image_iou, image_present, axis=1) if image_iou.size else np.zeros(0)
    per_image_foreground = masked_mean(image_iou, image_present & foreground, axis=1) if image_iou.size else np.zeros(0)
    imagewise = [
        DefinitionScore(
            "mIoU, image-wise, classes present in each image",
            image_mean(per_image_present),
            "meanₙ [ mean over classes present in image n of TPₙ / (TPₙ+FPₙ+FNₙ) ]",
            "seglab's Inspect ranking (image mIoU); per-image evaluation scripts",
            "Every image weighs the same; a class predicted in an image that lacks it adds an IoU of 0 there.",
            key="imagewise_miou",
            level="image-wise",
        ),
        DefinitionScore(
            "mIoU, image-wise, without background",
            image_mean(per_image_foreground) if background_index is not None else math.nan,
            "as above, background left out; images with only background (GT and prediction) are skipped",
            "seglab's Inspect ranking 'without background'",
            no_background + "Small objects in each image now decide the score.",
            key="imagewise_miou_no_background",
            level="image-wise",
        ),
        DefinitionScore(
            "mIoU, image-wise, absent classes = 1",
            image_mean(np.where(image_present, image_iou, 1.0).mean(axis=1)) if image_iou.size else math.nan,
            "meanₙ [ Σ_c IoUₙ_c / K ], IoU = 1 for a class in neither GT nor prediction of image n",
            "segmentation_models_pytorch iou_score(reduction='macro-imagewise') with its default zero_division=1",
            "Images with few classes get many free 1s: usually the highest number on this page.",
            key="imagewise_miou_absent_one",
            level="image-wise",
        ),
        DefinitionScore(
            "mIoU, image-wise, absent classes = 0",
            image_mean(np.where(image_present, image_iou, 0.0).mean(axis=1)) if image_iou.size else math.nan,
            "meanₙ [ Σ_c IoUₙ_c / K ], IoU = 0 for a class in neither GT nor prediction of image n",
            "segmentation_models_pytorch iou_score(reduction='macro-imagewise', zero_division=0)",
            "Punishes every image for the classes it does not contain: low even for a perfect model.",
            key="imagewise_miou_absent_zero",
            level="image-wise",
        ),
        DefinitionScore(
            "mIoU, pooled over (image, class) pairs",
            masked_mean(image_iou, image_present) if image_iou.size else math.nan,
            "mean over all (image n, class c) with Uₙ_c > 0 of IoUₙ_c",
            "torchmetrics.segmentation.MeanIoU (1.9, per_class=False; include_background=True by default)",
            "Like image-wise, but images holding more classes weigh more.",
            key="pooled_pairs_miou",
            level="image-wise",
        ),
        DefinitionScore(
            "micro IoU, image-wise",
            image_mean(divide(counts.true_positive.sum(axis=1), counts.union.sum(axis=1))[scored]),
            "meanₙ [ correctₙ / (correctₙ + 2 × wrongₙ) ]",
            "segmentation_models_pytorch iou_score(reduction='micro-imagewise')",
            "A per-image pixel accuracy in disguise, averaged over images.",
            key="imagewise_micro_iou",
            level="image-wise",
        ),
    ]
    return dataset + imagewise
