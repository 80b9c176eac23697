"""Masks drawn on images: colour overlays, class boundaries (the one edge detector), outlines."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from seglab.data.label_map import LabelMap
from seglab.viz.colors import RGB, as_mask, as_rgb, blend, check_same_size, color_lookup, colorize_mask, to_rgb

DEFAULT_OUTLINE_COLOR: RGB = (255, 255, 255)


# -- overlays and outlines ---------------------------------------------------------------------
def overlay(
    image: np.ndarray,
    mask_or_rgb: np.ndarray,
    label_map: LabelMap | None = None,
    alpha: float = 0.5,
    skip_ignore: bool = True,
    skip_background: bool = False,
) -> np.ndarray:
    """Alpha-blend a colourised mask onto an image.

    Args:
        image: (H, W, 3) uint8 RGB (grey or RGBA are converted).
        mask_or_rgb: (H, W) class ids (needs ``label_map``) or an already colourised (H, W, 3)
            uint8 image (then every pixel is blended: the skip options need class ids).
        label_map: colours for a class-id mask; also gives the ignore and background ids.
        alpha: weight of the mask colour, 0 (image only) to 1 (colours only).
        skip_ignore: leave void pixels unblended so the image shows through.
        skip_background: leave background pixels unblended (no-op without a background class).

    Returns:
        (H, W, 3) uint8 RGB.
    """
    image = as_rgb(image)
    mask_or_rgb = np.asarray(mask_or_rgb)
    if mask_or_rgb.ndim == 3 and mask_or_rgb.shape[2] in (3, 4):
        colors = as_rgb(mask_or_rgb, "colour mask")
        check_same_size(image, colors, "image", "colour mask")
        return blend(image, colors, alpha)
    if label_map is None:
        raise ValueError("overlay needs a label_map to colourise an (H, W) class-id mask")
    mask = as_mask(mask_or_rgb, "mask")
    check_same_size(image, mask, "image", "mask")
    blended = blend(image, colorize_mask(mask, label_map), alpha)
    keep_image = np.zeros(mask.shape, dtype=bool)
    if skip_ignore:
        keep_image |= mask == label_map.ignore_index
    if skip_background and label_map.background_index is not None:
        keep_image |= mask == label_map.background_index
    if keep_image.any():
        blended[keep_image] = image[keep_image]
    return blended


def _compact_labels(mask: np.ndarray) -> np.ndarray:
    """A copy of ``mask`` in a dtype OpenCV morphology accepts, with label equality preserved."""
    if mask.dtype in (np.uint8, np.uint16, np.int16):
        return mask
    if mask.dtype == np.bool_:
        return mask.view(np.uint8)
    if mask.size and mask.min() >= 0 and mask.max() < 65536:
        return mask.astype(np.uint16)
    return np.unique(mask, return_inverse=True)[1].reshape(mask.shape).astype(np.float32)


def boundary_mask(mask: np.ndarray, width: int = 1, image_edge: bool = False) -> np.ndarray:
    """Pixels near a label change.

    A pixel is on the boundary when a pixel with another label lies within ``width`` pixels
    (8-neighbourhood distance), so each edge is marked on both sides (``2 * width`` thick). The
    image border is not a boundary unless ``image_edge`` (Boundary IoU's convention: a region's
    contour includes where it meets the edge of the image).

    Args:
        mask: (H, W) integer class ids.
        width: half-thickness in pixels, >= 1.
        image_edge: also mark pixels within ``width`` of the image border.

    Returns:
        (H, W) bool.
    """
    mask = as_mask(mask, "mask")
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    labels = _compact_labels(mask)
    kernel = np.ones((2 * width + 1, 2 * width + 1), dtype=np.uint8)
    if image_edge:
        # A frame of a label no pixel has (-1): every pixel within ``width`` of the border sees a change.
        frame = (width, width, width, width)
        padded = cv2.copyMakeBorder(labels.astype(np.float32), *frame, cv2.BORDER_CONSTANT, value=-1)
        band = cv2.dilate(padded, kernel) != cv2.erode(padded, kernel)
        return band[width:-width, width:-width]
    # The neighbourhood is uniform exactly when its maximum equals its minimum; OpenCV's default
    # border for dilate/erode is neutral, so the image edge does not count as a change.
    return cv2.dilate(labels, kernel) != cv2.erode(labels, kernel)


def draw_outlines(
    image: np.ndarray,
    mask: np.ndarray,
    label_map: LabelMap | None = None,
    color: Sequence[int] | str | None = None,
    width: int = 1,
) -> np.ndarray:
    """Draw the region boundaries of ``mask`` on ``image``.

    Args:
        image: (H, W, 3) uint8 RGB.
        mask: (H, W) class ids.
        label_map: with ``color=None``, each boundary pixel takes its own class colour.
        color: one outline colour (RGB or ``"#rrggbb"``); white when neither this nor
            ``label_map`` is given.
        width: see :func:`boundary_mask`.

    Returns:
        (H, W, 3) uint8 RGB copy of ``image`` with outlines.
    """
    image = as_rgb(image)
    mask = as_mask(mask, "mask")
    check_same_size(image, mask, "image", "mask")
    edges = boundary_mask(mask, width)
    result = image.copy()
    if color is None and label_map is not None:
        result[edges] = color_lookup(mask[edges], label_map.palette())
    else:
        result[edges] = to_rgb(color if color is not None else DEFAULT_OUTLINE_COLOR)
    return result
