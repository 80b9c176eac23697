"""Plain-text tables for the command line, and ``seglab eval``'s answer (a table or one JSON object)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from seglab.analysis.stats import DatasetStats, trivial_baseline

if TYPE_CHECKING:
    from seglab.data.base import SegmentationDataset
    from seglab.engine.predict import DatasetEvaluation


def format_table(rows: Sequence[Sequence[object]], header: Sequence[str], align: str | None = None) -> str:
    """Monospace table; ``align`` is one of 'l'/'r' per column (default: first left, rest right)."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(header[i])] + [len(row[i]) for row in cells]) for i in range(len(header))]
    align = align or "l" + "r" * (len(header) - 1)

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) if a == "l" else v.rjust(w) for v, w, a in zip(values, widths, align)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in cells)])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def format_stats_report(stats: DatasetStats, title: str) -> str:
    """The ``seglab stats`` output: one row per class plus the imbalance summary and baseline."""
    rows = [
        (
            row["class"],
            f"{100 * row['pixel_fraction']:.3f}%",
            row["images"],
            f"{row['inverse_weight']:.3f}",
            f"{row['median_freq_weight']:.3f}",
            row["objects"],
            f"{row['median_object_px']:.0f}",
        )
        for row in stats.table()
    ]
    header = ("class", "pixels", "images", "inv-freq w", "median-freq w", "objects", "median obj px")
    baseline = trivial_baseline(stats)
    metrics = baseline.metrics
    lines = [
        f"{title}",
        format_table(rows, header),
        "",
        f"images: {stats.num_images}   labelled pixels: {stats.labelled_pixels:,}"
        f"   void: {100 * stats.void_fraction:.2f}%"
        f"   imbalance ratio (most/least frequent class): {stats.imbalance_ratio:,.1f}",
        f"trivial baseline (predict '{baseline.predicted_name}' everywhere): pixel accuracy {metrics.pixel_acc:.3f}, "
        f"mIoU {metrics.miou:.3f}, "
        + (f"mIoU without background {metrics.miou_no_background:.3f}, " if stats.background_index is not None else "")
        + f"fwIoU {metrics.fwiou:.3f}",
    ]
    if stats.unknown_colour_report():
        lines.append(f"warning: {stats.unknown_colour_report()}")
    return "\n".join(lines)


def format_metrics_report(summary: dict, title: str) -> str:
    """Per-class IoU / precision / recall / F1 and the means, from ``SegmentationMetrics.to_dict``."""
    per_class = summary.get("per_class") or {}
    rows = [
        (
            name,
            _score(values.get("iou")),
            _score(values.get("precision")),
            _score(values.get("recall")),
            _score(values.get("f1")),
            f"{int(values.get('support') or 0):,}",
        )
        for name, values in per_class.items()
    ]
    lines = [title]
    if rows:
        lines.append(format_table(rows, ("class", "IoU", "precision", "recall", "F1", "GT pixels")))
        lines.append("")
    lines.append(
        f"mIoU {_score(summary.get('miou'))} (over {summary.get('classes_averaged', '?')} classes present)   "
        + (
            f"mIoU without background {_score(summary.get('miou_no_background'))}   "
            if summary.get("background_index") is not None
            else ""
        )
        + f"pixel acc {_score(summary.get('pixel_acc'))}   mean acc {_score(summary.get('mean_acc'))}   "
        f"fwIoU {_score(summary.get('fwiou'))}"
    )
    lines.append(
        "definition: one confusion matrix over the whole split, void pixels dropped, means over classes present "
        "(MMSegmentation IoUMetric); '-' = undefined (0/0: IoU when a class is absent from ground truth and "
        "prediction, precision when never predicted)"
    )
    return "\n".join(lines)


def _score(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):.4f}"


def print_evaluation(
    summary: dict,
    result: DatasetEvaluation,
    dataset: SegmentationDataset,
    args: argparse.Namespace,
    *,
    title: str,
    notes: Sequence[str] = (),
) -> None:
    """Print ``seglab eval``'s answer for any model or predictions: the data's warnings on stderr, then one JSON
    object (``--json``) or ``notes`` on stderr, the metrics table and the diagnostics."""
    from seglab.cli.diagnostics import add_diagnostics

    # What stats and the app say about the data (images without masks skipped, unknown colours read as void).
    summary["warnings"] = dataset.notes()
    for note in summary["warnings"]:
        print(f"seglab eval: warning: {note}", file=sys.stderr)
    diagnostics = add_diagnostics(summary, result, dataset, args)
    if args.json:
        print(json.dumps(summary, allow_nan=False, default=str))
        return
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(format_metrics_report(summary, title=title))
    if diagnostics:
        print(diagnostics)
