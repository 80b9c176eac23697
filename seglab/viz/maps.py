"""Categorical maps: where a prediction is right, wrong, missed or a false alarm (error map), and where
model B fixed or broke model A (disagreement map), with their legends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np

from seglab.viz.colors import RGB, as_mask, as_rgb, blend, check_same_size, to_hex


class Category(NamedTuple):
    """One category of a categorical map (error map, disagreement map)."""

    id: int
    name: str
    color: RGB
    description: str


# -- error map ---------------------------------------------------------------------------------
# Colours from the Okabe-Ito palette, chosen to stay distinguishable under the common forms of
# colour blindness; "correct" is a dark grey so that the errors are what catches the eye.
CORRECT, WRONG_CLASS, MISSED, FALSE_ALARM, IGNORED = 0, 1, 2, 3, 4

ERROR_CATEGORIES: list[Category] = [
    Category(CORRECT, "correct", (64, 64, 64), "prediction equals the ground truth"),
    Category(WRONG_CLASS, "wrong class", (230, 159, 0), "an object labelled as another object class"),
    Category(MISSED, "missed", (0, 114, 178), "ground truth is an object, prediction is background"),
    Category(FALSE_ALARM, "false alarm", (204, 121, 167), "ground truth is background, prediction is an object"),
    Category(IGNORED, "ignored", (220, 220, 220), "void in the ground truth: not scored"),
]

# -- disagreement map (model A vs model B) -----------------------------------------------------
BOTH_RIGHT, FIXED_BY_B, BROKEN_BY_B, BOTH_WRONG_SAME, BOTH_WRONG_DIFFERENT, DISAGREEMENT_IGNORED = range(6)

DISAGREEMENT_CATEGORIES: list[Category] = [
    Category(BOTH_RIGHT, "both right", (64, 64, 64), "A and B both predict the ground truth"),
    Category(FIXED_BY_B, "fixed by B", (0, 158, 115), "A is wrong, B is right"),
    Category(BROKEN_BY_B, "broken by B", (213, 94, 0), "A is right, B is wrong"),
    Category(BOTH_WRONG_SAME, "both wrong (same)", (204, 121, 167), "A and B make the same mistake"),
    Category(BOTH_WRONG_DIFFERENT, "both wrong (different)", (240, 228, 66), "A and B are wrong in different ways"),
    Category(DISAGREEMENT_IGNORED, "ignored", (220, 220, 220), "void in the ground truth: not scored"),
]


# -- error and disagreement maps ---------------------------------------------------------------
def error_categories(
    pred: np.ndarray,
    target: np.ndarray,
    ignore_index: int,
    background_index: int | None = None,
) -> np.ndarray:
    """Classify every pixel's error.

    Args:
        pred: (H, W) predicted class ids.
        target: (H, W) ground-truth class ids (``ignore_index`` = void).
        ignore_index: the void value of ``target``.
        background_index: the background class, or ``None`` (CamVid): then every error is
            :data:`WRONG_CLASS`, as there is no "missed" or "false alarm" without background.

    Returns:
        (H, W) uint8 with values :data:`CORRECT`, :data:`WRONG_CLASS`, :data:`MISSED`,
        :data:`FALSE_ALARM`, :data:`IGNORED`.
    """
    pred = as_mask(pred, "pred")
    target = as_mask(target, "target")
    check_same_size(pred, target, "pred", "target")
    categories = np.full(target.shape, WRONG_CLASS, dtype=np.uint8)
    if background_index is not None:
        target_background = target == background_index
        pred_background = pred == background_index
        categories[~target_background & pred_background] = MISSED
        categories[target_background & ~pred_background] = FALSE_ALARM
    categories[pred == target] = CORRECT
    categories[target == ignore_index] = IGNORED
    return categories


def disagreement_map(pred_a: np.ndarray, pred_b: np.ndarray, target: np.ndarray, ignore_index: int) -> np.ndarray:
    """Compare two models pixel by pixel against the ground truth.

    Args:
        pred_a: (H, W) class ids of model A (the reference, e.g. the older checkpoint).
        pred_b: (H, W) class ids of model B.
        target: (H, W) ground-truth class ids.
        ignore_index: the void value of ``target``.

    Returns:
        (H, W) uint8 with values :data:`BOTH_RIGHT`, :data:`FIXED_BY_B`, :data:`BROKEN_BY_B`,
        :data:`BOTH_WRONG_SAME`, :data:`BOTH_WRONG_DIFFERENT`, :data:`DISAGREEMENT_IGNORED`.
    """
    pred_a = as_mask(pred_a, "pred_a")
    pred_b = as_mask(pred_b, "pred_b")
    target = as_mask(target, "target")
    check_same_size(pred_a, target, "pred_a", "target")
    check_same_size(pred_b, target, "pred_b", "target")
    right_a = pred_a == target
    right_b = pred_b == target
    categories = np.full(target.shape, BOTH_WRONG_DIFFERENT, dtype=np.uint8)
    categories[~right_a & ~right_b & (pred_a == pred_b)] = BOTH_WRONG_SAME
    categories[right_a & right_b] = BOTH_RIGHT
    categories[~right_a & right_b] = FIXED_BY_B
    categories[right_a & ~right_b] = BROKEN_BY_B
    categories[target == ignore_index] = DISAGREEMENT_IGNORED
    return categories


def _category_table(categories: Sequence[Category]) -> np.ndarray:
    table = np.zeros((256, 3), dtype=np.uint8)
    for category in categories:
        table[category.id] = category.color
    return table


def _paint_categories(
    category_mask: np.ndarray,
    categories: Sequence[Category],
    quiet_id: int,
    image: np.ndarray | None,
    alpha: float,
    dim: float,
) -> np.ndarray:
    """Category colours; with an image, ``quiet_id`` pixels show the image dimmed to grey and the
    others the category colour blended on the image, so the interesting pixels stand out."""
    colors = _category_table(categories)[category_mask]
    if image is None:
        return colors
    image = as_rgb(image)
    check_same_size(image, category_mask, "image", "prediction")
    if not 0.0 <= dim <= 1.0:
        raise ValueError(f"dim must be between 0 and 1, got {dim}")
    result = blend(image, colors, alpha)
    quiet = category_mask == quiet_id
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    dimmed = cv2.convertScaleAbs(grey, alpha=1.0 - dim)
    result[quiet] = dimmed[quiet][:, None]
    return result


def error_map(
    pred: np.ndarray,
    target: np.ndarray,
    ignore_index: int,
    background_index: int | None = None,
    image: np.ndarray | None = None,
    alpha: float = 0.7,
    dim: float = 0.5,
) -> np.ndarray:
    """Colour picture of :func:`error_categories` (colours in :data:`ERROR_CATEGORIES`).

    Args:
        pred, target: (H, W) class ids.
        ignore_index, background_index: as in :func:`error_categories`.
        image: optional (H, W, 3) uint8; correct pixels then show the image in dimmed grey and
            errors their colour blended on top with weight ``alpha``.
        alpha: weight of the category colour over the image.
        dim: how much to darken correct pixels (0 = grey image as is, 1 = black).

    Returns:
        (H, W, 3) uint8 RGB.
    """
    categories = error_categories(pred, target, ignore_index, background_index)
    return _paint_categories(categories, ERROR_CATEGORIES, CORRECT, image, alpha, dim)


def disagreement_rgb(
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    target: np.ndarray,
    ignore_index: int,
    image: np.ndarray | None = None,
    alpha: float = 0.7,
    dim: float = 0.5,
) -> np.ndarray:
    """Colour picture of :func:`disagreement_map` (colours in :data:`DISAGREEMENT_CATEGORIES`);
    ``image``, ``alpha`` and ``dim`` as in :func:`error_map`. Returns (H, W, 3) uint8 RGB."""
    categories = disagreement_map(pred_a, pred_b, target, ignore_index)
    return _paint_categories(categories, DISAGREEMENT_CATEGORIES, BOTH_RIGHT, image, alpha, dim)


def _legend_rows(categories: Sequence[Category], skip: set[int]) -> list[dict]:
    return [
        {"id": c.id, "name": c.name, "color": to_hex(c.color), "description": c.description}
        for c in categories
        if c.id not in skip
    ]


def error_legend(has_background: bool = True) -> list[dict]:
    """Legend rows ``{"id", "name", "color" (hex), "description"}`` for :func:`error_map`.

    Without a background class (``background_index=None``) "missed" and "false alarm" cannot
    occur and are left out.
    """
    return _legend_rows(ERROR_CATEGORIES, set() if has_background else {MISSED, FALSE_ALARM})


def disagreement_legend() -> list[dict]:
    """Legend rows ``{"id", "name", "color" (hex), "description"}`` for :func:`disagreement_rgb`."""
    return _legend_rows(DISAGREEMENT_CATEGORIES, set())
