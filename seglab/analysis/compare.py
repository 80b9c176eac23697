"""Compare checkpoints evaluated on the same split: metric tables with deltas, per-image deltas,
pixel-level "what B fixed and what it broke", and the training curves of each checkpoint's run.

Everything works on :class:`~seglab.engine.predict.DatasetEvaluation` results (per-image predictions and
split metrics, see :func:`seglab.engine.evaluation.evaluate_checkpoint`), so no model runs here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, cast

import numpy as np

from seglab.engine.curves import Series, TrainingCurves
from seglab.engine.predict import DatasetEvaluation
from seglab.engine.run_dir import RunDirectory
from seglab.errors import ConfigError
from seglab.io.names import display_name
from seglab.metrics.confusion import SegmentationMetrics
from seglab.metrics.scores import divide
from seglab.ranking import worst_first
from seglab.viz import (
    BROKEN_BY_B,
    DISAGREEMENT_CATEGORIES,
    DISAGREEMENT_IGNORED,
    FIXED_BY_B,
    Category,
    disagreement_map,
)

__all__ = [
    "DIFF_CATEGORIES",
    "TABLE_METRICS",
    "ImageDeltas",
    "MetricTable",
    "PixelDiff",
    "RunCurves",
    "checkpoint_curves",
    "class_deltas",
    "default_models",
    "metric_table",
    "per_image_deltas",
    "pixel_diff",
    "run_curves",
    "short_names",
]

TABLE_METRICS = ("iou", "precision", "recall", "f1")
# The scored categories of viz.disagreement_map; their ids 0..4 are the columns of PixelDiff counts.
# Void pixels (DISAGREEMENT_IGNORED, the last id) are never counted.
DIFF_CATEGORIES: list[Category] = [c for c in DISAGREEMENT_CATEGORIES if c.id != DISAGREEMENT_IGNORED]


def _metrics_of(evaluation: DatasetEvaluation | SegmentationMetrics) -> SegmentationMetrics:
    # Duck-typed, not isinstance: the app keeps evaluations cached across module reloads.
    return cast(SegmentationMetrics, getattr(evaluation, "metrics", evaluation))


# -- metric table ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricTable:
    """One row per class (then summary rows), one column per checkpoint; column 0 is the reference.

    ``values``/``deltas`` are (R, C) floats, NaN where undefined (e.g. a class absent from both
    ground truth and prediction); ``deltas = values - values[:, :1]``. ``is_best`` marks, per row,
    the column(s) with the highest value (every metric here is higher-is-better).
    """

    metric: str
    row_names: list[str]
    column_names: list[str]
    values: np.ndarray
    deltas: np.ndarray
    is_best: np.ndarray  # (R, C) bool
    summary_rows: int  # the last ``summary_rows`` rows are split-level scores, not classes

    def best_names(self) -> list[str]:
        """Per row, the best column's name ('' when the row is all NaN; ties joined by ' = ')."""
        return [" = ".join(np.asarray(self.column_names)[row].tolist()) for row in self.is_best]

    def records(self, with_deltas: bool = True) -> list[dict[str, float | str]]:
        """Rows as dicts: ``{"row", <name>: value, "Δ <name>": delta (not for the reference), "best"}``."""
        best = self.best_names()
        rows = []
        for r, row_name in enumerate(self.row_names):
            record: dict[str, float | str] = {"row": row_name}
            for c, name in enumerate(self.column_names):
                record[name] = float(self.values[r, c])
            if with_deltas:
                for c, name in enumerate(self.column_names[1:], start=1):
                    record[f"Δ {name}"] = float(self.deltas[r, c])
            record["best"] = best[r]
            rows.append(record)
        return rows


