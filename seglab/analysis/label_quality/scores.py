"""Label-quality scores of pixels and objects (confident learning; the method is described in
:mod:`seglab.analysis.label_quality`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from seglab.analysis.components import component_boxes, label_components
from seglab.errors import ConfigError, LabelError

if TYPE_CHECKING:
    pass


DEFAULT_BAND = 5  # px around an object where an eroded outline leaves its class's probability mass
DEFAULT_MIN_PIXELS = 12  # smaller objects are scored but not ranked: a few pixels decide nothing
MIN_THRESHOLD = 0.5  # lowest confident threshold: a confident class also holds the majority


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
    ``band`` px of it (outside), and for each outside pixel the flat index of its nearest ``class_id`` pixel.

    The distance transforms run on the class's bounding box grown by ``band + 2`` px, not the whole image: no
    pixel within ``band`` of the class lies further out, and the 5x5 chamfer steps (at most 2 px) cannot jump
    the 2 px ring of other pixels around the class, so every distance up to ``band`` is the whole image's.
    """
    own = labels == class_id
    rows, columns = np.flatnonzero(own.any(axis=1)), np.flatnonzero(own.any(axis=0))
    margin = band + 2
    top, bottom = max(0, rows[0] - margin), min(labels.shape[0], rows[-1] + margin + 1)
    left, right = max(0, columns[0] - margin), min(labels.shape[1], columns[-1] + margin + 1)
    crop = own[top:bottom, left:right]
    inside_distance = cv2.distanceTransform(crop.astype(np.uint8), cv2.DIST_L2, 5)
    outside_distance, nearest = cv2.distanceTransformWithLabels(
        (~crop).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    inside, outside = np.zeros_like(own), np.zeros_like(own)
    inside[top:bottom, left:right] = crop & (inside_distance <= band)
    outside[top:bottom, left:right] = scored[top:bottom, left:right] & ~crop & (outside_distance <= band)
    # DIST_LABEL_PIXEL gives every zero (class) pixel its own label: map labels back to the image's flat positions.
    crop_rows, crop_columns = np.nonzero(crop)
    position_of = np.zeros(int(nearest.max()) + 1, dtype=np.int64)
    position_of[nearest[crop]] = (crop_rows + top) * labels.shape[1] + crop_columns + left
    return inside, outside, position_of[nearest[outside[top:bottom, left:right]]]


@dataclass
class ImageParts:
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


def image_parts(
    probabilities: np.ndarray,
    labels: np.ndarray,
    ignore_index: int,
    band: int,
    skip_classes: Sequence[int],
    index: int,
    sample_id: str,
) -> ImageParts:
    """The threshold-free part of :func:`score_image` (see :class:`ImageParts`)."""
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
    return ImageParts(
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


def finish_image(parts: ImageParts, thresholds: np.ndarray, min_pixels: int) -> ImageLabelQuality:
    """An image's scores from its :class:`ImageParts` and the split's confident thresholds."""
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
    check_sizes(band, min_pixels)
    parts = image_parts(probabilities, labels, ignore_index, band, skip_classes, index, sample_id)
    return finish_image(parts, thresholds, min_pixels)


def check_sizes(band: int, min_pixels: int) -> None:
    """ConfigError unless ``band`` and ``min_pixels`` are at least 1."""
    if band < 1 or min_pixels < 1:
        raise ConfigError(f"band and min_pixels must be at least 1, got band={band}, min_pixels={min_pixels}")
