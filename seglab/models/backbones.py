"""torchvision classification networks turned into dilated feature extractors for DeepLab.

Every backbone returns ``{"low": stride-4 features, "aux": stride-16/8 features, "out": final
features}`` at the requested output stride (8, 16 or 32).

Output stride is set with :func:`dilate_stage` for all backbones, not torchvision's
``replace_stride_with_dilation``: ResNet-18's ``BasicBlock`` raises on dilation > 1 and
MobileNetV3 only offers stride 16, while removing a stage's stride and dilating its 3x3 convs
works for all three (weights are unchanged, so ImageNet checkpoints still fit).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torchvision.models import (
    MobileNet_V3_Large_Weights,
    ResNet18_Weights,
    ResNet50_Weights,
    mobilenet_v3_large,
    resnet18,
    resnet50,
)
from torchvision.models._utils import IntermediateLayerGetter

from seglab.models.base import check_choice
from seglab.models.pretrained import BackboneWeights

BACKBONES = ("resnet18", "resnet50", "mobilenet_v3_large")
OUTPUT_STRIDES = (8, 16, 32)
# ASPP rates from the DeepLabV3 paper (6, 12, 18 at stride 16), scaled with the feature map size.
ATROUS_RATES = {8: (12, 24, 36), 16: (6, 12, 18), 32: (3, 6, 9)}


@dataclass
class Backbone:
    """A feature extractor plus what the heads and the weight loader need to know about it."""

    body: IntermediateLayerGetter  # returns {"low", "aux", "out"}
    channels: dict[str, int]  # channels of each returned feature map
    weights: BackboneWeights  # which ImageNet checkpoint fits ``body``


def dilate_stage(stage: nn.Module, dilation: int) -> None:
    """Remove a stage's stride and dilate its kxk convs, in place (DeepLab's atrous trick).

    Padding grows with the dilation, so each conv keeps its output size.
    """
    for conv in stage.modules():
        if isinstance(conv, nn.Conv2d):
            conv.stride = (1, 1)
            if conv.kernel_size[0] > 1:
                conv.dilation = (dilation, dilation)
                conv.padding = ((conv.kernel_size[0] - 1) // 2 * dilation, (conv.kernel_size[1] - 1) // 2 * dilation)


def output_channels(module: nn.Module) -> int:
    """Channels a ResNet stage or MobileNet block produces (its last BatchNorm's width)."""
    norms = [layer for layer in module.modules() if isinstance(layer, nn.BatchNorm2d)]
    return norms[-1].num_features


def dilate_to_output_stride(stages: list[nn.Module], output_stride: int) -> None:
    """Dilate the stride-16 and stride-32 stages (``stages[0]``, ``stages[1]``) as needed."""
    if output_stride == 8:
        dilate_stage(stages[0], 2)
        dilate_stage(stages[1], 4)
    elif output_stride == 16:
        dilate_stage(stages[1], 2)


def build_resnet(name: str, output_stride: int) -> Backbone:
    """ResNet-18/50 features: low = layer1 (stride 4), aux = layer3, out = layer4."""
    network, weights = (resnet18, ResNet18_Weights) if name == "resnet18" else (resnet50, ResNet50_Weights)
    trunk = network(weights=None)
    dilate_to_output_stride([trunk.layer3, trunk.layer4], output_stride)
    return Backbone(
        body=IntermediateLayerGetter(trunk, return_layers={"layer1": "low", "layer3": "aux", "layer4": "out"}),
        channels={
            "low": output_channels(trunk.layer1),
            "aux": output_channels(trunk.layer3),
            "out": output_channels(trunk.layer4),
        },
        weights=BackboneWeights(weights),
    )


def build_mobilenet_v3_large(output_stride: int) -> Backbone:
    """MobileNetV3-Large features, positions chosen like torchvision's segmentation models."""
    features = mobilenet_v3_large(weights=None).features
    # Blocks that start a new stride (C1..C4, at strides 4, 8, 16, 32), as torchvision marks them.
    stage_starts = [index for index, block in enumerate(features) if getattr(block, "_is_cn", False)]
    dilate_to_output_stride([features[stage_starts[2] : stage_starts[3]], features[stage_starts[3] :]], output_stride)
    low, aux, out = stage_starts[1] - 1, stage_starts[1], len(features) - 1
    return Backbone(
        body=IntermediateLayerGetter(features, return_layers={str(low): "low", str(aux): "aux", str(out): "out"}),
        channels={
            "low": output_channels(features[low]),
            "aux": output_channels(features[aux]),
            "out": output_channels(features[out]),
        },
        weights=BackboneWeights(
            MobileNet_V3_Large_Weights, key_prefix="features.", classifier_prefixes=("classifier.",)
        ),
    )


def build_backbone(name: str, output_stride: int = 16) -> Backbone:
    """A randomly initialised ``name`` backbone at ``output_stride`` (8, 16 or 32)."""
    check_choice("backbone", name, BACKBONES)
    check_choice("output_stride", output_stride, OUTPUT_STRIDES)
    if name == "mobilenet_v3_large":
        return build_mobilenet_v3_large(output_stride)
    return build_resnet(name, output_stride)
