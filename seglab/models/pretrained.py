"""ImageNet backbone weights and local weight files.

Loading reads local files only: torchvision's hub cache (``torch.hub.get_dir()/checkpoints``,
which honours ``TORCH_HOME``) or a path the user gives. :func:`fetch_backbone_checkpoint` is the
one function that touches the network: it downloads a missing ImageNet checkpoint through
torchvision's own weights API, and only runs when a training run asks for ``pretrained="imagenet"``.
Offline, its error names the file, its size, its URL and the folder to copy it into.
"""

from __future__ import annotations

import http.client
import pickle
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.error import URLError
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


def checkpoint_size(weights: WeightsEnum) -> str:
    """The download size from torchvision's weights metadata, e.g. ``"44.7 MB"`` (``"size unknown"`` if absent)."""
    size = weights.meta.get("_file_size")
    return f"{size:.1f} MB" if isinstance(size, (int, float)) else "size unknown"


def download_weights(spec: BackboneWeights) -> WeightsEnum:
    """The member of ``spec.weights`` that is downloaded: the first (IMAGENET1K_V1), as torchvision's
    segmentation builders use for their backbones."""
    return next(member for member in spec.weights)


def cached_backbone_checkpoint(spec: BackboneWeights) -> Path | None:
    """The first of ``spec.weights``' files present in the hub cache, or ``None``."""
    directory = checkpoint_directory()
    for weights in spec.weights:
        if (directory / checkpoint_file_name(weights)).is_file():
            return directory / checkpoint_file_name(weights)
    return None


def copy_instructions(spec: BackboneWeights) -> str:
    """Where to get the ImageNet file for ``spec`` and where to put it, for error messages."""
    weights = download_weights(spec)
    others = [checkpoint_file_name(member) for member in spec.weights if member is not weights]
    alternatives = f" (also accepted: {', '.join(others)})" if others else ""
    return (
        f"On a machine with internet, download {weights.url} ({checkpoint_size(weights)}) and copy "
        f"{checkpoint_file_name(weights)}{alternatives} into {checkpoint_directory()} (torch's hub cache; "
        "with TORCH_HOME set, that is $TORCH_HOME/hub/checkpoints)"
    )


def find_backbone_checkpoint(spec: BackboneWeights) -> Path:
    """The cached ImageNet file for ``spec``; ``ConfigError`` naming it and its folder if it is absent."""
    path = cached_backbone_checkpoint(spec)
    if path is None:
        raise ConfigError(
            f"pretrained_backbone=True reads the ImageNet weights file {checkpoint_file_name(download_weights(spec))} "
            f"from {checkpoint_directory()} and never downloads it. {copy_instructions(spec)}, or let "
            "`seglab train --pretrained imagenet` fetch it once, or use pretrained_backbone=False."
        )
    return path


# Errors that mean "no network" (DNS failure, refused or reset connection, timeout, proxy/HTTP trouble).
NETWORK_ERRORS = (URLError, socket.timeout, socket.gaierror, ConnectionError, TimeoutError, http.client.HTTPException)


def fetch_backbone_checkpoint(
    spec: BackboneWeights, *, report: Callable[[str], None] | None = None, progress_bar: bool = False
) -> Path:
    """The ImageNet file for ``spec`` in the hub cache, downloading it first if it is absent.

    A cached file is used as it is, without any network access. Otherwise the first member of
    ``spec.weights`` is fetched with torchvision's ``WeightsEnum.get_state_dict`` (``torch.hub``:
    SHA-256 prefix checked as torchvision does, written to a temporary file that is moved into place
    only once complete, so an interrupted download never leaves a file that later loads). ``report``
    receives a message before and after the download; ``progress_bar`` shows torch hub's tqdm bar
    on stderr. Offline, a ``ConfigError`` says which file to copy where.
    """
    cached = cached_backbone_checkpoint(spec)
    if cached is not None:
        return cached
    weights = download_weights(spec)
    name, directory = checkpoint_file_name(weights), checkpoint_directory()
    say = report or (lambda message: None)
    say(f"Downloading ImageNet weights {name} ({checkpoint_size(weights)}) into {directory}, once: later runs reuse it")
    try:
        weights.get_state_dict(progress=progress_bar, check_hash=True, weights_only=True)
    except NETWORK_ERRORS as error:
        raise ConfigError(
            f"cannot download the ImageNet weights {name} ({error}); is this machine offline? "
            f"{copy_instructions(spec)}. Or train from scratch with --pretrained none."
        ) from None
    except (RuntimeError, OSError, pickle.UnpicklingError, EOFError) as error:
        path = directory / name
        if not path.exists():  # torch hub's "invalid hash value" or a full disk: the partial file is already gone
            raise ConfigError(
                f"downloading {weights.url} into {directory} failed ({error}); nothing was kept. Try again, "
                f"or: {copy_instructions(spec)}."
            ) from None
        raise ConfigError(
            f"the downloaded ImageNet weights {path} cannot be read ({error}); delete it and try again"
        ) from None
    path = directory / name
    say(f"Downloaded {name} into {directory}")
    return path


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


def checkpoint_status(spec: BackboneWeights) -> str:
    """One line for the app: whether ``spec``'s ImageNet file is cached or will be downloaded once (and its size)."""
    cached = cached_backbone_checkpoint(spec)
    if cached is not None:
        return f"Already cached: {cached.name} in {cached.parent} (no download)."
    weights = download_weights(spec)
    return (
        f"Downloads {checkpoint_file_name(weights)} ({checkpoint_size(weights)}) once into "
        f"{checkpoint_directory()} when the run starts; later runs reuse it."
    )
