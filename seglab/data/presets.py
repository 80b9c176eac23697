"""The two pipelines seglab trains and evaluates with, built from :mod:`seglab.data.transforms`.

Order (the one order seglab supports)::

    numpy uint8: RandomScale -> RandomCrop -> flips -> ColorJitter   (train)
                 Resize -> PadToMultiple                             (eval)
    ToTensor:    image float32 (3, H, W) in [0, 1], mask int64 (H, W)
    Normalize:   on the float tensor, (x - mean) / std
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seglab.data.normalization import IMAGENET_MEAN, IMAGENET_STD, fill_from_mean
from seglab.data.transforms import (
    ColorJitter,
    Compose,
    Normalize,
    PadToMultiple,
    RandomCrop,
    RandomHorizontalFlip,
    RandomScale,
    RandomVerticalFlip,
    Resize,
    ToTensor,
    TransformFunction,
    check_probability,
)
from seglab.errors import ConfigError

__all__ = ["eval_transform", "train_transform"]


def train_transform(
    *,
    crop_size: int | Sequence[int] | None = 96,
    scale_range: Sequence[float] = (0.5, 2.0),
    hflip: float = 0.5,
    vflip: float = 0.0,
    color_jitter: float = 0.0,
    cat_max_ratio: float | None = None,
    class_focus: Sequence[float] | np.ndarray | None = None,
    focus_probability: float = 0.0,
    ignore_index: int = 255,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Compose:
    """DeepLab-style training pipeline: random scale -> random crop -> flips -> colour -> tensor.

    ``crop_size=None`` keeps the scaled size (only batchable when all images match);
    ``scale_range=(1, 1)`` disables scaling; ``color_jitter`` is one strength ``s`` applied as
    brightness = contrast = saturation = ``s`` and hue = ``s / 4`` (SimCLR's ratio), 0 disables it.
    Crops are padded with the mean colour and ``ignore_index``; ``class_focus`` and
    ``focus_probability`` centre that share of the crops on a class drawn by weight (see :class:`RandomCrop`).
    """
    min_scale, max_scale = (float(value) for value in scale_range)
    if color_jitter < 0:
        raise ConfigError(f"color_jitter strength must be >= 0, got {color_jitter!r}")
    hflip, vflip = check_probability(hflip), check_probability(vflip)
    transforms: list[TransformFunction] = []
    if (min_scale, max_scale) != (1.0, 1.0):
        transforms.append(RandomScale(min_scale=min_scale, max_scale=max_scale, ignore_index=ignore_index))
    if crop_size is not None:
        transforms.append(
            RandomCrop(
                size=crop_size,
                ignore_index=ignore_index,
                image_fill=fill_from_mean(mean),
                cat_max_ratio=cat_max_ratio,
                class_focus=class_focus,
                focus_probability=focus_probability,
            )
        )
    if hflip > 0:
        transforms.append(RandomHorizontalFlip(p=hflip))
    if vflip > 0:
        transforms.append(RandomVerticalFlip(p=vflip))
    if color_jitter > 0:
        strength = float(color_jitter)
        transforms.append(
            ColorJitter(brightness=strength, contrast=strength, saturation=strength, hue=min(0.5, strength / 4))
        )
    transforms += [ToTensor(), Normalize(mean=mean, std=std)]
    return Compose(transforms)


def eval_transform(
    *,
    pad_multiple: int = 16,
    resize: int | Sequence[int] | None = None,
    ignore_index: int = 255,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Compose:
    """Deterministic evaluation pipeline: optional resize -> pad to a multiple -> tensor.

    Padding is bottom/right with ``ignore_index`` in the mask, so metrics on the padded output are
    the metrics of the original pixels and ``crop_to_original(pred, (H, W))`` gives back the
    original region. With ``resize`` the labels themselves are resized (nearest), so metrics are
    measured at that resolution. ``pad_multiple`` of 0 or 1 disables padding.
    """
    transforms: list[TransformFunction] = []
    if resize is not None:
        transforms.append(Resize(size=resize, ignore_index=ignore_index))
    if pad_multiple > 1:
        transforms.append(
            PadToMultiple(multiple=pad_multiple, ignore_index=ignore_index, image_fill=fill_from_mean(mean))
        )
    transforms += [ToTensor(), Normalize(mean=mean, std=std)]
    return Compose(transforms)
