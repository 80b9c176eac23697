"""What a :class:`~seglab.engine.config.TrainConfig` builds: loss, optimiser, LR schedule and batching.

One definition each, used by the trainer (for real) and by :class:`seglab.engine.run_plan.RunPlan`
(to check a config and draw its LR curve before a run is launched), so the two cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from seglab.engine.config import TrainConfig
from seglab.engine.optim import LRSchedule, build_optimizer
from seglab.errors import ConfigError
from seglab.losses.criterion import SegmentationCriterion, build_criterion


def drops_last_batch(train_images: int, batch_size: int) -> bool:
    """Whether the trainer drops the last incomplete batch of an epoch.

    Only once the split holds at least two batches: a 1-image batch would make BatchNorm statistics
    noisy, but a split smaller than that must still train on every image.
    """
    return train_images >= 2 * batch_size


def steps_per_epoch(train_images: int, batch_size: int) -> int:
    """Optimiser steps in one epoch, as the trainer's DataLoader counts them (see :func:`drops_last_batch`)."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if train_images <= 0:
        return 0
    if drops_last_batch(train_images, batch_size):
        return train_images // batch_size
    return math.ceil(train_images / batch_size)


def criterion_from_config(
    config: TrainConfig, num_classes: int, ignore_index: int, class_weights: torch.Tensor | None = None
) -> SegmentationCriterion:
    """The training loss of ``config`` (ConfigError on a malformed loss spec or option)."""
    return build_criterion(
        config.loss,
        num_classes=num_classes,
        ignore_index=ignore_index,
        class_weights=class_weights,
        top_k_percent_pixels=config.top_k_percent_pixels,
        hard_example_mining_step=config.hard_example_mining_step,
        focal_gamma=config.focal_gamma,
        aux_weight=config.aux_weight,
    )


def optimizer_from_config(config: TrainConfig, param_groups: Iterable[dict[str, Any]]) -> torch.optim.Optimizer:
    """The optimiser of ``config`` over ``param_groups`` (ConfigError on e.g. Nesterov with Adam)."""
    return build_optimizer(
        config.optimizer,
        param_groups,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )


def schedule_from_config(config: TrainConfig, steps_per_epoch: int) -> LRSchedule:
    """The LR schedule of a config: total steps = epochs x steps per epoch."""
    return LRSchedule(
        name=config.schedule,
        base_lr=config.lr,
        total_steps=max(config.epochs * max(steps_per_epoch, 1), 1),
        power=config.power,
        warmup_steps=config.warmup_steps,
        slow_start_steps=config.slow_start_steps,
        slow_start_lr=config.slow_start_lr,
        step_size=config.step_size,
        gamma=config.gamma,
        min_lr=config.min_lr,
    )
