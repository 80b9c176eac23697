"""How a model file wants its input and gives its output: the preprocessing declaration.

A TorchScript or ONNX file carries weights but not the recipe around them. :class:`Preprocessing`
states it once (in the description file): mean/std and channel order, the input size ("any" or a
fixed (height, width) fed by resizing or by a sliding window), the stride the size must be a
multiple of (the image is padded bottom/right, the output cropped back), and which output holds
what (logits, probabilities or labels; a dict key such as torchvision's ``"out"``).

:func:`predict_with_runner` turns a bare ``run(batch) -> output`` function into probabilities at the
image's size, reusing seglab's own normalisation (:func:`seglab.engine.predict.image_to_tensor`), its
test-time augmentation and its sliding window (:func:`seglab.engine.predict.predict_probabilities`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from seglab.concurrency import inference_slot
from seglab.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from seglab.engine.predict import image_to_tensor, predict_probabilities
from seglab.errors import SourceError
from seglab.sources.base import SourcePrediction, labels_dtype

OUTPUT_KINDS = ("logits", "probabilities", "labels")
CHANNEL_ORDERS = ("RGB", "BGR")
FIXED_SIZE_MODES = ("resize", "sliding")
Runner = Callable[[np.ndarray], np.ndarray]  # (1, 3, h, w) float32 -> the chosen output as an array


@dataclass(frozen=True)
class Preprocessing:
    """What a model file expects and returns. Defaults: seglab's own recipe (ImageNet mean/std, RGB, any size, logits).

    ``mean``/``std`` are in 0-1 units (pixel / 255) and in the order of the channels the model
    receives (after a BGR flip). ``output`` picks the output: ``None`` the first (or only) one, a
    string a dict key or ONNX output name, an int a tuple position.
    """

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channel_order: str = "RGB"
    input_size: tuple[int, int] | None = None  # None = any size; else the fixed (height, width)
    fixed_size_mode: str = "resize"  # how a fixed-size model sees bigger/smaller images: resize | sliding
    size_divisor: int = 1  # pad height and width up to a multiple of this (output stride), crop back after
    output: str | int | None = None
    output_kind: str = "logits"  # logits | probabilities | labels (an argmax'd output, e.g. mmdeploy's default)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used in description files."""
        return {
            "mean": list(self.mean),
            "std": list(self.std),
            "channel_order": self.channel_order,
            "input_size": "any" if self.input_size is None else list(self.input_size),
            "fixed_size_mode": self.fixed_size_mode,
            "size_divisor": self.size_divisor,
            "output": self.output,
            "output_kind": self.output_kind,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "preprocessing") -> Preprocessing:
        """Parse the JSON form; :class:`SourceError` names every problem at once."""
        preprocessing, problems = parse_preprocessing(data, where)
        if problems:
            raise SourceError(f"{len(problems)} problem(s) in {where}: " + "; ".join(problems))
        return preprocessing


DEFAULT_PREPROCESSING = Preprocessing()


def parse_preprocessing(
    data: Mapping[str, Any] | None, where: str = "preprocessing"
) -> tuple[Preprocessing, list[str]]:
    """``(Preprocessing, problems)``: unknown keys and bad values are listed, defaults fill the gaps."""
    defaults = Preprocessing()
    if data is None:
        return defaults, []
    if not isinstance(data, Mapping):
        return defaults, [f"{where} must be a JSON object, got {type(data).__name__}"]
    problems = [f"{where}.{key}: unknown setting" for key in data if key not in defaults.to_dict()]
    values: dict[str, Any] = {}
    for key in ("mean", "std"):
        if key in data:
            value = data[key]
            if not (isinstance(value, Sequence) and len(value) == 3 and all(_is_number(v) for v in value)):
                problems.append(f"{where}.{key} must be 3 numbers, got {value!r}")
            elif key == "std" and any(float(v) <= 0 for v in value):
                problems.append(f"{where}.std must be positive, got {value!r}")
            elif any(float(v) > 1.0 for v in value):
                problems.append(f"{where}.{key} {value!r} looks like 0-255 units; give it in 0-1 units (divide by 255)")
            else:
                values[key] = tuple(float(v) for v in value)
    if "channel_order" in data:
        order = str(data["channel_order"]).upper()
        if order not in CHANNEL_ORDERS:
            problems.append(f"{where}.channel_order must be RGB or BGR, got {data['channel_order']!r}")
        values["channel_order"] = order
    if "input_size" in data and data["input_size"] not in (None, "any"):
        size = data["input_size"]
        if isinstance(size, int) and not isinstance(size, bool) and size > 0:
            values["input_size"] = (size, size)
        elif isinstance(size, Sequence) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
            values["input_size"] = (int(size[0]), int(size[1]))
        else:
            problems.append(f'{where}.input_size must be "any", a side or [height, width], got {size!r}')
    for key, choices in (("fixed_size_mode", FIXED_SIZE_MODES), ("output_kind", OUTPUT_KINDS)):
        if key in data:
            if data[key] not in choices:
                problems.append(f"{where}.{key} must be one of {', '.join(choices)}, got {data[key]!r}")
            else:
                values[key] = data[key]
    if "size_divisor" in data:
        divisor = data["size_divisor"]
        if not isinstance(divisor, int) or isinstance(divisor, bool) or not 1 <= divisor <= 512:
            problems.append(f"{where}.size_divisor must be an integer 1-512, got {divisor!r}")
        else:
            values["size_divisor"] = divisor
    if "output" in data:
        output = data["output"]
        if output is not None and not isinstance(output, (str, int)) or isinstance(output, bool):
            problems.append(f"{where}.output must be null, a key/output name or a position, got {output!r}")
        else:
            values["output"] = output
    preprocessing = Preprocessing(**{**_fields(defaults), **values})
    if (
        preprocessing.output_kind == "labels"
        and preprocessing.input_size
        and preprocessing.fixed_size_mode == "sliding"
    ):
        problems.append(
            f"{where}: a model that outputs labels cannot be run as a sliding window; use fixed_size_mode resize"
        )
    return preprocessing, problems


