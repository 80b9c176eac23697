"""One JSON-ready summary of an evaluation's diagnostics (the ``diagnostics`` key of ``seglab eval --json``).

Stable keys: ``objects`` (see :func:`~seglab.analysis.diagnostics.objects.object_summary`), ``boundary``
(``boundary_iou``/``bf_score`` per class, their means, band and tolerance in pixels), ``calibration``
(``ece``, ``ece_per_class``, ``reliability``), ``confidently_wrong`` (threshold, pixels, share,
worst images) and ``slices`` (one row per slice, worst gap first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from seglab.analysis.diagnostics.accumulator import Diagnostics
from seglab.analysis.diagnostics.boundary import boundary_iou
from seglab.analysis.diagnostics.calibration import (
    class_calibration_error,
    confidently_wrong,
    expected_calibration_error,
    reliability_bins,
)
from seglab.analysis.diagnostics.objects import SizeBuckets, object_summary
from seglab.analysis.diagnostics.slices import builtin_slices, slice_table, tag_slices
from seglab.errors import ConfigError
from seglab.io.json_values import json_number
from seglab.metrics.scores import divide

if TYPE_CHECKING:
    from seglab.engine.predict import DatasetEvaluation

__all__ = [
    "DiagnosticOptions",
    "boundary_scores",
    "boundary_summary",
    "calibration_rows",
    "calibration_summary",
    "diagnostics_deltas",
    "diagnostics_summary",
    "format_diagnostics",
    "headline",
    "image_bf_score",
    "object_rows",
    "per_class_bf",
    "slice_records",
    "summarise_evaluation",
]

_WORST_IMAGES = 10


@dataclass(frozen=True)
class DiagnosticOptions:
    """The thresholds applied when summarising (changing them needs no new predictions)."""

    cover: float = 0.5  # share of an object's pixels predicted right for it to count as detected
    sizes: SizeBuckets = SizeBuckets()
    confident: float = 0.9  # "confidently wrong": wrong with at least this confidence

    def __post_init__(self) -> None:
        if not 0 < self.cover <= 1:
            raise ConfigError(f"the detection threshold must be in (0, 1], got {self.cover}")
        if not 0 < self.confident < 1:
            raise ConfigError(f"the confidently-wrong threshold must be in (0, 1), got {self.confident}")


def _per_class(values: np.ndarray, class_names: Sequence[str]) -> dict[str, float | None]:
    return {str(name): json_number(value) for name, value in zip(class_names, values, strict=False)}


def per_class_bf(diagnostics: Diagnostics) -> np.ndarray:
    """(K,) BF score per class averaged over the images holding the class; NaN for a class never seen."""
    bf = diagnostics.bf
    seen = ~np.isnan(bf)
    return divide(np.nansum(bf, axis=0), seen.sum(axis=0))


def image_bf_score(evaluation: DatasetEvaluation, result: object) -> float | None:
    """One image's BF score averaged over its classes (``result`` one of ``evaluation.results``); None if unknown."""
    if evaluation.diagnostics is None:
        return None
    position = next((i for i, other in enumerate(evaluation.results) if other is result), None)
    if position is None:
        return None
    scores = evaluation.diagnostics.bf[position]
    return float(np.nanmean(scores)) if (~np.isnan(scores)).any() else None


def boundary_summary(diagnostics: Diagnostics, class_names: Sequence[str]) -> dict:
    """Boundary IoU and BF score per class and their means over the classes that have them."""
    biou, bf = boundary_iou(diagnostics.boundary), per_class_bf(diagnostics)
    widths = diagnostics.widths
    return {
        "band_px": int(np.median(widths[:, 0])) if len(widths) else None,
        "tolerance_px": int(np.median(widths[:, 1])) if len(widths) else None,
        "mean_boundary_iou": json_number(np.nanmean(biou)) if (~np.isnan(biou)).any() else None,
        "mean_bf_score": json_number(np.nanmean(bf)) if (~np.isnan(bf)).any() else None,
        "boundary_iou": _per_class(biou, class_names),
        "bf_score": _per_class(bf, class_names),
    }


