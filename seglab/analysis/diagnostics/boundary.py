"""Boundary quality: Boundary IoU (Cheng et al., CVPR 2021) and the BF score (Csurka et al., BMVC 2013).

**Boundary IoU** of a class is the IoU of the ground-truth and predicted masks restricted to their
inner contour bands: the pixels of the class within ``d`` pixels (chessboard distance, the
reference code's ``d`` iterations of a 3x3 erosion) of another label or of the image edge,
``d = 2%`` of the image diagonal. Like the dataset IoU, intersections and unions are summed over
the split before dividing.

The **BF score** of a class in an image is the F1 of its contour pixels: precision is the share of
predicted contour pixels within ``theta`` of a ground-truth contour pixel of the class, recall the
converse, ``theta = 0.75%`` of the diagonal (MATLAB's ``bfscore`` default). It is averaged per
class over the images that hold the class in the ground truth or the prediction, as in the paper.
Contours here are label changes only: the image edge is not a contour.

Void: ground-truth void counts as a region of its own when finding contours (a void band usually
traces an outline) but void pixels are never counted; predicted contours lying on void still
count as matches for the ground truth's.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from seglab.analysis.components import bounding_window
from seglab.analysis.diagnostics.objects import present_classes
from seglab.metrics.scores import divide
from seglab.viz import boundary_mask

__all__ = ["band_width", "boundary_counts", "boundary_f1", "boundary_iou"]

BOUNDARY_IOU_RATIO = 0.02
BF_RATIO = 0.0075


def band_width(shape: tuple[int, ...], ratio: float) -> int:
    """``ratio`` of the image diagonal in whole pixels (at least 1)."""
    height, width = shape[:2]
    return max(1, round(ratio * math.hypot(height, width)))


def boundary_counts(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int, width: int
) -> np.ndarray:
    """(3, K) int64 of one image: per class, intersection of the two bands, ground-truth band, predicted band."""
    pred = np.ascontiguousarray(pred, np.uint8)
    target = np.ascontiguousarray(target)
    scored = target != ignore_index
    truth_band = boundary_mask(target, width, image_edge=True) & scored
    pred_band = boundary_mask(pred, width, image_edge=True) & scored
    both = truth_band & pred_band & (pred == target)
    counts = np.zeros((3, num_classes), np.int64)
    for row, (where, values) in enumerate(((both, target), (truth_band, target), (pred_band, pred))):
        found = np.bincount(values[where].astype(np.int64), minlength=num_classes)
        counts[row] = found[:num_classes]
    return counts


def boundary_iou(counts: np.ndarray) -> np.ndarray:
    """Per-class Boundary IoU from summed :func:`boundary_counts`; NaN for a class with no band pixels."""
    intersection, truth, predicted = (np.asarray(row, np.float64) for row in counts)
    union = truth + predicted - intersection
    return divide(intersection, union)


def boundary_f1(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int, tolerance: int
) -> np.ndarray:
    """(K,) BF score of one image per class; NaN for a class in neither the ground truth nor the prediction."""
    pred = np.ascontiguousarray(pred, np.uint8)
    target = np.ascontiguousarray(target)
    scored = target != ignore_index
    truth_edges = boundary_mask(target, 1)
    pred_edges = boundary_mask(pred, 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tolerance + 1, 2 * tolerance + 1))
    scores = np.full(num_classes, np.nan)
    for class_id in present_classes(pred, target, num_classes, ignore_index):
        truth_contour = truth_edges & (target == class_id)
        pred_contour = pred_edges & (pred == class_id)
        counted = pred_contour & scored
        truth_total, pred_total = int(truth_contour.sum()), int(counted.sum())
        if truth_total == 0 and pred_total == 0:
            # No contour: the class fills the scored area in both (1), is in one only (0), or in neither (NaN).
            in_truth, in_pred = bool((target == class_id).any()), bool(((pred == class_id) & scored).any())
            if in_truth or in_pred:
                scores[class_id] = float(in_truth and in_pred)
            continue
        # Dilate only around the contours: small classes (poles, signs) then cost a few hundred pixels.
        window = bounding_window(truth_contour | pred_contour, tolerance)
        truth_contour, pred_contour, counted = truth_contour[window], pred_contour[window], counted[window]
        near_truth = cv2.dilate(truth_contour.view(np.uint8), kernel).view(bool)
        near_pred = cv2.dilate(pred_contour.view(np.uint8), kernel).view(bool)
        precision = (counted & near_truth).sum() / pred_total if pred_total else 0.0
        recall = (truth_contour & near_pred).sum() / truth_total if truth_total else 0.0
        scores[class_id] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return scores
