"""A Trainer's own checkpoints: ``last.pt`` and ``best.pt`` written from its state, and resuming from one.

Besides the weights (and the optimiser, in ``last.pt``) a checkpoint carries what a resumed run needs to go on as
if it had never stopped: the best metric so far, the training seconds, torch's RNG state, and the number of
processes with the LR schedule's offset (steps per epoch change with the number of processes).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from seglab.engine.checkpoint import (
    NonFiniteWeightsError,
    check_resumable,
    checkpoint_payload,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)
from seglab.io.json_values import json_number

if TYPE_CHECKING:
    from seglab.engine.trainer import Trainer


def save_training_checkpoint(trainer: Trainer, which: str) -> Path:
    """Write ``last.pt`` or ``best.pt`` atomically."""
    assert trainer.run is not None
    payload = checkpoint_payload(
        model=trainer.model,
        config=trainer.config.to_dict(),
        label_map=trainer.label_map,
        step=trainer.step,
        epoch=trainer.epoch,
        metrics=trainer.best_metrics if which == "best" else trainer.last_metrics,
        optimizer=trainer.optimizer if which == "last" else None,  # best.pt stays small: weights only
        extra={
            "best_value": json_number(trainer.best_value),
            "best_metrics": trainer.best_metrics,
            "train_seconds": trainer.train_seconds,
            "torch_rng": torch.get_rng_state(),
            "processes": trainer.world.size,
            "schedule_offset": trainer.schedule_offset,
        },
    )
    try:
        path = save_checkpoint(payload, trainer.run.path / f"{which}.pt")
    except NonFiniteWeightsError as error:  # e.g. BatchNorm statistics that overflowed during evaluation
        raise trainer.diverged(str(error).split(": ", 1)[-1].split(";")[0]) from None
    return path


def resume_training(trainer: Trainer, path: str | os.PathLike) -> None:
    """Continue from a checkpoint (usually ``last.pt``): weights, optimiser, step, epoch, best."""
    checkpoint = load_checkpoint(path, map_location=trainer.device)
    check_resumable(checkpoint, trainer.config.model, trainer.label_map)
    load_model_state(trainer.model, checkpoint.model_state, source=str(checkpoint.path))
    if checkpoint.optimizer_state is not None:
        trainer.optimizer.load_state_dict(checkpoint.optimizer_state)
    trainer.step, trainer.epoch = checkpoint.step, checkpoint.epoch
    trainer.schedule_offset = int(checkpoint.extra.get("schedule_offset") or 0)
    if int(checkpoint.extra.get("processes") or 1) != trainer.world.size:
        # Steps per epoch changed with the number of processes: the step count goes on, but the LR
        # schedule (counted in this run's steps) resumes where the saved epochs left it.
        trainer.schedule_offset = trainer.epoch * len(trainer.train_loader) - trainer.step
    best = checkpoint.extra.get("best_value")
    trainer.best_value = best if best is not None else -math.inf
    trainer.best_metrics = checkpoint.extra.get("best_metrics") or {}
    trainer.last_metrics = checkpoint.metrics
    rng = checkpoint.extra.get("torch_rng")
    if isinstance(rng, torch.Tensor):
        torch.set_rng_state(rng)
    if trainer.keeps_checkpoints:
        trainer.saved_steps = {"last": trainer.step}