def calibration_summary(diagnostics: Diagnostics, class_names: Sequence[str]) -> dict:
    """ECE overall and per predicted class, with the reliability diagram's bins (None for label-only sources)."""
    if not diagnostics.has_probabilities:
        return {"available": False, "ece": None, "ece_per_class": {}, "reliability": None, "bins": 15}
    counts = diagnostics.calibration
    return {
        "available": True,
        "bins": 15,
        "ece": json_number(expected_calibration_error(counts)),
        "ece_per_class": _per_class(class_calibration_error(counts), class_names),
        "reliability": reliability_bins(counts),
    }


def _slice_row(row: dict, sample_ids: Sequence[str]) -> dict:
    """A slice table row with its images' ids instead of positions."""
    ids = [str(sample_ids[position]) for position in row["positions"]]
    return {**{k: v for k, v in row.items() if k != "positions"}, "ids": ids}


def diagnostics_summary(
    diagnostics: Diagnostics,
    class_names: Sequence[str],
    sample_ids: Sequence[str],
    confusions: np.ndarray,
    *,
    options: DiagnosticOptions = DiagnosticOptions(),
    tags: Mapping[str, Sequence[str]] | None = None,
    background_index: int | None = None,
) -> dict:
    """Every diagnostic of an evaluation as plain JSON values (per-image ``confusions`` (N, K, K[+1]) for slices)."""
    wrong = confidently_wrong(diagnostics.wrong, options.confident)
    scored = int(diagnostics.calibration[..., 0].sum())
    worst = np.argsort(-wrong, kind="stable")[:_WORST_IMAGES]
    slices = builtin_slices(sample_ids, confusions, diagnostics.brightness, class_names)
    unknown: list[str] = []
    if tags:
        tagged, unknown = tag_slices(tags, sample_ids)
        slices += tagged
    table = slice_table(confusions, slices, class_names, background_index) if len(confusions) else []
    return {
        "objects": object_summary(
            diagnostics.objects, diagnostics.blobs, class_names, cover=options.cover, sizes=options.sizes
        ),
        "boundary": boundary_summary(diagnostics, class_names),
        "calibration": calibration_summary(diagnostics, class_names),
        "confidently_wrong": {
            "threshold": options.confident,
            "available": diagnostics.has_probabilities,
            "pixels": int(wrong.sum()),
            "share": json_number(wrong.sum() / scored) if scored else None,
            "worst_images": [{"id": str(sample_ids[i]), "pixels": int(wrong[i])} for i in worst if wrong[i] > 0],
        },
        "slices": [_slice_row(row, sample_ids) for row in table],
        "unknown_tag_ids": unknown[:20],
    }


def summarise_evaluation(
    evaluation: DatasetEvaluation,
    *,
    options: DiagnosticOptions = DiagnosticOptions(),
    tags: Mapping[str, Sequence[str]] | None = None,
    background_index: int | None = None,
) -> dict | None:
    """:func:`diagnostics_summary` of an evaluation; ``None`` when it carries no diagnostics."""
    if evaluation.diagnostics is None:
        return None
    confusions = [result.confusion for result in evaluation.results]
    return diagnostics_summary(
        evaluation.diagnostics,
        evaluation.class_names,
        [result.sample_id for result in evaluation.results],
        np.stack(confusions) if confusions else np.zeros((0, len(evaluation.class_names), len(evaluation.class_names))),
        options=options,
        tags=tags,
        background_index=background_index,
    )


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_diagnostics(summary: dict) -> str:
    """A few lines for the text report of ``seglab eval``: objects, boundaries, calibration, worst slice."""
    objects, boundary = summary["objects"], summary["boundary"]
    by_size = objects["recall_by_size"]
    lines = [
        f"objects: {objects['detected']:,} of {objects['objects']:,} found (recall {_share(objects['recall'])}; "
        f"small {_share(by_size['small'])}, medium {_share(by_size['medium'])}, large {_share(by_size['large'])}), "
        f"{objects['false_blobs']:,} false blobs, lesion-wise Dice {_share(objects['lesion_dice'])}",
        f"boundaries: Boundary IoU {_share(boundary['mean_boundary_iou'])} (band {boundary['band_px']} px)   "
        f"BF score {_share(boundary['mean_bf_score'])} (tolerance {boundary['tolerance_px']} px)",
    ]
    calibration, wrong = summary["calibration"], summary["confidently_wrong"]
    if calibration["available"]:
        lines.append(
            f"calibration: ECE {_share(calibration['ece'])} (15 bins, top label)   confidently wrong "
            f"(>= {wrong['threshold']:g}): {wrong['pixels']:,} px ({_share(wrong['share'])} of scored pixels)"
        )
    else:
        lines.append("calibration: unavailable (the source gives labels only)")
    if summary["slices"]:
        worst = summary["slices"][0]
        lines.append(
            f"worst slice: {worst['slice']} ({worst['images']} images) mIoU {_share(worst['miou'])}, "
            f"gap {worst['gap']:+.3f}"
            if worst["gap"] is not None
            else f"worst slice: {worst['slice']}"
        )
    return "\n".join(lines)


