"""Public and private scores from per-image confusion matrices and the fixed image assignment.

A scoring stores one (K, K) confusion matrix per hidden image. The public score sums the public
images' matrices, the private score the others', each then scored like any split (MMSegmentation's
IoUMetric: see :mod:`seglab.metrics.confusion`). Keeping the per-image matrices means a changed metric or a
rescore never needs the model again, and no per-image number ever has to leave the server.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seglab.competition.errors import ScoringError
from seglab.metrics.confusion import SegmentationMetrics


@dataclass(frozen=True)
class SplitScores:
    """The metric on the public and on the private images, and per-class IoU on each (NaN = class absent)."""

    public: float
    private: float
    public_class_iou: dict[str, float]
    private_class_iou: dict[str, float]


def subset_score(
    confusions: np.ndarray, chosen: np.ndarray, metric: str, background_index: int | None
) -> tuple[float, np.ndarray]:
    """``(metric value, per-class IoU)`` of the images where ``chosen`` is True (one summed matrix)."""
    metrics = SegmentationMetrics.from_confusion(confusions[chosen].sum(axis=0), background_index)
    return float(getattr(metrics, metric)), np.asarray(metrics.iou, dtype=np.float64)


def split_scores(
    confusions: np.ndarray, is_public: np.ndarray, metric: str, background_index: int | None, class_names: Sequence[str]
) -> SplitScores:
    """Score ``confusions`` (N, K, K) on the public images and on the private ones."""
    if confusions.ndim != 3 or confusions.shape[0] != len(is_public) or confusions.shape[1:] != (len(class_names),) * 2:
        raise ScoringError(
            f"scoring produced confusion matrices of shape {confusions.shape}, expected "
            f"({len(is_public)}, {len(class_names)}, {len(class_names)})"
        )
    public, public_iou = subset_score(confusions, is_public, metric, background_index)
    private, private_iou = subset_score(confusions, ~is_public, metric, background_index)
    return SplitScores(
        public=public,
        private=private,
        public_class_iou=dict(zip(class_names, public_iou.tolist(), strict=True)),
        private_class_iou=dict(zip(class_names, private_iou.tolist(), strict=True)),
    )


def encode_confusions(confusions: np.ndarray) -> bytes:
    """(N, K, K) int64 -> compressed bytes for the scores table."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(confusions, dtype=np.int64), allow_pickle=False)
    return zlib.compress(buffer.getvalue(), 6)


def decode_confusions(blob: bytes) -> np.ndarray:
    """Inverse of :func:`encode_confusions`."""
    return np.load(io.BytesIO(zlib.decompress(blob)), allow_pickle=False)
