"""The test lanes: conftest.py marks browser tests ``e2e`` and the slow modules ``slow`` by file name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import conftest

TESTS = Path(__file__).resolve().parent


class FakeItem:
    """What the marking hook reads (``path``) and calls (``add_marker``) on a collected test."""

    def __init__(self, name: str) -> None:
        self.path = TESTS / name
        self.markers: set[str] = set()

    def add_marker(self, marker: pytest.MarkDecorator) -> None:
        self.markers.add(marker.name)


def test_browser_tests_are_e2e_and_slow_modules_are_slow() -> None:
    items = [FakeItem(name) for name in ("test_e2e_browser.py", "test_app_home.py", "test_runs.py", "test_losses.py")]
    conftest.pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]
    assert [item.markers for item in items] == [{"e2e"}, {"slow"}, {"slow"}, set()]


def test_every_module_marked_slow_by_name_exists() -> None:
    # A renamed module would silently drop back into the fast lane.
    missing = sorted(name for name in conftest.SLOW_MODULES if not (TESTS / name).is_file())
    assert not missing, f"conftest.SLOW_MODULES names files that do not exist: {missing}"
    assert all(any(TESTS.glob(f"{prefix}*.py")) for prefix in conftest.SLOW_MODULE_PREFIXES)
