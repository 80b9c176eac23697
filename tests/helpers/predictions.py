"""Folders of prediction masks, as another tool would write them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from seglab.data.base import SegmentationDataset
from seglab.sources import write_prediction_png


def write_masks(
    folder: Path, dataset: SegmentationDataset, transform: Callable[[np.ndarray], np.ndarray] = lambda mask: mask
) -> Path:
    """One prediction PNG per sample of ``dataset``: its ground truth mask, passed through ``transform``."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, sample_id in enumerate(dataset.ids):
        write_prediction_png(transform(dataset.load(index)[1]), folder / f"{sample_id}.png")
    return folder