HEADLINES = {
    "objects found (recall)": ("objects", "recall"),
    "small objects found": ("objects", "recall_by_size", "small"),
    "medium objects found": ("objects", "recall_by_size", "medium"),
    "large objects found": ("objects", "recall_by_size", "large"),
    "false blobs": ("objects", "false_blobs"),
    "lesion-wise Dice": ("objects", "lesion_dice"),
    "Boundary IoU": ("boundary", "mean_boundary_iou"),
    "BF score": ("boundary", "mean_bf_score"),
    "ECE": ("calibration", "ece"),
    "confidently wrong share": ("confidently_wrong", "share"),
}
LOWER_IS_BETTER = frozenset({"false blobs", "ECE", "confidently wrong share"})


def headline(summary: Mapping) -> dict[str, float | None]:
    """The few numbers of a :func:`diagnostics_summary` worth comparing between models."""
    values: dict[str, float | None] = {}
    for name, path in HEADLINES.items():
        value: Any = summary
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        values[name] = None if value is None else float(value)
    return values


def diagnostics_deltas(summaries: Mapping[str, Mapping]) -> list[dict]:
    """One row per headline: each model's value and its difference to the first (the reference)."""
    names = list(summaries)
    values = {name: headline(summary) for name, summary in summaries.items()}
    rows = []
    for metric in HEADLINES:
        row: dict = {"diagnostic": metric, "better": "lower" if metric in LOWER_IS_BETTER else "higher"}
        reference = values[names[0]][metric]
        for name in names:
            row[name] = values[name][metric]
        for name in names[1:]:
            value = values[name][metric]
            row[f"Δ {name}"] = None if value is None or reference is None else value - reference
        rows.append(row)
    return rows


# -- the summary as table rows (the Diagnostics page) -------------------------------------------------
def object_rows(summary: Mapping, class_iou: Sequence[float]) -> list[dict[str, Any]]:
    """One row per class: its split IoU beside its object scores (``summary["objects"]["per_class"]``), the
    column names spelt with spaces ("lesion dice")."""
    return [
        {"class": name, "IoU": class_iou[class_id], **{key.replace("_", " "): value for key, value in row.items()}}
        for class_id, (name, row) in enumerate(summary["objects"]["per_class"].items())
    ]


def boundary_scores(summary: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """(K,) boundary IoU and (K,) BF score per class from ``summary["boundary"]``, NaN where a class has none."""
    boundary = summary["boundary"]
    biou, bf = (
        np.array([np.nan if value is None else value for value in boundary[key].values()], dtype=np.float64)
        for key in ("boundary_iou", "bf_score")
    )
    return biou, bf


def calibration_rows(summary: Mapping) -> list[dict[str, Any]]:
    """One row per predicted class with its expected calibration error (empty for label-only sources)."""
    return [{"predicted class": name, "ECE": ece} for name, ece in summary["calibration"]["ece_per_class"].items()]


def slice_records(slices: Sequence[Mapping]) -> list[dict[str, Any]]:
    """The rows of ``summary["slices"]`` for a table: slice, images, mIoU, gap, then ``IoU <class>`` per class."""
    return [
        {
            "slice": row["slice"],
            "images": row["images"],
            "mIoU": row["miou"],
            "gap": row["gap"],
            **{f"IoU {name}": value for name, value in row["iou"].items()},
        }
        for row in slices
    ]
