"""How a Shapes sample is drawn: textured backgrounds, class colours, silhouettes placed back to front, label
corruptions and the void border (pure functions of a numpy random generator; the dataset is in
:mod:`seglab.data.shapes`)."""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import cv2
import numpy as np

from seglab.data.shapes_config import (
    CIRCLE,
    CORRUPTIONS,
    RING,
    SHAPE_NAMES,
    SQUARE,
    STAR,
    STRIPE,
    TRIANGLE,
    ShapesConfig,
)

# Each shape class has a typical hue, like sky is blue and roads are grey: objects take it with
# probability ``class_color_probability``, which makes the data learnable in a minute on a CPU and
# gives a shortcut a model can over-trust (off-colour objects are where it fails). Hues 60 degrees
# apart, vivid saturation/value, so the cue is unambiguous when present.
_CLASS_HUES = (0.0, 120.0, 60.0, 220.0, 30.0, 285.0)
_CLASS_HUE_SPREAD = 8.0  # standard deviation (degrees) around a class hue
_SUBPIXEL_BITS = 4  # cv2 drawing with fixed-point coordinates: smoother small shapes
_MIN_CONTRAST = 70.0  # RGB distance between an ordinary object and what lies behind it


@dataclass
class Shape:
    """One painted object: its true class, its silhouette before occlusion, how it was drawn."""

    class_id: int
    silhouette: np.ndarray  # (S, S) bool, before occlusion
    tiny: bool
    similar_color: bool


@dataclass
class Corruption:
    """What label noise does to one object (drawn for every object, applied when ``active``)."""

    active: bool
    kind: str  # one of CORRUPTIONS
    flipped_class: int
    pixels: int  # erosion / dilation radius


@dataclass
class Scene:
    image: np.ndarray  # (S, S, 3) uint8
    shapes: list[Shape]
    corruptions: list[Corruption]


def _random_color(
    rng: np.random.Generator, hue: float | None = None, vivid: bool = False, max_saturation: float = 1.0
) -> np.ndarray:
    """An RGB colour (3,) float32 in 0..255 from a random (or given) hue; ``vivid`` keeps the hue readable."""
    hue = rng.uniform(0.0, 360.0) if hue is None else hue
    low = 0.6 if vivid else 0.25
    saturation = rng.uniform(low, 1.0) * max_saturation
    value = rng.uniform(low, 1.0)
    return np.array(colorsys.hsv_to_rgb((hue % 360.0) / 360.0, saturation, value), dtype=np.float32) * 255.0


def low_frequency_noise(rng: np.random.Generator, size: int, cells: int, channels: int) -> np.ndarray:
    """(size, size, channels) float32 smooth noise, roughly unit variance."""
    grid = rng.standard_normal((cells, cells, channels), dtype=np.float32)
    field = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    return field.reshape(size, size, channels)


def draw_background(
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
    image += low_frequency_noise(rng, size, cells=int(rng.integers(3, 7)), channels=3) * (30.0 * strength)
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


def place_shape(
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


def paint_object(
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


def draw_corruption(rng: np.random.Generator, class_id: int, label_noise: float) -> Corruption:
    active = bool(rng.random() < label_noise)
    kind = CORRUPTIONS[int(rng.integers(len(CORRUPTIONS)))]
    others = [c for c in range(1, len(SHAPE_NAMES) + 1) if c != class_id]
    flipped = others[int(rng.integers(len(others)))]
    return Corruption(active, kind, flipped, int(rng.integers(2, 5)))


def bounding_box(pixels: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` (end exclusive) around the true pixels, ``None`` when there are none."""
    if not pixels.any():
        return None
    x, y, width, height = cv2.boundingRect(pixels.astype(np.uint8))
    return (x, y, x + width, y + height)


def dilate(silhouette: np.ndarray, pixels: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(silhouette.astype(np.uint8), kernel).astype(bool)


def _core(silhouette: np.ndarray) -> np.ndarray:
    """The innermost pixels of a silhouette (at least one pixel when it is not empty)."""
    distance = cv2.distanceTransform(silhouette.astype(np.uint8), cv2.DIST_L2, 3)
    return silhouette & (distance >= distance.max())


def corrupted_silhouette(silhouette: np.ndarray, corruption: Corruption) -> np.ndarray:
    if corruption.kind == "dilate":
        return dilate(silhouette, corruption.pixels)
    if corruption.kind == "erode":
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * corruption.pixels + 1,) * 2)
        eroded = cv2.erode(silhouette.astype(np.uint8), kernel).astype(bool)
        # An annotator who under-draws still marks the object: never erode it away entirely.
        return eroded if eroded.any() else _core(silhouette)
    return silhouette


def paint_instances(silhouettes: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) int16 index of the object visible at each pixel, -1 for background."""
    instances = np.full(shape, -1, dtype=np.int16)
    for position, silhouette in enumerate(silhouettes):
        instances[silhouette] = position
    return instances


def apply_void_border(mask: np.ndarray, instances: np.ndarray, width: int, ignore_index: int) -> None:
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
    band = dilate(edges, width - 1) if width > 1 else edges
    for position in np.unique(instances[band]):
        if position < 0:
            continue
        own = instances == position
        if not (own & ~band).any():
            band &= ~_core(own)
    mask[band] = ignore_index
