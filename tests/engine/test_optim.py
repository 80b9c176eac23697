"""Tests for seglab.engine.optim: param groups, optimisers, gradient multiplier and LR schedules."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from seglab.engine.optim import (
    GradientMultiplier,
    LRSchedule,
    apply_lr,
    build_optimizer,
    build_param_groups,
    lr_at,
    lr_curve,
)
from seglab.errors import ConfigError


class TinySegmenter(nn.Module):
    """Implements the three SegmentationModel methods build_param_groups relies on."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.GroupNorm(2, 8),
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.classifier = nn.Conv2d(8, 3, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.classifier(self.decoder(self.encoder(x)))}

    def encoder_parameters(self):
        return self.encoder.parameters()

    def decoder_parameters(self):
        yield from self.decoder.parameters()
        yield from self.classifier.parameters()

    def last_layer_parameter_names(self) -> list[str]:
        return ["classifier.weight", "classifier.bias"]


def group_ids(groups: list[dict]) -> dict[str, set[int]]:
    return {group["name"]: {id(parameter) for parameter in group["params"]} for group in groups}


def csail_group_weight(module: nn.Module) -> list[dict]:
    """CSAIL semantic-segmentation-pytorch's group_weight, copied from the course notes."""
    group_decay, group_no_decay = [], []
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)):
            group_decay.append(m.weight)
            if m.bias is not None:
                group_no_decay.append(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.weight is not None:
                group_no_decay.append(m.weight)
            if m.bias is not None:
                group_no_decay.append(m.bias)
    assert len(list(module.parameters())) == len(group_decay) + len(group_no_decay)
    return [dict(params=group_decay), dict(params=group_no_decay, weight_decay=0.0)]


# --- parameter groups ------------------------------------------------------------------------


def test_every_parameter_in_exactly_one_group_with_required_keys():
    model = TinySegmenter()
    groups = build_param_groups(model)
    grouped = [id(parameter) for group in groups for parameter in group["params"]]
    assert sorted(grouped) == sorted(id(parameter) for parameter in model.parameters())
    assert len(grouped) == len(set(grouped))
    for group in groups:
        assert {"params", "weight_decay", "lr_mult", "name"} <= set(group)
        assert group["params"], "empty groups are dropped"
    assert [group["name"] for group in groups] == [
        "encoder/decay",
        "encoder/no_decay",
        "decoder/decay",
        "decoder/no_decay",
        "last_layer/decay",
        "last_layer/no_decay",
    ]


def test_no_weight_decay_on_biases_and_norm_layers():
    model = TinySegmenter()
    groups = {group["name"]: group for group in build_param_groups(model, weight_decay=5e-4)}
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))]
    expected_no_decay = {id(m.weight) for m in norms} | {id(m.bias) for m in norms}
    expected_no_decay |= {id(p) for name, p in model.named_parameters() if name.endswith("bias")}
    no_decay = {id(p) for name, group in groups.items() if name.endswith("no_decay") for p in group["params"]}
    assert no_decay == expected_no_decay
    for name, group in groups.items():
        assert group["weight_decay"] == (0.0 if name.endswith("no_decay") else 5e-4)
    conv_weights = {id(m.weight) for m in model.modules() if isinstance(m, nn.Conv2d)}
    decay = {id(p) for name, group in groups.items() if name.endswith("/decay") for p in group["params"]}
    assert decay == conv_weights


def test_decay_everywhere_when_norm_and_bias_exemption_off():
    groups = build_param_groups(TinySegmenter(), weight_decay=1e-3, no_decay_on_norm_and_bias=False)
    assert [group["name"] for group in groups] == ["encoder/decay", "decoder/decay", "last_layer/decay"]
    assert all(group["weight_decay"] == 1e-3 for group in groups)


def test_matches_csail_group_weight_on_conv_bn_linear_net():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, bias=False),
        nn.BatchNorm2d(4),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )
    reference_decay, reference_no_decay = csail_group_weight(model)
    groups = group_ids(build_param_groups(model))
    assert set(groups) == {"decoder/decay", "decoder/no_decay"}  # a plain module is all decoder
    assert len(groups["decoder/decay"]) == len(reference_decay["params"]) == 3
    assert len(groups["decoder/no_decay"]) == len(reference_no_decay["params"]) == 6
    assert groups["decoder/decay"] == {id(p) for p in reference_decay["params"]}
    assert groups["decoder/no_decay"] == {id(p) for p in reference_no_decay["params"]}


