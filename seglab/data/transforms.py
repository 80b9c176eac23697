"""Joint image + mask transforms (the pipelines built from them: :mod:`~seglab.data.presets`; the dataset
wrapper and batching: :mod:`~seglab.data.loading`; the normalisation: :mod:`~seglab.data.normalization`).

A joint transform is a callable ``transform(image, mask, rng) -> (image, mask)``. Until
:class:`ToTensor`, ``image`` is (H, W, 3) uint8 RGB and ``mask`` is (H, W) uint8 class ids. All
randomness comes from the ``rng`` argument (a ``numpy.random.Generator``), never from global state,
so one seed reproduces one augmentation.

The numpy transforms come first, then :class:`ToTensor`, then :class:`Normalize` (the order is in
:mod:`~seglab.data.presets`).

Two rules protect the labels: masks are resized with nearest-neighbour only (ids are categories,
interpolating 1 and 3 must never produce 2), and every pad fills the mask with the dataset's
``ignore_index`` (11 for CamVid, not always 255) so padded pixels never count in the loss or the
metrics. Padding is always bottom/right, so ``pred[..., :H, :W]`` is the original region.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import torch

from seglab.data.normalization import (
    IMAGENET_FILL,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Color,
    image_to_float,
    normalize_image,
)
from seglab.errors import ConfigError, DatasetError

__all__ = [
    "ColorJitter",
    "Compose",
    "JointTransform",
    "Normalize",
    "PadToMultiple",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomScale",
    "RandomVerticalFlip",
    "Resize",
    "ToTensor",
    "TransformFunction",
    "check_probability",
    "crop_to_original",
]

Size = tuple[int, int]  # (height, width)
TransformFunction = Callable[[Any, Any, np.random.Generator], tuple[Any, Any]]


# -- validation ----------------------------------------------------------------------------------
def _as_size(size: int | Sequence[int], what: str) -> Size:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        height = width = int(size)
    elif isinstance(size, Sequence) and len(size) == 2:
        height, width = (int(value) for value in size)
    else:
        raise ConfigError(f"{what} must be an int or a (height, width) pair, got {size!r}")
    if height < 1 or width < 1:
        raise ConfigError(f"{what} must be positive, got {size!r}")
    return height, width


def _as_ignore_index(ignore_index: int) -> int:
    if not isinstance(ignore_index, (int, np.integer)) or not 0 <= ignore_index <= 255:
        raise ConfigError(f"ignore_index must be an integer 0-255 (masks are uint8), got {ignore_index!r}")
    return int(ignore_index)


def _as_color(color: Sequence[int], what: str) -> Color:
    if len(color) != 3 or not all(0 <= int(value) <= 255 for value in color):
        raise ConfigError(f"{what} must be three integers 0-255, got {color!r}")
    red, green, blue = (int(value) for value in color)
    return (red, green, blue)


def check_probability(p: float) -> float:
    """``p`` as a float, or ConfigError unless it is a probability in [0, 1]."""
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"a flip probability must be in [0, 1], got {p!r}")
    return float(p)


def _check_pair(image: Any, mask: Any) -> None:
    """Raise DatasetError unless ``image`` is (H, W, 3) uint8 and ``mask`` is (H, W) uint8."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        described = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise DatasetError(f"expected an (H, W, 3) uint8 RGB image, got {described}; load images with seglab.data")
    if not isinstance(mask, np.ndarray) or mask.ndim != 2 or mask.dtype != np.uint8:
        described = f"{mask.dtype} {mask.shape}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise DatasetError(f"expected an (H, W) uint8 mask of class ids, got {described}")
    if image.shape[:2] != mask.shape:
        raise DatasetError(
            f"image is {image.shape[0]}x{image.shape[1]} but its mask is {mask.shape[0]}x{mask.shape[1]} "
            "(height x width); check that the image and mask files belong together"
        )
    if image.size == 0:
        raise DatasetError("empty image (0 pixels)")


# -- shared geometry -----------------------------------------------------------------------------
def _resize_pair(image: np.ndarray, mask: np.ndarray, size: Size) -> tuple[np.ndarray, np.ndarray]:
    height, width = size
    if image.shape[:2] == (height, width):
        return image, mask
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    # nearest only: labels are ids. NEAREST_EXACT samples pixel centres like PIL / torch "nearest-exact".
    mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
    return image, mask


