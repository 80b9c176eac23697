"""Training configs for tests that need a real run, not a good model."""

from __future__ import annotations

from typing import Any

from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec
from seglab.engine.config import TrainConfig

# A few CPU steps of the smallest network on whole 32 px images: no crops, no scaling, a log line every step.
TINY_RUN: dict[str, Any] = dict(
    model="tiny_unet_small",
    epochs=1,
    batch_size=4,
    crop_size=0,
    scale_min=1.0,
    scale_max=1.0,
    log_every=1,
    preview_images=0,
    device="cpu",
)


def tiny_train_config(shapes: ShapesConfig, **options: Any) -> TrainConfig:
    """:data:`TINY_RUN` on Shapes data ``shapes``; ``options`` override any field: for plumbing, not accuracy."""
    return TrainConfig(**{"data": DataSpec(shapes=shapes), **TINY_RUN, **options})