def test_any_module_works_beyond_csail_layers():
    model = nn.Sequential(
        nn.Embedding(10, 4), nn.LayerNorm(4), nn.PReLU(), nn.Linear(4, 4), nn.InstanceNorm1d(4, affine=True)
    )
    groups = group_ids(build_param_groups(model))
    assert groups["decoder/decay"] == {id(model[0].weight), id(model[3].weight)}
    assert len(groups["decoder/no_decay"]) == 6  # LayerNorm x2, PReLU slope, Linear bias, InstanceNorm x2


def test_lr_multipliers_per_section_and_last_layer():
    model = TinySegmenter()
    groups = build_param_groups(model, encoder_lr_mult=0.1, decoder_lr_mult=1.0, last_layer_lr_mult=10.0)
    mults = {group["name"]: group["lr_mult"] for group in groups}
    assert mults == {
        "encoder/decay": 0.1,
        "encoder/no_decay": 0.1,
        "decoder/decay": 1.0,
        "decoder/no_decay": 1.0,
        "last_layer/decay": 10.0,
        "last_layer/no_decay": 10.0,
    }
    ids = group_ids(groups)
    assert ids["last_layer/decay"] == {id(model.classifier.weight)}
    assert ids["last_layer/no_decay"] == {id(model.classifier.bias)}
    assert ids["encoder/decay"] | ids["encoder/no_decay"] == {id(p) for p in model.encoder.parameters()}
    optimizer = build_optimizer("sgd", groups, lr=0.01)
    lrs = {group["name"]: group["lr"] for group in optimizer.param_groups}
    assert lrs["encoder/decay"] == pytest.approx(0.001)
    assert lrs["decoder/decay"] == pytest.approx(0.01)
    assert lrs["last_layer/no_decay"] == pytest.approx(0.1)


def test_last_layer_mult_composes_with_decoder_mult():
    groups = build_param_groups(TinySegmenter(), decoder_lr_mult=0.5, last_layer_lr_mult=10.0)
    assert {g["name"]: g["lr_mult"] for g in groups}["last_layer/decay"] == pytest.approx(5.0)


class BrokenSplit(TinySegmenter):
    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def encoder_parameters(self):
        if self.mode == "overlap":
            return list(self.encoder.parameters()) + [self.decoder[0].weight]
        if self.mode == "missing":
            return list(self.encoder.parameters())[1:]
        return list(self.encoder.parameters()) + [nn.Parameter(torch.zeros(1))]

    def last_layer_parameter_names(self) -> list[str]:
        return ["classifier.weight"]


@pytest.mark.parametrize(
    "mode,words", [("overlap", "in both"), ("missing", "in neither"), ("foreign", "not parameters")]
)
def test_bad_encoder_decoder_split_raises(mode, words):
    with pytest.raises(ConfigError, match=words):
        build_param_groups(BrokenSplit(mode))


def test_bad_last_layer_names_and_multipliers_raise():
    model = TinySegmenter()
    model.last_layer_parameter_names = lambda: ["classifer.weight"]  # typo
    with pytest.raises(ConfigError, match="classifer.weight"):
        build_param_groups(model)
    model.last_layer_parameter_names = lambda: ["encoder.0.weight"]
    with pytest.raises(ConfigError, match="decoder"):
        build_param_groups(model)
    with pytest.raises(ConfigError, match="encoder_lr_mult"):
        build_param_groups(TinySegmenter(), encoder_lr_mult=-0.1)
    with pytest.raises(ConfigError, match="weight_decay"):
        build_param_groups(TinySegmenter(), weight_decay=float("nan"))


# --- optimisers ------------------------------------------------------------------------------


def test_sgd_momentum_and_nesterov_hyperparameters():
    groups = build_param_groups(TinySegmenter(), weight_decay=1e-4, encoder_lr_mult=0.1)
    optimizer = build_optimizer("SGD", groups, lr=0.02, momentum=0.8, nesterov=True)
    assert isinstance(optimizer, torch.optim.SGD)
    for group in optimizer.param_groups:
        assert group["momentum"] == 0.8 and group["nesterov"] is True
        assert group["lr"] == group["initial_lr"] == pytest.approx(0.02 * group["lr_mult"])
    assert {g["name"]: g["weight_decay"] for g in optimizer.param_groups}["encoder/decay"] == 1e-4
    assert {g["name"]: g["weight_decay"] for g in optimizer.param_groups}["encoder/no_decay"] == 0.0
    assert "lr" not in groups[0], "the caller's groups are not modified"


