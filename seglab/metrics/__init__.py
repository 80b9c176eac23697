"""Metrics: one confusion matrix summed over the split (:mod:`~seglab.metrics.confusion`, counted by
:mod:`~seglab.metrics.counting`) -> per-class and mean scores (:mod:`~seglab.metrics.scores`), and the same
counts under other mIoU definitions (:mod:`~seglab.metrics.definitions`)."""

from seglab.metrics.confusion import ConfusionMatrix, SegmentationMetrics, per_image_metrics
