"""How well a label-quality ranking finds the label errors Shapes injected (``ShapesConfig.label_noise``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from seglab.analysis.label_quality.dataset import LabelQualityReport
from seglab.data.shapes_config import CORRUPTIONS
from seglab.errors import ConfigError

if TYPE_CHECKING:
    pass


# -- validation on Shapes with label noise ----------------------------------------------------------------
@dataclass
class ShapesValidation:
    """How well a ranking finds the label errors Shapes injected (``ShapesConfig.label_noise``)."""

    ranked_objects: int  # objects in the ranking
    corrupted_objects: int  # known corrupted objects in the scored images (sample_objects)
    flags: list[bool]  # per ranked object, worst first: does it match a corrupted object?
    corrupted_ranks: list[tuple[int | None, str]] = field(
        default_factory=list
    )  # (1-based rank or None if unranked, corruption)

    @property
    def base_rate(self) -> float:
        """Share of ranked objects that are corrupted: the precision of a random ranking."""
        return sum(self.flags) / max(len(self.flags), 1)

    def precision_at(self, k: int) -> float:
        """Share of the ``k`` worst-ranked objects that are corrupted."""
        k = min(k, len(self.flags))
        return sum(self.flags[:k]) / k if k else float("nan")

    def recall_at(self, k: int) -> float:
        """Share of the known corrupted objects found among the ``k`` worst-ranked objects."""
        found = sum(1 for rank, _ in self.corrupted_ranks if rank is not None and rank <= k)
        return found / self.corrupted_objects if self.corrupted_objects else float("nan")

    def mean_rank_percentile(self, corruption: str | None = None) -> float:
        """Mean of rank / ranked objects over the corrupted objects (of one ``corruption`` kind); 0 = top.
        Unranked corrupted objects count as 1 (never found)."""
        values = [
            (rank / len(self.flags)) if rank is not None else 1.0
            for rank, kind in self.corrupted_ranks
            if corruption is None or kind == corruption
        ]
        return float(np.mean(values)) if values else float("nan")

    def rows(self, ks: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Table rows: precision and recall at k (default: half, once and twice the number corrupted)."""
        if ks is None:
            ks = sorted(
                {
                    max(1, self.corrupted_objects // 2),
                    max(1, self.corrupted_objects),
                    2 * max(1, self.corrupted_objects),
                }
            )
        return [
            {
                "top k": k,
                "precision@k": self.precision_at(k),
                "recall@k": self.recall_at(k),
                "random ranking precision": self.base_rate,
            }
            for k in ks
        ]

    def corruption_rows(self) -> list[dict[str, Any]]:
        """Table rows per corruption kind: how many objects Shapes corrupted that way and their mean rank."""
        return [
            {
                "corruption": kind,
                "objects": sum(1 for _, other in self.corrupted_ranks if other == kind),
                "mean rank (share of the ranking)": self.mean_rank_percentile(kind),
            }
            for kind in CORRUPTIONS
        ]

    def precision_curve(self) -> list[float]:
        """Precision@k for k = 1 .. the number of ranked objects."""
        return [self.precision_at(k) for k in range(1, self.ranked_objects + 1)]


def _overlap(box: Sequence[int], other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intersection over the smaller box, and IoU, of one box against (N, 4) boxes."""
    width = np.clip(np.minimum(box[2], other[:, 2]) - np.maximum(box[0], other[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], other[:, 3]) - np.maximum(box[1], other[:, 1]), 0, None)
    intersection = width * height
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (other[:, 2] - other[:, 0]) * (other[:, 3] - other[:, 1])
    smaller = np.maximum(np.minimum(area, areas), 1)
    return intersection / smaller, intersection / np.maximum(area + areas - intersection, 1)


def validate_on_shapes(report: LabelQualityReport, dataset: Any) -> ShapesValidation:
    """Match the report's objects to the objects Shapes drew and check the ranking against the
    known corruptions (``dataset.sample_objects(i)[...]["corrupted"]``).

    A drawn object matches the scored object of the image with its written class (``label_id``)
    whose box overlaps its visible box most (intersection over the smaller box >= 0.5; eroded and
    dilated outlines shrink or grow the box). Corrupted objects with no ranked match count as missed.
    """
    if not hasattr(dataset, "sample_objects"):
        raise ConfigError(
            f"validation needs the known corruptions of a Shapes split with label noise, not a {type(dataset).__name__}"
        )
    position = {(item.image_index, item.object_id): rank for rank, item in enumerate(report.ranked_objects())}
    flags = [False] * len(position)
    corrupted_ranks = []
    for image in report.images:
        scored = [item for item in image.objects if item.ranked]
        boxes = np.asarray([item.bbox for item in scored], dtype=np.int64).reshape(-1, 4)
        for drawn in dataset.sample_objects(image.index):
            if drawn["bbox"] is None:
                continue
            rank = None
            candidates = np.asarray([item.class_id == drawn["label_id"] for item in scored], dtype=bool)
            if candidates.any():
                contained, iou = _overlap(drawn["bbox"], boxes)
                iou = np.where(candidates & (contained >= 0.5), iou, -1.0)
                if iou.max() >= 0:
                    match = scored[int(iou.argmax())]
                    rank = position[(match.image_index, match.object_id)]
                    flags[rank] = flags[rank] or drawn["corrupted"]
            if drawn["corrupted"]:
                corrupted_ranks.append((rank + 1 if rank is not None else None, drawn["corruption"]))
    return ShapesValidation(len(flags), len(corrupted_ranks), flags, corrupted_ranks)