def metric_table(
    evaluations: Sequence[DatasetEvaluation | SegmentationMetrics],
    names: Sequence[str],
    class_names: Sequence[str],
    metric: str = "iou",
) -> MetricTable:
    """Per-class ``metric`` of each checkpoint plus summary rows, deltas vs the first checkpoint and
    the best per row.

    Summary rows: mIoU, mIoU without background (only when there is a background class), pixel
    accuracy, mean accuracy (all from the split's confusion matrix), and for
    :class:`~seglab.engine.predict.DatasetEvaluation` inputs the image-wise mIoU (mean of per-image mIoU).
    """
    if metric not in TABLE_METRICS:
        raise ConfigError(f"metric must be one of {', '.join(TABLE_METRICS)}, got {metric!r}")
    if len(evaluations) != len(names) or not evaluations:
        raise ConfigError(
            f"need one name per evaluation (and at least one), got {len(names)} names for {len(evaluations)}"
        )
    if len(set(names)) != len(names):
        raise ConfigError(f"checkpoint names must be distinct, got {list(names)}")
    metrics = [_metrics_of(evaluation) for evaluation in evaluations]
    for name, scores in zip(names, metrics):
        if scores.num_classes != len(class_names):
            raise ConfigError(f"{name} has {scores.num_classes} classes but {len(class_names)} class names were given")
    summaries = [("mIoU", "miou")]
    if metrics[0].background_index is not None:
        summaries.append(("mIoU (no background)", "miou_no_background"))
    summaries += [("pixel accuracy", "pixel_acc"), ("mean accuracy", "mean_acc")]
    per_class = np.stack([np.asarray(getattr(scores, metric), dtype=np.float64) for scores in metrics], axis=1)
    summary = [[getattr(scores, field) for scores in metrics] for _, field in summaries]
    if all(hasattr(evaluation, "results") for evaluation in evaluations):
        # The image-wise alternative: every image weighs the same, however many pixels it has.
        summaries.append(("image-wise mIoU", ""))
        summary.append([_mean_image_miou(cast(DatasetEvaluation, evaluation)) for evaluation in evaluations])
    values = np.concatenate(
        [per_class, np.array(summary, dtype=np.float64).reshape(len(summaries), len(metrics))], axis=0
    )
    row_best = np.where(np.isnan(values), -np.inf, values).max(axis=1, keepdims=True)
    return MetricTable(
        metric=metric,
        row_names=[str(name) for name in class_names] + [label for label, _ in summaries],
        column_names=[str(name) for name in names],
        values=values,
        deltas=values - values[:, :1],
        is_best=(values == row_best) & np.isfinite(values),
        summary_rows=len(summaries),
    )


def _mean_image_miou(evaluation: DatasetEvaluation) -> float:
    scores = np.array([result.miou for result in evaluation.results], dtype=np.float64)
    return float(scores[~np.isnan(scores)].mean()) if (~np.isnan(scores)).any() else float("nan")


def class_deltas(
    evaluation_a: DatasetEvaluation | SegmentationMetrics,
    evaluation_b: DatasetEvaluation | SegmentationMetrics,
    metric: str = "iou",
) -> np.ndarray:
    """(K,) per-class ``metric`` of B minus A (NaN where either is undefined)."""
    if metric not in TABLE_METRICS:
        raise ConfigError(f"metric must be one of {', '.join(TABLE_METRICS)}, got {metric!r}")
    return np.asarray(getattr(_metrics_of(evaluation_b), metric)) - np.asarray(
        getattr(_metrics_of(evaluation_a), metric)
    )


# -- per image -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageDeltas:
    """Per-image mIoU of A and B and ``delta = B - A``, in ranking order (arrays of length N)."""

    indices: np.ndarray  # (N,) dataset indices
    positions: np.ndarray  # (N,) positions in ``evaluation.results``
    sample_ids: list[str]
    miou_a: np.ndarray
    miou_b: np.ndarray
    delta: np.ndarray  # NaN when either image mIoU is undefined (an all-void image)

    def __len__(self) -> int:
        return len(self.indices)

    def ranked(self, favour: str = "b") -> ImageDeltas:
        """Reordered: ``"b"`` = where B beats A most first, ``"a"`` = where A beats B most first;
        images without a delta last, ties by dataset index."""
        if favour not in ("a", "b"):
            raise ConfigError(f"favour must be 'a' or 'b', got {favour!r}")
        gain = self.delta if favour == "b" else -self.delta
        order = worst_first(-gain, self.indices)  # largest gain first
        return ImageDeltas(
            indices=self.indices[order],
            positions=self.positions[order],
            sample_ids=[self.sample_ids[i] for i in order],
            miou_a=self.miou_a[order],
            miou_b=self.miou_b[order],
            delta=self.delta[order],
        )

    def records(self, limit: int | None = None, diff: PixelDiff | None = None) -> list[dict[str, float | int | str]]:
        """Rows ``{"image", "index", "mIoU A", "mIoU B", "Δ mIoU (B − A)"}`` in the current order; with
        the split's :class:`PixelDiff` also the pixels B fixed and broke in each image."""
        count = len(self) if limit is None else min(limit, len(self))
        rows = []
        for i in range(count):
            row: dict[str, float | int | str] = {
                "image": self.sample_ids[i],
                "index": int(self.indices[i]),
                "mIoU A": float(self.miou_a[i]),
                "mIoU B": float(self.miou_b[i]),
                "Δ mIoU (B − A)": float(self.delta[i]),
            }
            if diff is not None:
                counts = diff.image_counts[self.positions[i]]
                row["fixed by B px"] = int(counts[FIXED_BY_B])
                row["broken by B px"] = int(counts[BROKEN_BY_B])
            rows.append(row)
        return rows


