"""One-click Shapes presets for lessons: each turns one generator knob to make one failure visible.

A lesson keeps the dataset's sizes and seed (so a class can compare runs on the same number of
images) and resets every other knob to its default before applying its own changes, so presets
never pile up: "Tiny objects" after "Noisy labels" has clean labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seglab.data.shapes import ShapesConfig
from seglab.errors import ConfigError

__all__ = ["KEPT_FIELDS", "LESSONS", "Lesson", "lesson_by_name", "matching_lesson"]

KEPT_FIELDS = ("image_size", "train_size", "val_size", "test_size", "seed")


@dataclass(frozen=True)
class Lesson:
    """A named Shapes preset and the one thing it teaches."""

    name: str
    lesson: str  # one line: what to look for once the preset is applied
    changes: dict[str, Any] = field(default_factory=dict)  # ShapesConfig fields that differ from the defaults

    def apply(self, config: ShapesConfig) -> ShapesConfig:
        """``config``'s sizes and seed, the generator defaults elsewhere, then this lesson's changes."""
        kept = {name: getattr(config, name) for name in KEPT_FIELDS}
        return ShapesConfig(**{**kept, **self.changes})

    def matches(self, config: ShapesConfig) -> bool:
        """Whether ``config`` is exactly this preset (whatever its sizes and seed)."""
        return self.apply(config) == config


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "Default",
        "The generator's defaults: VOC-like imbalance, class-typical colours, a few tiny and low-contrast objects.",
    ),
    Lesson(
        "Shape, not colour",
        "Any colour on colourful backgrounds: only the outline tells the class, and a model trained on the "
        "defaults confuses circles with rings.",
        {"class_color_probability": 0.0, "background_saturation": 1.0},
    ),
    Lesson(
        "Balanced",
        "Every shape equally often (background still holds most pixels): per-class IoU gaps now come "
        "from shape difficulty, not frequency.",
        {"class_frequencies": (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)},
    ),
    Lesson(
        "Extreme imbalance (VOC-like)",
        "Rings and stripes appear in a handful of images: pixel accuracy stays high while their IoU "
        "sits near 0; compare plain cross-entropy with median-frequency weights.",
        {"class_frequencies": (0.55, 0.3, 0.1, 0.04, 0.008, 0.002)},
    ),
    Lesson(
        "Tiny objects",
        "Objects a few pixels across vanish at output stride 16-32: their recall drops first; "
        "watch the object-size chart shift left.",
        {"object_scale": 0.5, "tiny_object_probability": 0.4, "max_objects": 8},
    ),
    Lesson(
        "Blurry boundaries",
        "Soft edges make the pixels along every outline ambiguous: errors gather in a thin band "
        "around objects while their interiors stay right.",
        {"boundary_blur": 2.5},
    ),
    Lesson(
        "Noisy labels",
        "30% of objects carry a wrong class or an eroded/dilated outline (images unchanged): the "
        "loss floor rises and the highest-loss images are often label errors.",
        {"label_noise": 0.3},
    ),
    Lesson(
        "Easy (sanity check)",
        "Clean, high-contrast shapes: any model should overfit a few images to near 100% mIoU; if "
        "it cannot, suspect the pipeline, not the data.",
        {"difficulty": 0.0, "background_noise": 0.1, "similar_color_probability": 0.0, "tiny_object_probability": 0.0},
    ),
)


def lesson_by_name(name: str) -> Lesson:
    """The preset called ``name`` (raises ConfigError listing the presets when unknown)."""
    for lesson in LESSONS:
        if lesson.name == name:
            return lesson
    raise ConfigError(f"unknown Shapes preset {name!r}; choose one of {', '.join(lesson.name for lesson in LESSONS)}")


def matching_lesson(config: ShapesConfig) -> Lesson | None:
    """The preset ``config`` is exactly (ignoring sizes and seed), or ``None`` once knobs were edited."""
    return next((lesson for lesson in LESSONS if lesson.matches(config)), None)
