"""Image normalisation: uint8 RGB -> float tensor -> ``(x - mean) / std``, and back for display.

The one conversion and normalisation of seglab: the training and evaluation pipelines
(:class:`~seglab.data.transforms.ToTensor`, :class:`~seglab.data.transforms.Normalize`) and inference
(:mod:`seglab.engine.predict`) both call :func:`image_to_float` and :func:`normalize_image`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "IMAGENET_FILL",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "denormalize",
    "fill_from_mean",
    "image_to_float",
    "normalize_image",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Color = tuple[int, int, int]


def fill_from_mean(mean: Sequence[float]) -> Color:
    """The normalisation mean as a uint8 RGB colour: padded pixels normalise to about zero."""
    red, green, blue = (int(round(float(value) * 255)) for value in mean)
    return (red, green, blue)


IMAGENET_FILL = fill_from_mean(IMAGENET_MEAN)  # (124, 116, 104)


def _per_channel(values: Sequence[float], dtype: torch.dtype) -> torch.Tensor:
    """Three per-channel values as a (3, 1, 1) tensor that broadcasts over (..., 3, H, W)."""
    return torch.tensor(tuple(values), dtype=dtype).view(3, 1, 1)


def image_to_float(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) RGB -> contiguous float32 (3, H, W) in [0, 1]: the one conversion of seglab's pipelines."""
    # np.require copies read-only arrays (e.g. decoded files): torch warns on non-writable memory.
    return torch.from_numpy(np.require(image.transpose(2, 0, 1), requirements=["C", "W"])).float().div_(255)


def normalize_image(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(image - mean) / std`` per channel of a float (..., 3, H, W) tensor: the one normalisation."""
    return (image - _per_channel(mean, image.dtype)) / _per_channel(std, image.dtype)


def denormalize(
    image: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> np.ndarray:
    """Undo :func:`normalize_image` + :func:`image_to_float`: float (3, H, W) tensor -> uint8 (H, W, 3) RGB."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"denormalize expects one (3, H, W) image tensor, got shape {tuple(image.shape)}")
    image = image.detach().to("cpu", torch.float32)
    pixels = (
        (image * _per_channel(std, torch.float32) + _per_channel(mean, torch.float32)).mul_(255).round_().clamp_(0, 255)
    )
    return pixels.to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
