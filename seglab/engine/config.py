"""``TrainConfig``: every training option with its default, in one place.

It is what ``config.json`` in a run folder holds, what ``seglab train`` flags fill in, and what
the app's Train page edits. ``TrainConfig.from_dict(config.to_dict())`` rebuilds it exactly.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from seglab.data.spec import DataSpec
from seglab.errors import ConfigError

# Scores that can pick best.pt: the scalar keys of SegmentationMetrics.to_dict().
BEST_METRICS = ("miou", "miou_no_background", "pixel_acc", "mean_acc", "fwiou", "mean_f1")
# Class weightings a run may use (TrainConfig.class_weights), as the app names them.
CLASS_WEIGHTINGS = {
    "none": "none",
    "inverse": "inverse frequency",
    "median": "median frequency (SegNet)",
    "sqrt_median": "square root of median frequency (softer)",
}
# Where a run's encoder weights start (TrainConfig.pretrained).
PRETRAINED = {"none": "random initialisation", "imagenet": "torchvision's ImageNet weights"}


@dataclass
class TrainConfig:
    """A training run. Defaults are the fast CPU demo on the built-in Shapes data ("quick run")."""

    # -- data ------------------------------------------------------------------------------------
    data: DataSpec = field(
        default_factory=DataSpec, metadata={"help": "training data (its split is the training split)"}
    )
    val_split: str = field(default="val", metadata={"help": "split evaluated during training; best.pt is chosen on it"})
    crop_size: int = field(
        default=96, metadata={"help": "random crop side for training (pixels); 0 = no crop (full images)"}
    )
    scale_min: float = field(default=0.75, metadata={"help": "random scale range (DeepLab: scale -> crop -> flip)"})
    scale_max: float = field(default=1.25, metadata={"help": "upper end of the random scale range"})
    hflip: float = field(default=0.5, metadata={"help": "probability of a horizontal flip"})
    vflip: float = field(default=0.0, metadata={"help": "probability of a vertical flip"})
    color_jitter: float = field(
        default=0.0, metadata={"help": "strength of brightness/contrast/saturation jitter, 0 = off"}
    )
    rare_class_crops: float = field(
        default=0.0,
        metadata={
            "help": "share of training crops centred on a pixel of a rare class (drawn by median-frequency "
            "weight among the classes in the image), 0 = off: thin, rare classes get seen far more often"
        },
    )
    # -- model -----------------------------------------------------------------------------------
    model: str = field(default="tiny_unet", metadata={"help": "see `seglab models` / seglab.models.available_models()"})
    model_options: dict[str, Any] = field(default_factory=dict, metadata={"help": "extra keyword options of the model"})
    pretrained: str = field(
        default="none",
        metadata={
            "help": "none | imagenet: start the encoder from torchvision's ImageNet weights, downloaded once into "
            "torch's hub cache (models with a torchvision encoder only)"
        },
    )
    # -- loss ------------------------------------------------------------------------------------
    loss: str = field(
        default="ce+dice",
        metadata={"help": "e.g. ce, ce+dice, ce+0.5*dice, hard_ce, focal, ce+hd (seglab.losses.criterion)"},
    )
    class_weights: str = field(
        default="none",
        metadata={"help": "none | inverse | median | sqrt_median: weights from the training split's statistics"},
    )
    top_k_percent_pixels: float = field(
        default=0.25, metadata={"help": "hard pixel mining (hard_ce): share of pixels kept at the end"}
    )
    hard_example_mining_step: int = field(
        default=0, metadata={"help": "steps over which mining goes from all pixels to the top k"}
    )
    focal_gamma: float = field(default=2.0, metadata={"help": "focal loss focusing parameter"})
    aux_weight: float = field(default=0.4, metadata={"help": "weight of the auxiliary (deep supervision) head's loss"})
    # -- optimiser -------------------------------------------------------------------------------
    optimizer: str = field(default="adamw", metadata={"help": "sgd | adam | adamw"})
    lr: float = field(default=3e-3, metadata={"help": "base learning rate"})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum"})
    nesterov: bool = field(default=False, metadata={"help": "SGD Nesterov momentum"})
    weight_decay: float = field(default=1e-4, metadata={"help": "not applied to biases and normalisation layers"})
    encoder_lr_mult: float = field(
        default=1.0, metadata={"help": "backbone/encoder learning-rate multiplier (CSAIL: separate encoder LR)"}
    )
    last_layer_lr_mult: float = field(
        default=1.0, metadata={"help": "DeepLab's last-layer gradient multiplier (e.g. 10 when fine-tuning)"}
    )
    # -- schedule --------------------------------------------------------------------------------
    schedule: str = field(default="poly", metadata={"help": "poly | cosine | step | constant"})
    power: float = field(default=0.9, metadata={"help": "poly exponent"})
    warmup_steps: int = field(default=0, metadata={"help": "linear warmup steps"})
    slow_start_steps: int = field(
        default=0, metadata={"help": "DeepLab's slow start: steps at slow_start_lr before the schedule"}
    )
    slow_start_lr: float = field(default=1e-4, metadata={"help": "learning rate during the slow start"})
    step_size: int = field(default=1000, metadata={"help": "step schedule: decay every step_size steps"})
    gamma: float = field(default=0.1, metadata={"help": "step schedule: decay factor"})
    min_lr: float = field(default=0.0, metadata={"help": "floor of poly/cosine"})
    # -- loop ------------------------------------------------------------------------------------
    epochs: int = field(default=30, metadata={"help": "upper bound on epochs"})
    time_budget_s: float | None = field(
        default=None, metadata={"help": "stop after this many seconds of training (schedule follows time)"}
    )
    batch_size: int = field(
        default=16, metadata={"help": "images per training step and process (torchrun: global batch = N x this)"}
    )
    eval_every: int = field(default=1, metadata={"help": "evaluate every N epochs (and always at the end)"})
    log_every: int = field(default=10, metadata={"help": "write a step event every N steps"})
    grad_clip: float | None = field(default=None, metadata={"help": "clip the global gradient norm to this value"})
    seed: int = field(
        default=0, metadata={"help": "seeds weights, shuffling and augmentation, so a run can be repeated"}
    )
    num_workers: int = field(default=0, metadata={"help": "DataLoader workers (0 = load in the training process)"})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:N"})
    amp: bool = field(default=True, metadata={"help": "mixed precision, only on CUDA"})
    amp_dtype: str = field(
        default="bfloat16", metadata={"help": "bfloat16 | float16: autocast type on CUDA (float16 adds loss scaling)"}
    )
    cpu_bf16: bool = field(
        default=False,
        metadata={
            "help": "bfloat16 autocast on CPUs with native bf16 (AVX512-BF16 or AMX): about 1.5x faster steps; "
            "ignored on other CPUs and on CUDA (see amp)"
        },
    )
    channels_last: bool = field(
        default=True, metadata={"help": "channels_last memory format (faster convolutions on CUDA and CPU)"}
    )
    threads: int = field(default=0, metadata={"help": "torch CPU threads, 0 = torch's default"})
    sync_bn: bool = field(
        default=False,
        metadata={"help": "under torchrun on GPUs: BatchNorm statistics over all processes (SyncBatchNorm)"},
    )
    best_metric: str = field(
        default="miou", metadata={"help": "metric that picks best.pt (any key of SegmentationMetrics.to_dict())"}
    )
    preview_images: int = field(
        default=4, metadata={"help": "validation images whose predictions are saved at every evaluation"}
    )

    def __post_init__(self) -> None:
        if isinstance(self.data, dict):
            self.data = DataSpec.from_dict(self.data)
        self.validate()  # TrainConfig(batch_size=0) fails here, not when training starts

    def validate(self) -> None:
        """Raise ConfigError on values that cannot work, naming the option and what is allowed.

        Runs on construction; call it again after changing fields (the CLI sets flags one by one).
        Nothing is probed here: whether CUDA exists is :func:`seglab.options.resolve_device`'s job.
        """
        from seglab.engine.optim import OPTIMIZERS, SCHEDULES
        from seglab.models.registry import MODELS, imagenet_backbone
        from seglab.options import check_device_name

        self._check_types()
        check_device_name(self.device)
        checks = [
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.crop_size >= 0, "crop_size must be >= 0 (0 = full images)"),
            (0 < self.scale_min <= self.scale_max, "need 0 < scale_min <= scale_max"),
            (0.0 <= self.hflip <= 1.0 and 0.0 <= self.vflip <= 1.0, "flip probabilities must be in [0, 1]"),
            (0.0 <= self.rare_class_crops <= 1.0, "rare_class_crops must be in [0, 1] (a share of the crops)"),
            (self.lr > 0, "lr must be > 0"),
            (0 < self.top_k_percent_pixels <= 1.0, "top_k_percent_pixels must be in (0, 1]"),
            (self.hard_example_mining_step >= 0, "hard_example_mining_step must be >= 0"),
            (self.class_weights in CLASS_WEIGHTINGS, "class_weights must be none, inverse, median or sqrt_median"),
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
            (
                self.optimizer in OPTIMIZERS,
                f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}",
            ),
            (self.schedule in SCHEDULES, f"schedule name must be one of {', '.join(SCHEDULES)}"),
            (self.pretrained in PRETRAINED, f"pretrained must be one of {', '.join(PRETRAINED)}"),
            (
                self.best_metric in BEST_METRICS,
                f"best_metric {self.best_metric!r} is not a metric; choose one of {', '.join(BEST_METRICS)}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if self.pretrained == "imagenet" and self.model in MODELS:  # an unknown model is build_model's to report
            imagenet_backbone(self.model)

    @property
    def starts_from_imagenet(self) -> bool:
        """Whether the encoder starts from ImageNet weights (``pretrained``, or the older model option)."""
        return self.pretrained == "imagenet" or self.model_options.get("pretrained_backbone") is True

    def model_build_options(self) -> dict[str, Any]:
        """The keyword options for ``build_model``: ``model_options``, plus ``pretrained_backbone`` for ImageNet."""
        return {**self.model_options, "pretrained_backbone": True} if self.starts_from_imagenet else self.model_options

    def _check_types(self) -> None:
        # A hand-edited config.json can hold "epochs": "ten"; name the option instead of a TypeError.
        for item in fields(self):
            value, default = getattr(self, item.name), field_default(item)
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
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from ``to_dict()`` output or a subset of its keys (missing keys take defaults)."""
        if not isinstance(data, dict):
            raise ConfigError(
                "training options must be a JSON object of option names and values, "
                f"got {type(data).__name__} {data!r:.60}"
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
    def load(cls, path: str | Path) -> TrainConfig:
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
        """Each option's help text (its field's ``metadata["help"]``), for ``--help`` and the app's tooltips."""
        return {item.name: item.metadata.get("help", "") for item in fields(cls)}


def field_default(item: Field[Any]) -> Any:
    """The default value of a dataclass field (calling its ``default_factory`` if it has one)."""
    factory: Any = item.default_factory  # MISSING when the field has a plain default
    return item.default if factory is MISSING else factory()
