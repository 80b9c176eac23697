"""Pictures of label quality: self-confidence in viridis, suspicious objects outlined and numbered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from seglab.analysis.label_quality.scores import ObjectQuality, label_objects

if TYPE_CHECKING:
    pass


HIGHLIGHT_COLOR = (240, 228, 66)  # Okabe-Ito yellow, as on the Inspect page


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
