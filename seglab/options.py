"""Checks of the options that say *how* to run: device, batch size, test-time augmentation, overlay.

One place for the CLI (``seglab train/eval/predict``), the app and the Python API, so a bad value
is refused with the same message before any data is read or any model is built. Training options
are checked by :meth:`seglab.engine.config.TrainConfig.validate`, which uses :func:`check_device_name`
from here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from seglab.errors import ConfigError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"
_DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def check_device_name(name: object) -> str:
    """``name`` if it is auto, cpu, cuda or cuda:N; a ConfigError otherwise (nothing is probed)."""
    if not isinstance(name, str) or not _DEVICE_PATTERN.fullmatch(name):
        raise ConfigError(f"device {name!r} is not one of {DEVICE_CHOICES}; use --device cpu (or cuda with a GPU)")
    return name


def resolve_device(name: str) -> torch.device:
    """The torch device for ``name``: ``auto`` picks CUDA when available, else CPU.

    Raises ConfigError for a malformed name, for CUDA on a machine without it and for a GPU
    index this machine does not have.
    """
    import torch

    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but CUDA is not available; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s); "
                "use cuda:0 .. cuda:N-1"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' requested but Apple's MPS is not available here; use --device cpu")
    return device


def parse_scales(text: str | None) -> tuple[float, ...]:
    """``"0.75,1,1.25"`` -> ``(0.75, 1.0, 1.25)``; ``None`` or ``""`` -> ``(1.0,)``. Checked by :func:`check_scales`."""
    if text is None or not text.strip():
        return (1.0,)
    try:
        scales = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"--scales {text!r} must be numbers separated by commas, e.g. 0.75,1,1.25") from None
    return check_scales(scales)


def check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    """Test-time scales must be finite and > 0 (a scale of 0 would shrink every image to one pixel)."""
    values = tuple(scales)
    if not values:
        raise ConfigError("scales must hold at least one value, e.g. 1 or 0.75,1,1.25")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"scale {value!r} must be a number > 0 (1 = the image's own size), e.g. 0.75,1,1.25")
        if value > 8:
            raise ConfigError(f"scale {value!r} is too large (at most 8): each side would be {value:g}x the image's")
    return tuple(float(value) for value in values)


def check_tile_size(tile_size: int | tuple[int, int] | None) -> int | tuple[int, int] | None:
    """A sliding-window tile is ``None`` (whole image), a side or ``(height, width)``, in whole pixels >= 8."""
    if tile_size is None:
        return None
    sides = tile_size if isinstance(tile_size, tuple) and len(tile_size) == 2 else (tile_size,)
    if any(isinstance(side, bool) or not isinstance(side, int) or side < 8 for side in sides):
        raise ConfigError(f"tile size {tile_size!r} must be a whole number of pixels >= 8 (or unset for whole images)")
    return tile_size


def check_batch_size(batch_size: int) -> int:
    """Images per forward pass: a whole number >= 1."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch size {batch_size!r} must be a whole number >= 1")
    return batch_size


def check_alpha(alpha: float) -> float:
    """Overlay opacity in [0, 1]."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha {alpha!r} must be an opacity between 0 and 1 (e.g. 0.5)")
    return float(alpha)


@dataclass(frozen=True)
class InferenceOptions:
    """How ``seglab eval``/``predict`` (and the pages that predict) run a model; checked on construction."""

    device: str = "auto"
    batch_size: int = 8
    flip: bool = False
    scales: tuple[float, ...] = (1.0,)
    tile_size: int | None = None
    alpha: float = 0.5

    def __post_init__(self) -> None:
        check_device_name(self.device)
        check_batch_size(self.batch_size)
        object.__setattr__(self, "scales", check_scales(self.scales))
        check_tile_size(self.tile_size)
        object.__setattr__(self, "alpha", check_alpha(self.alpha))

    def torch_device(self) -> torch.device:
        """The device to run on (raises ConfigError when it is not available here)."""
        return resolve_device(self.device)