def _fields(preprocessing: Preprocessing) -> dict[str, Any]:
    return {name: getattr(preprocessing, name) for name in preprocessing.__dataclass_fields__}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def model_input(image: np.ndarray, preprocessing: Preprocessing) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float32 in the model's channel order, normalised."""
    if preprocessing.channel_order == "BGR":
        image = np.ascontiguousarray(image[..., ::-1])
    return image_to_tensor(image, preprocessing.mean, preprocessing.std)


class RunnerModule(torch.nn.Module):
    """A model-file runner dressed as a seglab model: ``forward(batch) -> {"out": logits at the batch's size}``.

    It applies the fixed input size (resize, or pad a sliding-window tile up to it) or the size
    divisor (pad, then crop back), and turns probabilities into log-probabilities so that
    :func:`seglab.engine.predict.predict_probabilities`'s softmax gives them back.
    """

    def __init__(self, run: Runner, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.run = run
        self.preprocessing = preprocessing

    def forward(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = [self._forward_one(image[None]) for image in batch]
        return {"out": torch.cat(outputs)}

    def _forward_one(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        scores = _fit_output(
            _run_sized(self.run, image, self.preprocessing), (height, width), self.preprocessing, "bilinear"
        )
        if self.preprocessing.output_kind == "probabilities":
            scores = scores.clamp_min(1e-12).log()
        return scores


def _run_sized(run: Runner, image: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    """Run one (1, 3, H, W) image at the size the model accepts; the raw output as a float or integer tensor."""
    height, width = image.shape[-2:]
    fixed = preprocessing.input_size
    if fixed is not None and preprocessing.fixed_size_mode == "resize":
        image = F.interpolate(image, size=fixed, mode="bilinear", align_corners=False)
    elif fixed is not None:  # a sliding-window tile: pad up to the fixed size (zeros = the mean colour)
        image = F.pad(image, (0, max(0, fixed[1] - width), 0, max(0, fixed[0] - height)))
    elif preprocessing.size_divisor > 1:
        divisor = preprocessing.size_divisor
        image = F.pad(image, (0, -width % divisor, 0, -height % divisor))
    output = np.asarray(run(np.ascontiguousarray(image.numpy(), dtype=np.float32)))
    if output.ndim == 3:  # (N, h, w) labels
        output = output[:, None]
    if output.ndim != 4 or output.shape[0] != 1:
        raise SourceError(f"the model returned shape {output.shape}; expected (1, K, h, w) scores or (1, h, w) labels")
    return torch.from_numpy(np.ascontiguousarray(output))


def _fit_output(output: torch.Tensor, size: tuple[int, int], preprocessing: Preprocessing, mode: str) -> torch.Tensor:
    """Undo :func:`_run_sized`'s geometry: crop padding, or resize back to ``size``."""
    fixed = preprocessing.input_size
    padded = (fixed is not None and preprocessing.fixed_size_mode == "sliding") or (
        fixed is None and preprocessing.size_divisor > 1
    )
    if padded:
        # The output may be at a fraction of the padded input (e.g. 1/4): scale it to the padded size first.
        padded_size = (
            (max(size[0], fixed[0]), max(size[1], fixed[1]))
            if fixed is not None
            else _padded(size, preprocessing.size_divisor)
        )
        output = _resize(output, padded_size, mode)[..., : size[0], : size[1]]
    return _resize(output, size, mode)


def _padded(size: tuple[int, int], divisor: int) -> tuple[int, int]:
    return (size[0] + -size[0] % divisor, size[1] + -size[1] % divisor)


def _resize(output: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(output.shape[-2:]) == tuple(size):
        return output
    if mode == "nearest":
        return F.interpolate(output.float(), size=size, mode="nearest").to(output.dtype)
    return F.interpolate(output.float(), size=size, mode="bilinear", align_corners=False)


def predict_with_runner(
    run: Runner,
    image: np.ndarray,
    preprocessing: Preprocessing,
    *,
    flip: bool = False,
    scales: Sequence[float] = (1.0,),
    overlap: float = 1 / 3,
) -> SourcePrediction:
    """Labels and probabilities of one (H, W, 3) uint8 RGB image from a bare runner (see the module docstring)."""
    batch = model_input(image, preprocessing)
    if preprocessing.output_kind == "labels":
        with inference_slot():  # as predict_probabilities does for every other forward pass
            output = _run_sized(run, batch, preprocessing)
        if output.is_floating_point() or output.shape[1] != 1:
            raise SourceError(
                f"output_kind is 'labels' but the model returned {output.dtype} of shape {tuple(output.shape)}"
            )
        labels = _fit_output(output, tuple(image.shape[:2]), preprocessing, "nearest")[0, 0].numpy()
        return SourcePrediction(labels.astype(np.int64), None)
    tile = preprocessing.input_size if preprocessing.fixed_size_mode == "sliding" else None
    module = RunnerModule(run, preprocessing)
    probabilities = predict_probabilities(module, batch, flip=flip, scales=scales, tile_size=tile, overlap=overlap)[0]
    labels = probabilities.argmax(dim=0).numpy().astype(labels_dtype(probabilities.shape[0]))
    return SourcePrediction(labels, probabilities.numpy().astype(np.float32, copy=False))
