"""UNet (Ronneberger et al., 2015) with BatchNorm, for any input size.

Encoder: a stem then ``depth`` stages of 2x2 max-pool + two 3x3 conv-BN-ReLU, doubling the width.
Decoder: ``depth`` stages of upsample + concat with the matching encoder feature + two convs.
Pooling uses ``ceil_mode`` so no row or column is dropped on odd sizes; each upsampled map is then
cropped to its skip connection's size, which makes every input size work without padding the image.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from seglab.models.base import SegmentationModel, check_choice, check_positive, resize_logits
from seglab.models.initialization import initialize_kaiming

UPSAMPLING_MODES = ("bilinear", "transposed")


def conv_bn_relu(in_channels: int, out_channels: int, *, stride: int = 1, separable: bool = False) -> nn.Sequential:
    """3x3 conv (or depthwise 3x3 + pointwise 1x1 when ``separable``) -> BatchNorm -> ReLU."""
    if separable:
        convolution: list[nn.Module] = [
            nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
        ]
    else:
        convolution = [nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)]
    return nn.Sequential(*convolution, nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class ConvBlock(nn.Sequential):
    """UNet's "double conv": two conv-BN-ReLU layers."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, separable: bool = False) -> None:
        super().__init__(
            conv_bn_relu(in_channels, out_channels, stride=stride, separable=separable),
            conv_bn_relu(out_channels, out_channels, separable=separable),
        )


class DownStage(nn.Sequential):
    """Halve the resolution (rounding up), then a ConvBlock."""

    def __init__(self, in_channels: int, out_channels: int, *, separable: bool) -> None:
        super().__init__(
            nn.MaxPool2d(2, ceil_mode=True),
            ConvBlock(in_channels, out_channels, separable=separable),
        )


def match_size(features: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Crop or zero-pad ``features`` at the bottom/right to ``reference``'s height and width.

    With ceil-mode pooling the extra row/column of a coarse map covers the bottom/right edge, so
    the surplus after upsampling is always there; top-left stays aligned.
    """
    height, width = reference.shape[-2:]
    features = features[..., :height, :width]
    missing_height, missing_width = height - features.shape[-2], width - features.shape[-1]
    if missing_height or missing_width:
        features = F.pad(features, (0, missing_width, 0, missing_height))
    return features


class UpStage(nn.Module):
    """Upsample x2, align to the skip connection, concatenate, ConvBlock."""

    def __init__(
        self, in_channels: int, skip_channels: int, out_channels: int, *, upsampling: str, separable: bool
    ) -> None:
        super().__init__()
        self.upsampling = upsampling
        if upsampling == "transposed":
            self.upsample: nn.Module = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
            merged_channels = out_channels + skip_channels
        else:
            self.upsample = nn.Identity()  # bilinear has no weights; resized in forward
            merged_channels = in_channels + skip_channels
        self.block = ConvBlock(merged_channels, out_channels, separable=separable)

    def forward(self, features: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.upsampling == "transposed":
            features = match_size(self.upsample(features), skip)
        else:
            features = F.interpolate(features, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(torch.cat([skip, features], dim=1))


class UNetEncoder(nn.Module):
    """Stem + ``depth`` DownStages; returns every level's features, finest first."""

    def __init__(self, widths: list[int], *, stem_stride: int, separable: bool) -> None:
        super().__init__()
        # The stem always uses full convs: a depthwise conv over 3 RGB channels can barely mix colours.
        stem = ConvBlock(3, widths[0], stride=stem_stride)
        downs = [DownStage(widths[i], widths[i + 1], separable=separable) for i in range(len(widths) - 1)]
        self.stages = nn.ModuleList([stem, *downs])

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        features = []
        x = images
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class UNet(SegmentationModel):
    """UNet with BatchNorm and CSAIL Kaiming init; works for any input size.

    Args:
        num_classes: K output channels.
        base_width: channels of the first level; level ``i`` has ``base_width * 2**i``.
        depth: number of downsamplings (the bottleneck is at stride ``2**depth * stem_stride``).
        upsampling: ``"bilinear"`` (parameter-free resize) or ``"transposed"`` (learned 2x2 deconv).
        aux: add a deep-supervision head on the bottleneck (``"aux"`` output, upsampled to the input).
        separable: depthwise-separable 3x3 convs after the stem (fewer FLOPs, fewer parameters).
        stem_stride: 2 runs the whole network at half resolution (about 4x cheaper) and upsamples
            the logits; 1 keeps a full-resolution level.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        base_width: int = 32,
        depth: int = 4,
        upsampling: str = "bilinear",
        aux: bool = False,
        separable: bool = False,
        stem_stride: int = 1,
    ) -> None:
        super().__init__(num_classes)
        check_positive("base_width", base_width)
        check_positive("depth", depth)
        check_choice("upsampling", upsampling, UPSAMPLING_MODES)
        check_choice("stem_stride", stem_stride, (1, 2))
        widths = [base_width * 2**level for level in range(depth + 1)]
        self.encoder = UNetEncoder(widths, stem_stride=stem_stride, separable=separable)
        self.decoder = nn.ModuleList(
            UpStage(widths[level + 1], widths[level], widths[level], upsampling=upsampling, separable=separable)
            for level in reversed(range(depth))
        )
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)
        self.aux_classifier = (
            nn.Sequential(conv_bn_relu(widths[-1], widths[-2]), nn.Conv2d(widths[-2], num_classes, 1)) if aux else None
        )
        initialize_kaiming(self)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.encoder(images)
        x = features[-1]
        for stage, skip in zip(self.decoder, reversed(features[:-1])):
            x = stage(x, skip)
        result = {"out": resize_logits(self.classifier(x), images.shape[-2:])}
        if self.aux_classifier is not None:
            result["aux"] = resize_logits(self.aux_classifier(features[-1]), images.shape[-2:])
        return result

    def encoder_module(self) -> nn.Module:
        return self.encoder

    def classifier_layers(self) -> list[nn.Module]:
        layers: list[nn.Module] = [self.classifier]
        if self.aux_classifier is not None:
            layers.append(self.aux_classifier[-1])
        return layers
