"""A zip of predicted masks: one single-channel PNG of class ids per hidden image, named ``<id>.png``.

The layout students get from the hidden-images download (the same names, ``.png``); files may sit
at the top of the zip or inside one folder. Checked before scoring: every hidden image id present
exactly once and nothing else, each PNG the size of its image, values in ``0 .. K-1``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from pathlib import PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from seglab.competition.archive import ZipEntry, ZipLimits, check_zip, read_entries
from seglab.competition.errors import SubmissionRejected

INDEX_MODES = {"L", "P", "I", "I;16", "I;16L", "I;16B", "1"}
MAX_LISTED = 5


def mask_zip_limits(sizes: Sequence[tuple[int, int]]) -> ZipLimits:
    """Limits that fit exactly this many masks of these sizes (a PNG is never much larger than its raw pixels)."""
    largest = max(height * width for height, width in sizes)
    per_entry = 2 * largest + 2**20
    return ZipLimits(
        max_entries=len(sizes) + 64,  # room for folders and tool clutter
        max_entry_bytes=per_entry,
        max_total_bytes=sum(2 * height * width + 2**20 for height, width in sizes),
    )


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _decode_mask(name: str, data: bytes, size: tuple[int, int], num_classes: int) -> np.ndarray:
    """A PNG of class ids -> (H, W) uint8, checked against the expected (height, width) and class count."""
    height, width = size
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            if (image.height, image.width) != (height, width):
                raise SubmissionRejected(
                    f"{name} is {image.width}x{image.height} but its image is {width}x{height} (width x height); "
                    "predict at the image's full size"
                )
            image.load()
            mode = image.mode
            values = np.asarray(image)
    except SubmissionRejected:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        raise SubmissionRejected(f"{name} is not a readable PNG ({error}); save each mask as a PNG file") from None
    if mode in ("RGB", "RGBA"):
        rgb = values[..., :3]
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            raise SubmissionRejected(
                f"{name} is a colour PNG; save class ids (0..{num_classes - 1}) as a single-channel 8-bit PNG, "
                "e.g. PIL.Image.fromarray(labels.astype('uint8')).save(...)"
            )
        values = rgb[..., 0]
    elif mode not in INDEX_MODES:
        raise SubmissionRejected(f"{name} has PNG mode {mode}; save class ids as a single-channel 8-bit PNG")
    if values.ndim == 3:
        values = values[..., 0]
    largest = int(values.max()) if values.size else 0
    if largest >= num_classes or (values.size and int(values.min()) < 0):
        bad = np.unique(values[(values < 0) | (values >= num_classes)])[:MAX_LISTED]
        raise SubmissionRejected(
            f"{name} holds values {', '.join(str(int(v)) for v in bad)} outside the class ids 0..{num_classes - 1}; "
            "write the predicted class id of each pixel (no void/255 in predictions)"
        )
    return values.astype(np.uint8, copy=False)


def iter_mask_zip(
    path: str | os.PathLike, sample_ids: Sequence[str], sizes: Sequence[tuple[int, int]], num_classes: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Check the zip's names against the hidden ids, then yield ``(position, mask)`` in hidden-image
    order, decoding one PNG at a time. Raises :class:`SubmissionRejected` on the first problem."""
    limits = mask_zip_limits(sizes)
    entries = check_zip(path, limits)
    positions = {sample_id: position for position, sample_id in enumerate(sample_ids)}
    folders = {PurePosixPath(entry.name).parent for entry in entries}
    if len(folders) > 1:
        raise SubmissionRejected(
            f"the zip spreads files over several folders ({_listed(sorted(str(f) for f in folders))}); put every mask "
            "at the top of the zip or in one folder"
        )
    by_position: dict[int, ZipEntry] = {}
    unknown, not_png = [], []
    for entry in entries:
        file = PurePosixPath(entry.name)
        if file.suffix.lower() != ".png":
            not_png.append(entry.name)
            continue
        position = positions.get(file.stem)
        if position is None:
            unknown.append(entry.name)
            continue
        if position in by_position:
            raise SubmissionRejected(f"the zip holds two masks for image {file.stem!r}; keep one per image")
        by_position[position] = entry
    if not_png:
        raise SubmissionRejected(f"the zip holds files that are not PNG masks: {_listed(not_png)}")
    if unknown:
        raise SubmissionRejected(
            f"the zip holds masks for images that are not in the hidden split: {_listed(unknown)}; name each mask "
            "after its image (e.g. test-000003.png)"
        )
    missing = [sample_id for position, sample_id in enumerate(sample_ids) if position not in by_position]
    if missing:
        raise SubmissionRejected(
            f"the zip lacks masks for {len(missing)} of the {len(sample_ids)} hidden images: {_listed(missing)}"
        )
    ordered = [by_position[position] for position in range(len(sample_ids))]
    for position, (entry, data) in enumerate(read_entries(path, ordered, limits)):
        yield position, _decode_mask(entry.name, data, sizes[position], num_classes)