def _check_same_images(evaluation_a: DatasetEvaluation, evaluation_b: DatasetEvaluation) -> None:
    ids_a = [result.sample_id for result in evaluation_a.results]
    ids_b = [result.sample_id for result in evaluation_b.results]
    if ids_a != ids_b:
        raise ConfigError(
            f"A and B were evaluated on different images ({len(ids_a)} vs {len(ids_b)}); "
            "evaluate both on the same split"
        )
    if evaluation_a.class_names != evaluation_b.class_names:
        raise ConfigError(
            f"A and B predict different classes ({evaluation_a.class_names} vs {evaluation_b.class_names})"
        )


def per_image_deltas(evaluation_a: DatasetEvaluation, evaluation_b: DatasetEvaluation) -> ImageDeltas:
    """Per-image mIoU change from A to B, ranked where B beats A most first (see :meth:`ImageDeltas.ranked`)."""
    _check_same_images(evaluation_a, evaluation_b)
    miou_a = np.array([result.miou for result in evaluation_a.results], dtype=np.float64)
    miou_b = np.array([result.miou for result in evaluation_b.results], dtype=np.float64)
    deltas = ImageDeltas(
        indices=np.array([result.index for result in evaluation_a.results], dtype=np.int64),
        positions=np.arange(len(evaluation_a.results)),
        sample_ids=[result.sample_id for result in evaluation_a.results],
        miou_a=miou_a,
        miou_b=miou_b,
        delta=miou_b - miou_a,
    )
    return deltas.ranked("b")


# -- pixel diff ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PixelDiff:
    """Scored pixels of a split by ground-truth class and :data:`DIFF_CATEGORIES` (A vs B).

    ``counts[k, c]`` is the number of pixels of true class k in category c (ids as in
    ``viz.disagreement_map``: both right, fixed by B, broken by B, both wrong (same), both wrong
    (different)); ``image_counts[n, c]`` the same per image (in evaluation order).
    """

    class_names: list[str]
    counts: np.ndarray  # (K, 5) int64
    image_counts: np.ndarray  # (N, 5) int64
    sample_ids: list[str]

    @property
    def categories(self) -> list[Category]:
        return DIFF_CATEGORIES

    @property
    def totals(self) -> np.ndarray:
        """(5,) pixels per category over the split."""
        return self.counts.sum(axis=0)

    @property
    def shares(self) -> np.ndarray:
        """(5,) share of scored pixels per category (NaN when nothing was scored)."""
        total = self.totals.sum()
        return self.totals / total if total else np.full(len(DIFF_CATEGORIES), np.nan)

    @property
    def class_shares(self) -> np.ndarray:
        """(K, 5) share of each true class's pixels per category (NaN rows for absent classes)."""
        support = self.counts.sum(axis=1, keepdims=True)
        return divide(self.counts, support)

    @property
    def net_fixed(self) -> np.ndarray:
        """(K,) pixels fixed by B minus pixels broken by B, per true class."""
        return self.counts[:, FIXED_BY_B] - self.counts[:, BROKEN_BY_B]

    def class_records(self) -> list[dict[str, float | int | str]]:
        """One row per true class: pixels, share per category and net pixels fixed."""
        shares, support, net = self.class_shares, self.counts.sum(axis=1), self.net_fixed
        rows = []
        for k, name in enumerate(self.class_names):
            row: dict[str, float | int | str] = {"class": name, "pixels": int(support[k])}
            for c, category in enumerate(DIFF_CATEGORIES):
                row[category.name] = float(shares[k, c])
            row["net fixed px"] = int(net[k])
            rows.append(row)
        return rows


