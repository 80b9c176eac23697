"""Metrics: one confusion matrix summed over the split (:mod:`~seglab.metrics.confusion`, counted by
:mod:`~seglab.metrics.counting`) -> per-class and mean scores (:mod:`~seglab.metrics.scores`), and the same
counts under other mIoU definitions (:mod:`~seglab.metrics.definitions`) and why they differ per class
(:mod:`~seglab.metrics.class_breakdown`)."""

from seglab.metrics.confusion import ConfusionMatrix, SegmentationMetrics, per_image_metrics
