"""The model registry: a plain dict from name to (class, pinned arguments, defaults, description).

``build_model(name, num_classes, **options)`` checks every option name and type against the class
signature before building, then loads weights only from local files (``pretrained_backbone`` from
torchvision's hub cache, ``weights_path`` from a path). :func:`fetch_imagenet_weights` is the one
step that may download (a run's ``pretrained="imagenet"``), before ``build_model`` reads the cache.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from seglab.errors import ConfigError
from seglab.models.base import SegmentationModel
from seglab.models.deeplab import DeepLabV3, DeepLabV3Plus
from seglab.models.pretrained import (
    BackboneWeights,
    cached_backbone_checkpoint,
    checkpoint_status,
    fetch_backbone_checkpoint,
    load_pretrained_backbone,
    load_weights_file,
)
from seglab.models.res_unet import ResUNet
from seglab.models.torchvision_models import FCN, LRASPP
from seglab.models.unet import UNet

DEFAULT_MODEL = "tiny_unet"


@dataclass(frozen=True)
class ModelEntry:
    """One registry name: which class builds it and with which arguments."""

    model_class: type[SegmentationModel]
    description: str
    fixed: Mapping[str, Any] = field(default_factory=dict)  # constructor arguments the name pins
    defaults: Mapping[str, Any] = field(default_factory=dict)  # defaults that differ from the class's

    @cached_property
    def backbone_weights(self) -> BackboneWeights | None:
        """The ImageNet checkpoint that fits this model's encoder (its ``backbone_weights``), or ``None``.

        Read from the model itself, built on the meta device (no memory, no weights, a few ms), so a
        model declares its torchvision weights once, in its constructor, and gets ``--pretrained imagenet``.
        """
        with torch.random.fork_rng(devices=[]):
            try:
                with torch.device("meta"):
                    model = self.model_class(2, **self.fixed, **architecture_defaults(self))
            except (RuntimeError, NotImplementedError):  # a constructor that needs real tensors
                model = self.model_class(2, **self.fixed, **architecture_defaults(self))
        return model.backbone_weights

    @property
    def has_torchvision_backbone(self) -> bool:
        return self.backbone_weights is not None


# Why this tiny default: a stride-2 stem makes every level 4x cheaper than a full-resolution UNet
# (batch 16 at 96 px, forward+backward on one core: 0.16 s vs 0.6 s at the same widths) while
# 6-40 px Shapes objects stay >= 3 px wide. With the quick-run recipe (96 px crops, CE + Dice,
# AdamW 3e-3 poly, batch 16, channels-last, 2 cores) it reaches 0.90 val mIoU on Shapes in about
# 55 s (benchmarks/bench_train.py); width 8 (tiny_unet_small) takes cheaper steps but reached only 0.83 in 60 s.
TINY_UNET = {"base_width": 16, "depth": 3, "stem_stride": 2}

MODELS: dict[str, ModelEntry] = {
    "tiny_unet": ModelEntry(
        UNet,
        "UNet 16 wide, 3 levels, stride-2 stem (0.5M params): the fast CPU default",
        defaults=TINY_UNET,
    ),
    "tiny_unet_small": ModelEntry(
        UNet,
        "tiny_unet at half width (8, 0.12M params): about 2x faster, for smoke tests",
        defaults={**TINY_UNET, "base_width": 8},
    ),
    "tiny_unet_deep": ModelEntry(
        UNet,
        "tiny_unet with a fourth level (stride 32, 2M params, +17% per step): the context photos need",
        defaults={**TINY_UNET, "depth": 4},
    ),
    "tiny_unet_wide": ModelEntry(
        UNet,
        "tiny_unet at 1.5x width (24, 1.1M params): more capacity, about 2x slower per step",
        defaults={**TINY_UNET, "base_width": 24},
    ),
    "res_unet": ModelEntry(
        ResUNet,
        "ResNet-block encoder to stride 32, pyramid pooling, additive decoder to stride 2 (1.9M params): "
        "the CPU recipe for photos",
    ),
    "unet": ModelEntry(UNet, "UNet 32 wide, 4 levels, BatchNorm (Ronneberger et al. 2015); GPU-sized"),
    "deeplabv3_resnet18": ModelEntry(
        DeepLabV3, "DeepLabV3 (ASPP) on a dilated ResNet-18, FCN aux head", fixed={"backbone": "resnet18"}
    ),
    "deeplabv3_resnet50": ModelEntry(
        DeepLabV3, "DeepLabV3 (ASPP) on a dilated ResNet-50, FCN aux head", fixed={"backbone": "resnet50"}
    ),
    "deeplabv3_mobilenet_v3_large": ModelEntry(
        DeepLabV3,
        "DeepLabV3 (ASPP) on MobileNetV3-Large, no aux head by default",
        fixed={"backbone": "mobilenet_v3_large"},
        defaults={"aux": False},
    ),
    "deeplabv3plus_resnet18": ModelEntry(
        DeepLabV3Plus, "DeepLabV3+ (ASPP + stride-4 decoder) on ResNet-18, FCN aux head", fixed={"backbone": "resnet18"}
    ),
    "deeplabv3plus_resnet50": ModelEntry(
        DeepLabV3Plus, "DeepLabV3+ (ASPP + stride-4 decoder) on ResNet-50, FCN aux head", fixed={"backbone": "resnet50"}
    ),
    "deeplabv3plus_mobilenet_v3_large": ModelEntry(
        DeepLabV3Plus,
        "DeepLabV3+ (ASPP + stride-4 decoder) on MobileNetV3-Large, no aux head by default",
        fixed={"backbone": "mobilenet_v3_large"},
        defaults={"aux": False},
    ),
    "fcn_resnet50": ModelEntry(FCN, "torchvision FCN on a dilated ResNet-50 (stride 8), FCN aux head"),
    "lraspp_mobilenet_v3_large": ModelEntry(LRASPP, "torchvision LR-ASPP on MobileNetV3-Large: light, no aux head"),
}


def available_models() -> dict[str, str]:
    """Registry name -> one-line description."""
    return {name: entry.description for name, entry in MODELS.items()}


def architecture_defaults(entry: ModelEntry) -> dict[str, Any]:
    """The options that shape ``entry``'s architecture, with their defaults."""
    parameters = inspect.signature(entry.model_class.__init__).parameters.values()
    defaults = {
        parameter.name: parameter.default
        for parameter in parameters
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.name not in entry.fixed
    }
    return {**defaults, **entry.defaults}


