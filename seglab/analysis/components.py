"""Connected components (8-connectivity) of the classes of a mask: the one labelling of seglab.

Objects in the dataset statistics (:mod:`seglab.analysis.stats`), the label-quality scores
(:mod:`seglab.analysis.label_quality`) and the diagnostics (:mod:`seglab.analysis.diagnostics.objects`) are all
found by :func:`label_components`, numbered class by class in the order given.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def bounding_window(mask: np.ndarray, margin: int = 0) -> tuple[slice, slice]:
    """The bounding box of ``mask``'s true pixels grown by ``margin`` (clipped to the image); empty: everything."""
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return slice(0, mask.shape[0]), slice(0, mask.shape[1])
    return (
        slice(max(int(rows[0]) - margin, 0), int(rows[-1]) + margin + 1),
        slice(max(int(columns[0]) - margin, 0), int(columns[-1]) + margin + 1),
    )


def label_components(
    labels: np.ndarray, classes: Sequence[int], valid: np.ndarray | None = None, *, window: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Connected components (8-connectivity) of every class at once: an (H, W) int32 map of ids numbered class by
    class (0: no component) and each id's class (-1 for 0). One OpenCV labelling per class, inside its window.

    The components are the same either way; their order within a class follows OpenCV's labelling of the
    region it sees, so ``window=False`` (the whole image, slower) keeps ids that were shown to people stable.
    """
    ids = np.zeros(labels.shape, np.int32)
    owner = [np.array([-1], np.int64)]
    total = 0
    for class_id in classes:
        mask = labels == class_id
        if valid is not None:
            mask &= valid
        if not mask.any():
            continue
        region = bounding_window(mask) if window else (slice(None), slice(None))
        inside = np.ascontiguousarray(mask[region])
        # Labels only: OpenCV's WithStats variant is ~10x slower; areas and boxes are counted with numpy instead.
        count, component = cv2.connectedComponents(inside.view(np.uint8), connectivity=8, ltype=cv2.CV_32S)
        np.add(component, total, out=component, where=inside)
        ids[region] += np.asarray(component, np.int32)  # classes never overlap: the other pixels add 0
        owner.append(np.full(count - 1, class_id, np.int64))
        total += count - 1
    return ids, np.concatenate(owner)


def component_boxes(ids: np.ndarray, count: int) -> np.ndarray:
    """(count, 4) x, y, w, h of the components of an id map, from which rows and columns hold each id."""
    height, width = ids.shape
    if max(height, width) * count > 1 << 24:  # many components on a large image: per-pixel min/max instead
        ys, xs = np.nonzero(ids)
        at = ids[ys, xs]
        low, high = np.zeros((2, count), np.int64), np.full((2, count), -1, np.int64)
        low[:, 1:] = np.iinfo(np.int64).max
        for axis, coordinates in enumerate((xs, ys)):
            np.minimum.at(low[axis], at, coordinates)
            np.maximum.at(high[axis], at, coordinates)
        return np.stack([low[0], low[1], high[0] - low[0] + 1, high[1] - low[1] + 1], axis=1)
    flat = ids.astype(np.int64)
    row_counts = np.bincount((flat + np.arange(height)[:, None] * count).ravel(), minlength=height * count)
    column_counts = np.bincount((flat + np.arange(width)[None, :] * count).ravel(), minlength=width * count)
    rows, columns = row_counts.reshape(height, count) > 0, column_counts.reshape(width, count) > 0
    top, bottom = rows.argmax(axis=0), height - 1 - rows[::-1].argmax(axis=0)
    left, right = columns.argmax(axis=0), width - 1 - columns[::-1].argmax(axis=0)
    return np.stack([left, top, right - left + 1, bottom - top + 1], axis=1)
