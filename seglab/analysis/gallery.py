"""Choosing and drawing dataset samples for a gallery: filter by class, sort by rarity, page, thumbnail.

Filtering and ordering work from :class:`~seglab.analysis.stats.DatasetStats` alone (per-image class pixel
counts and objects), so ordering thousands of images never reads a mask; only the thumbnails of
the page on screen are drawn.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import cv2
import numpy as np

from seglab.analysis.stats import DatasetStats
from seglab.data.label_map import LabelMap
from seglab.errors import ConfigError
from seglab.viz import draw_outlines, overlay

__all__ = [
    "SORT_ORDERS",
    "downscale_sample",
    "encode_png",
    "filter_label",
    "order_samples",
    "page_count",
    "page_items",
    "page_of",
    "rarity_scores",
    "sample_caption",
    "sample_class_table",
    "smallest_object_areas",
    "sort_choices",
    "thumbnail",
]

# Sort name -> what it means (shown next to the sort picker).
SORT_ORDERS = {
    "index": "dataset order",
    "rarity": "rarity score first: sum over classes of the image's pixel share x the class's median-frequency weight",
    "share": "largest share of the chosen class's pixels first",
    "smallest_object": "smallest object first: tiny objects are the first a model misses",
}


def sort_choices(class_names: Sequence[str]) -> dict[str, tuple[str, int | None]]:
    """A gallery's sort menu: label -> (``sort_by``, ``class_id``) for :func:`order_samples`; the fixed orders,
    then "share of <class>" for each class."""
    choices: dict[str, tuple[str, int | None]] = {
        "dataset order": ("index", None),
        "rarity score": ("rarity", None),
        "smallest object first": ("smallest_object", None),
    }
    return choices | {f"share of {name}": ("share", class_id) for class_id, name in enumerate(class_names)}


def filter_label(stats: DatasetStats, choice: str) -> str:
    """A class-filter menu entry: a class name with the number of images holding it; other entries as they are."""
    if choice not in stats.class_names:
        return choice
    return f"{choice} ({stats.image_counts[stats.class_names.index(choice)]} images)"


def rarity_scores(stats: DatasetStats) -> np.ndarray:
    """(N,) how much of each image belongs to rare classes.

    ``score(image) = sum_c share(image, c) * median_frequency_weight(c)``, with shares over the
    image's labelled pixels: an image of mostly background scores near the background's (small)
    weight, one filled with a rare class scores near that class's (large) weight.
    """
    counts = stats.per_image_counts.astype(np.float64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    return shares @ stats.median_frequency_weights()


def smallest_object_areas(stats: DatasetStats) -> np.ndarray:
    """(N,) pixels of each image's smallest non-background object; ``inf`` when it has none."""
    foreground = stats.object_class != stats.background_index if stats.background_index is not None else slice(None)
    areas = np.full(stats.num_images, np.inf)
    np.minimum.at(areas, stats.object_image[foreground], stats.object_area[foreground].astype(np.float64))
    return areas


def _check_class(stats: DatasetStats, class_id: int | None, what: str) -> int:
    if class_id is None or not 0 <= int(class_id) < stats.num_classes:
        raise ConfigError(f"{what} must be a class id in 0..{stats.num_classes - 1}, got {class_id!r}")
    return int(class_id)


def order_samples(
    stats: DatasetStats, *, contains: int | None = None, sort_by: str = "index", class_id: int | None = None
) -> np.ndarray:
    """Indices of the images to show, in gallery order.

    Args:
        stats: statistics of the split.
        contains: keep only images with at least one labelled pixel of this class (``None``: all).
        sort_by: a key of :data:`SORT_ORDERS`; ties keep dataset order.
        class_id: the class whose share ``sort_by="share"`` sorts by.

    Returns:
        (n,) int64 image indices.
    """
    if sort_by not in SORT_ORDERS:
        raise ConfigError(f"unknown gallery sort {sort_by!r}; choose one of {', '.join(SORT_ORDERS)}")
    candidates = np.arange(stats.num_images)
    if contains is not None:
        candidates = stats.images_containing(_check_class(stats, contains, "the class filter"))
    if sort_by == "index":
        return candidates
    if sort_by == "rarity":
        key = -rarity_scores(stats)
    elif sort_by == "share":
        key = -stats.class_share_per_image(_check_class(stats, class_id, "the class to sort by"))
    else:
        key = smallest_object_areas(stats)
    return candidates[np.argsort(key[candidates], kind="stable")]


def page_count(total: int, per_page: int) -> int:
    """Number of pages (at least 1, so an empty gallery still has a page to show)."""
    return max(1, math.ceil(total / per_page))


def page_of(position: int, per_page: int) -> int:
    """The 1-based page showing the entry at 0-based ``position``."""
    return position // per_page + 1


def open_at(ids: Sequence[str], wanted: str | None, per_page: int) -> tuple[str | None, int]:
    """Where a gallery of ``ids`` opens: the ``wanted`` sample and its page when it is listed, else the first
    sample (None for an empty gallery) on page 1."""
    if wanted is not None and wanted in ids:
        return wanted, page_of(list(ids).index(wanted), per_page)
    return (ids[0] if len(ids) else None), 1


