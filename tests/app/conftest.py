"""Fixtures of the AppTest page tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.trained_runs import TinyRuns


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory, tiny_runs: TinyRuns) -> Path:
    """A runs folder holding one tiny Shapes run ``a`` (one epoch on TINY_SHAPES, trained once per session).

    A module that needs other runs defines its own ``runs_dir``.
    """
    runs = tmp_path_factory.mktemp("app") / "runs"
    tiny_runs.copy_to(runs / "a")
    return runs
