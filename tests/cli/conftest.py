"""Fixtures for the command-line tests: every test gets its own cache folder and keeps torch's thread count."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def isolated(private_cache: Path) -> Iterator[None]:
    """A private ``SEGLAB_CACHE_DIR``; ``--threads`` may change torch's thread count, so it is restored."""
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)
