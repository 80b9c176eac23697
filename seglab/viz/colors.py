"""Colours: class colours for masks, hex/RGB conversions, blending, the viridis confidence map."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from seglab.data.label_map import LabelMap

RGB = tuple[int, int, int]


# -- colours -----------------------------------------------------------------------------------
def to_hex(rgb: Sequence[int] | np.ndarray) -> str:
    """``(r, g, b)`` 0-255 -> ``"#rrggbb"``."""
    red, green, blue = (int(value) for value in rgb)
    return f"#{red:02x}{green:02x}{blue:02x}"


def to_rgb(color: str | Sequence[int]) -> RGB:
    """Accept ``"#rrggbb"`` or ``(r, g, b)``."""
    if isinstance(color, str):
        text = color.lstrip("#")
        if len(text) != 6:
            raise ValueError(f"expected a colour like '#1f77b4', got {color!r}")
        return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
    red, green, blue = (int(value) for value in color)
    return (red, green, blue)


def color_lookup(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[values]`` with values outside the table mapped to black.

    ``table`` is (N, 3) uint8; ``values`` any integer array. An extra black row catches negative
    and too-large values without a Python loop.
    """
    values = np.asarray(values)
    if values.dtype == np.uint8 and len(table) == 256:
        return table[values]
    extended = np.concatenate([table, np.zeros((1, 3), dtype=np.uint8)])
    values = values.astype(np.int64, copy=False)
    valid = (values >= 0) & (values < len(table))
    return extended[np.where(valid, values, len(table))]


def colorize_mask(mask: np.ndarray, label_map: LabelMap) -> np.ndarray:
    """Colourise a class-index mask.

    Args:
        mask: (H, W) integer class ids (any integer dtype).
        label_map: gives the class colours and the ignore colour (``label_map.palette()``).

    Returns:
        (H, W, 3) uint8 RGB; the ignore index in its own colour, any other unknown value black.
    """
    mask = as_mask(mask, "mask")
    return color_lookup(mask, label_map.palette())


def as_mask(mask: np.ndarray, what: str) -> np.ndarray:
    """A class-index mask as (H, W) (a trailing channel of 1 dropped); ``what`` names it in errors."""
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"{what} must be an (H, W) class-index array, got shape {mask.shape}")
    if not (np.issubdtype(mask.dtype, np.integer) or mask.dtype == np.bool_):
        raise ValueError(f"{what} must hold integer class ids, got dtype {mask.dtype}")
    return mask


def as_rgb(image: np.ndarray, what: str = "image") -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 -> (H, W, 3) uint8."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 (0-255), got dtype {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[..., :3])
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"{what} must be an (H, W, 3) RGB array, got shape {image.shape}")


def check_same_size(first: np.ndarray, second: np.ndarray, first_name: str, second_name: str) -> None:
    """Raise ValueError naming both arrays when their heights or widths differ."""
    if first.shape[:2] != second.shape[:2]:
        raise ValueError(
            f"{first_name} is {first.shape[0]}x{first.shape[1]} but {second_name} is "
            f"{second.shape[0]}x{second.shape[1]} (height x width); resize with nearest neighbour first"
        )


def blend(image: np.ndarray, colors: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) * image + alpha * colors`` rounded to uint8 (exact at alpha 0 and 1)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    return cv2.addWeighted(image, 1.0 - alpha, colors, alpha, 0.0)


# -- confidence --------------------------------------------------------------------------------
_VIRIDIS_LUT: np.ndarray | None = None


def _viridis_lut() -> np.ndarray:
    """(256, 3) uint8 RGB viridis table, built once from OpenCV's colormap."""
    global _VIRIDIS_LUT
    if _VIRIDIS_LUT is None:
        ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
        bgr = cv2.applyColorMap(ramp, cv2.COLORMAP_VIRIDIS).reshape(256, 3)
        _VIRIDIS_LUT = np.ascontiguousarray(bgr[:, ::-1])
    return _VIRIDIS_LUT


def confidence_map(confidence: np.ndarray) -> np.ndarray:
    """Colour a per-pixel confidence (e.g. max softmax probability) with viridis.

    Args:
        confidence: (H, W) float in [0, 1]; values outside are clipped, NaN counts as 0.

    Returns:
        (H, W, 3) uint8 RGB: dark purple = unsure, yellow = confident.
    """
    confidence = np.asarray(confidence, dtype=np.float32)
    if confidence.ndim != 2:
        raise ValueError(f"confidence must be an (H, W) array, got shape {confidence.shape}")
    levels = np.rint(np.clip(np.nan_to_num(confidence, nan=0.0), 0.0, 1.0) * 255).astype(np.uint8)
    return _viridis_lut()[levels]
