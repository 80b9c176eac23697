"""Shapes options: :class:`ShapesConfig` (sizes, seed, objects, colours, difficulty, label noise), checked on
construction, and the names of the splits, shape classes and label corruptions."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from seglab.errors import DatasetError

SPLITS = ("train", "val", "test")
SHAPE_NAMES = ("circle", "square", "triangle", "star", "ring", "stripe")  # class ids 1..6
CORRUPTIONS = ("flip", "erode", "dilate")
GENERATOR_VERSION = 2  # bump whenever the same config would draw different pixels (keys caches)

CIRCLE, SQUARE, TRIANGLE, STAR, RING, STRIPE = range(1, 7)


class ShapesConfigError(DatasetError, ValueError):
    """An invalid Shapes option (also a ValueError, as dataclass-style validation usually is)."""


@dataclass
class ShapesConfig:
    """Every knob of the Shapes generator, with its default.

    Class order: background, circle, square, triangle, star, ring, stripe. Invalid values raise
    :class:`ShapesConfigError` (a ``DatasetError`` and a ``ValueError``) from ``__post_init__``
    and :meth:`validate`.

    The defaults are imbalanced like VOC (background ~76% of labelled pixels, stripe ~0.9%) yet
    learnable for a tiny CPU model within a minute: shapes are large enough to tell apart at
    128 px, class hues stand out on dull backgrounds, tiny and low-contrast objects are a minority,
    and ``difficulty=0.5`` keeps poses near upright and objects untextured (pose freedom and object
    texture only grow above 0.5).
    """

    image_size: int = 128  # square images, pixels
    train_size: int = 400  # samples in the "train" split
    val_size: int = 100  # samples in the "val" split
    test_size: int = 100  # samples in the "test" split
    seed: int = 0  # one seed for all splits; splits never share samples
    min_objects: int = 1  # objects per image, inclusive range
    max_objects: int = 8
    # relative frequency of each shape class (circle, square, triangle, star, ring, stripe): the imbalance knob
    class_frequencies: tuple[float, ...] = (0.25, 0.22, 0.20, 0.16, 0.12, 0.04)
    object_scale: float = 1.0  # multiplies every object's size
    tiny_object_probability: float = 0.05  # chance an object is drawn tiny (a few pixels across)
    similar_color_probability: float = 0.05  # chance an object is coloured like the background
    class_color_probability: float = 1.0  # chance an object takes its class's typical hue (0 = colour says nothing)
    background_noise: float = 0.5  # strength of background texture/noise, 0..1
    background_saturation: float = (
        0.25  # how colourful backgrounds may be, 0 (grey) .. 1; vivid objects stand out on dull ones
    )
    boundary_blur: float = 0.0  # Gaussian blur sigma (pixels) applied to the image edges
    void_border: int = 1  # void (ignore) band: pixels within this many px of an object outline, both sides; 0 = none
    label_noise: float = 0.0  # fraction of objects whose label is corrupted (flipped class / eroded / dilated)
    difficulty: float = 0.5  # 0 = easy, 1 = hard: occlusion, noise, distractors, pose, contrast, object texture

    def __post_init__(self) -> None:
        if isinstance(self.class_frequencies, (list, np.ndarray)):
            self.class_frequencies = tuple(float(v) for v in self.class_frequencies)
        self.validate()

    def validate(self) -> None:
        """Raise ShapesConfigError naming the first invalid option and the values it accepts."""
        for name, low, high in (
            ("image_size", 16, 4096),
            ("train_size", 1, 10_000_000),
            ("val_size", 1, 10_000_000),
            ("test_size", 1, 10_000_000),
            ("seed", 0, 2**63 - 1),
            ("min_objects", 0, 50),
            ("max_objects", 0, 50),
            ("void_border", 0, 16),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
                raise ShapesConfigError(f"Shapes option {name} must be an integer in {low}..{high}, got {value!r}")
        if self.max_objects < self.min_objects:
            raise ShapesConfigError(
                f"Shapes option max_objects ({self.max_objects}) must be >= min_objects ({self.min_objects})"
            )
        for name, minimum, maximum in (
            ("tiny_object_probability", 0.0, 1.0),
            ("similar_color_probability", 0.0, 1.0),
            ("class_color_probability", 0.0, 1.0),
            ("background_noise", 0.0, 1.0),
            ("background_saturation", 0.0, 1.0),
            ("label_noise", 0.0, 1.0),
            ("difficulty", 0.0, 1.0),
            ("boundary_blur", 0.0, 20.0),
            ("object_scale", 0.05, 5.0),
        ):
            value = getattr(self, name)
            number = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
            if not number or not minimum <= value <= maximum:
                raise ShapesConfigError(
                    f"Shapes option {name} must be a number in [{minimum}, {maximum}], got {value!r}"
                )
        frequencies = self.class_frequencies
        if not isinstance(frequencies, tuple) or len(frequencies) != len(SHAPE_NAMES):
            raise ShapesConfigError(
                f"Shapes option class_frequencies must list {len(SHAPE_NAMES)} weights "
                f"({', '.join(SHAPE_NAMES)}), got {frequencies!r}"
            )
        if (
            not all(
                isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                for v in frequencies
            )
            or sum(frequencies) <= 0
        ):
            raise ShapesConfigError(
                f"Shapes option class_frequencies must be finite non-negative weights with a positive sum, "
                f"got {frequencies!r}"
            )

    def split_size(self, split: str) -> int:
        """Number of samples in ``split`` ("train", "val" or "test")."""
        if split not in SPLITS:
            raise DatasetError(f"unknown Shapes split {split!r}; valid splits: {', '.join(SPLITS)}")
        return getattr(self, f"{split}_size")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["class_frequencies"] = list(self.class_frequencies)
        return data

    def to_query(self) -> str:
        """The options that differ from the defaults as compact JSON ("" when none): for shareable URLs."""
        defaults = ShapesConfig().to_dict()
        changed = {name: value for name, value in self.to_dict().items() if value != defaults[name]}
        return json.dumps(changed, separators=(",", ":")) if changed else ""

    @classmethod
    def from_query(cls, text: str | None) -> ShapesConfig:
        """Inverse of :meth:`to_query`; raises ShapesConfigError on text that is not such JSON."""
        if not text:
            return cls()
        try:
            options = json.loads(text)
        except json.JSONDecodeError as error:
            raise ShapesConfigError(f"Shapes options must be JSON, got {text!r}: {error}") from None
        if not isinstance(options, dict):
            raise ShapesConfigError(f"Shapes options must be a JSON object, got {text!r}")
        return cls.from_dict(options)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShapesConfig:
        """Inverse of :meth:`to_dict`; raises ShapesConfigError on unknown or invalid options."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ShapesConfigError(
                f"unknown Shapes option(s): {', '.join(unknown)}; known options: {', '.join(known)}"
            )
        data = dict(data)
        if "class_frequencies" in data:
            values = data["class_frequencies"]
            if isinstance(values, str):  # command lines give "0.3,0.25,..."
                values = [v for v in values.replace(" ", ",").split(",") if v]
            try:
                data["class_frequencies"] = tuple(float(v) for v in values)
            except (TypeError, ValueError):
                raise ShapesConfigError(
                    f"Shapes option class_frequencies must be a list of {len(SHAPE_NAMES)} numbers, "
                    f"got {data['class_frequencies']!r}"
                ) from None
        return cls(**data)
