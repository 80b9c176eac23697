"""ResUNet-lite: a CPU-efficient encoder-decoder for photos (road scenes, indoor, VOC-like).

Why this shape: on a laptop CPU the cost of a convolution is its resolution times its channels, so
the full- and half-resolution levels are kept thin (16 channels) and the capacity sits at strides
8-32, where it is cheap and sees the whole object. The encoder is torchvision's ResNet
``BasicBlock`` (residual blocks train quickly from scratch), a pyramid pooling module (PSPNet)
gives the deepest level image-wide context (a road is below the sky), and the decoder adds
projected skip connections top-down (FPN/LinkNet style: cheaper than UNet's concatenation) back to
stride 2, so thin classes such as poles and signs keep their few pixels.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.resnet import BasicBlock

from seglab.models.base import SegmentationModel, check_positive, resize_logits
from seglab.models.initialization import initialize_kaiming
from seglab.models.unet import conv_bn_relu

POOL_SIZES = (1, 2, 3, 6)  # PSPNet's pyramid bins


def residual_stage(in_channels: int, out_channels: int, blocks: int) -> nn.Sequential:
    """``blocks`` BasicBlocks; the first halves the resolution (1x1 strided projection on the shortcut)."""
    shortcut = nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False), nn.BatchNorm2d(out_channels)
    )
    layers = [BasicBlock(in_channels, out_channels, stride=2, downsample=shortcut)]
    layers += [BasicBlock(out_channels, out_channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling: average-pool to 1, 2, 3, 6 bins, project, upsample, concatenate, fuse."""

    def __init__(self, channels: int, out_channels: int) -> None:
        super().__init__()
        branch = max(channels // len(POOL_SIZES), 8)
        self.branches = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(size), nn.Conv2d(channels, branch, 1, bias=False), nn.ReLU(inplace=True))
            for size in POOL_SIZES
        )
        self.fuse = conv_bn_relu(channels + branch * len(POOL_SIZES), out_channels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        size = features.shape[-2:]
        pooled = [
            F.interpolate(branch(features), size=size, mode="bilinear", align_corners=False) for branch in self.branches
        ]
        return self.fuse(torch.cat([features, *pooled], dim=1))


class TopDownStage(nn.Module):
    """Upsample to the skip's size, add the skip projected to this width, then one 3x3 conv."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, out_channels, 1, bias=False) if in_channels != out_channels else None
        self.lateral = nn.Sequential(
            nn.Conv2d(skip_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.block = conv_bn_relu(out_channels, out_channels)

    def forward(self, features: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.reduce is not None:
            features = self.reduce(features)  # on the coarse map: 4x cheaper than after upsampling
        features = F.interpolate(features, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(features + self.lateral(skip))


class ResUNet(SegmentationModel):
    """Residual encoder (strides 2-32), pyramid pooling, additive top-down decoder to stride 2.

    Args:
        num_classes: K output channels.
        base_width: channels at stride 2; stride ``2**(i+1)`` has ``base_width * 2**i``.
        blocks: residual blocks in each of the encoder stages at strides 8, 16 and 32 (stride 4 has one).
        context: add the pyramid pooling module on the deepest features.
        aux: a deep-supervision head on the stride-16 features (``"aux"`` output).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        base_width: int = 16,
        blocks: int = 2,
        context: bool = True,
        aux: bool = False,
    ) -> None:
        super().__init__(num_classes)
        check_positive("base_width", base_width)
        check_positive("blocks", blocks)
        widths = [base_width * 2**level for level in range(5)]
        self.stem = nn.Sequential(conv_bn_relu(3, widths[0], stride=2), conv_bn_relu(widths[0], widths[0]))
        self.stages = nn.ModuleList(residual_stage(widths[i], widths[i + 1], 1 if i == 0 else blocks) for i in range(4))
        self.context = PyramidPooling(widths[4], widths[4]) if context else nn.Identity()
        self.decoder = nn.ModuleList(TopDownStage(widths[i + 1], widths[i], widths[i]) for i in reversed(range(4)))
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)
        self.aux_classifier = (
            nn.Sequential(conv_bn_relu(widths[3], widths[2]), nn.Conv2d(widths[2], num_classes, 1)) if aux else None
        )
        initialize_kaiming(self)
        for block in self.modules():
            if isinstance(block, BasicBlock):  # each residual branch starts at zero: blocks begin as identities
                nn.init.zeros_(block.bn2.weight)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = [self.stem(images)]
        for stage in self.stages:
            features.append(stage(features[-1]))
        x = self.context(features[-1])
        for stage, skip in zip(self.decoder, reversed(features[:-1])):
            x = stage(x, skip)
        result = {"out": resize_logits(self.classifier(x), images.shape[-2:])}
        if self.aux_classifier is not None:
            result["aux"] = resize_logits(self.aux_classifier(features[3]), images.shape[-2:])
        return result

    def encoder_module(self) -> nn.Module:
        return nn.ModuleList([self.stem, self.stages])

    def classifier_layers(self) -> list[nn.Module]:
        layers: list[nn.Module] = [self.classifier]
        if self.aux_classifier is not None:
            layers.append(self.aux_classifier[-1])
        return layers
