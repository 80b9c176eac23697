"""DeepLabV3 and DeepLabV3+ on ResNet-18/50 and MobileNetV3-Large, from torchvision's pieces.

DeepLabV3 (Chen et al., 2017): dilated backbone -> ASPP head (torchvision ``DeepLabHead``) ->
bilinear upsampling. DeepLabV3+ (Chen et al., 2018) adds a decoder that fuses the ASPP output
with stride-4 backbone features to sharpen boundaries. Both can carry torchvision's ``FCNHead``
on the stride-16 features as an auxiliary (deep-supervision) classifier.

Module names follow torchvision (``backbone``, ``classifier``, ``aux_classifier``), so a
torchvision DeepLabV3 checkpoint with matching classes loads through ``weights_path``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.segmentation.deeplabv3 import ASPP, DeepLabHead
from torchvision.models.segmentation.fcn import FCNHead

from seglab.models.backbones import ATROUS_RATES, build_backbone
from seglab.models.base import SegmentationModel, resize_logits
from seglab.models.initialization import initialize_kaiming

ASPP_CHANNELS = 256
LOW_LEVEL_CHANNELS = 48  # DeepLabV3+ paper: fewer low-level channels than ASPP so they don't dominate


class _DeepLab(SegmentationModel):
    """What DeepLabV3 and DeepLabV3+ share: a dilated backbone, a main head and an optional FCN auxiliary head."""

    backbone: nn.Module
    aux_classifier: nn.Sequential | None

    def main_logits(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """The main head's logits from the backbone's features, before upsampling."""
        raise NotImplementedError

    def main_classifier(self) -> nn.Module:
        """The main head's last layer (features -> class logits)."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(images)
        result = {"out": resize_logits(self.main_logits(features), images.shape[-2:])}
        if self.aux_classifier is not None:
            result["aux"] = resize_logits(self.aux_classifier(features["aux"]), images.shape[-2:])
        return result

    def encoder_module(self) -> nn.Module:
        return self.backbone

    def classifier_layers(self) -> list[nn.Module]:
        layers: list[nn.Module] = [self.main_classifier()]
        if self.aux_classifier is not None:
            layers.append(self.aux_classifier[-1])
        return layers


class DeepLabV3(_DeepLab):
    """DeepLabV3: dilated backbone + ASPP, optional FCN auxiliary head.

    Args:
        num_classes: K output channels.
        backbone: ``"resnet18"``, ``"resnet50"`` or ``"mobilenet_v3_large"``.
        output_stride: 8 (sharper, ~4x the backbone cost of 16), 16 or 32 (cheapest).
        aux: add torchvision's ``FCNHead`` on the stride-16 features as ``"aux"`` output.

    Output stride works for every backbone, ResNet-18 included (see :mod:`seglab.models.backbones`).
    Train with batches of 2 or more: ASPP's image-pooling BatchNorm sees one value per channel
    per image, which PyTorch refuses in train mode.
    """

    def __init__(
        self, num_classes: int, *, backbone: str = "resnet50", output_stride: int = 16, aux: bool = True
    ) -> None:
        super().__init__(num_classes)
        features = build_backbone(backbone, output_stride)
        self.backbone = features.body
        self.classifier = DeepLabHead(features.channels["out"], num_classes, ATROUS_RATES[output_stride])
        self.aux_classifier = FCNHead(features.channels["aux"], num_classes) if aux else None
        self.backbone_weights = features.weights
        initialize_kaiming(self.classifier)
        if self.aux_classifier is not None:
            initialize_kaiming(self.aux_classifier)

    def main_logits(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.classifier(features["out"])

    def main_classifier(self) -> nn.Module:
        return self.classifier[-1]


class DeepLabV3PlusDecoder(nn.Module):
    """Fuse upsampled ASPP features with projected stride-4 features, then classify."""

    def __init__(self, low_channels: int, num_classes: int) -> None:
        super().__init__()
        self.project_low = nn.Sequential(
            nn.Conv2d(low_channels, LOW_LEVEL_CHANNELS, 1, bias=False),
            nn.BatchNorm2d(LOW_LEVEL_CHANNELS),
            nn.ReLU(inplace=True),
        )
        self.fuse = nn.Sequential(
            nn.Conv2d(ASPP_CHANNELS + LOW_LEVEL_CHANNELS, ASPP_CHANNELS, 3, padding=1, bias=False),
            nn.BatchNorm2d(ASPP_CHANNELS),
            nn.ReLU(inplace=True),
            nn.Conv2d(ASPP_CHANNELS, ASPP_CHANNELS, 3, padding=1, bias=False),
            nn.BatchNorm2d(ASPP_CHANNELS),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Conv2d(ASPP_CHANNELS, num_classes, 1)

    def forward(self, context: torch.Tensor, low_level: torch.Tensor) -> torch.Tensor:
        """``context`` (N, 256, h, w) ASPP output, ``low_level`` (N, C, H/4, W/4) -> logits at H/4."""
        low_level = self.project_low(low_level)
        context = F.interpolate(context, size=low_level.shape[-2:], mode="bilinear", align_corners=False)
        return self.classifier(self.fuse(torch.cat([context, low_level], dim=1)))


class DeepLabV3Plus(_DeepLab):
    """DeepLabV3+: DeepLabV3's ASPP encoder plus a stride-4 decoder.

    Args: as :class:`DeepLabV3`.
    """

    def __init__(
        self, num_classes: int, *, backbone: str = "resnet50", output_stride: int = 16, aux: bool = True
    ) -> None:
        super().__init__(num_classes)
        features = build_backbone(backbone, output_stride)
        self.backbone = features.body
        self.aspp = ASPP(features.channels["out"], ATROUS_RATES[output_stride], ASPP_CHANNELS)
        self.decoder = DeepLabV3PlusDecoder(features.channels["low"], num_classes)
        self.aux_classifier = FCNHead(features.channels["aux"], num_classes) if aux else None
        self.backbone_weights = features.weights
        for head in (self.aspp, self.decoder, self.aux_classifier):
            if head is not None:
                initialize_kaiming(head)

    def main_logits(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.decoder(self.aspp(features["out"]), features["low"])

    def main_classifier(self) -> nn.Module:
        return self.decoder.classifier
