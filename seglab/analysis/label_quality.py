"""Label-quality hints: objects whose given label a trained model confidently disagrees with.

The method is confident learning (Northcutt, Jiang and Chuang, "Confident Learning: Estimating
Uncertainty in Dataset Labels", JAIR 2021; the idea behind cleanlab's label-quality scores),
applied per pixel and aggregated per labelled object, with numpy and OpenCV only:

1. Per pixel, the *self-confidence* is the model's probability of the given label, ``p(label)``.
   Void pixels have none and never count anywhere.
2. Per class ``j``, the *confident threshold* ``t_j`` is the mean self-confidence of the pixels
   labelled ``j`` over the split (at least 0.5). A pixel is *confidently* class ``j`` when
   ``p(j) >= t_j`` (the most probable such class wins); it is *suspicious* when that class is not
   its label.
3. Per object (a connected component of one class in the given mask), the score is the soft IoU
   between the object and the model's probability map of its class, counted over the object and
   a band of ``band`` px around it: ``sum_object p(c) / (|object| + sum_band p(c))``. A wrong
   class drives the numerator to ~0, a dilated outline inflates ``|object|``, an eroded one puts
   probability mass in the band: all three lower the score (1 = the model agrees everywhere).
4. Per image, the score is that of its worst object: one label error makes an image worth a look.

Low scores are *candidates*: a model also disagrees with correct labels of objects it cannot
segment (tiny, low contrast), so rankings are for a human to review, not to auto-correct labels.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from seglab.analysis.components import component_boxes, label_components
from seglab.data.base import SegmentationDataset
from seglab.errors import ConfigError, LabelError
from seglab.progress import ProgressCallback
from seglab.ranking import worst_first

if TYPE_CHECKING:
    import torch

    from seglab.sources.base import PredictionSource

__all__ = [
    "DEFAULT_BAND",
    "DEFAULT_MIN_PIXELS",
    "ImageLabelQuality",
    "LabelQualityReport",
    "LabelScorer",
    "ObjectQuality",
    "PixelQuality",
    "ShapesValidation",
    "class_thresholds",
    "label_objects",
    "pixel_quality",
    "place_labels",
    "score_dataset",
    "score_image",
    "self_confidence",
    "self_confidence_picture",
    "self_confidence_totals",
    "suspicion_picture",
    "validate_on_shapes",
]

DEFAULT_BAND = 5  # px around an object where an eroded outline leaves its class's probability mass
DEFAULT_MIN_PIXELS = 12  # smaller objects are scored but not ranked: a few pixels decide nothing
MIN_THRESHOLD = 0.5  # lowest confident threshold: a confident class also holds the majority
HIGHLIGHT_COLOR = (240, 228, 66)  # Okabe-Ito yellow, as on the Inspect page


# -- pixels ---------------------------------------------------------------------------------------------
def _check_pair(probabilities: np.ndarray, labels: np.ndarray, ignore_index: int) -> np.ndarray:
    """Validate ``(K, H, W)`` probabilities against ``(H, W)`` labels; return the scored-pixel mask."""
    if probabilities.ndim != 3 or labels.ndim != 2 or probabilities.shape[1:] != labels.shape:
        raise LabelError(
            "probabilities must be (K, H, W) and labels (H, W) of the same size, "
            f"got {probabilities.shape} and {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise LabelError(f"labels must hold integer class ids, got dtype {labels.dtype}")
    scored = labels != ignore_index
    bad = np.unique(labels[scored & ((labels < 0) | (labels >= probabilities.shape[0]))])
    if bad.size:
        raise LabelError(
            f"the mask holds values {bad[:8].tolist()} that are neither one of the {probabilities.shape[0]} "
            f"classes nor the ignore index {ignore_index}: check the label map"
        )
    return scored


def self_confidence(probabilities: np.ndarray, labels: np.ndarray, ignore_index: int) -> np.ndarray:
    """(H, W) float32 ``p_model(given label)`` per pixel; NaN on void pixels.

    Args:
        probabilities: (K, H, W) softmax probabilities.
        labels: (H, W) given class ids; ``ignore_index`` marks void.
    """
    scored = _check_pair(probabilities, labels, ignore_index)
    safe = np.where(scored, labels, 0).astype(np.intp)
    picked = np.take_along_axis(probabilities, safe[None], axis=0)[0]
    return np.where(scored, picked, np.nan).astype(np.float32)


def self_confidence_totals(
    probabilities: np.ndarray, labels: np.ndarray, ignore_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per class: ``(sum of self-confidence, pixel count)`` over the pixels labelled with it, shapes (K,).

    Summed over a split, they give :func:`class_thresholds`.
    """
    confidence = self_confidence(probabilities, labels, ignore_index)
    scored = ~np.isnan(confidence)
    classes = labels[scored].astype(np.intp)
    num_classes = probabilities.shape[0]
    sums = np.bincount(classes, weights=confidence[scored], minlength=num_classes)
    return sums, np.bincount(classes, minlength=num_classes).astype(np.int64)


