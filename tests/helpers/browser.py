"""Driving the real app in headless Chromium: start and stop a Streamlit server, seed its runs, one browser tab
with waits that fail clearly (:class:`App`), and the pages a test visits. Shared by the browser tests in tests/e2e/
and the benchmarks; importing it skips a test module when Debian's chromium or playwright is missing."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.helpers.paths import ROOT

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = sync_api.expect

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)


# Playwright gives every launch a fresh profile (--user-data-dir) in the temporary folder.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}
SCREENSHOT_MAX_HEIGHT = 1800  # taller pages are cut: the README shows the top of each page
SCREENSHOT_MAX_BYTES = 300_000
# A page's first render can evaluate checkpoints and generate data; a fresh 2-core CI machine is slow.
PAGE_TIMEOUT_MS = 120_000
TRAIN_TIMEOUT_MS = 240_000
SERVER_START_TIMEOUT_S = 120.0
expect.set_options(timeout=30_000)  # checks on a page that has settled (Playwright's default is 5 s)

IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
# Streamlit's grey placeholder for an element whose front-end code has not loaded yet (React Suspense fallback).
SKELETON = '[data-testid="stSkeleton"]'
GRID = 'table[role="grid"]'  # st.dataframe draws on a canvas; its grid keeps this accessible table of the cells
FRONTEND_READY = 'html[data-seglab-frontend="ready"]'  # pages.widgets.preload_frontend has loaded every part
EXCEPTION = '[data-testid="stException"]'
ERROR = '[data-testid="stAlertContentError"]'
RUN_NAME = "e2e-run"


class AppPage(NamedTuple):
    slug: str  # screenshot name
    path: str  # URL path: the page file's stem
    nav: str  # its label in the sidebar navigation
    heading: str  # its st.title
    ready: str  # text it shows only once its content has rendered


PAGES = {
    page.slug: page
    for page in (
        AppPage("home", "", "Home", "seglab", "This is the dataset every page uses now"),
        AppPage("dataset", "dataset", "Dataset", "Dataset", "Trivial baseline"),
        AppPage("train", "train", "Train", "Train", "Past runs"),
        AppPage("inspect", "failures", "Inspect", "Inspect", "split mIoU"),
        AppPage("diagnostics", "diagnostics", "Diagnostics", "Diagnostics", "Lesion-wise Dice vs IoU"),
        AppPage("compare", "compare", "Compare", "Compare models", "Evaluated on"),
        AppPage("leaderboard", "leaderboard", "Leaderboard", "Leaderboard", "Protocol"),
        AppPage(
            "metric_definitions",
            "metrics_explorer",
            "Metric definitions",
            "Metric definitions",
            "One model, many mIoUs",
        ),
        AppPage("loss_inspector", "loss_inspector", "Loss inspector", "Loss inspector", "Who carries the loss"),
        AppPage("label_quality", "label_quality", "Label quality", "Label quality", "confident thresholds"),
    )
}


# -- server, runs and browser ------------------------------------------------------------------
@dataclass
class AppServer:
    url: str
    log_path: Path
    runs_dir: Path
    process: subprocess.Popen

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])


def seed_runs(runs_dir: Path) -> list[str]:
    """Copy the Shapes demo runs from checkpoints/ (or ``$SEGLAB_E2E_DEMO_RUNS``; Shapes because the
    app's default data can score them), then train tiny ones in-process until there are two, the
    least Compare needs."""
    from seglab.data.shapes import ShapesConfig
    from seglab.data.spec import DataSpec
    from seglab.engine.config import TrainConfig
    from seglab.engine.runs import list_runs
    from seglab.engine.trainer import train

    runs_dir.mkdir(parents=True)
    source = Path(os.environ.get("SEGLAB_E2E_DEMO_RUNS") or ROOT / "checkpoints")
    demos = [
        run
        for run in list_runs(source)
        if run.checkpoint is not None and run.data == "shapes" and run.state != "running"
    ]
    for run in demos:
        shutil.copytree(run.path, runs_dir / run.name)
    tiny = DataSpec(shapes=ShapesConfig(train_size=16, val_size=8, test_size=8, image_size=64))
    for name, seed, loss in (("tiny-ce", 0, "ce"), ("tiny-ce-dice", 1, "ce+dice"))[: max(0, 2 - len(demos))]:
        train(
            TrainConfig(model="tiny_unet_small", epochs=1, crop_size=64, seed=seed, loss=loss, data=tiny),
            out_dir=runs_dir / name,
        )
    return sorted(path.name for path in runs_dir.iterdir())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(server: AppServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"streamlit exited with code {server.process.returncode} before serving:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"streamlit did not answer /_stcore/health within {SERVER_START_TIMEOUT_S:.0f} s:\n{server.log_tail()}")


def start_app(runs_dir: Path, log_path: Path, env: dict[str, str] | None = None) -> AppServer:
    """``streamlit run app.py`` on a free local port (headless, no file watcher, no usage statistics) with ``env`` added
    to this process's environment and its output in ``log_path``; returns once it answers its health check. The one
    way every browser test and benchmark starts the app (stop it with :func:`stop_server`)."""
    port = free_port()
    options = {
        "--server.headless": "true",
        "--server.port": str(port),
        "--browser.gatherUsageStats": "false",
        "--server.fileWatcherType": "none",
    }
    command = [sys.executable, "-m", "streamlit", "run", "app.py", *(part for item in options.items() for part in item)]
    with open(log_path, "wb") as log:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = AppServer(f"http://127.0.0.1:{port}", log_path, runs_dir, process)
    try:
        wait_until_healthy(server)
    except BaseException:
        stop_server(process)
        raise
    return server


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue


def stop_training_runs(runs_dir: Path) -> None:
    """Training runs live in their own sessions (start_new_session): stop any still going."""
    from seglab.engine.runs import list_runs, stop_run

    for run in list_runs(runs_dir):
        if run.state == "running":
            stop_run(run.path, grace_s=5.0, wait=True)


def report(config: pytest.Config, line: str) -> None:
    """A line in the test log even when output is captured.

    (The browser version matters when a Debian upgrade breaks playwright.)
    """
    reporter, capture = (
        config.pluginmanager.get_plugin("terminalreporter"),
        config.pluginmanager.get_plugin("capturemanager"),
    )
    if reporter is None or capture is None:
        print(f"e2e: {line}")
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"e2e: {line}")


# -- driving the app ---------------------------------------------------------------------------
class App:
    """One browser tab on the app, with waits that fail with a clear message."""

    def __init__(self, page, server: AppServer, artifacts: Path) -> None:
        self.page, self.server, self.artifacts = page, server, artifacts

    def open(self, app_page: AppPage) -> None:
        """Load a page by URL (a new session), wait for its content, check it has no error."""
        self.page.goto(f"{self.server.url}/{app_page.path}")
        self.settle(app_page.heading)
        self.expect_text(app_page.ready)

    def navigate(self, app_page: AppPage) -> None:
        """Switch page with the sidebar navigation: the session (data source, choices) is kept."""
        self.page.get_by_test_id("stSidebarNav").get_by_role("link", name=app_page.nav, exact=True).click()
        self.settle(app_page.heading)
        self.expect_text(app_page.ready)

    def settle(self, heading: str) -> None:
        """Wait until the page titled ``heading`` has finished its script run; fail on errors.

        The idle state is checked twice: a rerun triggered by the previous run (st.rerun, a query
        parameter update, a run_every fragment) flips it back to running for a moment.
        """
        page = self.page
        expect(
            page.get_by_role("heading", name=heading, level=1, exact=True), f"page '{heading}' never appeared"
        ).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        for _ in range(2):
            expect(
                page.locator(IDLE), f"page '{heading}' still running after {PAGE_TIMEOUT_MS / 1000:.0f} s"
            ).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            page.wait_for_timeout(300)
        self.assert_no_errors(heading)

    def assert_no_errors(self, where: str) -> None:
        for selector, kind in ((EXCEPTION, "an exception"), (ERROR, "an error")):
            shown = self.page.locator(selector)
            if shown.count():
                self.page.screenshot(path=self.artifacts / ("failure-" + re.sub(r"\W+", "_", where) + ".png"))
                texts = "\n---\n".join(shown.all_inner_texts())
                pytest.fail(f"'{where}' shows {kind}:\n{texts}\n\nserver log:\n{self.server.log_tail()}")

    def expect_text(self, text: str | re.Pattern, timeout: float = PAGE_TIMEOUT_MS) -> None:
        expect(self.page.get_by_text(text).first, f"text {text!r} never appeared").to_be_visible(timeout=timeout)

    def slider(self, label: str):
        return self.page.get_by_test_id("stSlider").filter(has_text=label).locator("input[type=range]")

    def button(self, name: str | re.Pattern):
        return self.page.get_by_test_id("stButton").get_by_role("button", name=name, exact=isinstance(name, str))

    def choose(self, combobox_label: str, option: str | re.Pattern) -> None:
        self.page.get_by_role("combobox", name=combobox_label, exact=True).click()
        self.page.get_by_role("option", name=option, exact=isinstance(option, str)).click()

    def screenshot(self, name: str) -> Path:
        """The page's top (up to SCREENSHOT_MAX_HEIGHT px) as a PNG under SCREENSHOT_MAX_BYTES."""
        page = self.page
        height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
        page.set_viewport_size(
            {"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], min(int(height), SCREENSHOT_MAX_HEIGHT))}
        )
        page.mouse.move(
            VIEWPORT["width"] - 10, VIEWPORT["height"] // 2
        )  # the empty right margin: no tooltip, chart toolbar or sidebar button
        page.wait_for_timeout(700)  # charts re-lay out to the new size
        picture = page.screenshot()
        page.set_viewport_size(VIEWPORT)
        path = self.artifacts / f"{name}.png"
        path.write_bytes(shrink_png(picture, SCREENSHOT_MAX_BYTES))
        if os.environ.get("SEGLAB_UPDATE_SCREENSHOTS") == "1":
            (ROOT / "tests" / "screenshots").mkdir(exist_ok=True)
            shutil.copyfile(path, ROOT / "tests" / "screenshots" / path.name)
        return path


def shrink_png(data: bytes, max_bytes: int) -> bytes:
    """A 256-colour palette (screenshots are mostly flat colour), then smaller sizes, until it fits."""
    from PIL import Image

    if len(data) <= max_bytes:
        return data
    image = Image.open(io.BytesIO(data)).convert("RGB")
    while True:
        buffer = io.BytesIO()
        image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= max_bytes or image.width < 400:
            return buffer.getvalue()
        image = image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.Resampling.LANCZOS)
