"""Metrics: one confusion matrix summed over the split -> per-class and mean scores
(:mod:`~seglab.metrics.confusion`), and the same counts under other mIoU definitions
(:mod:`~seglab.metrics.definitions`)."""

from seglab.metrics.confusion import ConfusionMatrix, SegmentationMetrics, per_image_metrics