def class_thresholds(sums: np.ndarray, counts: np.ndarray, floor: float = MIN_THRESHOLD) -> np.ndarray:
    """(K,) confident thresholds ``t_j = max(mean self-confidence of the pixels labelled j, floor)``.

    The mean is confident learning's per-class threshold. The floor departs from it on purpose: a
    class whose labels are mostly wrong (say, a class that exists only through flipped objects)
    has a mean near 0, which would make any trace of its probability "confident"; with the floor
    of 0.5 a confident class also holds the majority. A class no pixel carries gets ``floor``.
    """
    sums, counts = np.asarray(sums, dtype=np.float64), np.asarray(counts)
    if sums.shape != counts.shape or sums.ndim != 1:
        raise ConfigError(f"sums and counts must be two (K,) arrays, got {sums.shape} and {counts.shape}")
    means = np.where(counts > 0, sums / np.maximum(counts, 1), floor)
    return np.maximum(means, floor)


@dataclass
class PixelQuality:
    """Per-pixel confident-learning maps of one image."""

    self_confidence: np.ndarray  # (H, W) float32 p(given label), NaN on void
    confident_class: np.ndarray  # (H, W) int16: most probable class reaching its threshold, -1 if none
    confident_probability: np.ndarray  # (H, W) float32 probability of that class (0 where none)
    suspicious: np.ndarray  # (H, W) bool: scored and confidently another class than the label

    @property
    def suspicious_share(self) -> float:
        """Share of the scored (non-void) pixels that are suspicious."""
        return float(self.suspicious.sum() / max(np.count_nonzero(~np.isnan(self.self_confidence)), 1))


def pixel_quality(
    probabilities: np.ndarray, labels: np.ndarray, thresholds: np.ndarray, ignore_index: int
) -> PixelQuality:
    """Self-confidence and confident-class maps of one image (see the module docstring)."""
    scored = _check_pair(probabilities, labels, ignore_index)
    thresholds = np.asarray(thresholds, dtype=np.float32)
    if thresholds.shape != (probabilities.shape[0],):
        raise ConfigError(f"need one threshold per class ({probabilities.shape[0]}), got shape {thresholds.shape}")
    above = probabilities >= thresholds[:, None, None]
    candidate = np.where(above, probabilities, -1.0)
    confident = candidate.argmax(axis=0).astype(np.int16)
    probability = np.take_along_axis(candidate, confident[None].astype(np.intp), axis=0)[0]
    none = probability < 0
    confident[none] = -1
    probability = np.where(none, 0.0, probability).astype(np.float32)
    suspicious = scored & ~none & (confident != labels)
    return PixelQuality(self_confidence(probabilities, labels, ignore_index), confident, probability, suspicious)