def class_change_records(
    diff: PixelDiff, evaluation_a: DatasetEvaluation, evaluation_b: DatasetEvaluation
) -> list[dict[str, float | int | str]]:
    """One row per true class: its IoU change from A to B (``"Δ IoU (B − A)"``, NaN where undefined), then
    :meth:`PixelDiff.class_records`' pixels, category shares and net pixels fixed."""
    deltas = class_deltas(evaluation_a, evaluation_b)
    return [
        {"class": row["class"], "Δ IoU (B − A)": float(delta), **{k: v for k, v in row.items() if k != "class"}}
        for row, delta in zip(diff.class_records(), deltas, strict=True)
    ]


def pixel_diff(
    evaluation_a: DatasetEvaluation,
    evaluation_b: DatasetEvaluation,
    targets: Iterable[np.ndarray],
    ignore_index: int,
) -> PixelDiff:
    """Count every scored pixel of the split as right/wrong for A and B, per ground-truth class.

    Args:
        evaluation_a, evaluation_b: evaluations of A (reference) and B on the same images.
        targets: the (H, W) ground-truth masks in the order of ``evaluation_a.results``.
        ignore_index: the void value of the masks (not counted).

    Returns:
        A :class:`PixelDiff`; one ``np.bincount`` per image over ``class * 5 + category``.
    """
    _check_same_images(evaluation_a, evaluation_b)
    num_classes, num_categories = len(evaluation_a.class_names), len(DIFF_CATEGORIES)
    per_image = []
    targets = iter(targets)
    for result_a, result_b in zip(evaluation_a.results, evaluation_b.results):
        target = next(targets, None)
        if target is None:
            raise ConfigError(f"pixel_diff got fewer masks than the {len(evaluation_a.results)} evaluated images")
        categories = disagreement_map(result_a.labels, result_b.labels, target, ignore_index)
        scored = (target != ignore_index) & (target < num_classes)
        codes = target[scored].astype(np.int64) * num_categories + categories[scored]
        per_image.append(
            np.bincount(codes, minlength=num_classes * num_categories).reshape(num_classes, num_categories)
        )
    stacked = np.stack(per_image) if per_image else np.zeros((0, num_classes, num_categories), dtype=np.int64)
    return PixelDiff(
        class_names=list(evaluation_a.class_names),
        counts=stacked.sum(axis=0).astype(np.int64),
        image_counts=stacked.sum(axis=1).astype(np.int64),
        sample_ids=[result.sample_id for result in evaluation_a.results],
    )


# -- training curves -----------------------------------------------------------------------------
def checkpoint_curves(checkpoint_path: str | os.PathLike) -> TrainingCurves:
    """The training curves (:mod:`seglab.engine.curves`) of the run folder a checkpoint lies in; empty
    curves when the folder has no events.jsonl (a checkpoint copied on its own)."""
    return TrainingCurves.from_events(RunDirectory(Path(checkpoint_path).parent).read_events())


class RunCurves(NamedTuple):
    """What several runs logged, by name: validation mIoU and total training loss vs step, and the runs that
    logged no validation."""

    validation: dict[str, Series]
    losses: dict[str, Series]
    missing: list[str]


def run_curves(curves: Mapping[str, TrainingCurves]) -> RunCurves:
    """The curves a comparison draws from each named run's :class:`TrainingCurves`."""
    validation = {name: c.metric_series()["mIoU"] for name, c in curves.items() if "mIoU" in c.metric_series()}
    losses = {name: c.loss_series()["total"] for name, c in curves.items() if "total" in c.loss_series()}
    return RunCurves(validation, losses, [name for name in curves if name not in validation])


def default_models(options: Mapping[str, str], current: str | None, count: int = 2) -> list[str]:
    """The labels a comparison starts with (``options``: label -> model choice): the ``current`` choice first,
    then the first others, ``count`` in all."""
    chosen = [label for label, choice in options.items() if choice == current][:1]
    return chosen + [label for label in options if label not in chosen][: count - len(chosen)]


def short_names(labels: Sequence[str]) -> dict[str, str]:
    """Column name -> label for chosen model labels ("name · details"): the display-safe name, or the whole
    label where two labels share a name."""
    short = [display_name(label.split(" · ")[0]) for label in labels]
    return {(name if short.count(name) == 1 else label): label for name, label in zip(short, labels, strict=True)}
