"""Composites for CLI output and reports: class legends, legend images, captioned grids, side by side."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from seglab.data.label_map import LabelMap
from seglab.viz.colors import as_rgb, to_hex, to_rgb

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.45
_FONT_THICKNESS = 1


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
        cv2.rectangle(canvas, (left, top), (left + swatch_size - 1, top + swatch_size - 1), to_rgb(color), -1)
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
    return [as_rgb(image, f"image #{i}") for i, image in enumerate(images)]


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
