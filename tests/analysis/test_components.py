"""Tests for seglab/analysis/components.py: the one connected-component labelling
(stats, label quality, diagnostics)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from seglab.analysis.components import bounding_window, component_boxes, label_components


def two_class_mask() -> np.ndarray:
    mask = np.zeros((12, 16), np.uint8)
    mask[1:4, 1:4] = 1
    mask[5, 9:12] = 1
    mask[8:11, 2:6] = 2
    mask[4, 4] = 1  # touches the first square diagonally: one component under 8-connectivity
    return mask


@pytest.mark.parametrize("window", [True, False])
def test_components_are_numbered_class_by_class_with_their_classes(window):
    ids, owner = label_components(two_class_mask(), [2, 1], window=window)
    assert owner.tolist() == [-1, 2, 1, 1]
    assert ids.dtype == np.int32 and set(np.unique(ids).tolist()) == {0, 1, 2, 3}
    assert (ids[8:11, 2:6] == 1).all() and ids[4, 4] == ids[1, 1]
    areas = np.bincount(ids.ravel(), minlength=len(owner))
    assert sorted(areas[owner == 1].tolist()) == [3, 10] and areas[owner == 2].tolist() == [12]


def test_window_and_whole_image_find_the_same_components():
    rng = np.random.default_rng(3)
    for _ in range(20):
        mask = (rng.random((25, 31)) < 0.3).astype(np.uint8) * rng.integers(1, 4, (25, 31)).astype(np.uint8)
        classes = [1, 2, 3]
        windowed, owner_w = label_components(mask, classes)
        whole, owner_h = label_components(mask, classes, window=False)
        assert owner_w.tolist() == owner_h.tolist()
        pairs = {(int(a), int(b)) for a, b in zip(windowed.ravel(), whole.ravel(), strict=True)}
        assert len(pairs) == len(owner_w)  # a one-to-one relabelling
        count, _, stats, _ = cv2.connectedComponentsWithStats((mask == 2).astype(np.uint8), connectivity=8)
        assert sorted(np.bincount(windowed.ravel())[owner_w == 2].tolist()) == sorted(stats[1:, 4].tolist())


def test_valid_pixels_only_and_absent_classes():
    mask = two_class_mask()
    valid = np.ones(mask.shape, bool)
    valid[:, :5] = False
    ids, owner = label_components(mask, [1, 2, 3], valid)
    assert owner.tolist() == [-1, 1, 2]  # the first square and the class-2 block lie left of x=5 except (8..10, 5)
    assert not ids[:, :5].any()


def test_boxes_and_windows():
    ids, owner = label_components(two_class_mask(), [1, 2])
    boxes = component_boxes(ids, len(owner))
    by_class = {tuple(box) for box in boxes[1:].tolist()}
    assert by_class == {(1, 1, 4, 4), (9, 5, 3, 1), (2, 8, 4, 3)}  # x, y, w, h
    assert bounding_window(two_class_mask() == 2) == (slice(8, 11), slice(2, 6))
    assert two_class_mask()[bounding_window(two_class_mask() == 2, 3)].shape == (7, 9)  # rows 5..11, columns 0..8
    assert bounding_window(np.zeros((3, 4), bool)) == (slice(0, 3), slice(0, 4))
