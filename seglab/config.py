"""``TrainConfig``: every training option with its default, in one place.

It is what ``config.json`` in a run folder holds, what ``seglab train`` flags fill in, and what
the app's Train page edits. ``TrainConfig.from_dict(config.to_dict())`` rebuilds it exactly.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from seglab.data.spec import DataSpec
from seglab.errors import ConfigError

# Scores that can pick best.pt: the scalar keys of SegmentationMetrics.to_dict().
BEST_METRICS = ("miou", "miou_no_background", "pixel_acc", "mean_acc", "fwiou", "mean_f1")
# Class weightings a run may use (TrainConfig.class_weights), as the app names them.
CLASS_WEIGHTINGS = {"none": "none", "inverse": "inverse frequency", "median": "median frequency (SegNet)"}


@dataclass
class TrainConfig:
    """A training run. Defaults are the fast CPU demo on the built-in Shapes data ("quick run")."""

    # -- data ------------------------------------------------------------------------------------
    data: DataSpec = field(default_factory=DataSpec)  # training data (its split is the training split)
    val_split: str = "val"  # split evaluated during training; best.pt is chosen on it
    crop_size: int = 96  # random crop side for training (pixels); 0 = no crop (full images)
    scale_min: float = 0.75  # random scale range (DeepLab: scale -> crop -> flip)
    scale_max: float = 1.25  # upper end of the random scale range
    hflip: float = 0.5  # probability of a horizontal flip
    vflip: float = 0.0  # probability of a vertical flip
    color_jitter: float = 0.0  # strength of brightness/contrast/saturation jitter, 0 = off
    # -- model -----------------------------------------------------------------------------------
    model: str = "tiny_unet"  # see `seglab models` / seglab.models.available_models()
    model_options: dict[str, Any] = field(default_factory=dict)  # extra keyword options of the model
    # -- loss ------------------------------------------------------------------------------------
    loss: str = "ce+dice"  # e.g. ce, ce+dice, ce+0.5*dice, hard_ce, focal, ce+hd (seglab.losses)
    class_weights: str = "none"  # none | inverse | median: weights from the training split's statistics
    top_k_percent_pixels: float = 0.25  # hard pixel mining (hard_ce): share of pixels kept at the end
    hard_example_mining_step: int = 0  # steps over which mining goes from all pixels to the top k
    focal_gamma: float = 2.0  # focal loss focusing parameter
    aux_weight: float = 0.4  # weight of the auxiliary (deep supervision) head's loss
    # -- optimiser -------------------------------------------------------------------------------
    optimizer: str = "adamw"  # sgd | adam | adamw
    lr: float = 3e-3  # base learning rate
    momentum: float = 0.9  # SGD momentum
    nesterov: bool = False  # SGD Nesterov momentum
    weight_decay: float = 1e-4  # not applied to biases and normalisation layers
    encoder_lr_mult: float = 1.0  # backbone/encoder learning-rate multiplier (CSAIL: separate encoder LR)
    last_layer_lr_mult: float = 1.0  # DeepLab's last-layer gradient multiplier (e.g. 10 when fine-tuning)
    # -- schedule --------------------------------------------------------------------------------
    schedule: str = "poly"  # poly | cosine | step | constant
    power: float = 0.9  # poly exponent
    warmup_steps: int = 0  # linear warmup steps
    slow_start_steps: int = 0  # DeepLab's slow start: steps at slow_start_lr before the schedule
    slow_start_lr: float = 1e-4  # learning rate during the slow start
    step_size: int = 1000  # step schedule: decay every step_size steps
    gamma: float = 0.1  # step schedule: decay factor
    min_lr: float = 0.0  # floor of poly/cosine
    # -- loop ------------------------------------------------------------------------------------
    epochs: int = 30  # upper bound on epochs
    time_budget_s: float | None = None  # stop after this many seconds of training (schedule follows time)
    batch_size: int = 16  # images per training step and process (torchrun: global batch = N x this)
    eval_every: int = 1  # evaluate every N epochs (and always at the end)
    log_every: int = 10  # write a step event every N steps
    grad_clip: float | None = None  # clip the global gradient norm to this value
    seed: int = 0  # seeds weights, shuffling and augmentation, so a run can be repeated
    num_workers: int = 0  # DataLoader workers (0 = load in the training process)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # mixed precision, only on CUDA
    amp_dtype: str = "bfloat16"  # bfloat16 | float16: autocast type on CUDA (float16 adds loss scaling)
    channels_last: bool = True  # channels_last memory format (faster convolutions on CUDA and CPU)
    threads: int = 0  # torch CPU threads, 0 = torch's default
    sync_bn: bool = False  # under torchrun on GPUs: BatchNorm statistics over all processes (SyncBatchNorm)
    best_metric: str = "miou"  # metric that picks best.pt (any key of SegmentationMetrics.to_dict())
    preview_images: int = 4  # validation images whose predictions are saved at every evaluation

    def __post_init__(self) -> None:
        if isinstance(self.data, dict):
            self.data = DataSpec.from_dict(self.data)
        self.validate()  # TrainConfig(batch_size=0) fails here, not when training starts

    def validate(self) -> None:
        """Raise ConfigError on values that cannot work, naming the option and what is allowed.

        Runs on construction; call it again after changing fields (the CLI sets flags one by one).
        Nothing is probed here: whether CUDA exists is :func:`seglab.options.resolve_device`'s job.
        """
        from seglab.optim import OPTIMIZERS, SCHEDULES
        from seglab.options import check_device_name

        self._check_types()
        check_device_name(self.device)
        checks = [
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.crop_size >= 0, "crop_size must be >= 0 (0 = full images)"),
            (0 < self.scale_min <= self.scale_max, "need 0 < scale_min <= scale_max"),
            (0.0 <= self.hflip <= 1.0 and 0.0 <= self.vflip <= 1.0, "flip probabilities must be in [0, 1]"),
            (self.lr > 0, "lr must be > 0"),
            (0 < self.top_k_percent_pixels <= 1.0, "top_k_percent_pixels must be in (0, 1]"),
            (self.hard_example_mining_step >= 0, "hard_example_mining_step must be >= 0"),
            (self.class_weights in CLASS_WEIGHTINGS, "class_weights must be none, inverse or median"),
            (self.time_budget_s is None or self.time_budget_s > 0, "time_budget_s must be > 0"),
            (self.eval_every >= 1 and self.log_every >= 1, "eval_every and log_every must be >= 1"),
            (self.grad_clip is None or self.grad_clip > 0, "grad_clip must be > 0"),
            (self.amp_dtype in ("bfloat16", "float16"), "amp_dtype must be bfloat16 or float16"),
            (self.num_workers >= 0, "num_workers must be >= 0 (0 = load data in the training process)"),
            (self.threads >= 0, "threads must be >= 0 (0 = torch's default)"),
            (self.preview_images >= 0, "preview_images must be >= 0"),
            (self.warmup_steps >= 0 and self.slow_start_steps >= 0, "warmup_steps and slow_start_steps must be >= 0"),
            (self.step_size >= 1, "step_size must be >= 1"),
            (math.isfinite(self.lr), "lr must be a finite number"),
            (self.optimizer in OPTIMIZERS, f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, f"schedule name must be one of {', '.join(SCHEDULES)}"),
            (
                self.best_metric in BEST_METRICS,
                f"best_metric {self.best_metric!r} is not a metric; choose one of {', '.join(BEST_METRICS)}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def _check_types(self) -> None:
        # A hand-edited config.json can hold "epochs": "ten"; name the option instead of a TypeError.
        for item in fields(self):
            value, default = getattr(self, item.name), _default_of(item)
            if isinstance(default, bool) or isinstance(value, bool):
                valid = isinstance(value, bool) and isinstance(default, bool)
            elif isinstance(default, int):
                valid = isinstance(value, numbers.Integral)
            elif default is None or isinstance(default, float):  # None: an optional number
                valid = isinstance(value, numbers.Real) or (value is None and default is None)
            else:
                valid = isinstance(value, type(default))
            if not valid:
                expected = "a number or null" if default is None else type(default).__name__
                raise ConfigError(f"training option {item.name}={value!r} must be {expected}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["data"] = self.data.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Rebuild a config from ``to_dict()`` output or a subset of its keys (missing keys take defaults)."""
        if not isinstance(data, dict):
            raise ConfigError(
                f"training options must be a JSON object of option names and values, got {type(data).__name__} {data!r:.60}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown training option(s): {', '.join(unknown)}; see 'seglab train --help'")
        data = dict(data)
        if "data" in data and isinstance(data["data"], dict):
            data["data"] = DataSpec.from_dict(data["data"])
        try:
            return cls(**data)
        except TypeError as error:
            raise ConfigError(f"invalid training options: {error}") from None

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        """Read a config JSON file (as written in a run folder, or a subset of its keys)."""
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"config file {path} is not valid JSON: {error}") from None

    @classmethod
    def option_help(cls) -> dict[str, str]:
        """Each field's trailing comment, for ``--help`` and the app's tooltips."""
        return dict(_FIELD_HELP)


def _default_of(item: Any) -> Any:
    return item.default if item.default is not MISSING else item.default_factory()


def _read_field_comments() -> dict[str, str]:
    import inspect
    import re

    comments: dict[str, str] = {}
    try:
        source = inspect.getsource(TrainConfig)
    except (OSError, TypeError):  # e.g. running from a zip without sources: no help texts
        return comments
    for line in source.splitlines():
        match = re.match(r"\s+(\w+): [^=]+=.*?#\s*(.+)$", line)
        if match:
            comments[match.group(1)] = match.group(2).strip()
    return comments


_FIELD_HELP = _read_field_comments()
