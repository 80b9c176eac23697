"""The prediction-source contract: anything that yields a label map (and maybe probabilities) per sample.

A :class:`PredictionSource` is what every analysis consumes instead of a checkpoint path: a seglab
checkpoint, a TorchScript or ONNX file, a Hugging Face model folder, or a folder of predictions
written by another tool. It speaks in *its own* classes (``class_names``); turning those into the
dataset's classes is :mod:`seglab.sources.mapping`'s job, so a source never needs to know the data.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from seglab.errors import SourceError

MEBIBYTE = 2**20


@dataclass(frozen=True)
class SourceLimits:
    """What an untrusted model file or prediction file may cost before seglab refuses it."""

    max_file_bytes: int = 500 * MEBIBYTE  # model files and single prediction files
    max_pixels: int = 40_000_000  # height x width of a decoded image or prediction
    max_array_bytes: int = 2048 * MEBIBYTE  # a decoded (K, H, W) probability array
    max_classes: int = 1024
    timeout_s: float = 30.0  # per image, model files only (their worker is stopped past it)
    load_timeout_s: float = 300.0  # loading a model file in its worker

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_LIMITS = SourceLimits()


class SourcePrediction(NamedTuple):
    """One sample's prediction in the source's own classes.

    ``labels`` is (H, W) integer class ids of the source; a negative value, or a void value (255 or
    the dataset's ignore index) that is not a source class, means "no class" (e.g. a void pixel in a
    prediction file), which evaluation counts as *other*. ``probabilities`` is
    (K, H, W) float32 summing to 1 over K, or ``None`` when the source only has labels.
    """

    labels: np.ndarray
    probabilities: np.ndarray | None


class PredictionSource(ABC):
    """Per-sample predictions from a model or a folder; see the module docstring.

    Subclasses set ``kind`` and ``name`` and implement :meth:`content_hash`, :meth:`settings` and
    :meth:`predict`. A source may hold a worker process or a loaded model: use it as a context
    manager or call :meth:`close`.
    """

    kind: ClassVar[str] = "source"
    name: str = "source"
    can_predict_images: ClassVar[bool] = True  # False for folders: they only know the files they hold

    # -- identity --------------------------------------------------------------------------------
    @property
    def class_names(self) -> list[str] | None:
        """The source's classes in output order; ``None`` when undeclared (then the dataset's order is assumed)."""
        return None

    @property
    def num_classes(self) -> int | None:
        """Number of output classes when known without predicting."""
        names = self.class_names
        return len(names) if names is not None else None

    @property
    def has_probabilities(self) -> bool:
        """Whether :meth:`predict` returns per-class probabilities (label quality, loss views need them)."""
        return True

    @abstractmethod
    def content_hash(self) -> str:
        """A hash that changes whenever the model file(s) or prediction files change."""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """JSON-friendly description of how predictions are made (preprocessing, protocol, options)."""

    def settings_key(self) -> str:
        """:meth:`settings` as a canonical string: with :meth:`content_hash` it keys evaluation caches."""
        return json.dumps(self.settings(), sort_keys=True, default=str)

    def identity(self) -> str:
        """Short hash of content and settings: two sources with equal identities predict the same."""
        return hashlib.sha256(f"{self.content_hash()}|{self.settings_key()}".encode()).hexdigest()[:16]

    def describe(self) -> str:
        """One line for logs, reports and pickers."""
        names = self.class_names
        classes = f"{len(names)} classes" if names is not None else "classes undeclared"
        return f"{self.kind} {self.name} ({classes})"

    def notes(self) -> list[str]:
        """Things the source did that a user should know (e.g. predictions resized), so far."""
        return []

    # -- predictions ---------------------------------------------------------------------------------
    @abstractmethod
    def predict(self, sample_id: str | None, image: np.ndarray) -> SourcePrediction:
        """Predict one (H, W, 3) uint8 RGB image; ``sample_id`` names the dataset sample (``None`` for uploads)."""

    def predict_batch(self, sample_ids: Sequence[str | None], images: Sequence[np.ndarray]) -> list[SourcePrediction]:
        """Predict several images of one size (sources that batch override this)."""
        return [self.predict(sample_id, image) for sample_id, image in zip(sample_ids, images, strict=True)]

    def close(self) -> None:  # noqa: B027 (optional hook: most sources hold nothing to release)
        """Release models and worker processes (the source can be used again afterwards)."""

    def __enter__(self) -> PredictionSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def check_image(image: np.ndarray, limits: SourceLimits, what: str = "image") -> None:
    """Raise :class:`SourceError` unless ``image`` is (H, W, 3) uint8 within the pixel limit."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        described = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise SourceError(f"expected an (H, W, 3) uint8 RGB {what}, got {described}")
    if image.shape[0] * image.shape[1] > limits.max_pixels:
        raise SourceError(
            f"{what} is {image.shape[1]}x{image.shape[0]}, more than the {limits.max_pixels / 1e6:.0f} MP limit; "
            "downscale it or raise SourceLimits.max_pixels"
        )


def softmax(scores: np.ndarray, axis: int = 0) -> np.ndarray:
    """Numerically stable softmax over ``axis`` in float32."""
    scores = np.asarray(scores, dtype=np.float32)
    shifted = scores - scores.max(axis=axis, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=axis, keepdims=True)
    return shifted


def labels_dtype(num_classes: int) -> type:
    """uint8 class ids when they fit, else int32."""
    return np.uint8 if num_classes <= 256 else np.int32