def imagenet_models() -> list[str]:
    """Registry names whose encoder has torchvision ImageNet weights (``pretrained="imagenet"`` works)."""
    return [name for name, entry in MODELS.items() if entry.has_torchvision_backbone]


def imagenet_backbone(name: str) -> BackboneWeights:
    """The ImageNet checkpoint for model ``name``'s encoder; ``ConfigError`` naming the models that have one."""
    weights = lookup_entry(name).backbone_weights
    if weights is None:
        raise ConfigError(
            f"model {name!r} has no ImageNet weights (its encoder is seglab's own); use pretrained='none' "
            f"(--pretrained none) or one of the models with a torchvision encoder: {', '.join(imagenet_models())}"
        )
    return weights


def fetch_imagenet_weights(
    name: str, *, report: Callable[[str], None] | None = None, progress_bar: bool = False
) -> Path:
    """Make sure model ``name``'s ImageNet file is in torch's hub cache, downloading it once if needed.

    See :func:`seglab.models.pretrained.fetch_backbone_checkpoint` (no network when cached; offline,
    a ``ConfigError`` naming the file, its size, its URL and the folder to copy it into).
    """
    return fetch_backbone_checkpoint(imagenet_backbone(name), report=report, progress_bar=progress_bar)


def cached_imagenet_weights(name: str) -> Path | None:
    """Model ``name``'s ImageNet file if it is in torch's hub cache, else ``None`` (e.g. a benchmark's skip reason)."""
    return cached_backbone_checkpoint(imagenet_backbone(name))


def imagenet_weights_note(name: str) -> str:
    """One line for the Train page: cached or downloaded once (with the size), or why ``name`` has none."""
    weights = lookup_entry(name).backbone_weights
    if weights is None:
        return (
            f"{name} has no ImageNet weights: its encoder is seglab's own and starts from random weights. "
            f"Models with ImageNet encoders: {', '.join(imagenet_models())}."
        )
    return checkpoint_status(weights)


def weight_defaults(entry: ModelEntry) -> dict[str, Any]:
    """The options that pick initial weights (not part of the architecture, never stored)."""
    options: dict[str, Any] = {"weights_path": None}
    if entry.has_torchvision_backbone:
        options["pretrained_backbone"] = False
    return options


def model_options(name: str) -> dict[str, Any]:
    """Every option ``build_model(name, ...)`` accepts, with its default."""
    entry = lookup_entry(name)
    return {**architecture_defaults(entry), **weight_defaults(entry)}


def lookup_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; ``ConfigError`` listing valid names otherwise."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; available models: {', '.join(MODELS)}")
    return MODELS[name]


def check_option_type(name: str, option: str, value: Any, default: Any) -> None:
    """``value`` must have the default's type (bool, int, str; floats accept ints)."""
    if default is None:
        valid = isinstance(value, (str, Path)) or value is None
    elif isinstance(default, bool):
        valid = isinstance(value, bool)
    elif isinstance(default, int):
        valid = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        valid = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        valid = isinstance(value, type(default))
    if not valid:
        expected = "a path" if default is None else type(default).__name__
        raise ConfigError(f"option {option}={value!r} of model {name!r} must be {expected}")


def build_model(name: str, num_classes: int, **options: Any) -> SegmentationModel:
    """Build registry model ``name`` with ``num_classes`` outputs.

    Options are the architecture keywords of the model's class (see ``model_options(name)``)
    plus ``weights_path`` (a local state dict of the whole model or its encoder) and, for models
    with a torchvision backbone, ``pretrained_backbone`` (ImageNet weights from torchvision's
    hub cache; never downloaded). The returned model's ``options`` hold the full architecture
    options, so ``build_model(model.name, model.num_classes, **model.options)`` rebuilds it.
    """
    entry = lookup_entry(name)
    architecture = architecture_defaults(entry)
    weights = weight_defaults(entry)
    valid = {**architecture, **weights}
    unknown = sorted(set(options) - set(valid))
    if unknown:
        listed = ", ".join(f"{option}={default!r}" for option, default in valid.items())
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for model {name!r}; valid options: {listed}")
    for option, value in options.items():
        check_option_type(name, option, value, valid[option])
    architecture.update((option, value) for option, value in options.items() if option in architecture)
    weights.update((option, value) for option, value in options.items() if option in weights)

    model = entry.model_class(num_classes, **entry.fixed, **architecture)
    model.name = name
    model.options = architecture
    if weights.get("pretrained_backbone"):
        path = load_pretrained_backbone(model)
        model.weights_source = f"ImageNet backbone from {path}"
    if weights["weights_path"] is not None:
        loaded_into = load_weights_file(model, weights["weights_path"])
        model.weights_source = f"{loaded_into} weights from {weights['weights_path']}"
    return model
