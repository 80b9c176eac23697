"""Shapes: the built-in synthetic dataset (procedural, deterministic, no files).

Every sample is drawn from ``np.random.default_rng([seed, split_code, index])``: a textured
background (colour gradient, low-frequency blobs, soft distractor blobs and thin lines, sensor
noise), then ``min_objects..max_objects`` shapes painted back to front, so later objects occlude
earlier ones and the mask holds what is visible. Each class has a typical vivid hue (like sky is
blue), taken with ``class_color_probability``, on backgrounds whose colourfulness is bounded by
``background_saturation``: a cue a small model learns in a minute and then over-trusts. The
failures a model still makes are the lessons: objects coloured like what lies behind them, tiny
objects, occlusion, the rare stripe class, and (lower ``class_color_probability``, higher
``difficulty``) off-colour and textured objects whose outline alone tells the class.

Label noise is drawn from a second stream (``[seed, split_code, index, 1]``), so turning it on never
changes the image: the image always shows the truth, only the returned mask is corrupted.
:meth:`ShapesDataset.sample_objects` and :meth:`ShapesDataset.clean_mask` expose the ground truth
behind the noise, for validating label-error detection.
"""

from __future__ import annotations

import colorsys
import json
import math
import operator
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import cv2
import numpy as np

from seglab.data.base import SegmentationDataset
from seglab.data.label_map import shapes_label_map
from seglab.errors import DatasetError

SPLITS = ("train", "val", "test")
SHAPE_NAMES = ("circle", "square", "triangle", "star", "ring", "stripe")  # class ids 1..6
CORRUPTIONS = ("flip", "erode", "dilate")
GENERATOR_VERSION = 2  # bump whenever the same config would draw different pixels (keys caches)

CIRCLE, SQUARE, TRIANGLE, STAR, RING, STRIPE = range(1, 7)
_SPLIT_CODES = {name: code for code, name in enumerate(SPLITS)}
# Each shape class has a typical hue, like sky is blue and roads are grey: objects take it with
# probability ``class_color_probability``, which makes the data learnable in a minute on a CPU and
# gives a shortcut a model can over-trust (off-colour objects are where it fails). Hues 60 degrees
# apart, vivid saturation/value, so the cue is unambiguous when present.
_CLASS_HUES = (0.0, 120.0, 60.0, 220.0, 30.0, 285.0)
_CLASS_HUE_SPREAD = 8.0  # standard deviation (degrees) around a class hue
_SUBPIXEL_BITS = 4  # cv2 drawing with fixed-point coordinates: smoother small shapes
_MIN_CONTRAST = 70.0  # RGB distance between an ordinary object and what lies behind it


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


@dataclass
class _Shape:
    """One painted object: its true class, its silhouette before occlusion, how it was drawn."""

    class_id: int
    silhouette: np.ndarray  # (S, S) bool, before occlusion
    tiny: bool
    similar_color: bool


@dataclass
class _Corruption:
    """What label noise does to one object (drawn for every object, applied when ``active``)."""

    active: bool
    kind: str  # one of CORRUPTIONS
    flipped_class: int
    pixels: int  # erosion / dilation radius


@dataclass
class _Scene:
    image: np.ndarray  # (S, S, 3) uint8
    shapes: list[_Shape]
    corruptions: list[_Corruption]


