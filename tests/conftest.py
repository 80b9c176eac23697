"""Shared fixtures: where the real CamVid data lives, tiny trained runs, and the test lanes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from seglab.data.spec import DataSpec
from tests.helpers.folders import write_photo_folder
from tests.helpers.paths import ROOT, TESTS
from tests.helpers.trained_runs import TinyRuns

CAMVID_ROOT = Path(os.environ.get("SEGLAB_CAMVID", ROOT.parent / "shared" / "data" / "camvid"))


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    """The SegNet CamVid folder; tests using it skip cleanly when ../shared is absent."""
    if not (CAMVID_ROOT / "train").is_dir():
        pytest.skip(f"CamVid not found at {CAMVID_ROOT}")
    return CAMVID_ROOT


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    """Tiny trained Shapes runs shared by the whole session (instead of one training per test module)."""
    return TinyRuns(tmp_path_factory.mktemp("tiny-runs"))


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread for a module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``).

    On a shared 2-core machine OpenMP's spinning barrier stalls 2-thread forwards for seconds whenever another
    process holds a core; tiny inputs gain nothing from a second thread, and training is then repeatable.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty ``SEGLAB_CACHE_DIR`` of this test's own (``tmp_path / "cache"``)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def photo_folder(tmp_path: Path) -> DataSpec:
    """A folder dataset of three 480x360 photos with a thin, rare class (``tmp_path / "photos"``)."""
    return write_photo_folder(tmp_path / "photos")


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache (``TORCH_HOME`` under tmp_path) on a machine where torch hub has no network.

    Downloads go through torch hub's real ``download_url_to_file`` (temporary file, hash check, move);
    only its ``urlopen`` is replaced, so any test that would download fails with the offline error instead.
    """
    import urllib.error

    import torch.hub

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "urlopen", offline)
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    return checkpoints


# -- test lanes -----------------------------------------------------------------------------------------
# The fast lane is `python -m pytest -m "not slow and not e2e"`; plain `python -m pytest` runs everything.
# Whole folders and modules are marked here (paths relative to tests/); single slow tests carry
# @pytest.mark.slow themselves.
E2E_FOLDERS = {
    "e2e",  # headless Chromium drives a real Streamlit server
}
SLOW_FOLDERS = {
    "app",  # AppTest: every test runs the app script, most on a trained checkpoint
}
SLOW_MODULES = {
    "engine/test_distributed.py",  # starts torchrun-style process groups
    "engine/test_divergence.py",  # trains until a run diverges
    "engine/test_export.py",  # exports networks to ONNX / TorchScript and checks parity
    "engine/test_run_folder.py",  # real training processes competing for a run folder, killed mid-save
    "engine/test_runs.py",  # background training processes: start, follow, stop, kill
    "sources/test_sources_hf.py",  # builds and runs Hugging Face SegFormer models
    "sources/test_sources_model_files.py",  # model files in worker subprocesses (crashes, time limits)
}


def lane_markers(path: Path) -> set[str]:
    """The lane markers (``e2e``, ``slow``) a test module at ``path`` gets from its folder or its name."""
    try:
        relative = Path(path).resolve().relative_to(TESTS)
    except ValueError:  # not under tests/ (a test file given from elsewhere)
        return set()
    markers = set()
    if relative.parts[0] in E2E_FOLDERS:
        markers.add("e2e")
    if relative.parts[0] in SLOW_FOLDERS or relative.as_posix() in SLOW_MODULES:
        markers.add("slow")
    return markers


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests in the folders and modules listed above ``e2e`` / ``slow``."""
    for item in items:
        for name in sorted(lane_markers(item.path)):
            item.add_marker(getattr(pytest.mark, name))
