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

The options are :class:`~seglab.data.shapes_config.ShapesConfig` (re-exported here); the drawing is in
:mod:`seglab.data.shapes_drawing`; this module holds the dataset.
"""

from __future__ import annotations

import operator
from dataclasses import replace
from typing import Any

import numpy as np

from seglab.data.base import SegmentationDataset
from seglab.data.label_map import shapes_label_map
from seglab.data.shapes_config import (
    CORRUPTIONS,
    GENERATOR_VERSION,
    SHAPE_NAMES,
    SPLITS,
    ShapesConfig,
    ShapesConfigError,
)
from seglab.data.shapes_drawing import (
    Scene,
    Shape,
    apply_void_border,
    bounding_box,
    corrupted_silhouette,
    dilate,
    draw_background,
    draw_corruption,
    low_frequency_noise,
    paint_instances,
    paint_object,
    place_shape,
)
from seglab.errors import DatasetError

__all__ = [
    "CORRUPTIONS",
    "GENERATOR_VERSION",
    "SHAPE_NAMES",
    "SPLITS",
    "ShapesConfig",
    "ShapesConfigError",
    "ShapesDataset",
]

_SPLIT_CODES = {name: code for code, name in enumerate(SPLITS)}


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
        visible = paint_instances([shape.silhouette for shape in scene.shapes], clean.shape)
        descriptions = []
        for position, (shape, corruption) in enumerate(zip(scene.shapes, scene.corruptions)):
            own = visible == position
            area = int(np.count_nonzero(own))
            changed = 0
            if corruption.active:
                # Where this object's corruption can show: its own outline and the grown one, plus
                # the void band that follows the new outline.
                outline = shape.silhouette | corrupted_silhouette(shape.silhouette, corruption)
                reach = dilate(outline, self.config.void_border + 1)
                changed = int(np.count_nonzero(different & reach))
            corrupted = changed > 0
            label_id = corruption.flipped_class if corrupted and corruption.kind == "flip" else shape.class_id
            descriptions.append(
                {
                    "index": position,
                    "class_id": shape.class_id,
                    "class_name": self.label_map.class_name(shape.class_id),
                    "label_id": label_id,
                    "bbox": bounding_box(own),
                    "area": area,
                    "drawn_bbox": bounding_box(shape.silhouette),
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

    def _scene(self, index: int) -> Scene:
        index = self._check_index(index)
        config = self.config
        split_code = _SPLIT_CODES[self.split]
        rng = np.random.default_rng([config.seed, split_code, index])
        size = config.image_size
        image = draw_background(rng, size, config.background_noise, config.difficulty, config.background_saturation)
        texture = low_frequency_noise(rng, size, cells=max(4, size // 12), channels=2)
        occupied = np.zeros((size, size), dtype=bool)
        weights = np.asarray(config.class_frequencies, dtype=np.float64)
        count = int(rng.integers(config.min_objects, config.max_objects + 1))
        shapes = []
        for _ in range(count):
            class_id = 1 + int(rng.choice(len(SHAPE_NAMES), p=weights / weights.sum()))
            tiny = bool(rng.random() < config.tiny_object_probability)
            silhouette = place_shape(rng, class_id, tiny, occupied, config)
            similar = bool(rng.random() < config.similar_color_probability)
            paint_object(rng, image, silhouette, class_id, similar, texture, config)
            occupied |= silhouette
            shapes.append(Shape(class_id, silhouette, tiny, similar))
        noise_sigma = config.background_noise * (1.0 + 6.0 * config.difficulty)
        if noise_sigma > 0:
            image += rng.standard_normal(image.shape, dtype=np.float32) * noise_sigma
        image = np.clip(image, 0, 255).astype(np.uint8)
        # Label noise has its own stream and draws the same numbers whatever label_noise is, so the
        # image and the clean mask never depend on it.
        noise_rng = np.random.default_rng([config.seed, split_code, index, 1])
        corruptions = [draw_corruption(noise_rng, shape.class_id, config.label_noise) for shape in shapes]
        return Scene(image, shapes, corruptions)

    def _mask(self, scene: Scene, corrupted: bool) -> np.ndarray:
        size = scene.image.shape[0]
        silhouettes = []
        classes = []
        for shape, corruption in zip(scene.shapes, scene.corruptions):
            if corrupted and corruption.active:
                silhouettes.append(corrupted_silhouette(shape.silhouette, corruption))
                classes.append(corruption.flipped_class if corruption.kind == "flip" else shape.class_id)
            else:
                silhouettes.append(shape.silhouette)
                classes.append(shape.class_id)
        instances = paint_instances(silhouettes, (size, size))
        lookup = np.array([0, *classes], dtype=np.uint8)
        mask = lookup[instances + 1]
        if self.config.void_border > 0:
            apply_void_border(mask, instances, self.config.void_border, self.ignore_index)
        return mask
