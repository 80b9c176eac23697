"""Tests for seglab.metrics.definition_tables: the definitions arranged for the Metric definitions page."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seglab.errors import ConfigError
from seglab.metrics.class_breakdown import per_class_breakdown
from seglab.metrics.definition_tables import definition_rows, extremes, largest_gaps, order_classes
from seglab.metrics.definitions import APP_DEFINITION, compute_definitions


def confusion(rows: list[list[int]], num_classes: int = 4) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    matrix[: len(rows), : len(rows)] = rows
    return matrix


# Rows = ground truth, columns = prediction; class 3 occurs nowhere. Dataset-level vs image-wise IoU:
# bg 80/91 vs (50/55 + 30/36)/2 (gap -0.008), one 5/11 vs (5/10 + 0)/2 (gap -0.20), two 0.5 vs 0.5, three NaN.
IMAGES = [confusion([[50, 2, 0], [3, 5, 0], [0, 0, 0]]), confusion([[30, 1, 4], [0, 0, 0], [1, 0, 5]])]
NAMES = ["bg", "one", "two", "three"]


def test_extremes_are_the_app_score_and_the_lowest_and_highest_applicable() -> None:
    scores = compute_definitions(IMAGES, background_index=None)  # the no-background rows are NaN
    ends = extremes(scores)
    applicable = [score.value for score in scores if not math.isnan(score.value)]
    assert len(applicable) < len(scores)
    assert ends.app.key == APP_DEFINITION
    assert (ends.lowest.value, ends.highest.value) == (min(applicable), max(applicable))
    with pytest.raises(ConfigError, match=APP_DEFINITION):
        extremes([score for score in scores if score.key != APP_DEFINITION])


def test_definition_rows_filter_by_level_and_mark_the_app_definition() -> None:
    scores = compute_definitions(IMAGES, background_index=None)
    rows = definition_rows(scores)
    assert len(rows) == len(scores)
    assert list(rows[0])[:4] == ["definition", "this app", "value", "level"]
    assert [row["definition"] for row in rows if row["this app"]] == [
        score.name for score in scores if score.key == APP_DEFINITION
    ]
    for row, score in zip(rows, scores, strict=True):
        assert row["value"] == ("n/a" if math.isnan(score.value) else f"{score.value:.3f}")
    assert "n/a" in {row["value"] for row in rows}
    image_wise = definition_rows(scores, "image-wise")
    assert image_wise and {row["level"] for row in image_wise} == {"image-wise"}
    assert len(image_wise) + len(definition_rows(scores, "dataset")) == len(scores)
    with pytest.raises(ConfigError, match="level"):
        definition_rows(scores, "per-pixel")


def test_classes_ordered_by_gap_images_or_class_and_the_largest_gaps() -> None:
    rows = per_class_breakdown(IMAGES, NAMES)
    assert [row.name for row in order_classes(rows, "gap")] == ["one", "bg", "two", "three"]  # NaN gap last
    assert [row.name for row in order_classes(rows, "class")] == NAMES
    assert [row.name for row in order_classes(rows, "images")] == ["three", "one", "two", "bg"]  # ties: class order
    assert [row.name for row in largest_gaps(rows)] == ["one"]  # bg's gap is under the tolerance
    assert [row.name for row in largest_gaps(rows, tolerance=0.001)] == ["one", "bg"]
    assert largest_gaps(rows, tolerance=1.0) == []
    with pytest.raises(ConfigError, match="order"):
        order_classes(rows, "alphabetical")