# -- objects --------------------------------------------------------------------------------------------
def label_objects(
    labels: np.ndarray, ignore_index: int, skip_classes: Sequence[int] = ()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Connected components (8-neighbour) of each class of a given mask: the objects to score.

    Returns:
        ``(object_map, classes, boxes)``: (H, W) int32 object ids 1..N (0 = void, skipped class);
        (N + 1,) class of each id (entry 0 unused, -1); (N + 1, 4) boxes ``x0, y0, x1, y1`` (end
        exclusive). Numbering is deterministic: classes in increasing order, then OpenCV's raster order.
    """
    kept = [
        int(class_id) for class_id in np.unique(labels) if class_id != ignore_index and class_id not in skip_classes
    ]
    object_map, classes = label_components(labels, kept, window=False)  # the ids label-quality reports have shown
    boxes = component_boxes(object_map, len(classes))
    boxes[:, 2:] += boxes[:, :2]  # x, y, w, h -> x0, y0, x1, y1
    boxes[0] = 0
    return object_map, classes, boxes.astype(np.int64)


@dataclass(frozen=True)
class ObjectQuality:
    """How well the model agrees with one labelled object."""

    image_index: int
    sample_id: str
    object_id: int  # 1..N within its image, as numbered by :func:`label_objects` and on the pictures
    class_id: int  # the given label
    pixels: int  # scored pixels
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (end exclusive)
    score: float  # label quality in [0, 1], low = suspicious: soft IoU with the model's p(class)
    self_confidence: float  # mean p(given class) over the object
    disagreement: float  # share of its pixels where the model confidently predicts another class
    suggested_class: int | None  # the class most of those pixels are confidently predicted as
    suggested_confidence: float  # mean probability of the suggested class over those pixels (NaN if none)
    boundary_disagreement: float  # share of the band along its outline where the model contradicts the outline
    ranked: bool  # large enough (min_pixels) to take part in rankings

    def sentence(self, class_names: Sequence[str]) -> str:
        """One line for a person.

        E.g. ``object #3: labelled ring, model says circle with 0.97 confidence over 88% of its pixels``.
        """
        head = f"object #{self.object_id}: labelled {class_names[self.class_id]}"
        if self.suggested_class is not None and self.disagreement >= 0.05:
            return (
                f"{head}, model says {class_names[self.suggested_class]} with {self.suggested_confidence:.2f} "
                f"confidence over {self.disagreement:.0%} of its pixels (score {self.score:.2f})"
            )
        if self.boundary_disagreement >= 0.2:
            outline = f"{self.boundary_disagreement:.0%} of its outline band"
            return f"{head}: the model disagrees with {outline} (score {self.score:.2f})"
        return f"{head}, mean p({class_names[self.class_id]}) {self.self_confidence:.2f} (score {self.score:.2f})"


@dataclass
class ImageLabelQuality:
    """One image's objects and its score (its worst ranked object's; 1.0 with no ranked object)."""

    index: int
    sample_id: str
    score: float
    objects: list[ObjectQuality]

    @property
    def ranked_objects(self) -> list[ObjectQuality]:
        """The objects every count, table and ranking uses: those of at least ``min_pixels`` pixels."""
        return [item for item in self.objects if item.ranked]

    @property
    def worst(self) -> ObjectQuality | None:
        ranked = self.ranked_objects
        return min(ranked, key=lambda item: item.score) if ranked else None


def _outline_bands(
    labels: np.ndarray, class_id: int, scored: np.ndarray, band: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of ``class_id`` within ``band`` px of its edge (inside), other scored pixels within
    ``band`` px of it (outside), and for each outside pixel the flat index of its nearest ``class_id`` pixel."""
    own = labels == class_id
    inside_distance = cv2.distanceTransform(own.astype(np.uint8), cv2.DIST_L2, 5)
    outside_distance, nearest = cv2.distanceTransformWithLabels(
        (~own).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    inside = own & (inside_distance <= band)
    outside = scored & ~own & (outside_distance <= band)
    # DIST_LABEL_PIXEL gives every zero (class) pixel its own label: map labels back to positions.
    position_of = np.zeros(int(nearest.max()) + 1, dtype=np.int64)
    position_of[nearest[own]] = np.flatnonzero(own)
    return inside, outside, position_of[nearest[outside]]


@dataclass
class _ImageParts:
    """What one image's scores need from its (K, H, W) probabilities, before the split's thresholds are known.

    The model's probabilities are needed only here, so a split is predicted once and never kept: a
    pixel can be *confidently* class j only where j is its most probable class (thresholds are at
    least 0.5, and probabilities sum to 1), so the threshold-dependent counts need just the
    disagreeing pixels' predicted class and probability. (Where two classes tie at exactly 0.5, the
    first is taken, whatever their thresholds.)
    """

    index: int
    sample_id: str
    num_classes: int
    classes: np.ndarray  # (N + 1,) class of each object id (entry 0 unused)
    boxes: np.ndarray  # (N + 1, 4) x0, y0, x1, y1
    size: np.ndarray  # (N + 1,) pixels of each object
    agreed: np.ndarray  # (N + 1,) sum of p(given label) over each object
    band_probability: np.ndarray  # (N + 1,) sum of p(object's class) over the band outside each object
    band_size: np.ndarray  # (N + 1,) pixels of the band along each outline (inside and outside)
    class_sums: np.ndarray  # (K,) self-confidence sums per given class (for the split's thresholds)
    class_counts: np.ndarray  # (K,) scored pixels per given class
    # Object pixels whose most probable class is not their label: object id, that class, its probability,
    # and whether the pixel lies in the band inside its object's outline.
    inner_object: np.ndarray
    inner_class: np.ndarray
    inner_probability: np.ndarray
    inner_in_band: np.ndarray
    # Band pixels outside an object that the model gives the object's class: owner object id, class, probability.
    outer_object: np.ndarray
    outer_class: np.ndarray
    outer_probability: np.ndarray


def _image_parts(
    probabilities: np.ndarray,
    labels: np.ndarray,
    ignore_index: int,
    band: int,
    skip_classes: Sequence[int],
    index: int,
    sample_id: str,
) -> _ImageParts:
    """The threshold-free part of :func:`score_image` (see :class:`_ImageParts`)."""
    scored = _check_pair(probabilities, labels, ignore_index)
    num_classes = probabilities.shape[0]
    safe = np.where(scored, labels, 0).astype(np.intp)
    confidence = np.where(scored, np.take_along_axis(probabilities, safe[None], axis=0)[0], 0).astype(np.float32)
    scored_classes = safe[scored]
    class_sums = np.bincount(scored_classes, weights=confidence[scored], minlength=num_classes)
    class_counts = np.bincount(scored_classes, minlength=num_classes).astype(np.int64)
    predicted = probabilities.argmax(axis=0).ravel()
    top = probabilities.max(axis=0).astype(np.float32).ravel()

    object_map, classes, boxes = label_objects(labels, ignore_index, skip_classes)
    count = len(classes)
    flat_objects = object_map.ravel()
    size = np.bincount(flat_objects, minlength=count)
    agreed = np.bincount(flat_objects, weights=confidence.ravel(), minlength=count)
    band_probability, band_size = np.zeros(count), np.zeros(count)
    in_band = np.zeros(labels.size, dtype=bool)
    outer_object, outer_class, outer_probability = [], [], []
    # Bands along each outline, one distance transform per class present (not per object).
    for class_id in np.unique(classes[1:]):
        inside, outside, nearest = _outline_bands(labels, int(class_id), scored, band)
        owner = flat_objects[nearest]
        band_probability += np.bincount(owner, weights=probabilities[class_id][outside], minlength=count)
        band_size += np.bincount(owner, minlength=count) + np.bincount(object_map[inside], minlength=count)
        in_band |= inside.ravel()
        outside_positions = np.flatnonzero(outside)
        hit = predicted[outside_positions] == class_id
        outer_object.append(owner[hit])
        outer_class.append(np.full(int(hit.sum()), class_id, dtype=np.intp))
        outer_probability.append(top[outside_positions[hit]])
    # Only a pixel whose most probable class differs from its label and reaches MIN_THRESHOLD can be suspicious.
    disagreeing = np.flatnonzero((flat_objects > 0) & (predicted != labels.ravel()) & (top >= MIN_THRESHOLD))
    return _ImageParts(
        index=index,
        sample_id=sample_id,
        num_classes=num_classes,
        classes=classes,
        boxes=boxes,
        size=size,
        agreed=agreed,
        band_probability=band_probability,
        band_size=band_size,
        class_sums=class_sums,
        class_counts=class_counts,
        inner_object=flat_objects[disagreeing],
        inner_class=predicted[disagreeing].astype(np.intp),
        inner_probability=top[disagreeing],
        inner_in_band=in_band[disagreeing],
        outer_object=np.concatenate(outer_object) if outer_object else np.zeros(0, np.int32),
        outer_class=np.concatenate(outer_class) if outer_class else np.zeros(0, np.intp),
        outer_probability=np.concatenate(outer_probability) if outer_probability else np.zeros(0, np.float32),
    )


def _finish(parts: _ImageParts, thresholds: np.ndarray, min_pixels: int) -> ImageLabelQuality:
    """An image's scores from its :class:`_ImageParts` and the split's confident thresholds."""
    thresholds = np.asarray(thresholds, dtype=np.float32)
    num_classes, count = parts.num_classes, len(parts.classes)
    if thresholds.shape != (num_classes,):
        raise ConfigError(f"need one threshold per class ({num_classes}), got shape {thresholds.shape}")
    if thresholds.min() < MIN_THRESHOLD:
        # Below 0.5 a class other than the most probable one could be "confident" (see class_thresholds).
        raise ConfigError(f"confident thresholds must be at least {MIN_THRESHOLD}, got {thresholds.min():.3f}")
    if count == 1:
        return ImageLabelQuality(parts.index, parts.sample_id, 1.0, [])
    # Suspicious: the model confidently gives another class than the label.
    suspicious = parts.inner_probability >= thresholds[parts.inner_class]
    pair = parts.inner_object[suspicious] * num_classes + parts.inner_class[suspicious]
    joint = np.bincount(pair, minlength=count * num_classes).reshape(count, num_classes)
    joint_probability = np.bincount(
        pair, weights=parts.inner_probability[suspicious], minlength=count * num_classes
    ).reshape(count, num_classes)
    # Outline contradicted: inside the label the model confidently says another class (label too large),
    # outside it confidently says this class (label too small).
    band_disagreeing = np.bincount(parts.inner_object[suspicious & parts.inner_in_band], minlength=count) + np.bincount(
        parts.outer_object[parts.outer_probability >= thresholds[parts.outer_class]], minlength=count
    )
    size, agreed = parts.size, parts.agreed
    score = agreed / np.maximum(size + parts.band_probability, 1e-9)
    disagreeing = joint.sum(axis=1)
    objects = []
    for object_id in range(1, count):
        suggested = int(joint[object_id].argmax()) if disagreeing[object_id] else None
        x0, y0, x1, y1 = (int(v) for v in parts.boxes[object_id])
        objects.append(
            ObjectQuality(
                image_index=parts.index,
                sample_id=parts.sample_id,
                object_id=object_id,
                class_id=int(parts.classes[object_id]),
                pixels=int(size[object_id]),
                bbox=(x0, y0, x1, y1),
                score=float(score[object_id]),
                self_confidence=float(agreed[object_id] / max(size[object_id], 1)),
                disagreement=float(disagreeing[object_id] / max(size[object_id], 1)),
                suggested_class=suggested,
                suggested_confidence=float(joint_probability[object_id, suggested] / joint[object_id, suggested])
                if suggested is not None
                else float("nan"),
                boundary_disagreement=float(band_disagreeing[object_id] / max(parts.band_size[object_id], 1)),
                ranked=bool(size[object_id] >= min_pixels),
            )
        )
    ranked = [item.score for item in objects if item.ranked]
    return ImageLabelQuality(parts.index, parts.sample_id, min(ranked) if ranked else 1.0, objects)


def score_image(
    probabilities: np.ndarray,
    labels: np.ndarray,
    thresholds: np.ndarray,
    ignore_index: int,
    *,
    band: int = DEFAULT_BAND,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    skip_classes: Sequence[int] = (),
    index: int = 0,
    sample_id: str = "",
) -> ImageLabelQuality:
    """Score every object of one image (see the module docstring).

    Args:
        probabilities: (K, H, W) softmax probabilities of the model.
        labels: (H, W) given mask; ``ignore_index`` pixels are void and never count.
        thresholds: (K,) confident thresholds from :func:`class_thresholds`.
        band: width in px of the band around each object (its inside and outside edge).
        min_pixels: objects with fewer scored pixels are scored but not ranked.
        skip_classes: classes that are not objects (the background class of Shapes or VOC).
    """
    _check_sizes(band, min_pixels)
    parts = _image_parts(probabilities, labels, ignore_index, band, skip_classes, index, sample_id)
    return _finish(parts, thresholds, min_pixels)


def _check_sizes(band: int, min_pixels: int) -> None:
    if band < 1 or min_pixels < 1:
        raise ConfigError(f"band and min_pixels must be at least 1, got band={band}, min_pixels={min_pixels}")


# -- a whole split --------------------------------------------------------------------------------------
@dataclass
class LabelQualityReport:
    """Label-quality scores of every image and object of a split."""

    images: list[ImageLabelQuality]  # in dataset order
    thresholds: np.ndarray  # (K,) confident thresholds used
    class_names: list[str]
    band: int
    min_pixels: int
    skip_classes: tuple[int, ...] = ()

    def image_of(self, sample_id: str) -> ImageLabelQuality:
        """The scores of sample ``sample_id`` (ConfigError when it was not scored)."""
        for image in self.images:
            if image.sample_id == sample_id:
                return image
        raise ConfigError(f"sample {sample_id!r} is not in this label-quality report; pick one of its ranked images")

    def ranked_images(self) -> list[ImageLabelQuality]:
        """Images worst first (lowest score; ties in dataset order)."""
        order = worst_first([image.score for image in self.images], [image.index for image in self.images])
        return [self.images[i] for i in order]

    def ranked_objects(self) -> list[ObjectQuality]:
        """Objects of at least ``min_pixels`` pixels, worst first."""
        objects = [item for image in self.images for item in image.ranked_objects]
        return sorted(objects, key=lambda item: (item.score, item.image_index, item.object_id))

    def image_rows(self) -> list[dict[str, Any]]:
        """Rows of the ranked-images table: rank, sample, score, objects, suspicious objects, worst object."""
        rows = []
        for rank, image in enumerate(self.ranked_images(), start=1):
            worst = image.worst
            rows.append(
                {
                    "rank": rank,
                    "sample": image.sample_id,
                    "score": image.score,
                    "objects": len(image.ranked_objects),
                    "below 0.5": sum(item.score < 0.5 for item in image.ranked_objects),
                    "worst object": worst.sentence(self.class_names) if worst else "no object",
                }
            )
        return rows

    def object_row(self, item: ObjectQuality) -> dict[str, Any]:
        """One row of an objects table: number, label, score, mean p(label), what the model says instead."""
        names = self.class_names
        return {
            "object": f"#{item.object_id}",
            "label": names[item.class_id],
            "score": item.score,
            "mean p(label)": item.self_confidence,
            "model says": names[item.suggested_class] if item.suggested_class is not None else "",
            "over": item.disagreement,
            "outline band disagrees": item.boundary_disagreement,
            "pixels": item.pixels,
        }

    def object_rows(self, image: ImageLabelQuality) -> list[dict[str, Any]]:
        """Rows of one image's objects table (its ranked objects), worst first."""
        return [
            self.object_row(item)
            for item in sorted(image.ranked_objects, key=lambda item: (item.score, item.object_id))
        ]

    def outlined(self, image: ImageLabelQuality, cutoff: float, limit: int) -> tuple[list[ObjectQuality], int]:
        """The ranked objects scoring below ``cutoff`` (the worst always), worst first.

        Returns up to ``limit`` of them, and how many more there are.
        """
        below = sorted(
            (item for item in image.ranked_objects if item.score < cutoff or item is image.worst),
            key=lambda item: (item.score, item.object_id),
        )
        return below[:limit], max(0, len(below) - limit)


def _probability_batches(
    predictor: Any, dataset: SegmentationDataset, indices: list[int], batch_size: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(index, (H, W) mask, (K, H, W) float32 probabilities)`` per image, predicted in batches of equal-size
    images; each sample is read once.

    ``predictor`` is a torch model or a :class:`~seglab.sources.PredictionSource` with probabilities.
    """
    from seglab.engine.predict import _size_batches

    for chunk in _size_batches(dataset, indices, batch_size):
        samples = [dataset.load(index) for index in chunk]
        images = [image for image, _ in samples]
        if hasattr(predictor, "predict_batch"):
            predictions = predictor.predict_batch([dataset.ids[index] for index in chunk], images)
            if any(prediction.probabilities is None for prediction in predictions):
                raise ConfigError(
                    f"{predictor.describe()} gives class labels only: label quality needs per-class "
                    "probabilities (a model, or a predictions folder of .npy/.npz probabilities)"
                )
            probabilities = [np.asarray(prediction.probabilities, dtype=np.float32) for prediction in predictions]
        else:
            import torch

            from seglab.engine.predict import image_to_tensor, predict_probabilities

            device = next(predictor.parameters()).device
            with torch.inference_mode():
                batch = torch.cat([image_to_tensor(image) for image in images]).to(device)
                probabilities = list(predict_probabilities(predictor, batch).float().cpu().numpy())
        for index, (_, mask), probability in zip(chunk, samples, probabilities, strict=True):
            yield index, mask, probability


class LabelScorer:
    """Label-quality scores of a split from probabilities handed over image by image, wherever they were
    predicted: :func:`score_dataset`'s own pass, or an evaluation's (``label_quality_cache.LabelQualityGatherer``).

    :meth:`parts` is pure (call it from any thread); :meth:`add` the parts in any order; :meth:`report` once all
    images are in. Only each image's threshold-free parts are kept (:class:`_ImageParts`), never its maps.
    """

    def __init__(
        self, dataset: SegmentationDataset, *, band: int = DEFAULT_BAND, min_pixels: int = DEFAULT_MIN_PIXELS
    ) -> None:
        _check_sizes(band, min_pixels)
        self.dataset, self.band, self.min_pixels = dataset, band, min_pixels
        background = dataset.label_map.background_index
        self.skip_classes: tuple[int, ...] = (background,) if background is not None else ()
        self._parts: list[_ImageParts] = []
        self._sums = np.zeros(dataset.num_classes)
        self._counts = np.zeros(dataset.num_classes, dtype=np.int64)

    def parts(self, index: int, probabilities: np.ndarray, labels: np.ndarray) -> _ImageParts:
        """The threshold-free parts of image ``index`` from its (K, H, W) probabilities and (H, W) mask."""
        dataset = self.dataset
        if probabilities.shape[0] != dataset.num_classes:
            raise ConfigError(
                f"the predictions have {probabilities.shape[0]} classes but {dataset.describe()} has "
                f"{dataset.num_classes}: label quality needs predictions in the dataset's classes"
            )
        return _image_parts(
            probabilities, labels, dataset.ignore_index, self.band, self.skip_classes, index, dataset.ids[index]
        )

    def add(self, parts: _ImageParts) -> None:
        """Count one image's parts (from :meth:`parts`)."""
        self._sums += parts.class_sums
        self._counts += parts.class_counts
        self._parts.append(parts)

    def __len__(self) -> int:
        return len(self._parts)

    def report(self, thresholds: np.ndarray | None = None) -> LabelQualityReport:
        """The report of the images added, in dataset order (``thresholds`` None: the split's confident ones)."""
        thresholds = (
            class_thresholds(self._sums, self._counts)
            if thresholds is None
            else np.asarray(thresholds, dtype=np.float64)
        )
        parts = sorted(self._parts, key=lambda item: item.index)
        images = [_finish(item, thresholds, self.min_pixels) for item in parts]
        return LabelQualityReport(
            images, thresholds, list(self.dataset.class_names), self.band, self.min_pixels, self.skip_classes
        )


def score_dataset(
    predictor: torch.nn.Module | PredictionSource,
    dataset: SegmentationDataset,
    *,
    indices: Sequence[int] | None = None,
    band: int = DEFAULT_BAND,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    thresholds: np.ndarray | None = None,
    batch_size: int = 8,
    progress: ProgressCallback | None = None,
) -> LabelQualityReport:
    """Score a split: thresholds over all its pixels, then every object.

    ``predictor`` is a torch model or a prediction source with probabilities (in the dataset's
    classes). Images are predicted once, in batches of ``batch_size``, and each image's
    threshold-free parts are taken while its probabilities are at hand (:class:`LabelScorer`);
    the split's thresholds then finish every image without a second prediction. The background
    class (when the label map has one) is not an object. ``progress(done, total)`` is called once
    per image.
    """
    scorer = LabelScorer(dataset, band=band, min_pixels=min_pixels)
    indices = list(range(len(dataset))) if indices is None else [int(i) for i in indices]

    def collect(parts: _ImageParts) -> None:
        scorer.add(parts)
        if progress:
            progress(len(scorer), len(indices))

    # One worker takes each image's parts (OpenCV and numpy release the GIL) while the next batch is
    # predicted; at most ``2 * batch_size`` images wait, which bounds the probabilities held.
    pending: deque[Future[_ImageParts]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seglab-label-quality") as worker:
        for index, labels, probabilities in _probability_batches(predictor, dataset, indices, batch_size):
            pending.append(worker.submit(scorer.parts, index, probabilities, labels))
            while len(pending) > 2 * batch_size:
                collect(pending.popleft().result())
        while pending:
            collect(pending.popleft().result())
    return scorer.report(thresholds)


# -- pictures -------------------------------------------------------------------------------------------
def self_confidence_picture(confidence: np.ndarray, void_color: Sequence[int] = (255, 255, 255)) -> np.ndarray:
    """(H, W, 3) uint8: self-confidence in viridis (dark = the model doubts the label), void in ``void_color``."""
    from seglab.viz import confidence_map

    picture = confidence_map(confidence)
    picture[np.isnan(confidence)] = void_color
    return picture


def suspicion_picture(
    image: np.ndarray,
    labels: np.ndarray,
    ignore_index: int,
    objects: Sequence[ObjectQuality],
    *,
    skip_classes: Sequence[int] = (),
    min_side: int = 384,
    color: Sequence[int] = HIGHLIGHT_COLOR,
) -> np.ndarray:
    """The image with the outlines of ``objects`` drawn and numbered (``#id score``), upscaled to
    at least ``min_side`` px so the numbers stay readable. Returns (H', W', 3) uint8 RGB."""
    from seglab.viz import boundary_mask

    object_map, _, _ = label_objects(labels, ignore_index, skip_classes)
    factor = max(1, -(-min_side // max(labels.shape)))
    picture = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
    chosen = np.isin(object_map, [item.object_id for item in objects]) * object_map
    chosen = cv2.resize(
        chosen.astype(np.int32).astype(np.float32), None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST
    )
    picture[boundary_mask(chosen.astype(np.int32), 2)] = color  # both sides of each outline, 2 px each
    texts = [f"#{item.object_id} {item.score:.2f}" for item in objects]
    sizes = [cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 4)[0] for text in texts]
    boxes = [tuple(value * factor for value in item.bbox) for item in objects]
    for text, spot in zip(texts, place_labels(boxes, sizes, picture.shape[:2]), strict=True):
        if spot is None:
            continue  # no free spot left: the object's outline and its sentence below the picture remain
        x, y = spot
        cv2.putText(
            picture, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 4, cv2.LINE_AA
        )  # dark halo: readable on any colour
        cv2.putText(picture, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, tuple(int(c) for c in color), 1, cv2.LINE_AA)
    return picture


def place_labels(
    boxes: Sequence[Sequence[int]], sizes: Sequence[Sequence[int]], canvas: tuple[int, int], margin: int = 3
) -> list[tuple[int, int] | None]:
    """Text baselines ``(x, y)`` for labels of ``sizes`` (w, h) next to ``boxes`` (x0, y0, x1, y1), greedily in order:
    above the box, below it, inside its top, right of it, left of it, then rows further down; each kept inside the
    ``canvas`` (H, W) and
    clear of the labels placed before it. ``None`` when no spot is free."""
    height, width = canvas
    taken: list[tuple[int, int, int, int]] = []
    spots: list[tuple[int, int] | None] = []
    for (x0, y0, x1, y1), (text_width, text_height) in zip(boxes, sizes, strict=True):
        candidates = [
            (x0, y0 - 2 * margin),
            (x0, y1 + text_height + margin),
            (x0 + margin, y0 + text_height + margin),
            (x1 + margin, y0 + text_height),
            (x0 - text_width - margin, y0 + text_height),
        ]
        step = text_height + 2 * margin + 1  # then a column of rows below the box's top, for crowded spots
        candidates += [(x, y0 + row * step) for row in range(1, 9) for x in (x0, x1 + margin)]
        spot = None
        for x, y in candidates:
            x = min(max(x, 0), max(width - text_width, 0))
            y = min(max(y, text_height + margin), height - margin)
            rectangle = (x - margin, y - text_height - margin, x + text_width + margin, y + margin)
            if not any(
                rectangle[0] < r[2] and r[0] < rectangle[2] and rectangle[1] < r[3] and r[1] < rectangle[3]
                for r in taken
            ):
                spot = (x, y)
                taken.append(rectangle)
                break
        spots.append(spot)
    return spots


# -- validation on Shapes with label noise ----------------------------------------------------------------
@dataclass
class ShapesValidation:
    """How well a ranking finds the label errors Shapes injected (``ShapesConfig.label_noise``)."""

    ranked_objects: int  # objects in the ranking
    corrupted_objects: int  # known corrupted objects in the scored images (sample_objects)
    flags: list[bool]  # per ranked object, worst first: does it match a corrupted object?
    corrupted_ranks: list[tuple[int | None, str]] = field(
        default_factory=list
    )  # (1-based rank or None if unranked, corruption)

    @property
    def base_rate(self) -> float:
        """Share of ranked objects that are corrupted: the precision of a random ranking."""
        return sum(self.flags) / max(len(self.flags), 1)

    def precision_at(self, k: int) -> float:
        """Share of the ``k`` worst-ranked objects that are corrupted."""
        k = min(k, len(self.flags))
        return sum(self.flags[:k]) / k if k else float("nan")

    def recall_at(self, k: int) -> float:
        """Share of the known corrupted objects found among the ``k`` worst-ranked objects."""
        found = sum(1 for rank, _ in self.corrupted_ranks if rank is not None and rank <= k)
        return found / self.corrupted_objects if self.corrupted_objects else float("nan")

    def mean_rank_percentile(self, corruption: str | None = None) -> float:
        """Mean of rank / ranked objects over the corrupted objects (of one ``corruption`` kind); 0 = top.
        Unranked corrupted objects count as 1 (never found)."""
        values = [
            (rank / len(self.flags)) if rank is not None else 1.0
            for rank, kind in self.corrupted_ranks
            if corruption is None or kind == corruption
        ]
        return float(np.mean(values)) if values else float("nan")

    def rows(self, ks: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Table rows: precision and recall at k (default: half, once and twice the number corrupted)."""
        if ks is None:
            ks = sorted(
                {
                    max(1, self.corrupted_objects // 2),
                    max(1, self.corrupted_objects),
                    2 * max(1, self.corrupted_objects),
                }
            )
        return [
            {
                "top k": k,
                "precision@k": self.precision_at(k),
                "recall@k": self.recall_at(k),
                "random ranking precision": self.base_rate,
            }
            for k in ks
        ]


def _overlap(box: Sequence[int], other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intersection over the smaller box, and IoU, of one box against (N, 4) boxes."""
    width = np.clip(np.minimum(box[2], other[:, 2]) - np.maximum(box[0], other[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], other[:, 3]) - np.maximum(box[1], other[:, 1]), 0, None)
    intersection = width * height
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (other[:, 2] - other[:, 0]) * (other[:, 3] - other[:, 1])
    smaller = np.maximum(np.minimum(area, areas), 1)
    return intersection / smaller, intersection / np.maximum(area + areas - intersection, 1)


def validate_on_shapes(report: LabelQualityReport, dataset: Any) -> ShapesValidation:
    """Match the report's objects to the objects Shapes drew and check the ranking against the
    known corruptions (``dataset.sample_objects(i)[...]["corrupted"]``).

    A drawn object matches the scored object of the image with its written class (``label_id``)
    whose box overlaps its visible box most (intersection over the smaller box >= 0.5; eroded and
    dilated outlines shrink or grow the box). Corrupted objects with no ranked match count as missed.
    """
    if not hasattr(dataset, "sample_objects"):
        raise ConfigError(
            f"validation needs the known corruptions of a Shapes split with label noise, not a {type(dataset).__name__}"
        )
    position = {(item.image_index, item.object_id): rank for rank, item in enumerate(report.ranked_objects())}
    flags = [False] * len(position)
    corrupted_ranks = []
    for image in report.images:
        scored = [item for item in image.objects if item.ranked]
        boxes = np.asarray([item.bbox for item in scored], dtype=np.int64).reshape(-1, 4)
        for drawn in dataset.sample_objects(image.index):
            if drawn["bbox"] is None:
                continue
            rank = None
            candidates = np.asarray([item.class_id == drawn["label_id"] for item in scored], dtype=bool)
            if candidates.any():
                contained, iou = _overlap(drawn["bbox"], boxes)
                iou = np.where(candidates & (contained >= 0.5), iou, -1.0)
                if iou.max() >= 0:
                    match = scored[int(iou.argmax())]
                    rank = position[(match.image_index, match.object_id)]
                    flags[rank] = flags[rank] or drawn["corrupted"]
            if drawn["corrupted"]:
                corrupted_ranks.append((rank + 1 if rank is not None else None, drawn["corruption"]))
    return ShapesValidation(len(flags), len(corrupted_ranks), flags, corrupted_ranks)
