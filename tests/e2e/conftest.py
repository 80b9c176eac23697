"""Fixtures of the browser tests: one artifacts folder, app server and Chromium per module, a fresh tab per test.

``tests.helpers.browser`` is imported inside the fixtures: importing it skips when Debian's chromium or playwright
is missing, which a test module may do at collection but a conftest may not.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.helpers.browser import App, AppServer


def browser_helpers() -> ModuleType:
    """The ``tests.helpers.browser`` module (skips the test where the browser cannot run)."""
    from tests.helpers import browser

    return browser


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """Screenshots and the server log: ``$SEGLAB_E2E_ARTIFACTS``, else a temporary folder (printed)."""
    folder = Path(os.environ.get("SEGLAB_E2E_ARTIFACTS") or tmp_path_factory.mktemp("e2e-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    browser_helpers().report(pytestconfig, f"screenshots and server log in {folder}")
    return folder


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, artifacts: Path, pytestconfig: pytest.Config
) -> Iterator[AppServer]:
    """The app on a seeded runs folder, with its own cache and bring-your-own-model folder."""
    helpers = browser_helpers()
    folder = tmp_path_factory.mktemp("e2e-app")
    runs_dir = folder / "runs"
    helpers.report(pytestconfig, f"runs folder seeded with {', '.join(helpers.seed_runs(runs_dir))}")
    env = {
        "SEGLAB_RUNS_DIR": str(runs_dir),
        "SEGLAB_CACHE_DIR": str(folder / "cache"),
        "SEGLAB_DATA_ROOTS": str(folder / "byom"),
    }
    server = helpers.start_app(runs_dir, artifacts / "streamlit.log", env)
    try:
        yield server
    finally:
        try:
            helpers.stop_training_runs(runs_dir)
        finally:
            helpers.stop_server(server.process)


@pytest.fixture(scope="module")
def browser(pytestconfig: pytest.Config) -> Iterator[Any]:
    """Debian's headless Chromium under playwright, one per module."""
    helpers = browser_helpers()
    sync_api, chromium_path = helpers.sync_api, helpers.CHROMIUM
    with sync_api.sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=str(chromium_path), args=helpers.CHROMIUM_ARGS)
        except sync_api.Error as error:  # e.g. a Debian chromium too new or too old for this playwright
            pytest.fail(f"playwright {version('playwright')} cannot start {chromium_path}: {error}")
        helpers.report(pytestconfig, f"Chromium {chromium.version}, playwright {version('playwright')}")
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def app(browser: Any, server: AppServer, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[App]:
    """A fresh browser tab on the module's server; its last state is saved as a screenshot."""
    helpers = browser_helpers()
    context = browser.new_context(viewport=helpers.VIEWPORT)
    context.set_default_timeout(helpers.PAGE_TIMEOUT_MS)  # clicks and fills wait for the element this long
    page = context.new_page()
    try:
        yield helpers.App(page, server, artifacts)
    finally:
        try:
            page.screenshot(path=artifacts / f"end-{request.node.name}.png")  # the last state, for a failing test
        except helpers.sync_api.Error:
            pass  # the page is gone: the test's own failure says why
        finally:
            context.close()
