"""ResUNet-lite (the photo recipe's model): shapes, residual init, determinism, and that thin lines are learnable."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F
from torchvision.models.resnet import BasicBlock

from seglab.errors import ConfigError
from seglab.metrics.confusion import ConfusionMatrix
from seglab.models import build_model
from seglab.models.res_unet import ResUNet


@pytest.mark.parametrize(("height", "width"), [(64, 64), (37, 53), (360 // 4, 480 // 4)])
def test_output_matches_any_input_size_with_and_without_context(height, width) -> None:
    for options in ({}, {"context": False, "blocks": 1}, {"aux": True}):
        model = build_model("res_unet", 4, **options).eval()
        with torch.no_grad():
            outputs = model(torch.randn(1, 3, height, width))
        assert outputs["out"].shape == (1, 4, height, width)
        assert ("aux" in outputs) == bool(options.get("aux"))


def test_residual_branches_start_at_zero_so_blocks_begin_as_identities() -> None:
    model = ResUNet(3)
    blocks = [module for module in model.modules() if isinstance(module, BasicBlock)]
    assert len(blocks) == 1 + 3 * 2  # one block at stride 4, two at strides 8, 16 and 32
    assert all(torch.count_nonzero(block.bn2.weight) == 0 for block in blocks)
    identity_block = blocks[-1].eval()  # no downsample: output = relu(x + BN bias), the bias ~1e-4
    features = torch.rand(1, identity_block.conv1.in_channels, 4, 4)
    assert torch.allclose(identity_block(features), features, atol=1e-3)


def test_same_seed_same_weights_and_width_options_are_checked() -> None:
    torch.manual_seed(3)
    first = build_model("res_unet", 5)
    torch.manual_seed(3)
    second = build_model("res_unet", 5)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    with pytest.raises(ConfigError, match="blocks"):
        build_model("res_unet", 5, blocks=0)
    with pytest.raises(ConfigError, match="must be int"):
        build_model("res_unet", 5, blocks="2")


def test_learns_a_two_pixel_line_that_a_stride_8_output_would_blur() -> None:
    """Thin classes (poles, sign posts) need the stride-2 decoder level: a 2 px line must reach IoU > 0.5."""
    torch.manual_seed(0)
    images = torch.rand(8, 3, 48, 48) * 0.2
    masks = torch.zeros(8, 48, 48, dtype=torch.long)
    for index in range(8):
        column = 6 + 4 * index
        images[index, :, :, column : column + 2] += 0.6
        masks[index, :, column : column + 2] = 1
    model = build_model("res_unet", 2, base_width=8, blocks=1)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-2)
    for _ in range(60):
        loss = F.cross_entropy(model(images)["out"], masks, weight=torch.tensor([1.0, 10.0]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model(images)["out"].argmax(1)
    matrix = ConfusionMatrix(2)
    matrix.update(predicted, masks)
    assert matrix.compute().iou[1] > 0.5
