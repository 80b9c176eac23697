"""The test lanes: conftest.py marks the browser tests (tests/e2e/) ``e2e`` and the AppTest tests (tests/app/)
and the modules it lists ``slow``."""

from __future__ import annotations

import pytest

from tests import conftest
from tests.helpers.paths import TESTS


class FakeItem:
    """What the marking hook reads (``path``) and calls (``add_marker``) on a collected test."""

    def __init__(self, relative: str) -> None:
        self.path = TESTS / relative
        self.markers: set[str] = set()

    def add_marker(self, marker: pytest.MarkDecorator) -> None:
        self.markers.add(marker.name)


def test_browser_tests_are_e2e_and_slow_modules_are_slow() -> None:
    names = ("e2e/test_e2e_browser.py", "app/test_app_home.py", "engine/test_runs.py", "losses/test_losses.py")
    items = [FakeItem(name) for name in names]
    conftest.pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]
    assert [item.markers for item in items] == [{"e2e"}, {"slow"}, {"slow"}, set()]


def test_every_module_and_folder_marked_by_name_exists() -> None:
    # A moved or renamed module would silently drop back into the fast lane.
    missing = sorted(name for name in conftest.SLOW_MODULES if not (TESTS / name).is_file())
    assert not missing, f"conftest.SLOW_MODULES names files that do not exist: {missing}"
    for folder in conftest.SLOW_FOLDERS | conftest.E2E_FOLDERS:
        assert any((TESTS / folder).glob("test_*.py")), f"no test modules in tests/{folder}/"
    # The lanes follow folders: a browser or AppTest module elsewhere would run in the fast lane.
    misplaced = sorted(
        path.relative_to(TESTS).as_posix()
        for prefix, folder in (("test_e2e_", "e2e"), ("test_app_", "app"))
        for path in TESTS.rglob(f"{prefix}*.py")
        if path.parent != TESTS / folder
    )
    assert not misplaced, f"move these into their lane's folder: {misplaced}"
