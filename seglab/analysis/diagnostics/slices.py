"""Metrics per slice of a split: built-in slices and user tags, each scored from the cached per-image confusions.

Built-in slices: the recording sequence (the file-name prefix before the first ``_``, as in CamVid's
``0016E5_07959``; only when it splits the split into 2 or more groups), image brightness terciles,
the number of classes in the ground truth (1-2, 3-4, 5+) and, for the three rarest classes, the
images that hold them. User slices come from a CSV of ``id,tag`` rows (an image may carry several tags).
A slice is scored like the split (one confusion matrix summed over its images), so its mIoU and
per-class IoU compare directly with the whole split's.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from seglab.errors import ConfigError
from seglab.io.json_values import json_number
from seglab.metrics.confusion import SegmentationMetrics

__all__ = ["Slice", "builtin_slices", "read_tags", "slice_table", "tag_slices"]

_RARE_CLASSES = 3
_MAX_TAG_ROWS = 1_000_000


@dataclass(frozen=True)
class Slice:
    """A named subset of a split's images; ``positions`` index the evaluation's results."""

    name: str
    kind: str  # "sequence", "brightness", "classes", "rare class" or "tag"
    positions: tuple[int, ...]


def _sequence_slices(sample_ids: Sequence[str]) -> list[Slice]:
    if not all("_" in str(sample_id) for sample_id in sample_ids):
        return []
    prefixes = [str(sample_id).split("_", 1)[0] for sample_id in sample_ids]
    groups = sorted(set(prefixes))
    if not 2 <= len(groups) < len(prefixes):
        return []
    return [Slice(f"sequence {g}", "sequence", tuple(i for i, p in enumerate(prefixes) if p == g)) for g in groups]


def _brightness_slices(brightness: np.ndarray) -> list[Slice]:
    if len(brightness) < 3:
        return []
    order = np.argsort(brightness, kind="stable")
    names = ("darkest third", "middle third", "brightest third")
    return [
        Slice(f"brightness: {name}", "brightness", tuple(sorted(int(i) for i in part)))
        for name, part in zip(names, np.array_split(order, 3), strict=True)
    ]


def _class_count_slices(truth_pixels: np.ndarray) -> list[Slice]:
    present = (truth_pixels > 0).sum(axis=1)
    slices = []
    for name, low, high in (("1-2", 1, 2), ("3-4", 3, 4), ("5+", 5, 10**9)):
        chosen = np.flatnonzero((present >= low) & (present <= high))
        if len(chosen):
            slices.append(Slice(f"classes in the image: {name}", "classes", tuple(int(i) for i in chosen)))
    return slices


def _rare_class_slices(truth_pixels: np.ndarray, class_names: Sequence[str]) -> list[Slice]:
    totals = truth_pixels.sum(axis=0)
    occurring = np.flatnonzero(totals > 0)
    rarest = occurring[np.argsort(totals[occurring], kind="stable")][:_RARE_CLASSES]
    return [
        Slice(f"with {class_names[c]}", "rare class", tuple(int(i) for i in np.flatnonzero(truth_pixels[:, c] > 0)))
        for c in rarest
        if 0 < (truth_pixels[:, c] > 0).sum() < len(truth_pixels)
    ]


def builtin_slices(
    sample_ids: Sequence[str], confusions: np.ndarray, brightness: np.ndarray, class_names: Sequence[str]
) -> list[Slice]:
    """Sequence, brightness, class-count and rare-class slices of a split ((N, K, K[+1]) per-image confusions)."""
    truth_pixels = confusions.sum(axis=2) if len(confusions) else np.zeros((0, len(class_names)), np.int64)
    slices = [
        *_sequence_slices(sample_ids),
        *_brightness_slices(np.asarray(brightness, np.float64)),
        *_class_count_slices(truth_pixels),
        *_rare_class_slices(truth_pixels, class_names),
    ]
    return [piece for piece in slices if len(piece.positions) < len(sample_ids)]  # the whole split says nothing


def read_tags(text: str) -> dict[str, list[str]]:
    """``{id: [tags]}`` from CSV text of ``id,tag`` rows (an optional ``id,tag`` header; blank rows skipped)."""
    tags: dict[str, list[str]] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if number > _MAX_TAG_ROWS:
            raise ConfigError(f"the tags file has more than {_MAX_TAG_ROWS:,} rows")
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if len(cells) != 2 or not all(cells):
            raise ConfigError(f"tags row {number}: expected 'id,tag', got {','.join(row)!r}")
        if number == 1 and [c.casefold() for c in cells] == ["id", "tag"]:
            continue
        tags.setdefault(cells[0], [])
        if cells[1] not in tags[cells[0]]:
            tags[cells[0]].append(cells[1])
    return tags


def tag_slices(tags: Mapping[str, Sequence[str]], sample_ids: Sequence[str]) -> tuple[list[Slice], list[str]]:
    """One slice per tag (in first-seen order), plus the tagged ids that are not in the split."""
    position = {str(sample_id): i for i, sample_id in enumerate(sample_ids)}
    members: dict[str, list[int]] = {}
    unknown = []
    for sample_id, sample_tags in tags.items():
        if sample_id not in position:
            unknown.append(sample_id)
            continue
        for tag in sample_tags:
            members.setdefault(tag, []).append(position[sample_id])
    return [Slice(f"tag {tag}", "tag", tuple(sorted(p))) for tag, p in members.items()], unknown


def slice_table(
    confusions: np.ndarray, slices: Sequence[Slice], class_names: Sequence[str], background_index: int | None = None
) -> list[dict]:
    """One row per slice (images, mIoU, gap to the split, per-class IoU and gaps), worst gap first."""
    whole = SegmentationMetrics.from_confusion(confusions.sum(axis=0), background_index=background_index)
    rows = []
    for piece in slices:
        metrics = SegmentationMetrics.from_confusion(
            confusions[list(piece.positions)].sum(axis=0), background_index=background_index
        )
        iou = {str(n): json_number(v) for n, v in zip(class_names, metrics.iou, strict=False)}
        gap = metrics.miou - whole.miou
        rows.append(
            {
                "slice": piece.name,
                "kind": piece.kind,
                "images": len(piece.positions),
                "miou": json_number(metrics.miou),
                "gap": json_number(gap),
                "iou": iou,
                "positions": list(piece.positions),
            }
        )
    return sorted(rows, key=lambda row: (np.inf if row["gap"] is None else row["gap"], row["slice"]))
