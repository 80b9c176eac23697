"""Weight initialisation for the layers seglab creates itself (torchvision backbones init their own)."""

from __future__ import annotations

from torch import nn

BATCHNORM_BIAS_INIT = 1e-4  # CSAILVision semantic-segmentation-pytorch `weights_init`


def initialize_kaiming(module: nn.Module) -> None:
    """CSAIL-style init of every conv / BatchNorm inside ``module``, in place.

    Conv and transposed-conv weights get ``kaiming_normal_`` (He et al., ReLU gain), conv biases
    zero; BatchNorm weights 1 and biases 1e-4, so every ReLU after a BN starts slightly open.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(layer.weight)
            nn.init.constant_(layer.bias, BATCHNORM_BIAS_INIT)
