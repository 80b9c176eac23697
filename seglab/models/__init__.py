"""Segmentation models behind one interface, built by name.

>>> model = build_model("tiny_unet", num_classes=7)
>>> model(images)["out"].shape  # (N, 7, H, W) for any H, W

Names and one-line descriptions: :func:`available_models`; options of one name:
:func:`model_options`. ImageNet encoders: :func:`imagenet_models`, fetched once by
:func:`fetch_imagenet_weights` (what ``seglab train --pretrained imagenet`` does).
"""

from seglab.models.base import SegmentationModel
from seglab.models.registry import (
    DEFAULT_MODEL,
    MODELS,
    available_models,
    build_model,
    cached_imagenet_weights,
    fetch_imagenet_weights,
    imagenet_models,
    imagenet_weights_note,
    model_options,
)

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "SegmentationModel",
    "available_models",
    "build_model",
    "cached_imagenet_weights",
    "fetch_imagenet_weights",
    "imagenet_models",
    "imagenet_weights_note",
    "model_options",
]