def page_items(order: np.ndarray, page: int, per_page: int) -> np.ndarray:
    """The entries of ``order`` on 1-based ``page`` (clamped to the existing pages)."""
    page = min(max(int(page), 1), page_count(len(order), per_page))
    return order[(page - 1) * per_page : page * per_page]


def table_choice(
    ids: Sequence[str],
    clicked_rows: Sequence[int],
    seen_rows: Sequence[int] | None,
    current: str | None,
    new_ranking: bool = False,
) -> str:
    """The id to show beside a clickable table of ``ids``: a row clicked since the last run (``clicked_rows``
    differ from ``seen_rows``) wins, then the first row of a ``new_ranking`` (the user just changed what the
    table ranks), then ``current`` if it is still listed, else the first id."""
    if not ids:
        raise ValueError("table_choice needs at least one id")
    clicked = list(clicked_rows)
    if clicked and list(seen_rows or []) != clicked and 0 <= clicked[0] < len(ids):
        return ids[clicked[0]]
    if new_ranking:
        return ids[0]
    return current if current is not None and current in ids else ids[0]


def sample_caption(stats: DatasetStats, index: int, sort_by: str = "index", class_id: int | None = None) -> str:
    """One line under a thumbnail: the sample id and the value it is sorted by."""
    sample_id = stats.ids[index]
    if sort_by == "rarity":
        return f"{sample_id} · rarity {rarity_scores(stats)[index]:.2f}"
    if sort_by == "share":
        class_id = _check_class(stats, class_id, "the class to sort by")
        return f"{sample_id} · {stats.class_names[class_id]} {stats.class_share_per_image(class_id)[index]:.1%}"
    if sort_by == "smallest_object":
        area = smallest_object_areas(stats)[index]
        return f"{sample_id} · smallest object {area:.0f} px" if math.isfinite(area) else f"{sample_id} · no objects"
    present = int((stats.per_image_counts[index] > 0).sum())
    return f"{sample_id} · {present} classes"


def sample_class_table(stats: DatasetStats, index: int) -> list[dict]:
    """Classes present in one image, most pixels first: ``class``, ``pixels``, ``share`` (of the
    image's labelled pixels; void is not a class and is left out) and ``objects``."""
    counts = stats.per_image_counts[index]
    objects = np.bincount(stats.object_class[stats.object_image == index], minlength=stats.num_classes)
    total = max(int(counts.sum()), 1)
    present = np.flatnonzero(counts)
    present = present[np.argsort(-counts[present], kind="stable")]
    return [
        {
            "class": stats.class_names[class_id],
            "pixels": int(counts[class_id]),
            "share": float(counts[class_id]) / total,
            "objects": int(objects[class_id]),
        }
        for class_id in present
    ]


def downscale_sample(image: np.ndarray, mask: np.ndarray, max_side: int = 192) -> tuple[np.ndarray, np.ndarray]:
    """Shrink an image and its mask so the long side is at most ``max_side`` (smaller ones are kept).

    Area interpolation for the image; nearest for the mask, as labels are ids and must never be
    interpolated.
    """
    height, width = mask.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image, mask
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.resize(
        mask, size, interpolation=cv2.INTER_NEAREST
    )


def thumbnail(
    image: np.ndarray,
    mask: np.ndarray,
    label_map: LabelMap,
    *,
    opacity: float = 0.5,
    outlines: bool = True,
    skip_background: bool = True,
    max_side: int = 192,
) -> np.ndarray:
    """A small overlay of ``mask`` on ``image`` for a gallery.

    Downscaled first (:func:`downscale_sample`), so drawing stays cheap and outlines stay one
    pixel wide; pass an already downscaled pair to redraw a page at another opacity quickly.

    Args:
        image: (H, W, 3) uint8 RGB.
        mask: (H, W) class ids.
        label_map: class colours and the ignore index (void is left unblended).
        opacity: weight of the class colours, 0 (image only) to 1 (colours only).
        outlines: draw region boundaries in their class colour.
        skip_background: leave background pixels unblended, so the scene stays readable and
            only the objects are tinted (no effect without a background class).
        max_side: long side of the result in pixels.

    Returns:
        (h, w, 3) uint8 RGB with ``max(h, w) <= max_side``.
    """
    image, mask = downscale_sample(image, mask, max_side)
    result = overlay(image, mask, label_map, alpha=opacity, skip_background=skip_background)
    return draw_outlines(result, mask, label_map) if outlines else result


def encode_picture(picture: np.ndarray, output_format: str = "JPEG") -> bytes:
    """JPEG (quality 100) or PNG bytes of an (H, W) or (H, W, 3) uint8 picture, exactly as ``st.image`` encodes
    an array itself (so a page can encode a picture once and show the bytes to every session)."""
    from PIL import Image

    output_format = output_format.upper()
    if output_format not in ("JPEG", "PNG"):
        raise ValueError(f"output_format must be JPEG or PNG, got {output_format!r}")
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(picture).astype(np.uint8)).save(buffer, format=output_format, quality=100)
    return buffer.getvalue()


def encode_png(image: np.ndarray, compression: int = 1) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 RGB image, for ``st.image`` or HTML.

    Lossless (JPEG would smear one-pixel outlines) but lightly compressed: at level 1 a thumbnail
    encodes ~5x faster than Pillow's default and is barely larger.
    """
    ok, encoded = cv2.imencode(
        ".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, compression]
    )
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as PNG")
    return encoded.tobytes()
