"""Optimisers, parameter groups and learning-rate schedules for segmentation training.

Three recipes from the course notes, expressed as param groups of ONE torch optimiser:

- CSAIL's ``group_weight``: weights of Conv/Linear layers get weight decay; their biases and all
  normalisation-layer parameters do not.
- CSAIL's two optimisers (encoder vs decoder learning rate): one group per section with an
  ``lr_mult``, so a single optimiser, a single ``state_dict`` and a single schedule drive both.
- DeepLab's ``last_layer_gradient_multiplier``: by default an ``lr_mult`` on the last layer.

Why an lr multiplier can stand in for DeepLab's gradient multiplier: for SGD (with or without
momentum or Nesterov) the update is linear in the gradient, so ``lr * m * step(g)`` equals
``lr * step(m * g)`` -- as long as the layer has no weight decay (decay is added to the gradient
*after* a gradient hook runs, so only the lr multiplier scales it) and gradients are not clipped
by norm. Adam/AdamW divide by the gradient's running RMS, so a gradient multiplier has almost no
effect there while an lr multiplier scales every step. Use :class:`GradientMultiplier` (with
``last_layer_lr_mult=1``) when you want DeepLab's exact behaviour.

Schedules are pure functions of the step (:meth:`LRSchedule.lr_at`), applied each step with
:func:`apply_lr`, so resuming from a checkpoint only needs the step number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeGuard, cast

import numpy as np
import torch
from torch import nn

from seglab.errors import ConfigError

__all__ = [
    "GradientMultiplier",
    "LRSchedule",
    "OPTIMIZERS",
    "SCHEDULES",
    "apply_lr",
    "build_optimizer",
    "build_param_groups",
    "lr_at",
    "lr_curve",
]

# ---------------------------------------------------------------------------------------------
# Parameter groups
# ---------------------------------------------------------------------------------------------

NORM_LAYERS = (
    nn.modules.batchnorm._BatchNorm,  # BatchNorm1d/2d/3d, SyncBatchNorm
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.RMSNorm,
)
WEIGHT_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)  # _ConvNd includes transposed convolutions


def _decays(module: nn.Module, local_name: str, parameter: nn.Parameter) -> bool:
    """CSAIL's rule, extended so that any module works instead of failing CSAIL's assert."""
    if isinstance(module, NORM_LAYERS) or local_name == "bias":
        return False
    if isinstance(module, WEIGHT_LAYERS):
        return True
    # Not covered by CSAIL (embeddings, PReLU slopes, learned scales): matrices decay, vectors
    # and scalars do not -- the usual convention (timm, nanoGPT).
    return parameter.ndim > 1


def _sections(model: nn.Module, names: dict[int, str]) -> dict[int, str]:
    """Map id(parameter) -> "encoder" | "decoder"; a plain module is all decoder."""
    if not (hasattr(model, "encoder_parameters") and hasattr(model, "decoder_parameters")):
        return {key: "decoder" for key in names}
    # cast: nn.Module.__getattr__ types these optional hooks (models.base) as Tensor | Module.
    encoder = {id(parameter) for parameter in cast(Any, model).encoder_parameters()}
    decoder = {id(parameter) for parameter in cast(Any, model).decoder_parameters()}
    problems = {
        "in both encoder and decoder": encoder & decoder,
        "in neither encoder nor decoder": set(names) - encoder - decoder,
        "not parameters of the model": (encoder | decoder) - set(names),
    }
    for problem, ids in problems.items():
        if ids:
            listed = sorted(names.get(key, "<foreign tensor>") for key in ids)[:5]
            raise ConfigError(
                f"{type(model).__name__}.encoder_parameters()/decoder_parameters() must split the "
                f"model's parameters into two disjoint sets; these are {problem}: {listed}"
            )
    return {key: "encoder" if key in encoder else "decoder" for key in names}


def _last_layer_ids(model: nn.Module, sections: dict[int, str]) -> set[int]:
    """ids of the parameters named by ``model.last_layer_parameter_names()`` (none if absent)."""
    if not hasattr(model, "last_layer_parameter_names"):
        return set()
    by_name = dict(model.named_parameters(remove_duplicate=False))
    names = list(cast(Any, model).last_layer_parameter_names())
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ConfigError(
            f"last_layer_parameter_names() lists {unknown}, which are not parameters of "
            f"{type(model).__name__}; choose from {list(by_name)[-4:]} (last four shown)"
        )
    in_encoder = [name for name in names if sections[id(by_name[name])] == "encoder"]
    if in_encoder:
        raise ConfigError(f"last-layer parameters must belong to the decoder, not the encoder: {in_encoder}")
    return {id(by_name[name]) for name in names}


def build_param_groups(
    model: nn.Module,
    *,
    weight_decay: float = 1e-4,
    encoder_lr_mult: float = 1.0,
    decoder_lr_mult: float = 1.0,
    last_layer_lr_mult: float = 1.0,
    no_decay_on_norm_and_bias: bool = True,
) -> list[dict[str, Any]]:
    """Split ``model``'s parameters into named groups for one optimiser.

    Groups are ``{encoder, decoder, last_layer} x {decay, no_decay}`` (empty ones dropped), each a
    dict with ``params``, ``weight_decay``, ``lr_mult`` and ``name`` such as ``"encoder/decay"``.
    The last layer's ``lr_mult`` is ``decoder_lr_mult * last_layer_lr_mult`` so that it matches a
    gradient multiplier on top of the decoder's rate. A module without ``encoder_parameters()``
    is treated as all decoder. Frozen parameters are kept, so unfreezing later needs no rebuild.
    """
    options = {
        "weight_decay": weight_decay,
        "encoder_lr_mult": encoder_lr_mult,
        "decoder_lr_mult": decoder_lr_mult,
        "last_layer_lr_mult": last_layer_lr_mult,
    }
    for option, value in options.items():
        if not value >= 0:  # also rejects NaN
            raise ConfigError(f"{option} must be >= 0 (0 freezes/disables), got {value}")
    named = list(model.named_parameters())
    names = {id(parameter): name for name, parameter in named}
    decays: dict[int, bool] = {}
    for module in model.modules():
        for local_name, parameter in module.named_parameters(recurse=False):
            decays.setdefault(id(parameter), _decays(module, local_name, parameter))
    sections = _sections(model, names)
    last_layer = _last_layer_ids(model, sections)

    lr_mults = {
        "encoder": encoder_lr_mult,
        "decoder": decoder_lr_mult,
        "last_layer": decoder_lr_mult * last_layer_lr_mult,
    }
    buckets: dict[str, list[nn.Parameter]] = {f"{s}/{d}": [] for s in lr_mults for d in ("decay", "no_decay")}
    for _, parameter in named:
        section = "last_layer" if id(parameter) in last_layer else sections[id(parameter)]
        decay = decays[id(parameter)] or not no_decay_on_norm_and_bias
        buckets[f"{section}/{'decay' if decay else 'no_decay'}"].append(parameter)

    groups: list[dict[str, Any]] = [
        {
            "params": params,
            "weight_decay": weight_decay if name.endswith("/decay") else 0.0,
            "lr_mult": lr_mults[name.split("/")[0]],
            "name": name,
        }
        for name, params in buckets.items()
        if params
    ]
    grouped = [id(parameter) for group in groups for parameter in group["params"]]
    assert len(grouped) == len(set(grouped)) == len(names), "every parameter in exactly one group"
    return groups


class GradientMultiplier:
    """Scale the gradients of some parameters, as DeepLab's ``last_layer_gradient_multiplier``.

    Hooks run before gradients are accumulated into ``.grad``, so gradient accumulation over
    several backward passes is scaled correctly. Register after moving the model to its device.
    Usable as a context manager; :meth:`remove` detaches the hooks. See the module docstring for
    when this differs from an ``lr_mult``.
    """

    def __init__(self, model: nn.Module, multiplier: float, parameter_names: Iterable[str] | None = None):
        if parameter_names is None:
            if not hasattr(model, "last_layer_parameter_names"):
                name = type(model).__name__
                raise ConfigError(f"{name} has no last_layer_parameter_names(); pass parameter_names")
            parameter_names = cast(Any, model).last_layer_parameter_names()
        by_name = dict(model.named_parameters(remove_duplicate=False))
        names = list(parameter_names)
        unknown = [name for name in names if name not in by_name]
        if unknown:
            raise ConfigError(f"not parameters of {type(model).__name__}: {unknown}")
        if not multiplier >= 0:
            raise ConfigError(f"gradient multiplier must be >= 0 (DeepLab uses e.g. 10), got {multiplier}")
        self.multiplier = float(multiplier)
        unique = {id(by_name[name]): by_name[name] for name in names}  # tied weights hooked once
        self.handles = [parameter.register_hook(self._scale) for parameter in unique.values()]

    def _scale(self, gradient: torch.Tensor) -> torch.Tensor:
        return gradient * self.multiplier

    def remove(self) -> None:
        """Detach every hook; gradients are unscaled from the next backward pass on."""
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def __enter__(self) -> GradientMultiplier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


# ---------------------------------------------------------------------------------------------
# Optimisers
# ---------------------------------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": "SGD with momentum (optionally Nesterov): DeepLab's and CSAIL's choice",
    "adam": "Adam; weight decay is an L2 term added to the gradient",
    "adamw": "AdamW; weight decay is applied to the weights directly (decoupled)",
}


def build_optimizer(
    name: str,
    param_groups: Iterable[dict[str, Any]],
    *,
    lr: float,
    momentum: float = 0.9,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
) -> torch.optim.Optimizer:
    """Build "sgd", "adam" or "adamw" over ``param_groups`` (e.g. from :func:`build_param_groups`).

    Each group starts at ``lr * group["lr_mult"]`` (``lr_mult`` defaults to 1), also stored as
    ``initial_lr``. ``weight_decay`` only applies to groups that do not set their own.
    ``momentum``/``nesterov`` are used by SGD, ``betas`` by Adam/AdamW. The input is not modified.
    """
    key = name.lower()
    if key not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    if not lr > 0:
        raise ConfigError(f"learning rate must be > 0, got {lr}")
    if not 0 <= momentum < 1:
        raise ConfigError(f"momentum must be in [0, 1), got {momentum}")
    if nesterov and (key != "sgd" or momentum == 0):
        raise ConfigError("nesterov needs optimizer 'sgd' with momentum > 0 (e.g. momentum=0.9)")
    if not all(0 <= beta < 1 for beta in betas) or len(betas) != 2:
        raise ConfigError(f"betas must be two numbers in [0, 1), got {betas}")
    groups = []
    for group in param_groups:
        group = {"lr_mult": 1.0, "weight_decay": weight_decay, **group}
        group["lr"] = group["initial_lr"] = lr * group["lr_mult"]
        groups.append(group)
    if not groups:
        raise ConfigError("no parameter groups given: does the model have any parameters?")
    if key == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    optimizer_class = torch.optim.Adam if key == "adam" else torch.optim.AdamW
    return optimizer_class(groups, lr=lr, betas=(betas[0], betas[1]), weight_decay=weight_decay)


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules
# ---------------------------------------------------------------------------------------------

SCHEDULES = {
    "poly": "DeepLab's poly: base_lr * (1 - progress) ** power, down to min_lr",
    "cosine": "half a cosine from base_lr down to min_lr",
    "step": "multiply by gamma every step_size steps",
    "constant": "base_lr throughout (after slow start / warm-up)",
}


@dataclass(frozen=True)
class LRSchedule:
    """Learning rate as a pure function of the optimiser step.

    Phases in order: DeepLab's slow start (``slow_start_lr`` for ``slow_start_steps`` steps), a
    linear warm-up from ``warmup_start_factor * base_lr`` to ``base_lr`` over ``warmup_steps``, then
    the decay named by ``name`` over the remaining steps, so it ends at ``min_lr`` exactly at
    ``total_steps`` (like DeepLab, which decays over ``total - slow_start`` steps). Past
    ``total_steps`` the rate stays at its final value. Frozen: use ``dataclasses.replace``.
    """

    name: str = "poly"  # one of SCHEDULES
    base_lr: float = 0.01  # peak rate, reached when slow start and warm-up are over
    total_steps: int = 1000  # optimiser steps in the whole run
    power: float = 0.9  # "poly" exponent; DeepLab uses 0.9
    warmup_steps: int = 0  # linear warm-up length, after slow start
    warmup_start_factor: float = 0.1  # warm-up starts at this fraction of base_lr
    slow_start_steps: int = 0  # DeepLab: hold slow_start_lr for this many steps first
    slow_start_lr: float = 1e-4  # DeepLab's default slow_start_learning_rate
    step_size: int | None = None  # "step": decay every step_size steps (required for "step")
    gamma: float = 0.1  # "step": factor applied every step_size steps
    min_lr: float = 0.0  # where poly/cosine end; floor for "step"

    def __post_init__(self) -> None:
        numeric = [field.name for field in fields(self) if field.name not in ("name", "step_size")]
        wrong_type = [
            key
            for key in numeric
            if isinstance(getattr(self, key), bool) or not isinstance(getattr(self, key), (int, float, np.number))
        ]
        if wrong_type or not isinstance(self.name, str):
            wrong_type = wrong_type or ["name"]
            raise ConfigError(f"schedule options must be numbers and name a string; check {wrong_type}")
        checks = [
            (self.name in SCHEDULES, f"name must be one of {list(SCHEDULES)}"),
            (self.base_lr > 0, "base_lr must be > 0"),
            (_is_int(self.total_steps) and self.total_steps > 0, "total_steps must be an integer > 0"),
            (_is_int(self.warmup_steps) and self.warmup_steps >= 0, "warmup_steps must be an integer >= 0"),
            (_is_int(self.slow_start_steps) and self.slow_start_steps >= 0, "slow_start_steps must be an integer >= 0"),
            (
                self.warmup_steps + self.slow_start_steps < self.total_steps,
                "warmup_steps + slow_start_steps must be < total_steps, leaving steps to decay over",
            ),
            (self.power > 0, "power must be > 0 (0.9 is DeepLab's; 1 is linear)"),
            (0 <= self.warmup_start_factor <= 1, "warmup_start_factor must be in [0, 1]"),
            (self.slow_start_lr >= 0, "slow_start_lr must be >= 0"),
            (0 <= self.min_lr <= self.base_lr, "min_lr must be in [0, base_lr]"),
            (0 < self.gamma <= 1, "gamma must be in (0, 1]"),
            (
                self.name != "step" or (_is_int(self.step_size) and self.step_size > 0),
                'schedule "step" needs step_size, an integer > 0',
            ),
        ]
        failed = [message for passed, message in checks if not passed]
        if failed:
            raise ConfigError(f"invalid learning-rate schedule {self.name!r}: {'; '.join(failed)}")

    def lr_at(self, step: int) -> float:
        """Learning rate for optimiser step ``step`` (0-based); depends on nothing else."""
        if step < 0:
            raise ConfigError(f"step must be >= 0, got {step}")
        if step < self.slow_start_steps:
            return self.slow_start_lr
        step -= self.slow_start_steps
        if step < self.warmup_steps:
            fraction = step / self.warmup_steps
            return self.base_lr * (self.warmup_start_factor + (1 - self.warmup_start_factor) * fraction)
        decay_steps = self.total_steps - self.slow_start_steps - self.warmup_steps
        step = min(step - self.warmup_steps, decay_steps)
        progress = step / decay_steps
        span = self.base_lr - self.min_lr
        if self.name == "poly":  # tf.train.polynomial_decay, as DeepLab uses it
            return self.min_lr + span * (1 - progress) ** self.power
        if self.name == "cosine":
            return self.min_lr + span * 0.5 * (1 + math.cos(math.pi * progress))
        if self.name == "step":
            assert self.step_size is not None  # __post_init__ requires it for "step"
            return max(self.base_lr * self.gamma ** (step // self.step_size), self.min_lr)
        return self.base_lr

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LRSchedule:
        allowed = [field.name for field in fields(cls)]
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ConfigError(f"unknown schedule option(s) {unknown}; allowed: {allowed}")
        return cls(**data)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def lr_at(step: int, **schedule_options: Any) -> float:
    """``LRSchedule(**schedule_options).lr_at(step)``, e.g. ``lr_at(50, total_steps=100)``."""
    return LRSchedule.from_dict(schedule_options).lr_at(step)


def lr_curve(schedule: LRSchedule, num_points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, lrs)`` to plot a schedule before training: about ``num_points`` steps in
    ``[0, total_steps)``, plus both sides of every phase boundary (and of every "step" drop when
    that adds at most ``num_points`` more) so jumps are drawn where they happen."""
    if num_points < 2:
        raise ConfigError(f"num_points must be >= 2, got {num_points}")
    last = schedule.total_steps - 1
    decay_start = schedule.slow_start_steps + schedule.warmup_steps
    edges = [schedule.slow_start_steps, decay_start]
    step_size = schedule.step_size
    if schedule.name == "step" and step_size and (last - decay_start) // step_size <= num_points:
        edges += range(decay_start + step_size, last + 1, step_size)
    samples = np.linspace(0, last, num_points).round()
    steps = np.concatenate([samples, edges, np.subtract(edges, 1)])
    steps = np.unique(np.clip(steps, 0, last).astype(np.int64))
    return steps, np.array([schedule.lr_at(int(step)) for step in steps])


def apply_lr(optimizer: torch.optim.Optimizer, schedule: LRSchedule, step: int) -> float:
    """Set every group's ``lr`` to ``schedule.lr_at(step) * group["lr_mult"]``; return the base lr."""
    lr = schedule.lr_at(step)
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)  # optimisers built elsewhere have no lr_mult
    return lr
