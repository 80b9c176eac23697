"""Plan a training run before launching it: config from form values, checks, and the LR curve.

The app's Train page and scripts use this to catch every option mistake that would otherwise
only surface when the background process starts (unknown model, malformed loss spec, Nesterov
with Adam, warm-up longer than the run), and to draw the learning-rate schedule the run will
follow -- with the same builders of :mod:`seglab.engine.recipe` the trainer uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from seglab.data.spec import DataSpec
from seglab.engine.config import TrainConfig
from seglab.engine.optim import LRSchedule, lr_curve
from seglab.engine.recipe import (
    criterion_from_config,
    optimizer_from_config,
    schedule_from_config,
    steps_per_epoch,
)
from seglab.errors import ConfigError

# The quick run's time budget when TrainConfig has none: "a minute" on a laptop CPU.
QUICK_RUN_SECONDS = 60.0


def loss_spec(terms: Sequence[tuple[float, str]]) -> str:
    """``[(1, "ce"), (0.5, "dice")]`` -> ``"ce+0.5*dice"`` (the spec ``build_criterion`` parses).

    Terms with weight 0 are dropped; a weight of 1 is not written.
    """
    parts = []
    for weight, name in terms:
        if not weight >= 0:  # also rejects NaN
            raise ConfigError(f"loss weight of {name!r} must be >= 0, got {weight}")
        if weight == 0:
            continue
        parts.append(name if weight == 1 else f"{weight:g}*{name}")
    if not parts:
        raise ConfigError("the loss needs at least one term with a weight > 0")
    return "+".join(parts)


def loss_terms(spec: str) -> list[tuple[float, str]]:
    """``"ce+0.5*dice"`` -> ``[(1.0, "ce"), (0.5, "dice")]`` with canonical names: the inverse of :func:`loss_spec`."""
    from seglab.losses.criterion import _parse_spec  # the parser build_criterion uses, so both agree on every spelling

    return _parse_spec(spec)


def build_config(data: DataSpec, **options: Any) -> TrainConfig:
    """A TrainConfig training on ``data``'s train split, other fields from ``options``.

    ``options`` use TrainConfig's field names; ``time_budget_s=0`` means no budget. Unknown names
    raise ConfigError. The result is validated (``TrainConfig.validate``).
    """
    options = dict(options)
    if not options.get("time_budget_s"):
        options["time_budget_s"] = None
    config = TrainConfig.from_dict({**options, "data": data.with_split("train")})
    config.validate()
    return config


PIXELS_PER_BATCH = 4 * 256 * 256  # the photo recipe's batch (4 crops of 256 px): more steps beat bigger batches here
LARGE_CROP = 256  # crop side for photos: enough context for road scenes, still fast on a CPU

# seglab's recipe for photos (CamVid-like road scenes, VOC-like scenes), chosen on CamVid from scratch on a
# 2-core CPU with 300 s runs. benchmarks/bench_camvid.py measures it against torchvision's recipe: val mIoU
# 0.56 in 300 s and 0.59 in 600 s (reference 0.11 and 0.27).
# Each choice and what it gave in those runs (val mIoU, same budget, one change at a time):
# - tiny_unet_deep: a fourth UNet level (stride 32) for the context road scenes need; res_unet (residual
#   encoder + pyramid pooling) was 0.01-0.05 lower at these budgets;
# - batch 4 instead of 8: twice the optimiser steps for the same pixels, 0.421 -> 0.435;
# - bfloat16 autocast where the CPU has native bf16: 1.4x more images per second, 0.435 -> 0.487;
# - square-root median-frequency class weights: full median weights made the model predict pedestrians 9x
#   and poles 7x more often than they occur (recall 0.86, precision 0.09), 0.487 -> 0.53;
# - half of the crops centred on a rare-class pixel (0.25: 0.51; none, with median weights: 0.44);
# - evaluation every 10 epochs: a full-resolution pass over the val split costs about a third of an epoch.
PHOTO_RECIPE: dict[str, Any] = {
    "model": "tiny_unet_deep",
    "class_weights": "sqrt_median",
    "rare_class_crops": 0.5,
    "cpu_bf16": True,
    "epochs": 100,
    "eval_every": 10,
}


def data_defaults(image_size: tuple[int, int], data_kind: str = "folder") -> dict[str, Any]:
    """seglab's recipe for ``data_kind`` images of ``image_size`` (H, W): the TrainConfig fields it changes.

    Small images (Shapes' 96 px) keep TrainConfig's quick-run recipe, with the crop capped at the image;
    real photos (short side above twice the default crop, e.g. CamVid 480x360, VOC ~500x375) get 256 px
    crops and :data:`PHOTO_RECIPE` (large synthetic Shapes images only the crop and batch). The batch keeps
    about :data:`PIXELS_PER_BATCH` pixels per step, between 4 and 16 images. The CLI applies it under
    explicit flags; the Train page starts its form from it.
    """
    short = int(min(image_size))
    if short < 16:
        raise ConfigError(f"images of {image_size[1]}x{image_size[0]} px are too small to train on (at least 16 px)")
    cap = short // 16 * 16  # crops are multiples of the models' stride
    photo = short > 2 * TrainConfig().crop_size
    crop = min(LARGE_CROP, cap) if photo else min(TrainConfig().crop_size, cap)
    batch = int(min(16, max(4, round(PIXELS_PER_BATCH / crop**2))))
    return {"crop_size": crop, "batch_size": batch, **(PHOTO_RECIPE if photo and data_kind != "shapes" else {})}


def training_image_size(data: DataSpec) -> tuple[int, int] | None:
    """(H, W) of the first training image of ``data``, or None when the split is empty."""
    from seglab.data.spec import build_dataset

    dataset = build_dataset(data.with_split("train"))
    return tuple(dataset.load(0)[0].shape[:2]) if len(dataset) else None


def describe_recipe(recipe: dict[str, Any]) -> str:
    """One line naming a recipe's choices, e.g. for the CLI's "using seglab's recipe" note."""
    return ", ".join(f"{name}={value}" for name, value in recipe.items())


def recipe_config(data: DataSpec, **options: Any) -> TrainConfig:
    """seglab's recipe for ``data`` (:func:`data_defaults` of its first training image), ``options`` on top.

    What ``seglab train --data ...`` runs when no other flag is given; benchmarks/bench_camvid.py measures it.
    """
    image_size = training_image_size(data)
    recipe = data_defaults(image_size, data.kind) if image_size else {}
    config = TrainConfig.from_dict({**TrainConfig().to_dict(), **recipe, **options, "data": data.with_split("train")})
    config.validate()
    return config


def quick_run_config(data: DataSpec, image_size: tuple[int, int] | None = None) -> TrainConfig:
    """The fast CPU default: seglab's recipe for ``data`` (:func:`data_defaults` when the training images'
    ``image_size`` (H, W) is given, TrainConfig's defaults otherwise) within about a minute."""
    defaults = TrainConfig()
    sized: dict[str, Any] = data_defaults(image_size, data.kind) if image_size else {}
    return replace(
        defaults, data=data.with_split("train"), time_budget_s=defaults.time_budget_s or QUICK_RUN_SECONDS, **sized
    )


@dataclass(frozen=True)
class RunPlan:
    """What a config will do on a dataset: steps per epoch, total steps and its LR schedule."""

    config: TrainConfig
    train_images: int
    steps_per_epoch: int
    schedule: LRSchedule

    @classmethod
    def check(cls, config: TrainConfig, train_images: int, num_classes: int) -> RunPlan:
        """Check everything the trainer checks at start-up, without building data or model.

        Raises ConfigError naming the option at fault.
        """
        from seglab.models.registry import lookup_entry

        config.validate()
        if train_images < 1:
            raise ConfigError("the training split has no images; pick another dataset on the Home page")
        lookup_entry(config.model)
        criterion_from_config(config, num_classes=num_classes, ignore_index=255)
        optimizer_from_config(config, [{"params": [torch.nn.Parameter(torch.zeros(1))]}])  # the checks, not the cost
        steps = steps_per_epoch(train_images, config.batch_size)
        schedule = schedule_from_config(config, steps_per_epoch=steps)
        return cls(config=config, train_images=train_images, steps_per_epoch=steps, schedule=schedule)

    @property
    def total_steps(self) -> int:
        return self.schedule.total_steps

    def lr_curve(self, num_points: int = 200) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, learning rates)`` over the whole run (jumps drawn where they happen)."""
        return lr_curve(self.schedule, num_points=num_points)

    def lr_preview(self, num_points: int = 200) -> tuple[np.ndarray, np.ndarray, str]:
        """The curve the run will follow and its x axis: steps, or seconds under a time budget (the
        schedule then follows the clock, so its step count is not known in advance)."""
        steps, rates = self.lr_curve(num_points)
        if self.config.time_budget_s:
            return steps / max(self.total_steps, 1) * self.config.time_budget_s, rates, "seconds into the run"
        return steps, rates, "step"

    def summary(self) -> str:
        """One line: steps, epochs and the LR range, e.g. for a caption under the curve."""
        steps, rates = self.lr_curve()
        text = (
            ("At most " if self.config.time_budget_s else "")
            + f"{self.total_steps} steps = {self.config.epochs} epochs x {self.steps_per_epoch} steps "
            f"({self.train_images} images / batch {self.config.batch_size}); "
            f"LR peaks at {rates.max():.3g}, ends at {rates[-1]:.3g}"
        )
        if self.config.time_budget_s:
            text += (
                f". With the {self.config.time_budget_s:g} s budget the schedule follows the clock: "
                "it reaches its end when the budget is spent, even if fewer steps were done"
            )
        return text


NO_SECOND_LOSS = "none"  # the Train form's "Plus" choice that adds no second loss term


def loss_form_defaults(spec: str) -> tuple[str, str, float]:
    """``spec`` as a form with two loss fields shows it: (first term, second term or "none", its weight)."""
    (_, first), *rest = loss_terms(spec)
    weight, second = rest[0] if rest else (1.0, NO_SECOND_LOSS)
    return first, second, weight


def form_loss_spec(first: str, second: str, weight: float) -> str:
    """The loss spec of two loss fields: ``first``, plus ``weight`` x ``second`` unless it is "none"."""
    return loss_spec([(1.0, first)] + ([(weight, second)] if second != NO_SECOND_LOSS else []))


def hard_mining_start_percent(config: TrainConfig) -> int:
    """Where the "keep hardest pixels (%)" field starts: the config's share, or 25 % when it keeps every pixel
    (100 % is plain cross-entropy; 25 % is a typical mining share to start from)."""
    return int(100 * config.top_k_percent_pixels) if config.top_k_percent_pixels < 1 else 25


def describe_quick_run(config: TrainConfig) -> str:
    """One line naming a quick run's recipe: model, loss, optimiser and time budget."""
    return (
        f"seglab's recommended recipe for this data: {config.model}, {config.loss} loss, {config.optimizer}, "
        f"for {config.time_budget_s:g} s"
    )
