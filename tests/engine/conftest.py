"""Fixtures shared by the engine tests."""

from __future__ import annotations

import pytest

from seglab.data.shapes import ShapesConfig, ShapesDataset


@pytest.fixture
def dataset() -> ShapesDataset:
    """Four 32x32 Shapes validation images (a module may define its own ``dataset`` instead)."""
    return ShapesDataset("val", ShapesConfig(train_size=1, val_size=4, image_size=32, seed=5))
