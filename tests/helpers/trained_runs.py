"""Tiny trained runs shared by the test session (not a test module; the fixture is in conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec

# Small Shapes data for the page tests: 16 training, 8 val and 8 test images of 64 x 64 pixels.
TINY_SHAPES = DataSpec(shapes=ShapesConfig(train_size=16, val_size=8, test_size=8, image_size=64))


class TinyRuns:
    """One-epoch ``tiny_unet_small`` runs on :data:`TINY_SHAPES`, each trained once per test session.

    Tests get a copy (:meth:`copy_to`), so a test that damages or extends its runs folder changes
    nothing for the next one. Runs differ by seed and loss only.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def run(self, *, seed: int = 0, loss: str = "ce+dice") -> Path:
        """The shared run folder for ``seed`` and ``loss`` (trained on first use); do not modify it."""
        from seglab.engine.config import TrainConfig
        from seglab.engine.trainer import train

        folder = self.root / f"seed{seed}-{loss}"
        if not (folder / "best.pt").is_file():
            options = {"model": "tiny_unet_small", "epochs": 1, "crop_size": 64, "seed": seed, "loss": loss}
            with pytest.MonkeyPatch.context() as patch:  # whatever the first caller's environment, a cache of our own
                patch.setenv("SEGLAB_CACHE_DIR", str(self.root / "cache"))
                train(TrainConfig(**options, data=TINY_SHAPES), out_dir=folder)
        return folder

    def copy_to(self, target: Path, *, seed: int = 0, loss: str = "ce+dice") -> Path:
        """Copy the run for ``seed`` and ``loss`` to ``target`` (a new run folder) and return it."""
        shutil.copytree(self.run(seed=seed, loss=loss), target, ignore=shutil.ignore_patterns(".lock"))
        return target