def _pad_bottom_right(
    image: np.ndarray, mask: np.ndarray, size: Size, image_fill: Color, ignore_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pad up to at least ``size`` (never crop); padded mask pixels are ``ignore_index``."""
    pad_bottom = max(size[0] - image.shape[0], 0)
    pad_right = max(size[1] - image.shape[1], 0)
    if pad_bottom == 0 and pad_right == 0:
        return image, mask
    image = cv2.copyMakeBorder(image, 0, pad_bottom, 0, pad_right, cv2.BORDER_CONSTANT, value=image_fill)
    mask = cv2.copyMakeBorder(mask, 0, pad_bottom, 0, pad_right, cv2.BORDER_CONSTANT, value=ignore_index)
    return image, mask


# -- transforms ----------------------------------------------------------------------------------
class JointTransform:
    """Base class: ``transform(image, mask, rng) -> (image, mask)``; ``repr`` lists the options.

    Any callable with that signature works in :class:`Compose`; subclassing only buys the repr.
    """

    def __call__(self, image: Any, mask: Any, rng: np.random.Generator) -> tuple[Any, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        options = ", ".join(f"{name}={value!r}" for name, value in vars(self).items())
        return f"{type(self).__name__}({options})"


class Compose(JointTransform):
    """Apply ``transforms`` in order, passing the same ``rng`` to each."""

    def __init__(self, transforms: Sequence[TransformFunction]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: Any, mask: Any, rng: np.random.Generator) -> tuple[Any, Any]:
        if isinstance(image, np.ndarray):
            _check_pair(image, mask)
        for transform in self.transforms:
            image, mask = transform(image, mask, rng)
        return image, mask

    def __repr__(self) -> str:
        lines = "".join(f"\n    {transform!r}," for transform in self.transforms)
        return f"Compose([{lines}\n])"


class RandomScale(JointTransform):
    """Resize by a factor drawn uniformly from ``[min_scale, max_scale]`` (DeepLab's first step).

    Bilinear for the image, nearest for the mask, so no new label values appear. Nothing is padded;
    ``ignore_index`` is only recorded so every geometric step of a printed pipeline names the void id.
    """

    def __init__(self, *, min_scale: float, max_scale: float, ignore_index: int = 255) -> None:
        if not 0 < min_scale <= max_scale:
            raise ConfigError(f"need 0 < min_scale <= max_scale, got min_scale={min_scale}, max_scale={max_scale}")
        self.min_scale = float(min_scale)
        self.max_scale = float(max_scale)
        self.ignore_index = _as_ignore_index(ignore_index)

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        scale = rng.uniform(self.min_scale, self.max_scale)
        height = max(1, int(round(image.shape[0] * scale)))
        width = max(1, int(round(image.shape[1] * scale)))
        return _resize_pair(image, mask, (height, width))


class RandomCrop(JointTransform):
    """Random ``size`` crop; smaller inputs are first padded bottom/right.

    Padding uses ``image_fill`` for the image (default: the ImageNet mean, which normalises to ~0)
    and ``ignore_index`` for the mask. With ``cat_max_ratio`` (MMSegmentation's option) the crop is
    re-drawn up to 10 times until no single class covers ``cat_max_ratio`` or more of the labelled
    crop pixels; the last draw is kept if none qualifies.

    With ``class_focus`` (one sampling weight per class id, e.g. median-frequency weights), a share
    ``focus_probability`` of the crops is centred on a random pixel of one class present in the
    mask, the class drawn in proportion to its weight: thin, rare classes (poles, signs, cyclists)
    then appear in far more crops than a uniform draw gives them, without changing any label.
    """

    max_attempts = 10

    def __init__(
        self,
        *,
        size: int | Sequence[int],
        ignore_index: int,
        image_fill: Sequence[int] = IMAGENET_FILL,
        cat_max_ratio: float | None = None,
        class_focus: Sequence[float] | np.ndarray | None = None,
        focus_probability: float = 0.0,
    ) -> None:
        if cat_max_ratio is not None and not 0 < cat_max_ratio <= 1:
            raise ConfigError(f"cat_max_ratio must be in (0, 1] or None, got {cat_max_ratio!r}")
        self.size = _as_size(size, "crop size")
        self.ignore_index = _as_ignore_index(ignore_index)
        self.image_fill = _as_color(image_fill, "image_fill")
        self.cat_max_ratio = None if cat_max_ratio is None else float(cat_max_ratio)
        self.focus_probability = check_probability(focus_probability)
        self.class_focus = None if class_focus is None else np.asarray(class_focus, dtype=np.float64)
        if self.class_focus is not None and (
            self.class_focus.ndim != 1 or not np.all(np.isfinite(self.class_focus)) or np.any(self.class_focus < 0)
        ):
            raise ConfigError("class_focus must be one finite, non-negative weight per class")

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        image, mask = _pad_bottom_right(image, mask, self.size, self.image_fill, self.ignore_index)
        crop_height, crop_width = self.size
        if self.class_focus is not None and self.focus_probability > 0 and rng.random() < self.focus_probability:
            corner = self._focused_corner(mask, rng)
            if corner is not None:
                top, left = corner
                window = (slice(top, top + crop_height), slice(left, left + crop_width))
                return image[window], mask[window]
        for _ in range(self.max_attempts):
            top = int(rng.integers(0, mask.shape[0] - crop_height + 1))
            left = int(rng.integers(0, mask.shape[1] - crop_width + 1))
            window = (slice(top, top + crop_height), slice(left, left + crop_width))
            if self.cat_max_ratio is None or self.cat_max_ratio >= 1 or self._is_balanced(mask[window]):
                break
        return image[window], mask[window]

    def _focused_corner(self, mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int] | None:
        """Top-left corner of a crop centred (then clamped) on a pixel of a class drawn by weight."""
        assert self.class_focus is not None
        num_classes = len(self.class_focus)
        counts = np.bincount(mask.ravel(), minlength=256)[:num_classes]
        if 0 <= self.ignore_index < num_classes:
            counts[self.ignore_index] = 0
        weights = np.where(counts > 0, self.class_focus, 0.0)
        if weights.sum() <= 0:
            return None
        chosen = int(rng.choice(num_classes, p=weights / weights.sum()))
        rows, columns = np.nonzero(mask == chosen)
        pick = int(rng.integers(len(rows)))
        crop_height, crop_width = self.size
        top = int(np.clip(rows[pick] - crop_height // 2, 0, mask.shape[0] - crop_height))
        left = int(np.clip(columns[pick] - crop_width // 2, 0, mask.shape[1] - crop_width))
        return top, left

    def _is_balanced(self, mask_crop: np.ndarray) -> bool:
        counts = np.bincount(mask_crop.ravel(), minlength=256)
        counts[self.ignore_index] = 0
        present = counts[counts > 0]
        return len(present) > 1 and present.max() / present.sum() < self.cat_max_ratio


class RandomHorizontalFlip(JointTransform):
    """Mirror image and mask left-right together with probability ``p``."""

    def __init__(self, *, p: float = 0.5) -> None:
        self.p = check_probability(p)

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if rng.random() < self.p:
            return np.ascontiguousarray(image[:, ::-1]), np.ascontiguousarray(mask[:, ::-1])
        return image, mask


class RandomVerticalFlip(JointTransform):
    """Mirror image and mask top-bottom together with probability ``p`` (off for street scenes)."""

    def __init__(self, *, p: float = 0.5) -> None:
        self.p = check_probability(p)

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if rng.random() < self.p:
            return np.ascontiguousarray(image[::-1]), np.ascontiguousarray(mask[::-1])
        return image, mask


class ColorJitter(JointTransform):
    """Random brightness, contrast, saturation and hue, in random order, on the image only.

    Factors follow torchvision: brightness/contrast/saturation multiply by a factor drawn from
    ``[max(0, 1 - x), 1 + x]``; hue shifts by a fraction of the colour wheel in ``[-hue, hue]``
    (``hue <= 0.5``). Contrast and saturation blend with the ITU-R 601 grey, as torchvision does.
    The mask is returned untouched.
    """

    def __init__(
        self, *, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0, hue: float = 0.0
    ) -> None:
        for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if value < 0:
                raise ConfigError(f"ColorJitter {name} must be >= 0, got {value!r}")
        if not 0 <= hue <= 0.5:
            raise ConfigError(f"ColorJitter hue must be in [0, 0.5], got {hue!r}")
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.saturation = float(saturation)
        self.hue = float(hue)

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        # draw every factor even when unused so the rng stream does not depend on which are enabled
        brightness = rng.uniform(max(0.0, 1 - self.brightness), 1 + self.brightness)
        contrast = rng.uniform(max(0.0, 1 - self.contrast), 1 + self.contrast)
        saturation = rng.uniform(max(0.0, 1 - self.saturation), 1 + self.saturation)
        hue = rng.uniform(-self.hue, self.hue)
        order = rng.permutation(4)
        if not (self.brightness or self.contrast or self.saturation or self.hue):
            return image, mask

        pixels: np.ndarray = image.astype(np.float32) * np.float32(1 / 255)
        for operation in order:
            if operation == 0 and self.brightness:
                pixels *= np.float32(brightness)
            elif operation == 1 and self.contrast:
                grey_mean = float(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).mean())  # Python float keeps float32
                pixels = (pixels - grey_mean) * np.float32(contrast) + grey_mean
            elif operation == 2 and self.saturation:
                grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)[..., None]
                pixels = (pixels - grey) * np.float32(saturation) + grey
            elif operation == 3 and self.hue:
                hsv = cv2.cvtColor(pixels, cv2.COLOR_RGB2HSV)  # float32 input: hue in degrees [0, 360)
                hsv[..., 0] = np.mod(hsv[..., 0] + np.float32(hue * 360), 360)
                pixels = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
            np.clip(pixels, 0.0, 1.0, out=pixels)
        return (pixels * 255 + 0.5).astype(np.uint8), mask


class Resize(JointTransform):
    """Resize to ``size``: an int sets the shorter side (aspect kept), a pair is (height, width).

    Bilinear for the image, nearest for the mask. Nothing is padded; ``ignore_index`` is only
    recorded so every geometric step of a printed pipeline names the void id.
    """

    def __init__(self, *, size: int | Sequence[int], ignore_index: int = 255) -> None:
        self.size: int | Size = int(size) if isinstance(size, (int, np.integer)) else _as_size(size, "resize size")
        if isinstance(self.size, int) and self.size < 1:
            raise ConfigError(f"resize size must be positive, got {size!r}")
        self.ignore_index = _as_ignore_index(ignore_index)

    def output_size(self, height: int, width: int) -> Size:
        """The (height, width) an input of ``height`` x ``width`` is resized to."""
        if not isinstance(self.size, int):
            return self.size
        scale = self.size / min(height, width)
        return max(1, int(round(height * scale))), max(1, int(round(width * scale)))

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return _resize_pair(image, mask, self.output_size(*mask.shape))


class PadToMultiple(JointTransform):
    """Pad bottom/right so height and width are multiples of ``multiple`` (the model's output stride).

    The mask padding is ``ignore_index``, so metrics and loss are unaffected, and
    ``crop_to_original(pred, (H, W))`` recovers the original region.
    """

    def __init__(self, *, multiple: int, ignore_index: int, image_fill: Sequence[int] = IMAGENET_FILL) -> None:
        if not isinstance(multiple, (int, np.integer)) or multiple < 1:
            raise ConfigError(f"pad multiple must be a positive integer, got {multiple!r}")
        self.multiple = int(multiple)
        self.ignore_index = _as_ignore_index(ignore_index)
        self.image_fill = _as_color(image_fill, "image_fill")

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        height, width = mask.shape
        target = (-(-height // self.multiple) * self.multiple, -(-width // self.multiple) * self.multiple)
        return _pad_bottom_right(image, mask, target, self.image_fill, self.ignore_index)


class ToTensor(JointTransform):
    """uint8 (H, W, 3) image -> float32 (3, H, W) in [0, 1]; uint8 (H, W) mask -> int64 (H, W)."""

    def __call__(
        self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_pair(image, mask)
        return image_to_float(image), torch.from_numpy(mask.astype(np.int64))


class Normalize(JointTransform):
    """``(image - mean) / std`` per channel on the float tensor from :class:`ToTensor`."""

    def __init__(self, *, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ConfigError(f"Normalize needs 3 means and 3 positive stds, got mean={mean!r}, std={std!r}")
        self.mean = tuple(float(value) for value in mean)
        self.std = tuple(float(value) for value in std)

    def __call__(self, image: torch.Tensor, mask: Any, rng: np.random.Generator) -> tuple[torch.Tensor, Any]:
        if not isinstance(image, torch.Tensor) or not image.is_floating_point():
            raise ConfigError("Normalize works on the float tensor from ToTensor: put ToTensor() before Normalize()")
        return normalize_image(image, self.mean, self.std), mask


def crop_to_original(prediction: Any, size: Sequence[int]) -> Any:
    """``prediction[..., :H, :W]``: drop the bottom/right padding added by :class:`PadToMultiple`.

    ``prediction`` is an array or tensor whose last two axes are (height, width), e.g. (H', W'),
    (N, H', W') or (N, K, H', W'); ``size`` is the (H, W) before padding (the raw mask's shape when
    the eval pipeline does not resize).
    """
    height, width = int(size[0]), int(size[1])
    if prediction.shape[-2] < height or prediction.shape[-1] < width:
        raise ValueError(
            f"prediction is {prediction.shape[-2]}x{prediction.shape[-1]}, smaller than the "
            f"original {height}x{width}: it was not produced from a padded input"
        )
    return prediction[..., :height, :width]