@pytest.mark.parametrize("name,optimizer_class", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)])
def test_adam_and_adamw_hyperparameters(name, optimizer_class):
    groups = build_param_groups(TinySegmenter(), weight_decay=0.05)
    optimizer = build_optimizer(name, groups, lr=1e-3, betas=(0.8, 0.99))
    assert type(optimizer) is optimizer_class
    for group in optimizer.param_groups:
        assert group["betas"] == (0.8, 0.99)
        assert group["weight_decay"] == (0.0 if group["name"].endswith("no_decay") else 0.05)
        assert group["lr"] == pytest.approx(1e-3)


def test_plain_parameter_groups_get_defaults():
    model = nn.Linear(2, 2)
    optimizer = build_optimizer("sgd", [{"params": model.parameters()}], lr=0.1, weight_decay=1e-3)
    (group,) = optimizer.param_groups
    assert group["lr_mult"] == 1.0 and group["weight_decay"] == 1e-3 and group["lr"] == 0.1


@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"name": "rmsprop"}, "unknown optimizer"),
        ({"nesterov": True, "momentum": 0.0}, "nesterov"),
        ({"name": "adam", "nesterov": True}, "nesterov"),
        ({"lr": 0.0}, "learning rate"),
        ({"momentum": 1.0}, "momentum"),
        ({"name": "adam", "betas": (0.9, 1.5)}, "betas"),
    ],
)
def test_bad_optimizer_options_raise(kwargs, words):
    options = {"name": "sgd", "lr": 0.01, **kwargs}
    name = options.pop("name")
    with pytest.raises(ConfigError, match=words):
        build_optimizer(name, build_param_groups(TinySegmenter()), **options)


# --- gradient multiplier ---------------------------------------------------------------------


def gradients(model: nn.Module, multiplier: float | None) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    inputs = torch.randn(2, 3, 8, 8)
    model.zero_grad()
    if multiplier is None:
        model(inputs)["out"].square().mean().backward()
    else:
        with GradientMultiplier(model, multiplier):
            model(inputs)["out"].square().mean().backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def test_gradient_multiplier_doubles_last_layer_gradients_only():
    torch.manual_seed(0)
    model = TinySegmenter()
    plain = gradients(model, None)
    doubled = gradients(model, 2.0)
    for name in plain:
        factor = 2.0 if name.startswith("classifier.") else 1.0
        torch.testing.assert_close(doubled[name], plain[name] * factor)
    torch.testing.assert_close(gradients(model, None)["classifier.weight"], plain["classifier.weight"])  # removed


def test_gradient_multiplier_scales_each_accumulated_backward_pass():
    layer = nn.Linear(2, 1, bias=False)
    with GradientMultiplier(layer, 3.0, ["weight"]):
        layer(torch.ones(1, 2)).sum().backward()
        layer(torch.full((1, 2), 2.0)).sum().backward()
    torch.testing.assert_close(layer.weight.grad, torch.full((1, 2), 9.0))  # 3 * (1 + 2)


def test_gradient_multiplier_needs_names_for_plain_modules():
    with pytest.raises(ConfigError, match="parameter_names"):
        GradientMultiplier(nn.Linear(2, 2), 2.0)
    with pytest.raises(ConfigError, match="nope"):
        GradientMultiplier(nn.Linear(2, 2), 2.0, ["nope"])
    with pytest.raises(ConfigError, match=">= 0"):
        GradientMultiplier(nn.Linear(2, 2), -1.0, ["weight"])


def train_last_layer(mode: str, optimizer_name: str, steps: int = 3) -> torch.Tensor:
    torch.manual_seed(0)
    model = TinySegmenter()
    groups = build_param_groups(model, weight_decay=0.0, last_layer_lr_mult=10.0 if mode == "lr" else 1.0)
    optimizer = build_optimizer(optimizer_name, groups, lr=0.01, momentum=0.9)
    hooks = GradientMultiplier(model, 10.0) if mode == "gradient" else None
    inputs = torch.randn(2, 3, 8, 8)
    for _ in range(steps):
        optimizer.zero_grad()
        model(inputs)["out"].square().mean().backward()
        optimizer.step()
    if hooks:
        hooks.remove()
    return model.classifier.weight.detach().clone()


