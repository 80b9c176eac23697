"""The trainer's validation: one confusion matrix over a DataLoader of the validation split.

Its forward pass is :func:`seglab.engine.predict.predict_probabilities`, the one of ``seglab eval``, so the
validation mIoU a run logs is the number ``seglab eval`` reports for its checkpoint.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from seglab.data.label_map import LabelMap
from seglab.engine import distributed
from seglab.engine.precision import MixedPrecision
from seglab.engine.predict import predict_probabilities
from seglab.metrics.confusion import ConfusionMatrix, SegmentationMetrics


@torch.inference_mode()
def validate(
    model: torch.nn.Module,
    loader: DataLoader,
    label_map: LabelMap,
    device: torch.device,
    precision: MixedPrecision,
    *,
    channels_last: bool = False,
    world: distributed.World | None = None,
) -> SegmentationMetrics:
    """Streaming confusion matrix over the whole split (void pixels dropped).

    Under DDP (``world.distributed``) every rank must call it: each evaluates its shard and the matrices are summed.
    """
    if world is not None and world.distributed:
        distributed.broadcast_buffers(model)  # every rank evaluates exactly the weights rank 0 saves
    model.eval()
    matrix = ConfusionMatrix(label_map.num_classes, ignore_index=label_map.ignore_index, device=device)
    for images, targets in loader:
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=precision.dtype, enabled=precision.enabled):
            probabilities = predict_probabilities(model, images)  # the forward pass of `seglab eval`
        matrix.update(probabilities.argmax(dim=1), targets.to(device))
    matrix.all_reduce()  # sums the shards; a no-op in a single process
    return matrix.compute(background_index=label_map.background_index)
