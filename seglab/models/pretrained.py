"""Loading weights from local files only: torchvision's hub cache or a path the user gives.

Nothing here downloads. When an ImageNet checkpoint is missing, the error names the exact file
and folder, so the user can copy it there from a machine with internet.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import WeightsEnum

from seglab.errors import ConfigError

if TYPE_CHECKING:
    from seglab.models.base import SegmentationModel

# Keys under which training scripts commonly nest the state dict inside a checkpoint file.
NESTED_STATE_KEYS = ("model_state_dict", "model_state", "state_dict", "model")
SHOWN_KEYS = 5  # how many offending keys an error message lists


@dataclass(frozen=True)
class BackboneWeights:
    """Which torchvision classification checkpoint fits a model's encoder, and how its keys map.

    Attributes:
        weights: the torchvision enum, e.g. ``ResNet18_Weights``; its first member is preferred.
        key_prefix: prefix of the encoder's keys inside the checkpoint (``"features."`` for
            MobileNetV3, whose segmentation encoder is ``model.features``).
        classifier_prefixes: checkpoint keys that belong to the ImageNet classifier and are dropped.
    """

    weights: type[WeightsEnum]
    key_prefix: str = ""
    classifier_prefixes: tuple[str, ...] = ("fc.",)


def checkpoint_directory() -> Path:
    """Where torchvision caches downloads: ``torch.hub.get_dir()/checkpoints`` (honours ``TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def checkpoint_file_name(weights: WeightsEnum) -> str:
    """The file name torchvision would save ``weights`` under, e.g. ``resnet18-f37072fd.pth``."""
    return Path(urlparse(weights.url).path).name


def find_backbone_checkpoint(spec: BackboneWeights) -> Path:
    """The first of ``spec.weights``' files present in the hub cache; ``ConfigError`` naming it if none is."""
    directory = checkpoint_directory()
    candidates = [checkpoint_file_name(weights) for weights in spec.weights]
    for file_name in candidates:
        if (directory / file_name).is_file():
            return directory / file_name
    alternatives = f" (also accepted: {', '.join(candidates[1:])})" if len(candidates) > 1 else ""
    raise ConfigError(
        f"pretrained_backbone=True needs the ImageNet weights file {candidates[0]}{alternatives} in "
        f"{directory}, and seglab never downloads. Copy it there from a machine with internet "
        f"(URL: {next(weights.url for weights in spec.weights)}), point TORCH_HOME at a folder whose checkpoints/ "
        f"holds it, or use pretrained_backbone=False."
    )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` (``weights_only=True``), unwrapping common nesting.

    Accepts a bare state dict, one nested under ``model_state_dict``/``state_dict``/``model``,
    and strips the ``module.`` prefix that ``DataParallel`` adds.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"weights file {path} does not exist; check weights_path")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        raise ConfigError(f"cannot read weights file {path}: {error}. Is it a PyTorch state dict?") from error
    for key in NESTED_STATE_KEYS:
        if isinstance(content, Mapping) and isinstance(content.get(key), Mapping):
            content = content[key]
            break
    if not isinstance(content, Mapping) or not all(isinstance(value, torch.Tensor) for value in content.values()):
        raise ConfigError(f"weights file {path} does not hold a state dict (a mapping of names to tensors)")
    return {key.removeprefix("module."): value for key, value in content.items()}


@dataclass
class KeyReport:
    """How a state dict's keys line up with a module's."""

    missing: list[str]
    unexpected: list[str]
    mismatched: list[str]  # "key: file (a, b) vs model (c, d)"

    @property
    def matches(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        parts = []
        labelled = (("missing", self.missing), ("unexpected", self.unexpected), ("wrong shape", self.mismatched))
        for label, keys in labelled:
            if keys:
                shown = ", ".join(keys[:SHOWN_KEYS]) + (", ..." if len(keys) > SHOWN_KEYS else "")
                parts.append(f"{len(keys)} {label} ({shown})")
        return "; ".join(parts) if parts else "all keys match"


def compare_keys(module: nn.Module, state: Mapping[str, torch.Tensor]) -> KeyReport:
    """Missing / unexpected / wrong-shape keys of ``state`` against ``module.state_dict()``."""
    expected = module.state_dict()
    mismatched = [
        f"{key}: file {tuple(state[key].shape)} vs model {tuple(value.shape)}"
        for key, value in expected.items()
        if key in state and state[key].shape != value.shape
    ]
    return KeyReport(
        missing=sorted(set(expected) - set(state)),
        unexpected=sorted(set(state) - set(expected)),
        mismatched=mismatched,
    )


def backbone_state(state: Mapping[str, torch.Tensor], spec: BackboneWeights | None) -> dict[str, torch.Tensor]:
    """A classification checkpoint's encoder part, keyed like the segmentation encoder."""
    if spec is None:
        return dict(state)
    return {
        key.removeprefix(spec.key_prefix): value
        for key, value in state.items()
        if key.startswith(spec.key_prefix) and not key.startswith(spec.classifier_prefixes)
    }


def load_pretrained_backbone(model: SegmentationModel) -> Path:
    """Load ImageNet weights for ``model``'s encoder from torchvision's cache; returns the file used."""
    if model.backbone_weights is None:
        raise ConfigError(f"model {model.name!r} has no torchvision backbone; use pretrained_backbone=False")
    path = find_backbone_checkpoint(model.backbone_weights)
    state = backbone_state(read_state_dict(path), model.backbone_weights)
    report = compare_keys(model.encoder_module(), state)
    if not report.matches:
        raise ConfigError(f"{path} does not fit the encoder of {model.name!r}: {report.summary()}")
    model.encoder_module().load_state_dict(state)
    return path


def load_weights_file(model: SegmentationModel, path: str | Path) -> str:
    """Load a local state dict into the whole model or, failing that, into its encoder.

    Returns ``"model"`` or ``"encoder"``. Loading is strict: when neither fits exactly, the
    ``ConfigError`` lists the missing, unexpected and wrong-shape keys of the closer fit.
    """
    state = read_state_dict(path)
    model_report = compare_keys(model, state)
    if model_report.matches:
        model.load_state_dict(state)
        return "model"
    encoder_state = backbone_state(state, model.backbone_weights)
    encoder_report = compare_keys(model.encoder_module(), encoder_state)
    if encoder_report.matches:
        model.encoder_module().load_state_dict(encoder_state)
        return "encoder"
    model_overlap = len(set(state) & set(model.state_dict()))
    encoder_overlap = len(set(encoder_state) & set(model.encoder_module().state_dict()))
    if model_overlap >= encoder_overlap:
        closer = f"as a full {model.name!r} state dict: {model_report.summary()}"
    else:
        closer = f"as a state dict of the {model.name!r} encoder: {encoder_report.summary()}"
    raise ConfigError(
        f"weights file {path} fits neither the model nor its encoder; {closer}. "
        f"Check that it was saved from the same architecture, num_classes and options."
    )
