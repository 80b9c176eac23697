"""Pictures and figures for debugging segmentation: colourised masks, overlays, outlines, error
maps, model-vs-model disagreement, confidence maps, Plotly figures and CLI composites.

Everything here is a pure function: numpy arrays in, ``uint8`` RGB arrays or Plotly figures out.
Masks are class-index arrays ``(H, W)``; images are ``uint8 (H, W, 3)`` RGB. The ignore index is
always passed in (it is not always 255: CamVid uses 11).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import cv2
import numpy as np

from seglab.data.label_map import LabelMap

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "BOTH_RIGHT",
    "BOTH_WRONG_DIFFERENT",
    "BOTH_WRONG_SAME",
    "BROKEN_BY_B",
    "CORRECT",
    "Category",
    "DISAGREEMENT_CATEGORIES",
    "DISAGREEMENT_IGNORED",
    "ERROR_CATEGORIES",
    "FALSE_ALARM",
    "FIXED_BY_B",
    "IGNORED",
    "MISSED",
    "WRONG_CLASS",
    "boundary_mask",
    "class_distribution_figure",
    "class_legend",
    "colorize_mask",
    "confidence_map",
    "confusion_matrix_figure",
    "disagreement_legend",
    "disagreement_map",
    "disagreement_rgb",
    "draw_outlines",
    "error_categories",
    "error_legend",
    "error_map",
    "image_figure",
    "legend_image",
    "line_figure",
    "lr_schedule_figure",
    "make_grid",
    "object_size_figure",
    "overlay",
    "per_class_bar_figure",
    "side_by_side",
    "to_hex",
]

RGB = tuple[int, int, int]


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

DEFAULT_OUTLINE_COLOR: RGB = (255, 255, 255)
# Long side of image_figure's hover layer. Plotly serialises string customdata element by element:
# a full 480x360 CamVid frame (173k cells) takes ~2.5 s to send to the browser, 2x2 blocks ~0.7 s.
MAX_HOVER_SIDE = 256
MAX_ANNOTATED_CLASSES = 25  # confusion matrices larger than this get no per-cell numbers

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.45
_FONT_THICKNESS = 1


# -- colours -----------------------------------------------------------------------------------
def to_hex(rgb: Sequence[int] | np.ndarray) -> str:
    """``(r, g, b)`` 0-255 -> ``"#rrggbb"``."""
    red, green, blue = (int(value) for value in rgb)
    return f"#{red:02x}{green:02x}{blue:02x}"


def _to_rgb(color: str | Sequence[int]) -> RGB:
    """Accept ``"#rrggbb"`` or ``(r, g, b)``."""
    if isinstance(color, str):
        text = color.lstrip("#")
        if len(text) != 6:
            raise ValueError(f"expected a colour like '#1f77b4', got {color!r}")
        return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
    red, green, blue = (int(value) for value in color)
    return (red, green, blue)


def _lookup(values: np.ndarray, table: np.ndarray) -> np.ndarray:
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
    mask = _as_mask(mask, "mask")
    return _lookup(mask, label_map.palette())


def _as_mask(mask: np.ndarray, what: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"{what} must be an (H, W) class-index array, got shape {mask.shape}")
    if not (np.issubdtype(mask.dtype, np.integer) or mask.dtype == np.bool_):
        raise ValueError(f"{what} must hold integer class ids, got dtype {mask.dtype}")
    return mask


def _as_rgb(image: np.ndarray, what: str = "image") -> np.ndarray:
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


def _check_same_size(first: np.ndarray, second: np.ndarray, first_name: str, second_name: str) -> None:
    if first.shape[:2] != second.shape[:2]:
        raise ValueError(
            f"{first_name} is {first.shape[0]}x{first.shape[1]} but {second_name} is "
            f"{second.shape[0]}x{second.shape[1]} (height x width); resize with nearest neighbour first"
        )


def _blend(image: np.ndarray, colors: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) * image + alpha * colors`` rounded to uint8 (exact at alpha 0 and 1)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    return cv2.addWeighted(image, 1.0 - alpha, colors, alpha, 0.0)


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
    image = _as_rgb(image)
    mask_or_rgb = np.asarray(mask_or_rgb)
    if mask_or_rgb.ndim == 3 and mask_or_rgb.shape[2] in (3, 4):
        colors = _as_rgb(mask_or_rgb, "colour mask")
        _check_same_size(image, colors, "image", "colour mask")
        return _blend(image, colors, alpha)
    if label_map is None:
        raise ValueError("overlay needs a label_map to colourise an (H, W) class-id mask")
    mask = _as_mask(mask_or_rgb, "mask")
    _check_same_size(image, mask, "image", "mask")
    blended = _blend(image, colorize_mask(mask, label_map), alpha)
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
    mask = _as_mask(mask, "mask")
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
    image = _as_rgb(image)
    mask = _as_mask(mask, "mask")
    _check_same_size(image, mask, "image", "mask")
    edges = boundary_mask(mask, width)
    result = image.copy()
    if color is None and label_map is not None:
        result[edges] = _lookup(mask[edges], label_map.palette())
    else:
        result[edges] = _to_rgb(color if color is not None else DEFAULT_OUTLINE_COLOR)
    return result


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
    pred = _as_mask(pred, "pred")
    target = _as_mask(target, "target")
    _check_same_size(pred, target, "pred", "target")
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
    pred_a = _as_mask(pred_a, "pred_a")
    pred_b = _as_mask(pred_b, "pred_b")
    target = _as_mask(target, "target")
    _check_same_size(pred_a, target, "pred_a", "target")
    _check_same_size(pred_b, target, "pred_b", "target")
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
    image = _as_rgb(image)
    _check_same_size(image, category_mask, "image", "prediction")
    if not 0.0 <= dim <= 1.0:
        raise ValueError(f"dim must be between 0 and 1, got {dim}")
    result = _blend(image, colors, alpha)
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


# -- legends and composites for CLI output -----------------------------------------------------
def class_legend(
    label_map: LabelMap, class_ids: Sequence[int] | None = None, include_ignore: bool = False
) -> list[tuple[str, str]]:
    """``[(name, "#rrggbb"), ...]`` for ``class_ids`` (default: all classes), optionally with
    ``("void", ignore colour)`` last. Ids that are not classes are skipped."""
    ids = range(label_map.num_classes) if class_ids is None else class_ids
    entries = [
        (label_map.classes[int(i)].name, to_hex(label_map.classes[int(i)].color))
        for i in ids
        if 0 <= int(i) < label_map.num_classes
    ]
    if include_ignore:
        entries.append(("void", to_hex(label_map.ignore_color)))
    return entries


def _ascii(text: str) -> str:
    # OpenCV's Hershey fonts only draw ASCII.
    return text.encode("ascii", "replace").decode("ascii")


def legend_image(
    entries: Sequence[tuple[str, str | Sequence[int]]], swatch_size: int = 14, columns: int = 1
) -> np.ndarray:
    """Draw a legend: a coloured swatch and the name for each entry.

    Args:
        entries: ``(name, colour)`` pairs, colour as ``"#rrggbb"`` or RGB (e.g. from
            :func:`class_legend`, or ``(row["name"], row["color"])`` from :func:`error_legend`).
        swatch_size: swatch side in pixels.
        columns: number of columns of entries.

    Returns:
        (H, W, 3) uint8 RGB on white.
    """
    if not entries:
        raise ValueError("legend_image needs at least one entry")
    columns = max(1, min(columns, len(entries)))
    padding = 6
    names = [_ascii(str(name)) for name, _ in entries]
    sizes = [cv2.getTextSize(name, _FONT, _FONT_SCALE, _FONT_THICKNESS) for name in names]
    text_width = max(size[0][0] for size in sizes)
    text_height = max(size[0][1] + size[1] for size in sizes)
    row_height = max(swatch_size, text_height) + padding
    column_width = padding + swatch_size + padding + text_width + padding
    rows = math.ceil(len(entries) / columns)
    canvas = np.full((rows * row_height + padding, columns * column_width, 3), 255, dtype=np.uint8)
    for position, ((_, color), name) in enumerate(zip(entries, names)):
        row, column = divmod(position, columns)
        left = column * column_width + padding
        top = row * row_height + padding
        cv2.rectangle(canvas, (left, top), (left + swatch_size - 1, top + swatch_size - 1), _to_rgb(color), -1)
        # A thin dark border keeps white and near-white swatches visible.
        cv2.rectangle(canvas, (left, top), (left + swatch_size - 1, top + swatch_size - 1), (80, 80, 80), 1)
        baseline = top + (swatch_size + text_height) // 2 - 2
        cv2.putText(
            canvas,
            name,
            (left + swatch_size + padding, baseline),
            _FONT,
            _FONT_SCALE,
            (0, 0, 0),
            _FONT_THICKNESS,
            cv2.LINE_AA,
        )
    return canvas


def _caption_height(captions: Sequence[str] | None) -> int:
    if captions is None:
        return 0
    (_, text_height), baseline = cv2.getTextSize("Ag", _FONT, _FONT_SCALE, _FONT_THICKNESS)
    return text_height + baseline + 6


def _cell(image: np.ndarray, caption: str | None, caption_height: int, height: int, width: int) -> np.ndarray:
    """``image`` at the top-left of a white (caption_height + height, width) cell, caption above.

    Each cell is drawn on its own canvas, so a long caption is clipped at the cell's edge.
    """
    cell = np.full((caption_height + height, width, 3), 255, dtype=np.uint8)
    if caption is not None:
        cv2.putText(
            cell,
            _ascii(str(caption)),
            (2, caption_height - 5),
            _FONT,
            _FONT_SCALE,
            (0, 0, 0),
            _FONT_THICKNESS,
            cv2.LINE_AA,
        )
    cell[caption_height : caption_height + image.shape[0], : image.shape[1]] = image
    return cell


def _join(pieces: list[np.ndarray], gap: int, axis: int) -> np.ndarray:
    """Concatenate along ``axis`` with ``gap`` white pixels between pieces."""
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    joined: list[np.ndarray] = []
    for piece in pieces:
        if joined and gap:
            shape = list(piece.shape)
            shape[axis] = gap
            joined.append(np.full(shape, 255, dtype=np.uint8))
        joined.append(piece)
    return np.concatenate(joined, axis=axis)


def _prepare(images: Sequence[np.ndarray], captions: Sequence[str] | None, what: str) -> list[np.ndarray]:
    if len(images) == 0:
        raise ValueError(f"{what} needs at least one image")
    if captions is not None and len(captions) != len(images):
        raise ValueError(f"{what} got {len(captions)} captions for {len(images)} images")
    return [_as_rgb(image, f"image #{i}") for i, image in enumerate(images)]


def make_grid(
    images: Sequence[np.ndarray],
    columns: int,
    captions: Sequence[str] | None = None,
    gap: int = 4,
) -> np.ndarray:
    """Tile images row by row on a white background (a gallery).

    Args:
        images: (H_i, W_i, 3) uint8 images (grey or RGBA are converted); every cell is as large
            as the largest image, images sit at the top-left of their cell.
        columns: images per row (fewer when there are fewer images).
        captions: optional text drawn in a band above each image.
        gap: white pixels between cells.

    Returns:
        (rows * (cell_h + caption_h) + (rows - 1) * gap, columns * cell_w + (columns - 1) * gap, 3)
        uint8 RGB.
    """
    images = _prepare(images, captions, "make_grid")
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    columns = min(columns, len(images))
    height = max(image.shape[0] for image in images)
    width = max(image.shape[1] for image in images)
    caption_height = _caption_height(captions)
    cells = [
        _cell(image, None if captions is None else captions[i], caption_height, height, width)
        for i, image in enumerate(images)
    ]
    blank = np.full_like(cells[0], 255)
    cells += [blank] * (-len(cells) % columns)
    rows = [_join(cells[start : start + columns], gap, axis=1) for start in range(0, len(cells), columns)]
    return _join(rows, gap, axis=0)


def side_by_side(images: Sequence[np.ndarray], captions: Sequence[str] | None = None, gap: int = 4) -> np.ndarray:
    """One row of images (e.g. image | ground truth | prediction | errors) for CLI output.

    Args:
        images: (H_i, W_i, 3) uint8 images; each keeps its width, shorter ones are padded with
            white at the bottom.
        captions: optional text above each image.
        gap: white pixels between images.

    Returns:
        (max H_i + caption band, sum W_i + gap * (n - 1), 3) uint8 RGB.
    """
    images = _prepare(images, captions, "side_by_side")
    height = max(image.shape[0] for image in images)
    caption_height = _caption_height(captions)
    cells = [
        _cell(image, None if captions is None else captions[i], caption_height, height, image.shape[1])
        for i, image in enumerate(images)
    ]
    return _join(cells, gap, axis=1)


# -- Plotly figures ----------------------------------------------------------------------------
# Confusion-matrix normalisations and how the app names them.
NORMALIZATIONS = {
    "none": "pixel counts",
    "recall": "recall (rows sum to 1)",
    "precision": "precision (columns sum to 1)",
}


def _check_class_count(length: int, class_names: Sequence[str], what: str) -> None:
    if length != len(class_names):
        raise ValueError(f"{what} has {length} classes but {len(class_names)} class names were given")


def _share(counts: np.ndarray, axis: int) -> np.ndarray:
    """Counts divided by their row (axis=1) or column (axis=0) sums; NaN where the sum is 0."""
    totals = counts.sum(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / np.where(totals > 0, totals, 1), np.nan)


def confusion_matrix_figure(
    matrix: np.ndarray,
    class_names: Sequence[str],
    normalize: str = "none",
    title: str | None = None,
) -> go.Figure:
    """Heatmap of a confusion matrix.

    Args:
        matrix: (K, K) counts, rows = ground truth, columns = prediction (as
            ``ConfusionMatrix.matrix``); (K, K + 1) when a mapped source predicted "other" (its
            last column, drawn as an "other" column, never dropped).
        class_names: K names.
        normalize: ``"none"`` (counts), ``"recall"`` (each row divided by its sum: where the
            pixels of a true class went) or ``"precision"`` (each column divided by its sum: what
            a predicted class really was). Rows/columns with no pixels are NaN and drawn blank.
        title: figure title.

    Returns:
        A figure whose ``data[0]`` is the heatmap (``z`` = the shown values, (K, K)); hover shows
        ground truth, prediction, count and the shares of the row and the column. Cells carry
        their value as text when K <= 25.
    """
    import plotly.graph_objects as go

    counts = np.asarray(matrix, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[1] not in (counts.shape[0], counts.shape[0] + 1):
        raise ValueError(f"a confusion matrix must be (K, K) or (K, K + 1), got shape {counts.shape}")
    _check_class_count(counts.shape[0], class_names, "the confusion matrix")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, got {normalize!r}")
    row_share = _share(counts, axis=1)
    column_share = _share(counts, axis=0)
    values = {"none": counts, "recall": row_share, "precision": column_share}[normalize]
    names = [str(name) for name in class_names]
    class_count = len(names)
    heatmap = go.Heatmap(
        z=values,
        x=confusion_columns(names, counts.shape[1]),
        y=names,
        customdata=np.stack([counts, row_share, column_share], axis=-1),
        colorscale="Blues",
        zmin=0.0,
        zmax=1.0 if normalize != "none" else None,
        hoverongaps=False,
        hovertemplate=(
            "GT: %{y}<br>Pred: %{x}<br>count: %{customdata[0]:,.0f}"
            "<br>share of GT row: %{customdata[1]:.1%}<br>share of predicted column: %{customdata[2]:.1%}"
            "<extra></extra>"
        ),
        colorbar={"title": {"text": "pixels" if normalize == "none" else normalize}},
    )
    labels = _cell_labels(values, as_count=normalize == "none")
    side, font_size, annotate = confusion_geometry(
        class_count, max((len(label) for label in labels.ravel()), default=1)
    )
    if annotate:
        heatmap.text = labels
        heatmap.texttemplate = "%{text}"
        heatmap.textfont = {"size": font_size}
    figure = go.Figure(heatmap)
    figure.update_layout(
        title=title,
        height=side,
        xaxis={"title": {"text": "Prediction"}, "tickangle": -45, "constrain": "domain", "showgrid": False},
        yaxis={"title": {"text": "Ground truth"}, "autorange": "reversed", "scaleanchor": "x", "showgrid": False},
        plot_bgcolor="white",  # blank (NaN) rows and columns read as "no data", not as a colour
        margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
    )
    return figure


def confusion_columns(class_names: Sequence[str], columns: int) -> list[str]:
    """Column names of a confusion matrix: the classes, plus "other" for a (K, K + 1) matrix."""
    names = [str(name) for name in class_names]
    return names + ["other"] if columns == len(names) + 1 else names


CELL_TEXT_WIDTH = 0.62  # width of one digit of plotly's default font, in font sizes
CONFUSION_AXES_PX = 180  # room around the square for the title, tick labels (rotated) and axis titles
MAX_CONFUSION_PX = 1000


def confusion_geometry(class_count: int, longest_label: int) -> tuple[int, int, bool]:
    """Figure height, cell font size and whether cells get text, for a ``class_count`` confusion matrix.

    Cells are made wide enough for their longest label (``longest_label`` characters) plus padding, at
    least 60 px for small matrices so the square uses the page; when even a 1000 px figure cannot fit
    the labels (or beyond :data:`MAX_ANNOTATED_CLASSES`), cells carry no text and hover gives the values.
    """
    font_size = 12 if class_count <= 12 else 9
    label_px = CELL_TEXT_WIDTH * font_size * longest_label + 10
    cell = max(label_px, 60 if class_count <= 12 else 24)
    side = CONFUSION_AXES_PX + cell * class_count
    if side > MAX_CONFUSION_PX:
        cell = (MAX_CONFUSION_PX - CONFUSION_AXES_PX) / class_count
        side = MAX_CONFUSION_PX
    annotate = class_count <= MAX_ANNOTATED_CLASSES and cell >= label_px
    return int(round(max(side, 360))), font_size, annotate


def _cell_labels(values: np.ndarray, as_count: bool) -> np.ndarray:
    """Short per-cell text: compact counts (``12.3k``) or fractions (``0.93``); blank for NaN."""
    flat = values.ravel()
    if as_count:
        labels = [_compact_count(v) for v in flat]
    else:
        labels = ["" if math.isnan(v) else "0" if v == 0 else f"{v:.2f}" for v in flat]
    return np.array(labels, dtype=object).reshape(values.shape)


def _compact_count(value: float) -> str:
    """At most four characters: ``8``, ``950``, ``9.7k``, ``93k``, ``1.1M`` (hover has the exact count)."""
    if math.isnan(value):
        return ""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            scaled = value / limit
            return f"{scaled:.0f}{suffix}" if abs(scaled) >= 10 else f"{scaled:.2g}{suffix}"
    return f"{value:.0f}"


def value_axis(title: str | None, log: bool, values: Iterable[float] | np.ndarray = ()) -> dict[str, Any]:
    """A y axis layout; on a log scale, labels only where they cannot collide.

    Plotly labels every digit 2-9 of each decade on a log axis ("1 9 8 7 ... 0.1 9 8"), which overlap on
    a chart of normal height. Spanning two decades or more, only the powers of ten are labelled (minor
    ticks mark the rest); within a smaller range 1, 2 and 5 of each decade are.
    """
    axis: dict[str, Any] = {"title": {"text": title}, "type": "log" if log else "linear"}
    if log:
        positive = np.asarray(
            [v for v in np.ravel(np.asarray(list(values), dtype=np.float64)) if v > 0 and math.isfinite(v)]
        )
        decades = math.log10(positive.max() / positive.min()) if positive.size else 0.0
        axis |= (
            {"dtick": 1, "minor": {"ticks": "outside", "dtick": "D1", "showgrid": False}}
            if decades >= 2
            else {"dtick": "D2"}
        )
    return axis


def per_class_bar_figure(
    values: Mapping[str, Sequence[float] | np.ndarray] | Sequence[float] | np.ndarray,
    class_names: Sequence[str],
    title: str | None = None,
    yaxis_title: str | None = None,
    log_y: bool = False,
) -> go.Figure:
    """Bars per class; one group per class and one bar per series (e.g. per checkpoint).

    Args:
        values: ``{series name: (K,) values}`` or one (K,) array; NaN (class absent) = no bar.
        class_names: K names (the x axis).
        title, yaxis_title: labels.
        log_y: logarithmic y axis.

    Returns:
        A figure with one ``go.Bar`` per series.
    """
    import plotly.graph_objects as go

    series = dict(values) if isinstance(values, Mapping) else {yaxis_title or "value": values}
    names = [str(name) for name in class_names]
    figure = go.Figure()
    for series_name, series_values in series.items():
        array = np.asarray(series_values, dtype=np.float64).ravel()
        _check_class_count(len(array), names, f"series {series_name!r}")
        figure.add_trace(
            go.Bar(
                x=names,
                y=array,
                name=str(series_name),
                hovertemplate=f"%{{x}}<br>{series_name}: %{{y:.4g}}<extra></extra>",
            )
        )
    figure.update_layout(
        title=title,
        barmode="group",
        yaxis=value_axis(
            yaxis_title, log_y, np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in series.values()])
        ),
        xaxis={"tickangle": -45},
        showlegend=len(series) > 1,
        margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
    )
    return figure


def class_distribution_figure(
    pixel_fraction: Sequence[float] | np.ndarray,
    image_count: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    colors: np.ndarray | Sequence[Sequence[int]],
    title: str | None = "Class distribution",
    log_y: bool = True,
) -> go.Figure:
    """Share of labelled pixels per class, bars in the class colours, the number of images containing
    the class above each bar. A log axis (the default) shows classes spanning orders of magnitude; a
    linear one shows how lopsided the imbalance really is.

    Args:
        pixel_fraction: (K,) fraction of non-void pixels of each class; classes with 0 get no bar
            (a log axis cannot show 0) but keep their place and their "0 img" label.
        image_count: (K,) number of images in which the class occurs.
        class_names: K names.
        colors: (K, 3) uint8 RGB (``label_map.colors``).
        title: figure title.

    Returns:
        A figure with one ``go.Bar``.
    """
    import plotly.graph_objects as go

    fraction = np.asarray(pixel_fraction, dtype=np.float64).ravel()
    counts = np.asarray(image_count).ravel()
    names = [str(name) for name in class_names]
    _check_class_count(len(fraction), names, "pixel_fraction")
    _check_class_count(len(counts), names, "image_count")
    rgb = np.asarray(colors).reshape(-1, 3)
    _check_class_count(len(rgb), names, "colors")
    shown = np.where(fraction > 0, fraction, np.nan) if log_y else fraction
    figure = go.Figure(
        go.Bar(
            x=names,
            y=shown,
            marker={"color": [to_hex(color) for color in rgb], "line": {"color": "#333333", "width": 1}},
            customdata=np.stack([fraction, counts.astype(np.float64)], axis=-1),
            text=[f"{int(count)} img" for count in counts],
            textposition="outside",
            hovertemplate="%{x}<br>pixels: %{customdata[0]:.3%}<br>images: %{customdata[1]:,.0f}<extra></extra>",
        )
    )
    figure.update_layout(
        title=title,
        yaxis=value_axis("fraction of labelled pixels", log_y, shown) | {"tickformat": ".1~%" if log_y else ".0%"},
        xaxis={"tickangle": -45},
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
    )
    return figure


def _hover_grid(height: int, width: int, max_side: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows and columns sampled for the hover layer (block centres) and the block size."""
    step = max(1, math.ceil(max(height, width) / max_side))
    rows = np.minimum(np.arange(0, height, step) + step // 2, height - 1)
    columns = np.minimum(np.arange(0, width, step) + step // 2, width - 1)
    return rows, columns, step


def image_figure(
    rgb: np.ndarray,
    hover_labels: np.ndarray | Mapping[str, np.ndarray] | None = None,
    label_map: LabelMap | None = None,
    title: str | None = None,
    max_hover_side: int = MAX_HOVER_SIDE,
    display_width: int = 620,
) -> go.Figure:
    """Show an image in Plotly (zoom/pan) with the class names under the cursor on hover.

    The image is sent as one compressed PNG (``px.imshow(binary_string=True)``). Hover comes from
    a transparent heatmap on top whose ``customdata`` is 3-D (h, w, k): Plotly 6+ ignores 2-D
    customdata on heatmaps. The hover layer is downsampled (nearest, block centres) to at most
    ``max_hover_side`` pixels on the long side to keep the figure small.

    Args:
        rgb: (H, W, 3) uint8 image (e.g. an overlay).
        hover_labels: (H, W) class ids, or ``{"GT": target, "Pred": pred}`` to show several.
        label_map: turns ids into names (``void`` for the ignore index); without it ids are shown.
        title: figure title.
        max_hover_side: long side of the hover layer in cells.
        display_width: the width (px) the figure is expected to get; its height follows the image's aspect
            ratio (within 240-720 px), so no empty band surrounds the image.

    Returns:
        A figure: ``data[0]`` the image, ``data[1]`` (with labels) the hover heatmap whose
        ``customdata[i, j, k]`` is the name of layer k at hover cell (i, j).
    """
    import plotly.express as px
    import plotly.graph_objects as go

    rgb = _as_rgb(rgb)
    figure = px.imshow(rgb, binary_string=True)
    if hover_labels is not None:
        layers = dict(hover_labels) if isinstance(hover_labels, Mapping) else {"class": hover_labels}
        rows, columns, step = _hover_grid(rgb.shape[0], rgb.shape[1], max_hover_side)
        names_per_layer = []
        for layer_name, labels in layers.items():
            labels = _as_mask(labels, f"hover labels {layer_name!r}")
            _check_same_size(rgb, labels, "image", f"hover labels {layer_name!r}")
            sampled = labels[np.ix_(rows, columns)]
            names_per_layer.append(_label_names(sampled, label_map))
        customdata = np.stack(names_per_layer, axis=-1)
        lines = "<br>".join(f"{name}: %{{customdata[{k}]}}" for k, name in enumerate(layers))
        transparent = [[0.0, "rgba(0,0,0,0)"], [1.0, "rgba(0,0,0,0)"]]
        figure.add_trace(
            go.Heatmap(
                z=np.zeros((len(rows), len(columns)), dtype=np.uint8),
                # Cell centres in image pixel coordinates, so each cell covers its block.
                x=np.arange(len(columns)) * step + (step - 1) / 2,
                y=np.arange(len(rows)) * step + (step - 1) / 2,
                customdata=customdata,
                colorscale=transparent,
                showscale=False,
                hovertemplate=f"{lines}<br>x=%{{x:.0f}}, y=%{{y:.0f}}<extra></extra>",
            )
        )
        figure.data[0].hoverinfo = "skip"
    top = 40 if title else 0
    height = min(max(round(display_width * rgb.shape[0] / rgb.shape[1]), 240), 720) + top
    figure.update_layout(title=title, margin={"l": 0, "r": 0, "t": top, "b": 0}, height=height)
    figure.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    figure.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    return figure


def _label_names(labels: np.ndarray, label_map: LabelMap | None) -> np.ndarray:
    """Class ids -> names via a lookup over the distinct values (str array, same shape).

    A fixed-width str array, not an object array: Plotly copies and serialises it about twice as
    fast, which is most of the cost of an image figure sent to the browser.
    """
    values, inverse = np.unique(labels, return_inverse=True)
    if label_map is None:
        names = np.array([str(int(value)) for value in values], dtype=str)
    else:
        names = np.array([label_map.class_name(int(value)) for value in values], dtype=str)
    return names[inverse.reshape(labels.shape)]


def line_figure(
    series: Mapping[str, tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]],
    title: str | None = None,
    xaxis_title: str | None = None,
    yaxis_title: str | None = None,
    log_y: bool = False,
) -> go.Figure:
    """Lines (training curves): ``{name: (x, y)}``, one trace per name; markers when short.

    Returns:
        A figure with one ``go.Scatter`` per series.
    """
    import plotly.graph_objects as go

    figure = go.Figure()
    for name, (x_values, y_values) in series.items():
        x_array = np.asarray(x_values, dtype=np.float64).ravel()
        y_array = np.asarray(y_values, dtype=np.float64).ravel()
        if len(x_array) != len(y_array):
            raise ValueError(f"series {name!r} has {len(x_array)} x values but {len(y_array)} y values")
        figure.add_trace(
            go.Scatter(
                x=x_array,
                y=y_array,
                name=str(name),
                mode="lines+markers" if len(x_array) <= 30 else "lines",
                hovertemplate=f"{name}: %{{y:.4g}}<extra></extra>",
            )
        )
    figure.update_layout(
        title=title,
        xaxis={"title": {"text": xaxis_title}},
        yaxis=value_axis(
            yaxis_title,
            log_y,
            np.concatenate([np.ravel(np.asarray(y, dtype=np.float64)) for _, y in series.values()] or [np.zeros(0)]),
        ),
        hovermode="x unified",
        margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
    )
    return figure


def lr_schedule_figure(
    steps: Sequence[float] | np.ndarray,
    learning_rates: Sequence[float] | np.ndarray,
    title: str | None = "Learning rate schedule",
    log_y: bool = False,
    xaxis_title: str = "step",
) -> go.Figure:
    """Learning rate against step (or seconds, for a run with a time budget): a :func:`line_figure` with one series."""
    return line_figure(
        {"learning rate": (steps, learning_rates)},
        title=title,
        xaxis_title=xaxis_title,
        yaxis_title="learning rate",
        log_y=log_y,
    )


def object_size_figure(
    object_class: Sequence[int] | np.ndarray,
    object_area: Sequence[float] | np.ndarray,
    class_names: Sequence[str],
    colors: np.ndarray | Sequence[Sequence[int]],
    title: str | None = "Object size per class",
) -> go.Figure:
    """Box per class of object areas (connected components) on a log axis.

    Quartiles are computed here and sent precomputed (whiskers = smallest and largest object), so
    the figure stays small however many objects a dataset has.

    Args:
        object_class: (M,) class id of each object (``DatasetStats.object_class``).
        object_area: (M,) pixels of each object (``DatasetStats.object_area``).
        class_names: K names; every class keeps its place on the x axis.
        colors: (K, 3) uint8 RGB (``label_map.colors``).
        title: figure title.

    Returns:
        A figure with one ``go.Box`` per class that has objects, named after the class.
    """
    import plotly.graph_objects as go

    classes = np.asarray(object_class, dtype=np.int64).ravel()
    areas = np.asarray(object_area, dtype=np.float64).ravel()
    if classes.shape != areas.shape:
        raise ValueError(f"object_class has {classes.size} objects but object_area has {areas.size}")
    names = [str(name) for name in class_names]
    rgb = np.asarray(colors).reshape(-1, 3)
    _check_class_count(len(rgb), names, "colors")
    boxes = []
    for class_id, name in enumerate(names):
        sizes = areas[classes == class_id]
        if sizes.size == 0:
            continue
        q1, median, q3 = np.percentile(sizes, [25, 50, 75])
        boxes.append(
            go.Box(
                x=[name],
                q1=[q1],
                median=[median],
                q3=[q3],
                lowerfence=[sizes.min()],
                upperfence=[sizes.max()],
                mean=[sizes.mean()],
                name=name,
                marker={"color": to_hex(rgb[class_id])},
                line={"color": "#333333", "width": 1},
                fillcolor=to_hex(rgb[class_id]),
            )
        )
    figure = go.Figure(boxes)  # one validation pass: add_trace per class costs ~5 ms each
    figure.update_layout(
        title=title,
        yaxis=value_axis("object area (pixels)", True, areas),
        xaxis={"tickangle": -45, "categoryorder": "array", "categoryarray": names},
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
    )
    return figure
