"""SegmentationModel: the interface every seglab model implements.

A model maps images ``(N, 3, H, W)`` to ``{"out": logits (N, K, H, W)}`` at the input resolution
(plus ``"aux"`` logits when it has a deep-supervision head), and says which of its parameters are
encoder, decoder and final classifier, so the optimiser can give them different learning rates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from seglab.errors import ConfigError
from seglab.models.pretrained import BackboneWeights


class SegmentationModel(nn.Module):
    """Base class: subclasses build layers and implement ``forward``, ``encoder_module`` and
    ``classifier_layers``; everything else is derived here.

    Attributes:
        name: registry name the model was built under (``build_model`` sets it).
        num_classes: K, the number of output channels.
        options: JSON-friendly architecture options; ``build_model(name, num_classes, **options)``
            rebuilds an identical architecture (weight sources are not part of it).
        backbone_weights: which torchvision ImageNet checkpoint fits the encoder, or ``None`` when
            the encoder is seglab's own (UNet).
        weights_source: where the initial weights came from (``build_model`` records files loaded).
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes = num_classes
        self.name = type(self).__name__.lower()
        self.options: dict[str, Any] = {}
        self.backbone_weights: BackboneWeights | None = None
        self.weights_source = "random initialisation"

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``images (N, 3, H, W)`` -> ``{"out": (N, K, H, W)[, "aux": (N, K, H, W)]}``."""
        raise NotImplementedError

    def encoder_module(self) -> nn.Module:
        """The feature extractor (for a torchvision backbone: the ImageNet-pretrainable part)."""
        raise NotImplementedError

    def classifier_layers(self) -> list[nn.Module]:
        """The final layers that map features to class logits (main head, then aux head)."""
        raise NotImplementedError

    def encoder_parameters(self) -> list[nn.Parameter]:
        """Parameters of the encoder."""
        return list(self.encoder_module().parameters())

    def decoder_parameters(self) -> list[nn.Parameter]:
        """Every parameter that is not in the encoder (decoder, heads, classifiers)."""
        encoder_ids = {id(parameter) for parameter in self.encoder_parameters()}
        return [parameter for parameter in self.parameters() if id(parameter) not in encoder_ids]

    def last_layer_parameter_names(self) -> list[str]:
        """Names (as in ``named_parameters``) of the final classifier layers' parameters."""
        module_names = {id(module): name for name, module in self.named_modules()}
        names: list[str] = []
        for layer in self.classifier_layers():
            prefix = module_names[id(layer)]
            names.extend(f"{prefix}.{parameter_name}" for parameter_name, _ in layer.named_parameters())
        return names

    def describe(self) -> str:
        """One line: name and parameter counts, e.g. ``"unet: 7.76M parameters (encoder ...)"``."""
        encoder = sum(parameter.numel() for parameter in self.encoder_parameters())
        decoder = sum(parameter.numel() for parameter in self.decoder_parameters())
        return (
            f"{self.name}: {format_count(encoder + decoder)} parameters "
            f"(encoder {format_count(encoder)}, decoder {format_count(decoder)}), {self.num_classes} classes"
        )


def format_count(count: int) -> str:
    """``7_763_000 -> "7.76M"``, ``48_000 -> "48.0K"``."""
    if count >= 1_000_000:
        return f"{count / 1_000_000:.2f}M"
    if count >= 1_000:
        return f"{count / 1_000:.1f}K"
    return str(count)


def resize_logits(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinearly resize ``(N, K, h, w)`` logits to ``size`` (no-op when already that size)."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


def check_choice(option: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise ``ConfigError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        valid = ", ".join(repr(choice) for choice in choices)
        raise ConfigError(f"option {option}={value!r} is not supported; choose one of: {valid}")


def check_positive(option: str, value: int) -> None:
    """Raise ``ConfigError`` unless ``value`` is a positive int."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"option {option}={value!r} must be a positive integer")