def test_lr_mult_equals_gradient_multiplier_for_sgd_but_not_adam():
    # SGD with momentum is linear in the gradient, so both ways give the same weights.
    torch.testing.assert_close(train_last_layer("lr", "sgd"), train_last_layer("gradient", "sgd"))
    # Adam normalises the gradient: a gradient multiplier barely matters, an lr multiplier does.
    assert not torch.allclose(train_last_layer("lr", "adam"), train_last_layer("gradient", "adam"), atol=1e-4)


# --- schedules -------------------------------------------------------------------------------


def test_poly_values_computed_by_hand():
    schedule = LRSchedule("poly", base_lr=0.01, total_steps=100, power=0.9)
    assert schedule.lr_at(0) == pytest.approx(0.01)
    assert schedule.lr_at(50) == pytest.approx(0.01 * 0.5**0.9)
    assert schedule.lr_at(75) == pytest.approx(0.01 * 0.25**0.9)
    assert schedule.lr_at(100) == 0.0
    assert schedule.lr_at(500) == 0.0, "past total_steps the rate stays at its final value"


def test_poly_ends_at_min_lr_never_below():
    schedule = LRSchedule("poly", base_lr=0.01, total_steps=100, power=0.9, min_lr=1e-3)
    assert schedule.lr_at(50) == pytest.approx(1e-3 + 9e-3 * 0.5**0.9)
    assert schedule.lr_at(100) == pytest.approx(1e-3)
    assert min(lr_curve(schedule)[1]) >= 1e-3


def test_slow_start_then_main_schedule():
    schedule = LRSchedule("poly", base_lr=0.01, total_steps=110, power=0.9, slow_start_steps=10, slow_start_lr=1e-4)
    assert [schedule.lr_at(step) for step in (0, 5, 9)] == [1e-4, 1e-4, 1e-4]
    assert schedule.lr_at(10) == pytest.approx(0.01)
    assert schedule.lr_at(60) == pytest.approx(0.01 * 0.5**0.9)  # decays over the 100 steps left
    assert schedule.lr_at(110) == 0.0


def test_linear_warmup():
    schedule = LRSchedule("constant", base_lr=0.1, total_steps=50, warmup_steps=10, warmup_start_factor=0.1)
    assert schedule.lr_at(0) == pytest.approx(0.01)
    assert schedule.lr_at(5) == pytest.approx(0.01 + 0.09 * 0.5)
    assert schedule.lr_at(9) == pytest.approx(0.01 + 0.09 * 0.9)
    assert schedule.lr_at(10) == pytest.approx(0.1)
    steps = np.arange(10)
    lrs = np.array([schedule.lr_at(int(step)) for step in steps])
    assert np.allclose(np.diff(lrs), 0.009), "equal increments: linear"


def test_cosine_endpoints_and_midpoint_after_warmup():
    schedule = LRSchedule("cosine", base_lr=0.1, total_steps=110, warmup_steps=10, min_lr=0.001)
    assert schedule.lr_at(10) == pytest.approx(0.1)
    assert schedule.lr_at(60) == pytest.approx(0.001 + 0.099 * 0.5)
    assert schedule.lr_at(110) == pytest.approx(0.001)
    assert schedule.lr_at(0) == pytest.approx(0.01)


def test_step_decay():
    schedule = LRSchedule("step", base_lr=0.1, total_steps=100, step_size=30, gamma=0.1, min_lr=1e-4)
    assert [schedule.lr_at(step) for step in (0, 29)] == [0.1, 0.1]
    assert schedule.lr_at(30) == pytest.approx(0.01)
    assert schedule.lr_at(60) == pytest.approx(0.001)
    assert schedule.lr_at(90) == pytest.approx(1e-4), "floored at min_lr"


def test_constant():
    schedule = LRSchedule("constant", base_lr=0.05, total_steps=10)
    assert {schedule.lr_at(step) for step in range(20)} == {0.05}


