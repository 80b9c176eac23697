"""Pictures of the diagnostics: reliability diagram, per-class boundary and object bars, missed-object crops."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from seglab.analysis.diagnostics.objects import SizeBuckets, missed_objects
from seglab.data.base import SegmentationDataset
from seglab.data.label_map import LabelMap
from seglab.viz import colorize_mask, draw_outlines, per_class_bar_figure, side_by_side

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from seglab.engine.predict import DatasetEvaluation

__all__ = [
    "UNCERTAINTIES",
    "MissedObject",
    "boundary_figure",
    "confidently_wrong_map",
    "missed_object_gallery",
    "object_crop",
    "object_recall_figure",
    "reliability_figure",
    "uncertainty",
]

_OUTLINE = (255, 221, 0)


def reliability_figure(bins: Mapping[str, list], ece: float | None, title: str | None = None) -> go.Figure:
    """Accuracy against confidence per bin (from :func:`~seglab.analysis.diagnostics.calibration.reliability_bins`).

    A bar's width shows its share of the pixels (the fullest bin spans its whole bin); the diagonal
    is perfect calibration, bars below it are over-confident.
    """
    import plotly.graph_objects as go

    low, high = np.asarray(bins["low"], float), np.asarray(bins["high"], float)
    pixels = np.asarray(bins["pixels"], float)
    accuracy = np.array([np.nan if v is None else v for v in bins["accuracy"]], float)
    confidence = np.array([np.nan if v is None else v for v in bins["confidence"]], float)
    share = pixels / max(pixels.max(), 1)
    width = (high - low) * np.maximum(share, 0.08 * (pixels > 0))
    total = max(pixels.sum(), 1)
    figure = go.Figure()
    hover = (
        "confidence %{customdata[0]:.2f}-%{customdata[1]:.2f}<br>accuracy %{y:.3f}"
        "<br>mean confidence %{customdata[4]:.3f}<br>%{customdata[2]:,.0f} px (%{customdata[3]:.1%})<extra></extra>"
    )
    figure.add_trace(
        go.Bar(
            x=(low + high) / 2,
            y=accuracy,
            width=width,
            name="accuracy",
            marker_color="#4c78a8",
            customdata=np.stack([low, high, pixels, pixels / total, confidence], axis=1),
            hovertemplate=hover,
        )
    )
    diagonal = {"dash": "dash", "color": "#888"}
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line=diagonal, hoverinfo="skip"))
    ece_text = "" if ece is None else f" · ECE {ece:.3f}"
    figure.update_layout(
        title=(title or "Reliability diagram") + ece_text,
        xaxis={"title": {"text": "confidence (top class probability)"}, "range": [0, 1]},
        yaxis={"title": {"text": "accuracy"}, "range": [0, 1]},
        bargap=0,
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure


def boundary_figure(iou: np.ndarray, boundary_iou: np.ndarray, bf: np.ndarray, class_names: list[str]) -> go.Figure:
    """Per class: IoU beside Boundary IoU and the BF score (a class far lower on its boundary has blurry outlines)."""
    series = {"IoU": iou, "Boundary IoU": boundary_iou, "BF score": bf}
    return per_class_bar_figure(series, class_names, title="Region vs boundary quality per class", yaxis_title="score")


def object_recall_figure(per_class: Mapping[str, Mapping], class_names: list[str]) -> go.Figure:
    """Per class: share of ground-truth objects found, by size bucket (no bar: no object of that size)."""

    def recall(name: str, bucket: str) -> float:
        value = per_class[name][f"recall_{bucket}"]
        return np.nan if value is None else value

    series = {bucket: [recall(name, bucket) for name in class_names] for bucket in ("small", "medium", "large")}
    return per_class_bar_figure(series, class_names, title="Objects found, by size", yaxis_title="object recall")


def _crop_box(x: int, y: int, w: int, h: int, shape: tuple[int, ...], margin: float) -> tuple[slice, slice]:
    grow = max(8, int(margin * max(w, h)))
    return slice(max(y - grow, 0), min(y + h + grow, shape[0])), slice(max(x - grow, 0), min(x + w + grow, shape[1]))


def object_crop(
    image: np.ndarray,
    target: np.ndarray,
    pred: np.ndarray,
    box: tuple[int, int, int, int],
    class_id: int,
    label_map: LabelMap,
    side: int = 160,
    margin: float = 0.5,
) -> np.ndarray:
    """Image | ground truth | prediction around one object (``box`` = x, y, w, h), its class outlined in yellow."""
    rows, columns = _crop_box(*box, target.shape, margin)
    crop_target, crop_pred = target[rows, columns], pred[rows, columns]
    outline = (crop_target == class_id).astype(np.uint8)
    tiles = [
        draw_outlines(image[rows, columns], outline, color=_OUTLINE),
        draw_outlines(colorize_mask(crop_target, label_map), outline, color=_OUTLINE),
        draw_outlines(colorize_mask(crop_pred, label_map), outline, color=_OUTLINE),
    ]
    scale = side / max(tiles[0].shape[:2])
    size = (max(1, round(tiles[0].shape[1] * scale)), max(1, round(tiles[0].shape[0] * scale)))
    return side_by_side([cv2.resize(tile, size, interpolation=cv2.INTER_NEAREST) for tile in tiles], gap=3)


@dataclass(frozen=True)
class MissedObject:
    """One missed ground-truth object, for a gallery caption and a link to Inspect."""

    sample_id: str
    class_name: str
    area: int
    coverage: float  # share of its pixels predicted with its class
    predicted_instead: str  # the class predicted most on its missed pixels ("-": none)


def _label_name(value: int, class_names: Sequence[str], other_label: int | None) -> str:
    if 0 <= value < len(class_names):
        return str(class_names[value])
    return "other" if other_label is not None and value == other_label else "-"


def missed_object_gallery(
    evaluation: DatasetEvaluation,
    dataset: SegmentationDataset,
    *,
    class_id: int | None = None,
    cover: float = 0.5,
    largest_first: bool = False,
    limit: int = 12,
    sizes: SizeBuckets | None = None,
) -> tuple[int, list[tuple[MissedObject, np.ndarray]]]:
    """How many objects were missed, and crops of the first ``limit`` (smallest or largest first)."""
    if evaluation.diagnostics is None:
        return 0, []
    objects, sizes = evaluation.diagnostics.objects, sizes or SizeBuckets()
    missed = missed_objects(objects, cover=cover, sizes=sizes, largest_first=largest_first, class_id=class_id)
    names, pictures = evaluation.class_names, []
    for row in range(min(limit, len(missed))):
        result = evaluation.results[int(missed.image[row])]
        image, target = dataset.load(result.index)
        box = (int(missed.x[row]), int(missed.y[row]), int(missed.w[row]), int(missed.h[row]))
        object_class = int(missed.class_id[row])
        picture = object_crop(image, target, result.labels, box, object_class, dataset.label_map)
        info = MissedObject(
            sample_id=result.sample_id,
            class_name=str(names[object_class]),
            area=int(missed.area[row]),
            coverage=float(missed.coverage[row]),
            predicted_instead=_label_name(int(missed.wrong_class[row]), names, evaluation.other_label),
        )
        pictures.append((info, picture))
    return len(missed), pictures


UNCERTAINTIES = ("entropy", "margin")


def uncertainty(probabilities: np.ndarray, kind: str = "entropy") -> np.ndarray:
    """(H, W) uncertainty in [0, 1] of (K, H, W) probabilities: entropy / log K, or 1 - (top-1 - top-2) margin."""
    if kind not in UNCERTAINTIES:
        raise ValueError(f"uncertainty must be one of {', '.join(UNCERTAINTIES)}, got {kind!r}")
    probabilities = np.asarray(probabilities, np.float32)
    classes = probabilities.shape[0]
    if kind == "entropy":
        entropy = -(probabilities * np.log(np.clip(probabilities, 1e-12, 1))).sum(axis=0)
        return np.clip(entropy / np.log(max(classes, 2)), 0, 1)
    if classes < 2:
        return np.zeros(probabilities.shape[1:], np.float32)
    second, first = np.partition(probabilities, classes - 2, axis=0)[-2:]
    return np.clip(1 - (first - second), 0, 1)


def confidently_wrong_map(
    image: np.ndarray, pred: np.ndarray, target: np.ndarray, confidence: np.ndarray, ignore_index: int, threshold: float
) -> np.ndarray:
    """The image dimmed, wrong pixels with confidence >= ``threshold`` in red, other wrong pixels in orange."""
    wrong = (target != ignore_index) & (pred != target)
    confident = wrong & (confidence.astype(np.float32) >= threshold)
    picture = (np.asarray(image, np.float32) * 0.45 + 255 * 0.55 * 0.3).astype(np.uint8)
    picture[wrong & ~confident] = (255, 170, 60)
    picture[confident] = (220, 20, 60)
    return picture
