"""torchvision's own segmentation networks (FCN, LR-ASPP) behind the SegmentationModel interface.

They are built with ``weights=None, weights_backbone=None`` (nothing is downloaded) and kept whole
as ``self.network``, with torchvision's own initialisation; only ImageNet backbone weights can be
added, from a local file.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.models import MobileNet_V3_Large_Weights, ResNet50_Weights
from torchvision.models.segmentation import fcn_resnet50, lraspp_mobilenet_v3_large

from seglab.models.base import SegmentationModel
from seglab.models.pretrained import BackboneWeights


class TorchvisionSegmentation(SegmentationModel):
    """Shared part: ``self.network`` already returns ``{"out"[, "aux"]}`` at the input size."""

    network: Any  # a torchvision segmentation model; torchvision ships no type information

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(self.network(images))

    def encoder_module(self) -> nn.Module:
        return self.network.backbone


class FCN(TorchvisionSegmentation):
    """torchvision ``fcn_resnet50`` (Long et al., 2015; dilated ResNet-50 at output stride 8).

    Args:
        num_classes: K output channels.
        aux: keep torchvision's auxiliary ``FCNHead`` on layer3 (``"aux"`` output).
    """

    def __init__(self, num_classes: int, *, aux: bool = True) -> None:
        super().__init__(num_classes)
        self.network = fcn_resnet50(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=aux)
        self.backbone_weights = BackboneWeights(ResNet50_Weights)

    def classifier_layers(self) -> list[nn.Module]:
        layers: list[nn.Module] = [self.network.classifier[-1]]
        if self.network.aux_classifier is not None:
            layers.append(self.network.aux_classifier[-1])
        return layers


class LRASPP(TorchvisionSegmentation):
    """torchvision ``lraspp_mobilenet_v3_large`` (Howard et al., 2019): light, no auxiliary head.

    Args:
        num_classes: K output channels.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__(num_classes)
        self.network = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes)
        self.backbone_weights = BackboneWeights(
            MobileNet_V3_Large_Weights, key_prefix="features.", classifier_prefixes=("classifier.",)
        )

    def classifier_layers(self) -> list[nn.Module]:
        # LR-ASPP sums two classifiers (stride-8 and stride-16 branches): both are final layers.
        return [self.network.classifier.low_classifier, self.network.classifier.high_classifier]
