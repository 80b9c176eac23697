"""Tests for seglab.models: registry, interface contract, UNet correctness, backbones, weight loading."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models import mobilenet_v3_large, resnet18

from seglab.errors import ConfigError
from seglab.models import DEFAULT_MODEL, SegmentationModel, available_models, build_model, model_options
from seglab.models.backbones import build_backbone
from seglab.models.initialization import BATCHNORM_BIAS_INIT
from seglab.models.pretrained import backbone_state, checkpoint_file_name
from seglab.models.unet import UNet

NUM_CLASSES = 5
HEAVY_MODELS = {"deeplabv3_resnet50", "deeplabv3plus_resnet50", "fcn_resnet50"}
MODELS_WITH_AUX_BY_DEFAULT = {
    "deeplabv3_resnet18",
    "deeplabv3_resnet50",
    "deeplabv3plus_resnet18",
    "deeplabv3plus_resnet50",
    "fcn_resnet50",
}
EXPECTED_NAMES = {
    "tiny_unet",
    "unet",
    "deeplabv3_resnet18",
    "deeplabv3_resnet50",
    "deeplabv3_mobilenet_v3_large",
    "deeplabv3plus_resnet18",
    "deeplabv3plus_resnet50",
    "deeplabv3plus_mobilenet_v3_large",
    "fcn_resnet50",
    "lraspp_mobilenet_v3_large",
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class BuiltModels(dict):
    """Registry models with default options, each built on first use and then kept (ResNet-50s take a while)."""

    def __missing__(self, name: str) -> SegmentationModel:
        torch.manual_seed(0)
        self[name] = build_model(name, NUM_CLASSES)
        return self[name]


@pytest.fixture(scope="module")
def built_models() -> BuiltModels:
    """Every registry model by name, built lazily: the fast lane builds only the light ones."""
    return BuiltModels()


# Every registry name; the ResNet-50 models are slow to build, so their cases are in the slow lane.
MODEL_NAMES = [
    pytest.param(name, marks=pytest.mark.slow) if name in HEAVY_MODELS else name for name in sorted(available_models())
]


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


# --- registry ---------------------------------------------------------------------------------


def test_registry_has_required_names_with_one_line_descriptions():
    models = available_models()
    assert EXPECTED_NAMES <= set(models)
    assert DEFAULT_MODEL == "tiny_unet"
    for name, description in models.items():
        assert description and "\n" not in description, name


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_output_shapes_on_odd_input(name, built_models):
    model = built_models[name]
    model.train()
    # ResNet-50 models: one small forward keeps the suite fast on 2 CPU cores.
    height, width = (63, 65) if name in HEAVY_MODELS else (33, 47)
    outputs = model(torch.randn(2, 3, height, width))
    assert outputs["out"].shape == (2, NUM_CLASSES, height, width)
    assert ("aux" in outputs) == (name in MODELS_WITH_AUX_BY_DEFAULT)
    if "aux" in outputs:
        assert outputs["aux"].shape[:2] == (2, NUM_CLASSES)
    assert all(torch.isfinite(tensor).all() for tensor in outputs.values())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_encoder_and_decoder_parameters_partition_the_model(name, built_models):
    model = built_models[name]
    encoder = [id(parameter) for parameter in model.encoder_parameters()]
    decoder = [id(parameter) for parameter in model.decoder_parameters()]
    assert encoder and decoder
    assert len(set(encoder)) == len(encoder) and len(set(decoder)) == len(decoder)
    assert not set(encoder) & set(decoder)
    assert set(encoder) | set(decoder) == {id(parameter) for parameter in model.parameters()}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_last_layer_names_are_classifier_parameters(name, built_models):
    model = built_models[name]
    parameters = dict(model.named_parameters())
    names = model.last_layer_parameter_names()
    assert names and set(names) <= set(parameters)
    decoder_ids = {id(parameter) for parameter in model.decoder_parameters()}
    for parameter_name in names:
        # Every final classifier maps to K classes, and none of them is in the encoder.
        assert parameters[parameter_name].shape[0] == NUM_CLASSES, parameter_name
        assert id(parameters[parameter_name]) in decoder_ids
    expected_layers = 2 if name in MODELS_WITH_AUX_BY_DEFAULT or name == "lraspp_mobilenet_v3_large" else 1
    assert len([n for n in names if n.endswith("weight")]) == expected_layers


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_rebuild_from_name_and_options_gives_identical_architecture(name, built_models):
    model = built_models[name]
    options = json.loads(json.dumps(model.options))  # what a checkpoint's JSON would hold
    rebuilt = build_model(model.name, model.num_classes, **options)
    original_shapes = {key: value.shape for key, value in model.state_dict().items()}
    assert {key: value.shape for key, value in rebuilt.state_dict().items()} == original_shapes
    assert rebuilt.options == model.options
    assert "weights_path" not in model.options and "pretrained_backbone" not in model.options


def test_options_hold_full_resolved_architecture():
    model = build_model("tiny_unet", 3, upsampling="transposed")
    assert model.options == {
        "base_width": 16,
        "depth": 3,
        "upsampling": "transposed",
        "aux": False,
        "separable": False,
        "stem_stride": 2,
    }
    assert set(model_options("deeplabv3_resnet18")) == {"output_stride", "aux", "weights_path", "pretrained_backbone"}
    assert "pretrained_backbone" not in model_options("unet")


def test_describe_reports_parameter_count(built_models):
    model = built_models["tiny_unet"]
    text = model.describe()
    total = sum(parameter.numel() for parameter in model.parameters())
    assert text.startswith("tiny_unet: ") and f"{total / 1000:.1f}K" in text


def test_aux_option_toggles_aux_output():
    images = torch.randn(2, 3, 40, 36)
    assert "aux" in build_model("tiny_unet", 3, aux=True)(images)
    assert "aux" not in build_model("deeplabv3_resnet18", 3, aux=False)(images)
    assert "aux" in build_model("deeplabv3plus_mobilenet_v3_large", 3, aux=True)(images)


# --- errors -----------------------------------------------------------------------------------


def test_unknown_model_name_lists_valid_names():
    with pytest.raises(ConfigError, match="unknown model 'resnet9000'.*tiny_unet.*deeplabv3_resnet18"):
        build_model("resnet9000", 3)


def test_unknown_option_lists_valid_options():
    with pytest.raises(ConfigError, match="unknown option.*widht.*base_width=16.*upsampling='bilinear'"):
        build_model("tiny_unet", 3, widht=8)
    with pytest.raises(ConfigError, match="unknown option.*pretrained_backbone"):
        build_model("unet", 3, pretrained_backbone=True)
    with pytest.raises(ConfigError, match="unknown option.*backbone"):
        build_model("deeplabv3_resnet18", 3, backbone="resnet50")  # the name pins the backbone


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("tiny_unet", {"upsampling": "nearest"}, "upsampling='nearest'.*'bilinear', 'transposed'"),
        ("tiny_unet", {"depth": "3"}, "depth='3'.*must be int"),
        ("tiny_unet", {"depth": 0}, "depth=0.*positive"),
        ("tiny_unet", {"aux": 1}, "aux=1.*must be bool"),
        ("tiny_unet", {"stem_stride": 4}, "stem_stride=4"),
        ("deeplabv3_resnet18", {"output_stride": 12}, "output_stride=12.*8, 16, 32"),
    ],
)
def test_bad_option_values_raise_config_error(name, options, message):
    with pytest.raises(ConfigError, match=message):
        build_model(name, 3, **options)


@pytest.mark.parametrize("num_classes", [0, -2, 2.5, True])
def test_bad_num_classes_raises_config_error(num_classes):
    with pytest.raises(ConfigError, match="num_classes"):
        build_model("tiny_unet", num_classes)


# --- UNet correctness (the seed notes an open-source UNet that was broken) ---------------------


@pytest.mark.parametrize("upsampling", ["bilinear", "transposed"])
@pytest.mark.parametrize("stem_stride", [1, 2])
def test_unet_output_matches_any_input_size(upsampling, stem_stride):
    model = UNet(3, base_width=4, depth=4, upsampling=upsampling, aux=True, stem_stride=stem_stride).eval()
    sizes = [(1, 1), (2, 3), (5, 7), (15, 16), (16, 16), (33, 47), (97, 131), (64, 65)]
    with torch.no_grad():
        for height, width in sizes:
            outputs = model(torch.randn(1, 3, height, width))
            assert outputs["out"].shape == (1, 3, height, width)
            assert outputs["aux"].shape == (1, 3, height, width)


def test_unet_bottom_right_pixel_gets_deep_context():
    # With ceil-mode pooling and crop-to-skip, the deep levels still cover the last row/column of
    # an odd-sized image: the corner prediction depends on pixels 12 px away, which only the
    # coarse levels can see (floor-mode pooling would drop that edge from them).
    model = UNet(2, base_width=4, depth=3).eval()
    images = torch.randn(1, 3, 33, 47, requires_grad=True)
    model(images)["out"][0, :, -1, -1].sum().backward()
    assert images.grad[0, :, -13, -13].abs().sum() > 0
    assert images.grad[0, :, -1, -1].abs().sum() > 0


@pytest.mark.parametrize(
    "options",
    [
        {"name": "tiny_unet"},
        {"name": "unet", "base_width": 4, "upsampling": "transposed", "aux": True},
        {"name": "unet", "base_width": 4, "separable": True, "aux": True},
    ],
    ids=["tiny_unet", "unet_transposed_aux", "unet_separable_aux"],
)
def test_every_parameter_receives_finite_nonzero_gradient(options):
    options = dict(options)
    model = build_model(options.pop("name"), 4, **options).train()
    images = torch.randn(2, 3, 37, 45)
    target = torch.randint(0, 4, (2, 37, 45))
    outputs = model(images)
    loss = sum(F.cross_entropy(logits, target) for logits in outputs.values())
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{name} has a non-finite gradient"
        assert parameter.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


def test_unet_eval_mode_matches_train_mode_with_batch_statistics():
    model = UNet(3, base_width=4, depth=3)
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.momentum = None  # cumulative average: one pass makes running stats = batch stats
            layer.reset_running_stats()
    images = torch.randn(8, 3, 64, 64)
    with torch.no_grad():
        train_logits = model.train()(images)["out"]
        eval_logits = model.eval()(images)["out"]
    # Only the unbiased-vs-biased variance differs, so the two agree closely.
    assert torch.allclose(train_logits, eval_logits, atol=0.05 * train_logits.abs().max().item())
    assert (train_logits.argmax(1) == eval_logits.argmax(1)).float().mean() > 0.97


def test_unet_eval_mode_is_deterministic_and_per_image():
    model = UNet(3, base_width=4, depth=3).eval()
    images = torch.randn(3, 3, 29, 31)
    with torch.no_grad():
        batch_logits = model(images)["out"]
        single_logits = model(images[1:2])["out"]
        again = model(images)["out"]
    assert torch.equal(batch_logits, again)
    assert torch.allclose(batch_logits[1:2], single_logits, atol=1e-5)


def test_tiny_unet_overfits_one_batch():
    # A fixed batch of coloured rectangles; a working network drives the loss down fast.
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(4, 3, 48, 48, generator=generator) * 0.3
    target = torch.zeros(4, 48, 48, dtype=torch.long)
    colours = torch.tensor([[0.0, 0.0, 0.0], [2.0, -1.0, -1.0], [-1.0, 2.0, -1.0], [-1.0, -1.0, 2.0]])
    for index in range(4):
        for class_id in (1, 2, 3):
            top, left = torch.randint(0, 36, (2,), generator=generator).tolist()
            size = 6 + 2 * class_id
            target[index, top : top + size, left : left + size] = class_id
            images[index, :, top : top + size, left : left + size] += colours[class_id, :, None, None]
    model = build_model("tiny_unet", 4).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(model(images)["out"], target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]
    with torch.no_grad():
        accuracy = (model.eval()(images)["out"].argmax(1) == target).float().mean().item()
    assert accuracy > 0.9


def test_unet_kaiming_init_values():
    model = UNet(3, base_width=8, depth=3, upsampling="transposed", aux=True)
    norms = [layer for layer in model.modules() if isinstance(layer, nn.BatchNorm2d)]
    convs = [layer for layer in model.modules() if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d))]
    assert norms and all(torch.all(layer.weight == 1) for layer in norms)
    assert all(torch.allclose(layer.bias, torch.full_like(layer.bias, BATCHNORM_BIAS_INIT)) for layer in norms)
    assert all(torch.all(layer.bias == 0) for layer in convs if layer.bias is not None)
    widest = max((layer for layer in convs if isinstance(layer, nn.Conv2d)), key=lambda layer: layer.weight.numel())
    fan_in = widest.weight[0].numel()
    assert widest.weight.std().item() == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.1)


# --- backbones --------------------------------------------------------------------------------


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50", "mobilenet_v3_large"])
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_backbone_output_stride(backbone, output_stride):
    features = build_backbone(backbone, output_stride)
    with torch.no_grad():
        maps = features.body.eval()(torch.randn(1, 3, 64, 64))
    assert maps["out"].shape[-2:] == (64 // output_stride, 64 // output_stride)
    assert maps["low"].shape[-2:] == (16, 16)
    assert {key: value.shape[1] for key, value in maps.items()} == features.channels


def test_deeplabv3plus_decoder_fuses_projected_low_level_features():
    model = build_model("deeplabv3plus_resnet18", 3, aux=False).train()
    assert model.decoder.project_low[0].in_channels == 64  # ResNet-18 layer1, stride 4
    assert model.decoder.fuse[0].in_channels == 256 + 48
    model(torch.randn(2, 3, 48, 48))["out"].sum().backward()
    assert model.decoder.project_low[0].weight.grad.abs().sum() > 0


# --- weights: never downloaded ------------------------------------------------------------------


def test_pretrained_backbone_missing_file_names_file_and_folder(hub_cache):
    with pytest.raises(ConfigError) as error:
        build_model("deeplabv3_resnet18", 3, pretrained_backbone=True)
    message = str(error.value)
    assert "resnet18-f37072fd.pth" in message and str(hub_cache) in message and "never downloads" in message


def test_pretrained_backbone_loads_from_hub_cache(hub_cache):
    from torchvision.models import ResNet18_Weights

    classifier = resnet18(weights=None)
    with torch.no_grad():
        classifier.conv1.weight.fill_(0.125)
        classifier.layer4[1].bn2.running_mean.fill_(3.0)
    torch.save(classifier.state_dict(), hub_cache / checkpoint_file_name(ResNet18_Weights.IMAGENET1K_V1))
    model = build_model("deeplabv3_resnet18", 3, pretrained_backbone=True, aux=False)
    assert torch.all(model.backbone.conv1.weight == 0.125)
    assert torch.all(model.backbone.layer4[1].bn2.running_mean == 3.0)
    assert "resnet18-f37072fd.pth" in model.weights_source
    assert model.options == {"output_stride": 16, "aux": False}


def test_mobilenet_checkpoint_keys_map_onto_segmentation_encoder():
    checkpoint = mobilenet_v3_large(weights=None).state_dict()
    features = build_backbone("mobilenet_v3_large", 16)
    mapped = backbone_state(checkpoint, features.weights)
    assert set(mapped) == set(features.body.state_dict())


def test_weights_path_loads_full_model_and_encoder(tmp_path):
    source = build_model("tiny_unet", 4)
    # A seglab checkpoint nests the state under "model_state" beside plain metadata.
    torch.save({"model_state": source.state_dict(), "step": 3, "config": {"lr": 0.01}}, tmp_path / "nested.pt")
    torch.save(source.encoder.state_dict(), tmp_path / "encoder.pt")

    full = build_model("tiny_unet", 4, weights_path=str(tmp_path / "nested.pt"))
    for key, value in source.state_dict().items():
        assert torch.equal(full.state_dict()[key], value), key
    assert full.weights_source.startswith("model weights")

    encoder_only = build_model("tiny_unet", 4, weights_path=str(tmp_path / "encoder.pt"))
    assert torch.equal(encoder_only.encoder.stages[0][0][0].weight, source.encoder.stages[0][0][0].weight)
    assert not torch.equal(encoder_only.classifier.weight, source.classifier.weight)
    assert encoder_only.weights_source.startswith("encoder weights")


def test_weights_path_mismatch_reports_keys(tmp_path):
    torch.save(build_model("tiny_unet", 4).state_dict(), tmp_path / "four_classes.pt")
    with pytest.raises(ConfigError, match=r"wrong shape \(classifier.weight: file \(4, 16, 1, 1\) vs model \(6, 16"):
        build_model("tiny_unet", 6, weights_path=str(tmp_path / "four_classes.pt"))
    torch.save(build_model("tiny_unet_small", 4).state_dict(), tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="wrong shape"):
        build_model("tiny_unet", 4, weights_path=str(tmp_path / "other.pt"))


def test_weights_path_missing_or_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        build_model("tiny_unet", 4, weights_path=str(tmp_path / "absent.pt"))
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read weights file"):
        build_model("tiny_unet", 4, weights_path=str(tmp_path / "garbage.pt"))
    torch.save({"epoch": 3}, tmp_path / "no_tensors.pt")
    with pytest.raises(ConfigError, match="does not hold a state dict"):
        build_model("tiny_unet", 4, weights_path=str(tmp_path / "no_tensors.pt"))