def test_lr_at_is_pure_in_the_step():
    schedule = LRSchedule("cosine", base_lr=0.1, total_steps=200, warmup_steps=20, slow_start_steps=5)
    in_order = [schedule.lr_at(step) for step in range(200)]
    shuffled = np.random.default_rng(0).permutation(200)
    out_of_order = {int(step): schedule.lr_at(int(step)) for step in shuffled}
    assert in_order == [out_of_order[step] for step in range(200)]
    assert lr_at(120, name="cosine", base_lr=0.1, total_steps=200, warmup_steps=20, slow_start_steps=5) == in_order[120]


def test_lr_curve_covers_run_and_marks_jumps():
    schedule = LRSchedule("poly", base_lr=0.01, total_steps=1000, slow_start_steps=37)
    steps, lrs = lr_curve(schedule, num_points=50)
    assert steps[0] == 0 and steps[-1] == 999 and np.all(np.diff(steps) > 0)
    assert {36, 37} <= set(steps.tolist()), "both sides of the slow-start jump are drawn"
    assert lrs[list(steps).index(36)] == 1e-4 and lrs[list(steps).index(37)] == pytest.approx(0.01)
    assert np.all(np.diff(lrs[steps >= 37]) <= 0), "poly decreases"
    step_steps, _ = lr_curve(LRSchedule("step", total_steps=100, step_size=25), num_points=10)
    assert {24, 25, 49, 50, 74, 75} <= set(step_steps.tolist())


def test_apply_lr_sets_every_group():
    groups = build_param_groups(TinySegmenter(), encoder_lr_mult=0.1, last_layer_lr_mult=10.0)
    optimizer = build_optimizer("sgd", groups, lr=0.01)
    schedule = LRSchedule("poly", base_lr=0.01, total_steps=100)
    base = apply_lr(optimizer, schedule, 50)
    assert base == pytest.approx(0.01 * 0.5**0.9)
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(base * group["lr_mult"])
    assert {round(group["lr"] / base, 6) for group in optimizer.param_groups} == {0.1, 1.0, 10.0}


def test_to_dict_from_dict_roundtrip_through_json():
    schedule = LRSchedule("step", base_lr=0.02, total_steps=500, step_size=100, gamma=0.5, warmup_steps=10)
    restored = LRSchedule.from_dict(json.loads(json.dumps(schedule.to_dict())))
    assert restored == schedule
    with pytest.raises(ConfigError, match="warmup_step"):
        LRSchedule.from_dict({"warmup_step": 10})
    with pytest.raises(dataclasses.FrozenInstanceError):
        schedule.base_lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "options,words",
    [
        ({"name": "exponential"}, "name must be one of"),
        ({"total_steps": 0}, "total_steps"),
        ({"total_steps": 10, "warmup_steps": 5, "slow_start_steps": 5}, "< total_steps"),
        ({"power": 0}, "power"),
        ({"base_lr": -1}, "base_lr"),
        ({"min_lr": 1.0}, "min_lr"),
        ({"name": "step"}, "step_size"),
        ({"gamma": 0}, "gamma"),
        ({"warmup_start_factor": 2}, "warmup_start_factor"),
        ({"total_steps": 10.5}, "total_steps"),
        ({"base_lr": "0.1"}, "base_lr"),
    ],
)
def test_bad_schedules_raise_config_error(options, words):
    with pytest.raises(ConfigError, match=words):
        LRSchedule(**options)


def test_negative_step_raises():
    with pytest.raises(ConfigError, match="step"):
        LRSchedule().lr_at(-1)


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(["poly", "cosine", "step", "constant"]),
    total=st.integers(5, 400),
    warmup_fraction=st.floats(0, 0.4),
    slow_fraction=st.floats(0, 0.4),
    step=st.integers(0, 500),
)
def test_lr_stays_between_its_bounds(name, total, warmup_fraction, slow_fraction, step):
    schedule = LRSchedule(
        name,
        base_lr=0.1,
        total_steps=total,
        warmup_steps=int(total * warmup_fraction),
        slow_start_steps=int(total * slow_fraction),
        slow_start_lr=1e-4,
        step_size=7,
        min_lr=1e-5,
    )
    lr = schedule.lr_at(step)
    assert 1e-5 - 1e-12 <= lr <= 0.1 + 1e-12
    assert math.isfinite(lr)
