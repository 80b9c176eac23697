"""The trainer's validation: one confusion matrix over a DataLoader of the validation split.

Its forward pass is :func:`seglab.engine.predict.predict_probabilities`, the one of ``seglab eval``, so the
validation mIoU a run logs is the number ``seglab eval`` reports for its checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import torch
from torch.utils.data import DataLoader

from seglab.data.label_map import LabelMap
from seglab.data.loading import AugmentedDataset
from seglab.engine import distributed
from seglab.engine.precision import MixedPrecision
from seglab.engine.predict import predict_probabilities
from seglab.errors import ConfigError
from seglab.io.json_values import sanitize_for_json
from seglab.metrics.confusion import ConfusionMatrix, SegmentationMetrics

if TYPE_CHECKING:
    from seglab.data.base import SegmentationDataset
    from seglab.engine.evaluation import ProbabilityConsumer
    from seglab.engine.trainer import Trainer

# ``Trainer(eval_consumer=...)``: called at each evaluation of a run with a folder, in one process, with the
# validation split; what it returns gets that evaluation's probabilities and is finished only when the evaluation's
# weights become best.pt (``seglab train`` passes label quality's: the Label quality page then reads its report).
ConsumerFactory = Callable[["SegmentationDataset"], "ProbabilityConsumer | None"]


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
    consumer: ProbabilityConsumer | None = None,
) -> SegmentationMetrics:
    """Streaming confusion matrix over the whole split (void pixels dropped).

    Under DDP (``world.distributed``) every rank must call it: each evaluates its shard and the matrices are summed.
    ``consumer`` (one process, the trainer's evaluation loader, in order) gets each batch's probabilities cropped
    to its images' sizes, with their masks.
    """
    if world is not None and world.distributed:
        distributed.broadcast_buffers(model)  # every rank evaluates exactly the weights rank 0 saves
    model.eval()
    matrix = ConfusionMatrix(label_map.num_classes, ignore_index=label_map.ignore_index, device=device)
    done = 0
    for images, targets in loader:
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=precision.dtype, enabled=precision.enabled):
            probabilities = predict_probabilities(model, images)  # the forward pass of `seglab eval`
        matrix.update(probabilities.argmax(dim=1), targets.to(device))
        if consumer is not None:
            _hand_over(consumer, loader, list(range(done, done + len(images))), probabilities)
        done += len(images)
    matrix.all_reduce()  # sums the shards; a no-op in a single process
    return matrix.compute(background_index=label_map.background_index)


def _hand_over(
    consumer: ProbabilityConsumer, loader: DataLoader, indices: list[int], probabilities: torch.Tensor
) -> None:
    """One batch of probabilities to ``consumer``, each cropped to its image (batches are padded)."""
    # AugmentedDataset(MemoryCachedDataset(split)): masks without re-reading files
    samples = cast(AugmentedDataset, loader.dataset).dataset
    masks = [samples.load_mask(index) for index in indices]
    batch = probabilities.float().cpu().numpy()
    consumer.add_batch(indices, [batch[i, :, : m.shape[0], : m.shape[1]] for i, m in enumerate(masks)], masks)


def evaluate_and_save(trainer: Trainer) -> dict[str, Any]:
    """The trainer's evaluation: metrics, best so far, the ``eval`` event (its run recorder saves last.pt and an
    improved best.pt), then the consumer finished when best.pt took the evaluated weights; the metrics."""
    consumer = trainer.eval_consumer(trainer.val_data) if trainer.eval_consumer is not None else None
    try:
        started = time.perf_counter()
        summary = trainer.evaluate(consumer=consumer).to_dict(trainer.label_map.names)
        value = summary.get(trainer.config.best_metric)
        if value is None and trainer.config.best_metric not in summary:
            raise ConfigError(f"best_metric {trainer.config.best_metric!r} is not a metric; try miou or pixel_acc")
        improved = value is not None and value > trainer.best_value
        if improved:
            trainer.best_value, trainer.best_metrics = cast(float, value), summary
        trainer.last_metrics = summary
        event = {
            "type": "eval",
            "step": trainer.step,
            "epoch": trainer.epoch,
            "split": trainer.config.val_split,
            "metrics": summary,
            "best": improved,
            "eval_seconds": time.perf_counter() - started,
            "elapsed": trainer.elapsed(),
        }
        trainer.history.append(sanitize_for_json(event))
        trainer.emit(event)  # the run recorder saves the previews, last.pt, best.pt (when improved) and the status
        if trainer.keeps_checkpoints:
            trainer.saved_steps["last"] = trainer.step
            if improved:
                trainer.saved_steps["best"] = trainer.step
        if improved and consumer is not None:
            consumer.finish()  # best.pt now holds the weights it saw
        return summary
    finally:
        if consumer is not None:
            consumer.close()
