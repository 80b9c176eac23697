"""Shared fixtures: where the real CamVid data lives, and small helpers for writing fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CAMVID_ROOT = Path(os.environ.get("SEGLAB_CAMVID", ROOT.parent / "shared" / "data" / "camvid"))


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    """The SegNet CamVid folder; tests using it skip cleanly when ../shared is absent."""
    if not (CAMVID_ROOT / "train").is_dir():
        pytest.skip(f"CamVid not found at {CAMVID_ROOT}")
    return CAMVID_ROOT