class ShapesDataset(SegmentationDataset):
    """The built-in synthetic dataset: one split of procedurally drawn images and masks.

    ``load(i)`` returns ``(image (S, S, 3) uint8, mask (S, S) uint8)`` with labels 0..6 and 255
    (void band, when ``void_border > 0``). The same ``(seed, split, index)`` always gives the same
    arrays; splits use separate random streams and never share samples.
    """

    kind = "shapes"

    def __init__(
        self, split: str = "train", config: ShapesConfig | None = None, *, cache_megabytes: float = 256.0
    ) -> None:
        """``cache_megabytes`` bounds the in-memory cache of generated samples (0 = no cache):
        training revisits every sample each epoch, and regenerating costs more than a copy."""
        config = ShapesConfig() if config is None else config
        if not isinstance(config, ShapesConfig):
            raise DatasetError(f"config must be a ShapesConfig, got {type(config).__name__}")
        config.validate()
        # A private copy: editing the caller's config later must not silently change this dataset.
        self.config = replace(config)
        self.split = split
        self.label_map = shapes_label_map()
        self.ids = [f"{split}-{index:06d}" for index in range(self.config.split_size(split))]
        sample_bytes = self.config.image_size**2 * 4
        self._cache_capacity = int(max(cache_megabytes, 0.0) * 2**20 // sample_bytes)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def fingerprint_parts(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "split": self.split, "generator_version": GENERATOR_VERSION}

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(image, mask)`` of sample ``index``; the mask carries label noise when configured."""
        index = self._check_index(index)
        cached = self._cache.get(index)
        if cached is None:
            scene = self._scene(index)
            cached = (scene.image, self._mask(scene, corrupted=True))
            if len(self._cache) < self._cache_capacity:
                self._cache[index] = cached
        # Copies: callers (in-place transforms) must never alter what the cache hands out next time.
        return cached[0].copy(), cached[1].copy()

    def clean_mask(self, index: int) -> np.ndarray:
        """(S, S) uint8 mask of sample ``index`` without label noise (void band included)."""
        return self._mask(self._scene(index), corrupted=False)

    def sample_objects(self, index: int) -> list[dict[str, Any]]:
        """Describe every object drawn in sample ``index``, back to front.

        Each dict has ``class_id``/``class_name`` (the truth), ``label_id`` (the class written in
        the returned mask), ``bbox`` ``(x0, y0, x1, y1)`` of its visible pixels (end exclusive;
        ``None`` when fully occluded), ``area`` (visible pixels, before the void band),
        ``drawn_bbox``/``drawn_area`` (the whole shape inside the image, occluded parts included), ``tiny``,
        ``similar_color``, ``corrupted``, ``corruption`` (``"flip"``/``"erode"``/``"dilate"`` or
        ``None``) and ``changed_pixels`` (mask pixels that differ from :meth:`clean_mask` because
        of it). An object counts as corrupted only when its corruption changed the mask.
        """
        scene = self._scene(index)
        clean = self._mask(scene, corrupted=False)
        noisy = self._mask(scene, corrupted=True)
        different = noisy != clean
        visible = _paint_instances([shape.silhouette for shape in scene.shapes], clean.shape)
        descriptions = []
        for position, (shape, corruption) in enumerate(zip(scene.shapes, scene.corruptions)):
            own = visible == position
            area = int(np.count_nonzero(own))
            changed = 0
            if corruption.active:
                # Where this object's corruption can show: its own outline and the grown one, plus
                # the void band that follows the new outline.
                outline = shape.silhouette | _corrupted_silhouette(shape.silhouette, corruption)
                reach = _dilate(outline, self.config.void_border + 1)
                changed = int(np.count_nonzero(different & reach))
            corrupted = changed > 0
            label_id = corruption.flipped_class if corrupted and corruption.kind == "flip" else shape.class_id
            descriptions.append(
                {
                    "index": position,
                    "class_id": shape.class_id,
                    "class_name": self.label_map.class_name(shape.class_id),
                    "label_id": label_id,
                    "bbox": _bounding_box(own),
                    "area": area,
                    "drawn_bbox": _bounding_box(shape.silhouette),
                    "drawn_area": int(np.count_nonzero(shape.silhouette)),
                    "tiny": shape.tiny,
                    "similar_color": shape.similar_color,
                    "corrupted": corrupted,
                    "corruption": corruption.kind if corrupted else None,
                    "changed_pixels": changed,
                }
            )
        return descriptions

    # -- generation --------------------------------------------------------------------------
    def _check_index(self, index: int) -> int:
        index = operator.index(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"sample index out of range for {self.describe()}")
        return index

    def _scene(self, index: int) -> _Scene:
        index = self._check_index(index)
        config = self.config
        split_code = _SPLIT_CODES[self.split]
        rng = np.random.default_rng([config.seed, split_code, index])
        size = config.image_size
        image = _draw_background(rng, size, config.background_noise, config.difficulty, config.background_saturation)
        texture = _low_frequency_noise(rng, size, cells=max(4, size // 12), channels=2)
        occupied = np.zeros((size, size), dtype=bool)
        weights = np.asarray(config.class_frequencies, dtype=np.float64)
        count = int(rng.integers(config.min_objects, config.max_objects + 1))
        shapes = []
        for _ in range(count):
            class_id = 1 + int(rng.choice(len(SHAPE_NAMES), p=weights / weights.sum()))
            tiny = bool(rng.random() < config.tiny_object_probability)
            silhouette = _place_shape(rng, class_id, tiny, occupied, config)
            similar = bool(rng.random() < config.similar_color_probability)
            _paint_object(rng, image, silhouette, class_id, similar, texture, config)
            occupied |= silhouette
            shapes.append(_Shape(class_id, silhouette, tiny, similar))
        noise_sigma = config.background_noise * (1.0 + 6.0 * config.difficulty)
        if noise_sigma > 0:
            image += rng.standard_normal(image.shape, dtype=np.float32) * noise_sigma
        image = np.clip(image, 0, 255).astype(np.uint8)
        # Label noise has its own stream and draws the same numbers whatever label_noise is, so the
        # image and the clean mask never depend on it.
        noise_rng = np.random.default_rng([config.seed, split_code, index, 1])
        corruptions = [_draw_corruption(noise_rng, shape.class_id, config.label_noise) for shape in shapes]
        return _Scene(image, shapes, corruptions)

    def _mask(self, scene: _Scene, corrupted: bool) -> np.ndarray:
        size = scene.image.shape[0]
        silhouettes = []
        classes = []
        for shape, corruption in zip(scene.shapes, scene.corruptions):
            if corrupted and corruption.active:
                silhouettes.append(_corrupted_silhouette(shape.silhouette, corruption))
                classes.append(corruption.flipped_class if corruption.kind == "flip" else shape.class_id)
            else:
                silhouettes.append(shape.silhouette)
                classes.append(shape.class_id)
        instances = _paint_instances(silhouettes, (size, size))
        lookup = np.array([0, *classes], dtype=np.uint8)
        mask = lookup[instances + 1]
        if self.config.void_border > 0:
            _apply_void_border(mask, instances, self.config.void_border, self.ignore_index)
        return mask


# -- drawing helpers -------------------------------------------------------------------------
def _random_color(
    rng: np.random.Generator, hue: float | None = None, vivid: bool = False, max_saturation: float = 1.0
) -> np.ndarray:
    """An RGB colour (3,) float32 in 0..255 from a random (or given) hue; ``vivid`` keeps the hue readable."""
    hue = rng.uniform(0.0, 360.0) if hue is None else hue
    low = 0.6 if vivid else 0.25
    saturation = rng.uniform(low, 1.0) * max_saturation
    value = rng.uniform(low, 1.0)
    return np.array(colorsys.hsv_to_rgb((hue % 360.0) / 360.0, saturation, value), dtype=np.float32) * 255.0


def _low_frequency_noise(rng: np.random.Generator, size: int, cells: int, channels: int) -> np.ndarray:
    """(size, size, channels) float32 smooth noise, roughly unit variance."""
    grid = rng.standard_normal((cells, cells, channels), dtype=np.float32)
    field = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    return field.reshape(size, size, channels)


def _draw_background(
    rng: np.random.Generator, size: int, strength: float, difficulty: float, max_saturation: float = 1.0
) -> np.ndarray:
    """(size, size, 3) float32: gradient + smooth blobs + soft distractor blobs + thin lines."""
    start = _random_color(rng, max_saturation=max_saturation)
    end = np.clip(start + rng.normal(0.0, 50.0, 3), 0, 255).astype(np.float32)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    coordinates = np.arange(size, dtype=np.float32) / max(size - 1, 1)
    ramp = coordinates[None, :] * math.cos(angle) + coordinates[:, None] * math.sin(angle)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    image = start + (end - start) * ramp[..., None]
    image += _low_frequency_noise(rng, size, cells=int(rng.integers(3, 7)), channels=3) * (30.0 * strength)
    # Fine grain (mostly luminance) on the background only: like real clutter, the background's
    # local texture differs from most objects' surfaces, which is what makes figure/ground learnable.
    grain = cv2.GaussianBlur(rng.standard_normal((size, size), dtype=np.float32), (0, 0), sigmaX=0.6)
    image += grain[..., None] * (30.0 * strength)

    # Distractors are background: soft-edged blobs and thin lines, never hard-edged shapes, so an
    # outline still tells objects apart from clutter.
    distractor_scale = strength * (0.25 + difficulty)
    blob_count = int(rng.poisson(3.0 * distractor_scale))
    if blob_count:
        layer = np.zeros((size, size, 3), dtype=np.float32)
        for _ in range(blob_count):
            center = (int(rng.integers(0, size)), int(rng.integers(0, size)))
            axes = (int(rng.uniform(0.05, 0.2) * size) + 1, int(rng.uniform(0.05, 0.2) * size) + 1)
            offset = rng.normal(0.0, 45.0, 3)
            cv2.ellipse(layer, center, axes, float(rng.uniform(0, 180)), 0, 360, offset.tolist(), -1)
        image += cv2.GaussianBlur(layer, (0, 0), sigmaX=max(2.0, size / 32.0))
    line_count = int(rng.poisson(2.5 * distractor_scale))
    for _ in range(line_count):
        first = (int(rng.integers(0, size)), int(rng.integers(0, size)))
        second = (int(rng.integers(0, size)), int(rng.integers(0, size)))
        color = image[first[1], first[0]] + rng.normal(0.0, 40.0, 3).astype(np.float32)
        cv2.line(image, first, second, color.tolist(), 1)
    return _limit_saturation(image, max_saturation)


def _limit_saturation(image: np.ndarray, max_saturation: float) -> np.ndarray:
    """Pull each pixel towards grey until its HSV saturation is at most ``max_saturation`` (keeps its value)."""
    if max_saturation >= 1.0:
        return image
    image = np.clip(image, 0, 255)
    brightest = image.max(axis=-1, keepdims=True)
    chroma = brightest - image.min(axis=-1, keepdims=True)
    scale = np.minimum(1.0, max_saturation * brightest / np.maximum(chroma, 1e-6))
    return brightest - (brightest - image) * scale


def _shape_silhouette(
    rng: np.random.Generator,
    class_id: int,
    center: tuple[float, float],
    radius: float,
    size: int,
    max_rotation: float,
) -> np.ndarray:
    """(size, size) bool outline of one shape of characteristic radius ``radius`` (pixels).

    Squares, triangles and stars stand upright, turned by at most ``max_rotation`` radians (like
    real objects, which have a usual pose); circles, rings and stripes take any orientation.
    """
    canvas = np.zeros((size, size), dtype=np.uint8)
    if class_id in (SQUARE, TRIANGLE, STAR):
        upright = 0.0 if class_id == SQUARE else -math.pi / 2.0  # a corner pointing up
        angle = upright + rng.uniform(-1.0, 1.0) * max_rotation
    else:
        angle = rng.uniform(0.0, 2.0 * math.pi)
    scale = 1 << _SUBPIXEL_BITS
    fixed_center = (round(center[0] * scale), round(center[1] * scale))
    if class_id in (CIRCLE, RING):
        aspect = rng.uniform(0.9, 1.0)
        outer = radius * (1.1 if class_id == RING else 1.0)
        axes = (round(outer * scale), round(outer * aspect * scale))
        cv2.ellipse(canvas, fixed_center, axes, math.degrees(angle), 0, 360, 1, -1, cv2.LINE_8, _SUBPIXEL_BITS)
        if class_id == RING:
            # Keep the band at least ~2 px wide so tiny rings are still rings, not dots.
            hole = min(outer * rng.uniform(0.55, 0.65), outer - 2.0)
            if hole > 0.5:
                axes = (round(hole * scale), round(hole * aspect * scale))
                cv2.ellipse(canvas, fixed_center, axes, math.degrees(angle), 0, 360, 0, -1, cv2.LINE_8, _SUBPIXEL_BITS)
        return canvas.astype(bool)
    if class_id == SQUARE:
        half = radius * 0.9
        aspect = rng.uniform(0.9, 1.0)
        corners = _rectangle(half, half * aspect)
    elif class_id == TRIANGLE:
        angles = np.array([0.0, 2.0, 4.0]) * math.pi / 3.0 + rng.uniform(-0.08, 0.08, 3)
        corners = 1.25 * radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    elif class_id == STAR:
        points = 5
        angles = np.arange(2 * points) * math.pi / points
        radii = np.where(np.arange(2 * points) % 2 == 0, 1.35 * radius, 1.35 * radius * rng.uniform(0.38, 0.45))
        corners = np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)
    elif class_id == STRIPE:
        half_length = radius * rng.uniform(1.7, 2.2)
        half_width = max(radius * rng.uniform(0.3, 0.38), 0.8)
        corners = _rectangle(half_length, half_width)
    else:
        raise ValueError(f"unknown shape class {class_id}")
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points = corners @ rotation.T + np.asarray(center)
    cv2.fillPoly(canvas, [np.round(points * scale).astype(np.int32)], 1, cv2.LINE_8, _SUBPIXEL_BITS)
    return canvas.astype(bool)


def _rectangle(half_width: float, half_height: float) -> np.ndarray:
    """(4, 2) corners of an axis-aligned rectangle centred on the origin."""
    return np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64) * (half_width, half_height)


def _place_shape(
    rng: np.random.Generator, class_id: int, tiny: bool, occupied: np.ndarray, config: ShapesConfig
) -> np.ndarray:
    """Draw a silhouette at a random place, retrying a few times to limit overlap.

    With probability growing with ``difficulty`` an object may overlap others by about a third, which
    is where occlusion comes from; otherwise overlaps are kept small.
    """
    size = config.image_size
    if tiny:
        radius = max(2.5, size * rng.uniform(0.025, 0.04)) * config.object_scale
    else:
        radius = size * rng.uniform(0.11, 0.19) * config.object_scale
    # Pose freedom grows late with difficulty: +-11 degrees at 0.5, +-57 at 0.75, any pose at 1.
    max_rotation = math.pi * config.difficulty**4
    allowed_overlap = 0.35 if rng.random() < 0.4 * config.difficulty else 0.03
    best, best_overlap = None, math.inf
    for _ in range(6):
        center = (rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.9) * size)
        silhouette = _shape_silhouette(rng, class_id, center, radius, size, max_rotation)
        area = np.count_nonzero(silhouette)
        overlap = np.count_nonzero(silhouette & occupied) / max(int(area), 1)
        if overlap < best_overlap:
            best, best_overlap = silhouette, overlap
        if overlap <= allowed_overlap:
            break
    assert best is not None  # the first try always sets it
    return best


def _paint_object(
    rng: np.random.Generator,
    image: np.ndarray,
    silhouette: np.ndarray,
    class_id: int,
    similar: bool,
    texture: np.ndarray,
    config: ShapesConfig,
) -> None:
    """Composite one object into ``image`` (in place), within its bounding box for speed."""
    x, y, width, height = cv2.boundingRect(silhouette.astype(np.uint8))
    inside = silhouette[y : y + height, x : x + width]
    behind = image[y : y + height, x : x + width][inside].mean(axis=0) if width else np.zeros(3, np.float32)
    if similar:
        # Low contrast, not invisible: the gap shrinks with difficulty.
        direction = rng.normal(size=3)
        direction /= max(float(np.linalg.norm(direction)), 1e-6)
        gap = (47.5 - 17.5 * config.difficulty) * rng.uniform(0.8, 1.2)
        color = behind + direction * gap
        if (color < 0).any() or (color > 255).any():
            color = behind - direction * gap
        color = np.clip(color, 0, 255).astype(np.float32)
    else:
        typical = rng.random() < config.class_color_probability
        hue = _CLASS_HUES[class_id - 1] + rng.normal(0.0, _CLASS_HUE_SPREAD) if typical else None
        color = _random_color(rng, hue, vivid=typical)
        for _ in range(8):
            if np.linalg.norm(color - behind) >= _MIN_CONTRAST:
                break
            color = _random_color(rng, hue, vivid=typical)
    texture_strength = max(0.0, config.difficulty - 0.5) * 80.0 * rng.uniform(0.5, 1.5)
    mixing = rng.normal(size=(2, 3)).astype(np.float32)
    if not width:
        return
    pad = int(math.ceil(3 * config.boundary_blur))
    x0, y0 = max(x - pad, 0), max(y - pad, 0)
    x1, y1 = min(x + width + pad, image.shape[1]), min(y + height + pad, image.shape[0])
    alpha: np.ndarray = silhouette[y0:y1, x0:x1].astype(np.float32)
    if config.boundary_blur > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=config.boundary_blur)
    appearance = color + texture_strength * (texture[y0:y1, x0:x1] @ mixing)
    region = image[y0:y1, x0:x1]
    region += (appearance - region) * alpha[..., None]


def _draw_corruption(rng: np.random.Generator, class_id: int, label_noise: float) -> _Corruption:
    active = bool(rng.random() < label_noise)
    kind = CORRUPTIONS[int(rng.integers(len(CORRUPTIONS)))]
    others = [c for c in range(1, len(SHAPE_NAMES) + 1) if c != class_id]
    flipped = others[int(rng.integers(len(others)))]
    return _Corruption(active, kind, flipped, int(rng.integers(2, 5)))


def _bounding_box(pixels: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` (end exclusive) around the true pixels, ``None`` when there are none."""
    if not pixels.any():
        return None
    x, y, width, height = cv2.boundingRect(pixels.astype(np.uint8))
    return (x, y, x + width, y + height)


def _dilate(silhouette: np.ndarray, pixels: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(silhouette.astype(np.uint8), kernel).astype(bool)


def _core(silhouette: np.ndarray) -> np.ndarray:
    """The innermost pixels of a silhouette (at least one pixel when it is not empty)."""
    distance = cv2.distanceTransform(silhouette.astype(np.uint8), cv2.DIST_L2, 3)
    return silhouette & (distance >= distance.max())


def _corrupted_silhouette(silhouette: np.ndarray, corruption: _Corruption) -> np.ndarray:
    if corruption.kind == "dilate":
        return _dilate(silhouette, corruption.pixels)
    if corruption.kind == "erode":
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * corruption.pixels + 1,) * 2)
        eroded = cv2.erode(silhouette.astype(np.uint8), kernel).astype(bool)
        # An annotator who under-draws still marks the object: never erode it away entirely.
        return eroded if eroded.any() else _core(silhouette)
    return silhouette


def _paint_instances(silhouettes: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) int16 index of the object visible at each pixel, -1 for background."""
    instances = np.full(shape, -1, dtype=np.int16)
    for position, silhouette in enumerate(silhouettes):
        instances[silhouette] = position
    return instances


def _apply_void_border(mask: np.ndarray, instances: np.ndarray, width: int, ignore_index: int) -> None:
    """Mark pixels within ``width`` px of an object outline as void (in place), VOC style.

    The band straddles every outline (both sides), follows instance edges (so two touching objects
    of one class are still separated), and never erases an object: a fully covered object keeps
    its core.
    """
    edges = np.zeros(instances.shape, dtype=bool)
    horizontal = instances[:, 1:] != instances[:, :-1]
    vertical = instances[1:, :] != instances[:-1, :]
    edges[:, 1:] |= horizontal
    edges[:, :-1] |= horizontal
    edges[1:, :] |= vertical
    edges[:-1, :] |= vertical
    band = _dilate(edges, width - 1) if width > 1 else edges
    for position in np.unique(instances[band]):
        if position < 0:
            continue
        own = instances == position
        if not (own & ~band).any():
            band &= ~_core(own)
    mask[band] = ignore_index
