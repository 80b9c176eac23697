"""End to end: the real app in headless Chromium, as a user sees it.

Starts ``streamlit run app.py`` on a free port against a temporary runs folder (the Shapes demo runs
shipped in ``checkpoints/``, else two tiny runs trained here), opens every page, checks that nothing
raises or shows an error, drives each page's key interaction, and launches a tiny training run from
the Train page that must finish in the live view and then show up on Compare.

Screenshots go to an artifacts folder (``$SEGLAB_E2E_ARTIFACTS``, else a pytest temporary folder,
printed at the start); with ``SEGLAB_UPDATE_SCREENSHOTS=1`` they also replace
``tests/screenshots/*.png``, the README's pictures, so an ordinary run never dirties the tree.
Skips when Debian's ``/usr/bin/chromium`` or the ``playwright`` package is missing.
"""

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
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.helpers.paths import ROOT

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = sync_api.expect

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.e2e

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


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, pytestconfig) -> Path:
    folder = Path(os.environ.get("SEGLAB_E2E_ARTIFACTS") or tmp_path_factory.mktemp("e2e-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    report(pytestconfig, f"screenshots and server log in {folder}")
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory, artifacts, pytestconfig) -> Iterator[AppServer]:
    folder = tmp_path_factory.mktemp("e2e-app")
    runs_dir = folder / "runs"
    report(pytestconfig, f"runs folder seeded with {', '.join(seed_runs(runs_dir))}")
    env = {
        "SEGLAB_RUNS_DIR": str(runs_dir),
        "SEGLAB_CACHE_DIR": str(folder / "cache"),
        "SEGLAB_DATA_ROOTS": str(folder / "byom"),
    }
    server = start_app(runs_dir, artifacts / "streamlit.log", env)
    try:
        yield server
    finally:
        try:
            stop_training_runs(runs_dir)
        finally:
            stop_server(server.process)


@pytest.fixture(scope="module")
def browser(pytestconfig) -> Iterator:
    with sync_api.sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except sync_api.Error as error:  # e.g. a Debian chromium too new or too old for this playwright
            pytest.fail(f"playwright {version('playwright')} cannot start {CHROMIUM}: {error}")
        report(pytestconfig, f"Chromium {chromium.version}, playwright {version('playwright')}")
        try:
            yield chromium
        finally:
            chromium.close()


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


@pytest.fixture
def app(browser, server, artifacts, request) -> Iterator[App]:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(PAGE_TIMEOUT_MS)  # clicks and fills wait for the element this long
    page = context.new_page()
    try:
        yield App(page, server, artifacts)
    finally:
        try:
            page.screenshot(path=artifacts / f"end-{request.node.name}.png")  # the last state, for a failing test
        except sync_api.Error:
            pass  # the page is gone: the test's own failure says why
        finally:
            context.close()


# -- every page, with its key interaction --------------------------------------------------------
def test_home(app: App) -> None:
    app.open(PAGES["home"])
    app.screenshot("home")
    expect(app.page.get_by_role("radio", name="Built-in Shapes (synthetic, no files)")).to_be_checked()


def test_dataset_open_button_and_opacity(app: App) -> None:
    app.open(PAGES["dataset"])
    app.screenshot("dataset")
    sample = app.page.get_by_role("combobox", name="Sample", exact=True)
    first = sample.input_value()
    app.button("Open").nth(2).click()  # the third gallery image
    expect(sample, "the Open button did not change the sample").not_to_have_value(first, timeout=PAGE_TIMEOUT_MS)
    app.settle("Dataset")
    opacity = app.slider("Mask opacity")
    before = opacity.input_value()
    opacity.focus()
    opacity.press("ArrowLeft")
    expect(opacity).not_to_have_value(before, timeout=PAGE_TIMEOUT_MS)
    app.settle("Dataset")


def test_train_page_form(app: App) -> None:
    """Epochs and batch size on the form change the plan under the LR curve: steps = epochs x steps per epoch."""
    app.open(PAGES["train"])
    app.screenshot("train")
    expect(app.page.get_by_role("combobox", name="Model", exact=True)).to_be_visible()
    expect(app.button("Launch")).to_be_enabled()
    total, epochs, per_epoch, images, batch = train_plan(app)
    assert total == epochs * per_epoch and per_epoch in (images // batch, -(-images // batch))

    set_number(app, "Train", "Epochs", epochs + 2)
    expect(app.page.get_by_text(PLAN).first).to_contain_text(f"= {epochs + 2} epochs x {per_epoch} steps")
    assert train_plan(app) == ((epochs + 2) * per_epoch, epochs + 2, per_epoch, images, batch)

    set_number(app, "Train", "Batch size", batch * 2)
    expect(app.page.get_by_text(PLAN).first).to_contain_text(f"/ batch {batch * 2})")
    total, _, fewer, _, _ = train_plan(app)
    assert fewer < per_epoch and fewer in (images // (batch * 2), -(-images // (batch * 2)))
    assert total == (epochs + 2) * fewer


PLAN = re.compile(r"(\d+) steps = (\d+) epochs x (\d+) steps \((\d+) images / batch (\d+)\)")


def train_plan(app: App) -> tuple[int, ...]:
    """The Train form's plan caption as numbers: (total steps, epochs, steps per epoch, images, batch size)."""
    caption = app.page.get_by_text(PLAN).first
    expect(caption, "no plan under the LR curve").to_be_visible()
    match = PLAN.search(caption.inner_text())
    assert match, caption.inner_text()
    return tuple(int(number) for number in match.groups())


def set_number(app: App, heading: str, label: str, value: int) -> None:
    """Type ``value`` into a number input and wait for the rerun it starts."""
    field = app.page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    app.settle(heading)
    expect(field, f"{label} did not keep {value}").to_have_value(str(value))


def test_inspect_confusion_cell_click(app: App) -> None:
    app.open(PAGES["inspect"])
    app.screenshot("inspect")
    page = app.page
    page.get_by_role("tab", name="Confusion cell → images").click()
    ground_truth = page.get_by_role("combobox", name="Ground-truth class", exact=True)
    predicted = page.get_by_role("combobox", name="Predicted class", exact=True)
    expect(ground_truth).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    app.settle("Inspect")
    names = ["background", "circle", "square", "triangle", "star", "ring", "stripe"]  # Shapes classes, matrix order
    row, column = (2, 3) if (ground_truth.input_value(), predicted.input_value()) != ("square", "triangle") else (3, 2)
    heatmap = page.get_by_test_id("stPlotlyChart").locator(".heatmaplayer image").locator("visible=true")
    expect(heatmap, "no visible confusion-matrix heatmap").to_have_count(1, timeout=PAGE_TIMEOUT_MS)
    box = heatmap.bounding_box()
    # Rows are ground truth from the top, columns predictions from the left: click the cell's centre.
    page.mouse.click(
        box["x"] + (column + 0.5) * box["width"] / len(names), box["y"] + (row + 0.5) * box["height"] / len(names)
    )
    expect(ground_truth, "clicking a cell did not pick its ground-truth class").to_have_value(
        names[row], timeout=PAGE_TIMEOUT_MS
    )
    expect(predicted, "clicking a cell did not pick its predicted class").to_have_value(
        names[column], timeout=PAGE_TIMEOUT_MS
    )
    app.settle("Inspect")
    app.expect_text(f"{names[row]} predicted as {names[column]}")  # the cell's gallery (or "No pixel of ...")


def test_inspect_leaves_no_grey_skeleton_once_rendered(app: App) -> None:
    """The front-end code of every element loads while the first page runs (pages.widgets.preload_frontend), so a
    page drawn later shows its table, metrics and plotly figure, not grey skeletons, once its script has finished."""
    app.open(PAGES["home"])
    expect(app.page.locator(FRONTEND_READY), "the element code was not preloaded").to_be_attached(
        timeout=PAGE_TIMEOUT_MS
    )
    expect(app.page.get_by_test_id("stSidebar").locator(".seglab-preload")).to_be_hidden()  # takes no room
    app.navigate(PAGES["inspect"])  # waits until its script has finished
    assert app.page.locator(SKELETON).count() == 0, "grey skeletons left after Inspect finished rendering"
    expect(app.page.get_by_test_id("stPlotlyChart").first).to_be_visible()


def test_diagnostics_missed_object_opens_inspect(app: App) -> None:
    app.open(PAGES["diagnostics"])
    app.screenshot("diagnostics")
    page = app.page
    page.get_by_role("tab", name="Slices").click()
    app.expect_text("mIoU per slice against the whole split")
    page.get_by_role("tab", name="Confidence").click()
    app.expect_text(re.compile(r"pixels \(.*\) are wrong with confidence"))
    page.get_by_role("tab", name="Objects").click()
    app.button("Inspect").first.click()  # the first missed object's image
    expect(page.get_by_role("heading", name="Inspect", exact=True)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    app.settle("Inspect")


def test_compare_a_vs_b(app: App, server: AppServer) -> None:
    """A vs B shows each model's own numbers: swapping the pair swaps what B fixed and broke, and the same image's
    A and B mIoU; a third model as B changes them."""
    from seglab.engine.runs import list_runs

    app.open(PAGES["compare"])
    app.screenshot("compare")
    page = app.page
    page.get_by_role("tab", name="A vs B").click()
    app.expect_text("What B fixed and what it broke")
    app.settle("Compare models")
    model_a = page.get_by_role("combobox", name="A (reference)", exact=True)
    model_b = page.get_by_role("combobox", name="B (the change)", exact=True)
    expect(model_b).to_be_visible()
    first_a, first_b = model_a.input_value(), model_b.input_value()
    assert first_a != first_b
    before = diff_shares(app)
    captions = image_mious(app)

    app.choose("A (reference)", first_b)  # B becomes the other model: the pair is swapped
    app.settle("Compare models")
    expect(model_b).to_have_value(first_a)
    after = diff_shares(app)
    assert (after["fixed by B"], after["broken by B"]) == (before["broken by B"], before["fixed by B"]), (before, after)
    assert after["both right"] == before["both right"]
    page.get_by_text("where A beats B", exact=True).click()  # the same image on top as before the swap
    app.settle("Compare models")
    assert image_mious(app) == (captions[1], captions[0])

    others = sorted({run.name for run in list_runs(server.runs_dir)} - {first_a, first_b})
    if not others:
        return  # two runs only (no demo runs in checkpoints/): no third model to pick
    models = page.get_by_test_id("stMultiSelect").filter(has_text="Models")
    models.get_by_role("combobox").press_sequentially(others[0])  # typing opens the menu on the matching models
    page.get_by_role("option", name=re.compile(rf"^{re.escape(others[0])} · ")).click()
    page.keyboard.press("Escape")  # close the menu: while open, it hides the rest of the page
    app.settle("Compare models")
    page.get_by_role("tab", name="A vs B").click()
    app.settle("Compare models")
    app.choose("B (the change)", others[0])
    app.settle("Compare models")
    expect(model_b).to_have_value(others[0])
    assert diff_shares(app) != after, "choosing another B did not change what B fixed and broke"


def diff_shares(app: App) -> dict[str, str]:
    """The A vs B tab's pixel categories: name -> share as shown ("12.3%")."""
    cards = app.page.get_by_test_id("stMetric").filter(has_text=re.compile(r"both right|by B|both wrong"))
    expect(cards.first).to_be_visible()
    shares = {}
    for card in cards.all():
        label = card.get_by_test_id("stMetricLabel").inner_text().strip()
        shares[label] = card.get_by_test_id("stMetricValue").inner_text().strip()
    assert {"both right", "fixed by B", "broken by B"} <= set(shares), shares
    return shares


def image_mious(app: App) -> tuple[str, str]:
    """The per-image panel's captions: (A's mIoU, B's mIoU) on the chosen image."""
    numbers = []
    for model in ("A", "B"):
        caption = app.page.get_by_text(re.compile(rf"^{model} · mIoU \d")).first
        expect(caption).to_be_visible()
        numbers.append(caption.inner_text().split("mIoU ")[1].strip())
    return numbers[0], numbers[1]


def test_leaderboard_scores_the_checkpoints(app: App) -> None:
    app.open(PAGES["leaderboard"])
    score = app.button(re.compile(r"^Score \d+ entries"))
    if score.count():  # nothing cached yet for this split
        score.click()
        app.expect_text(re.compile(r"\d+ entries on "))
        app.settle("Leaderboard")
    app.expect_text(re.compile(r"\d+ entries on "))
    expect(app.page.get_by_role("button", name="Download CSV")).to_be_visible()
    app.screenshot("leaderboard")


def test_metric_definitions_table(app: App) -> None:
    """The level filter shows exactly that level's definitions (as many rows as the library has of that level)."""
    import numpy as np

    from seglab.metrics.definitions import compute_definitions

    app.open(PAGES["metric_definitions"])
    app.screenshot("metric_definitions")
    app.expect_text("The choices that matter")
    app.page.get_by_text(re.compile(r"^All \d+ definitions")).click()  # the full table sits in an expander
    table = app.page.get_by_test_id("stDataFrame").first
    expect(table).to_be_visible()
    levels = Counter(score.level for score in compute_definitions(np.eye(3, dtype=np.int64)[None], 0))
    expect(table.locator(GRID)).to_have_attribute("aria-rowcount", str(sum(levels.values()) + 1))  # + header
    assert set(table_column(table, "level")) == {"dataset", "image-wise"}

    app.page.get_by_text("image-wise only", exact=True).click()
    app.settle("Metric definitions")
    expect(table.locator(GRID)).to_have_attribute("aria-rowcount", str(levels["image-wise"] + 1))
    assert table_column(table, "level") == ["image-wise"] * levels["image-wise"]
    app.page.get_by_text("dataset-level only", exact=True).click()
    app.settle("Metric definitions")
    expect(table.locator(GRID)).to_have_attribute("aria-rowcount", str(levels["dataset"] + 1))
    assert table_column(table, "level") == ["dataset"] * levels["dataset"]


def table_column(table, name: str) -> list[str]:
    """The cells of one column of an st.dataframe, read from the hidden accessible table its grid keeps in the DOM."""
    headers = [text.strip() for text in table.locator(f"{GRID} thead th").all_text_contents()]
    column = headers.index(name)
    return [text.strip() for text in table.locator(f"{GRID} tbody tr td:nth-child({column + 1})").all_text_contents()]


def test_loss_inspector_step_slider(app: App) -> None:
    app.open(PAGES["loss_inspector"])
    app.screenshot("loss_inspector")
    step = app.slider("Training step")
    before = step.input_value()
    step.focus()
    step.press("End")  # the end of the mining schedule
    expect(step).not_to_have_value(before, timeout=PAGE_TIMEOUT_MS)
    app.expect_text(f"kept by mining at step {step.input_value()}")
    app.settle("Loss inspector")


def test_label_quality_tables(app: App) -> None:
    app.open(PAGES["label_quality"])
    app.screenshot("label_quality")
    expect(app.page.get_by_test_id("stDataFrame").first).to_be_visible()
    app.page.get_by_role("tab", name="Objects, worst first").click()
    app.expect_text("lowest-scoring objects of the split")
    app.settle("Label quality")
    expect(app.page.get_by_test_id("stDataFrame").locator("visible=true").first).to_be_visible()


# -- charts people can read -------------------------------------------------------------------------
CHART_GEOMETRY_JS = """() => Array.from(document.querySelectorAll('[data-testid="stPlotlyChart"]')).map(chart => {
    const boxes = selector => Array.from(chart.querySelectorAll(selector)).map(text => {
        const box = text.getBoundingClientRect();
        return {text: text.textContent, left: box.left, right: box.right, top: box.top, bottom: box.bottom};
    }).filter(box => box.right > box.left);
    const cell = chart.querySelector('.heatmaplayer image');
    const cellBox = cell ? cell.getBoundingClientRect() : null;
    return {xticks: boxes('.xtick text'), yticks: boxes('.ytick text'), cells: boxes('.heatmap-label text'),
            heatmap: cellBox ? {width: cellBox.width, height: cellBox.height} : null};
})"""


def overlapping(boxes: list[dict], slack: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of text boxes that overlap by more than ``slack`` px both ways."""
    return [
        (a["text"], b["text"])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a["left"] < b["right"] - slack
        and b["left"] < a["right"] - slack
        and a["top"] < b["bottom"] - slack
        and b["top"] < a["bottom"] - slack
    ]


def assert_charts_readable(app: App, where: str, expect_heatmap: bool = False) -> None:
    app.page.wait_for_timeout(1500)  # plotly lays out after the script has finished
    charts = app.page.evaluate(CHART_GEOMETRY_JS)
    assert any(chart["xticks"] or chart["yticks"] for chart in charts), f"{where}: no chart with axes rendered"
    for index, chart in enumerate(charts):
        for axis in ("xticks", "yticks"):
            assert not overlapping(chart[axis]), (
                f"{where}, chart {index}: {axis} labels overlap: {overlapping(chart[axis])}"
            )
        if chart["cells"]:
            assert not overlapping(chart["cells"]), (
                f"{where}, chart {index}: cell labels collide: {overlapping(chart['cells'])[:5]}"
            )
            side = int(round(len(chart["cells"]) ** 0.5))
            cell_width = chart["heatmap"]["width"] / side
            widest = max(box["right"] - box["left"] for box in chart["cells"])
            assert widest < cell_width, f"{where}, chart {index}: a {widest:.0f} px label in a {cell_width:.0f} px cell"
    if expect_heatmap:
        assert any(chart["cells"] for chart in charts), f"{where}: the confusion matrix shows no cell values"


def test_charts_are_readable_at_projector_size(app: App) -> None:
    """Tick labels never overlap and confusion-matrix cell labels fit their cells, at 1400x1000."""
    app.page.set_viewport_size({"width": 1400, "height": 1000})
    app.open(PAGES["dataset"])
    assert_charts_readable(app, "Dataset (log scale)")
    app.page.get_by_text("Log scale", exact=True).click()
    app.settle("Dataset")
    assert_charts_readable(app, "Dataset (linear)")
    app.navigate(PAGES["inspect"])
    app.page.get_by_role("tab", name="Confusion cell → images").click()
    app.settle("Inspect")
    assert_charts_readable(app, "Inspect confusion matrix", expect_heatmap=True)
    app.navigate(PAGES["compare"])
    app.page.get_by_role("tab", name="Training curves").click()
    app.settle("Compare models")
    assert_charts_readable(app, "Compare training curves")


# -- a shared link naming server folders outside the allow-list -----------------------------------
def test_a_link_to_folders_outside_the_allowed_ones_is_refused(app: App, tmp_path: Path) -> None:
    from urllib.parse import urlencode

    (tmp_path / "images").mkdir()
    folder = str(tmp_path / "images")
    query = urlencode({"data": "folder", "images": folder, "masks": folder, "label_map": "/etc/passwd"})
    app.page.goto(f"{app.server.url}/{PAGES['dataset'].path}?{query}")
    app.expect_text(PAGES["dataset"].ready)  # the page still works, on Shapes
    refusal = app.page.locator(ERROR)
    expect(refusal).to_have_count(1)
    expect(refusal).to_contain_text(f"image folder {folder} is outside the folders this app may read")
    expect(refusal).to_contain_text("SEGLAB_DATA_ROOTS")
    expect(app.page.locator(EXCEPTION)).to_have_count(0)


# -- a training run launched from the Train page ----------------------------------------------------
def test_train_page_launches_a_run_that_finishes_and_appears_on_compare(app: App, server: AppServer) -> None:
    from seglab.engine.config import TrainConfig

    page = app.page
    # Small, easy Shapes data for this session: the Dataset page's lesson preset, then its size knobs.
    app.open(PAGES["dataset"])
    page.get_by_text("Shapes generator: lesson presets and knobs").click()
    app.button("Easy (sanity check)").click()
    app.expect_text("Now: Easy (sanity check)")
    app.settle("Dataset")
    for label, value in (("Image size (px)", "64"), ("Train images", "32"), ("Val images", "12"), ("Test images", "8")):
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_test_id("stFormSubmitButton").get_by_role("button", name="Apply").click()
    app.expect_text("12 images · order")
    app.settle("Dataset")

    app.navigate(PAGES["train"])
    app.expect_text("32 training images")
    app.choose("Model", "tiny_unet_small")
    app.settle("Train")
    for label, value in (("Epochs", "2"), ("Crop size", "48"), ("Batch size", "4"), ("Run name (optional)", RUN_NAME)):
        field = page.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Enter")
        app.settle("Train")
        expect(field, f"{label} did not keep {value}").to_have_value(value)
    app.button("Launch").click()

    # The live view (a run_every fragment) follows the run until its badge says finished.
    title = page.get_by_test_id("stMarkdownContainer").filter(has_text=RUN_NAME).filter(has_text="tiny_unet_small")
    ended = title.filter(has_text=re.compile(r"finished|failed|stopped"))
    expect(ended, f"{RUN_NAME} did not end within {TRAIN_TIMEOUT_MS / 1000:.0f} s").to_be_visible(
        timeout=TRAIN_TIMEOUT_MS
    )
    if "finished" not in ended.inner_text():
        log = server.runs_dir / RUN_NAME / "train.log"
        pytest.fail(f"{ended.inner_text()}\n{log.read_text() if log.is_file() else 'no train.log'}")
    app.settle("Train")
    expect(page.get_by_test_id("stMetric").filter(has_text="Best mIoU").first).to_contain_text(re.compile(r"\d\.\d{3}"))
    page.get_by_role("heading", name="Live view").scroll_into_view_if_needed()
    app.screenshot("train_live")
    config = TrainConfig.load(server.runs_dir / RUN_NAME / "config.json")
    assert (config.model, config.epochs, config.crop_size, config.batch_size) == ("tiny_unet_small", 2, 48, 4)
    assert (config.data.shapes.image_size, config.data.shapes.train_size, config.data.shapes.difficulty) == (
        64,
        32,
        0.0,
    )

    # The new checkpoint is offered on Compare (this session still uses the small data).
    app.navigate(PAGES["compare"])
    app.expect_text("(12 images)")
    checkpoints = page.get_by_test_id("stMultiSelect").filter(has_text="Models")
    new_run = re.compile(rf"^{RUN_NAME} · mIoU")
    if not checkpoints.get_by_text(new_run).count():
        checkpoints.get_by_role("combobox").click()
        page.get_by_role("option", name=new_run).click()
        app.settle("Compare models")
    expect(checkpoints.get_by_text(new_run), f"{RUN_NAME} is not among the compared checkpoints").to_be_visible()
    app.choose("Model / predictions", new_run)  # and it is in the sidebar's checkpoint list
    app.settle("Compare models")
    expect(page.get_by_role("combobox", name="Model / predictions", exact=True)).to_have_value(new_run)


# -- bring your own model: register an ONNX file and a predictions folder, then Inspect and Compare them --------
def test_register_an_onnx_model_and_a_predictions_folder_then_inspect_and_compare_them(
    app: App, server: AppServer
) -> None:
    """Runs last: the sources it registers are listed on every page afterwards."""
    from seglab.data.spec import DataSpec, build_dataset
    from seglab.engine.evaluation import evaluate_checkpoint
    from seglab.engine.export import export_checkpoint
    from seglab.engine.runs import list_runs
    from seglab.sources import write_prediction_png

    demo = next(run for run in list_runs(server.runs_dir) if run.checkpoint is not None and run.name != RUN_NAME)
    folder = server.runs_dir.parent / "byom"  # beside the runs folder: allowed through $SEGLAB_DATA_ROOTS
    data = build_dataset(DataSpec().with_split("val"))  # the app's default data
    export_checkpoint(demo.checkpoint, "onnx", folder / "demo.onnx", dataset=data, parity_images=1)
    (folder / "preds").mkdir()
    for result in evaluate_checkpoint(demo.checkpoint, data).results:
        write_prediction_png(result.labels, folder / "preds" / f"{result.sample_id}.png")

    page = app.page
    app.open(PAGES["home"])
    for kind, name, path in (
        ("ONNX file", "demo onnx", folder / "demo.onnx"),
        ("Folder of predictions (PNG / .npy / .npz per sample)", "demo preds", folder / "preds"),
    ):
        for _ in range(3):  # opening the expander reruns the page; a click during a rerun can be lost
            if page.get_by_text(kind, exact=True).is_visible():
                break
            page.get_by_text("Register a model file or a folder of predictions").click()  # open the expander
            app.settle("seglab")
        expect(page.get_by_text(kind, exact=True)).to_be_visible()
        page.get_by_text(kind, exact=True).click()
        app.settle("seglab")
        for label, value in (("Name", name), ("Path", str(path))):
            field = page.get_by_label(label, exact=True)
            field.fill(value)
            field.press("Enter")
            app.settle("seglab")
        app.button("Check and register").click()
        app.expect_text(f"Registered {name}")
        app.settle("seglab")
        app.page.reload()
        app.settle("seglab")

    for name, kind in (("demo onnx", "onnx"), ("demo preds", "predictions")):
        app.choose("Model / predictions", f"{name} · {kind}")
        app.navigate(PAGES["inspect"])
        expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
        app.navigate(PAGES["compare"])  # this source (the reference) against the newest checkpoint
        models = page.get_by_test_id("stMultiSelect").filter(has_text="Models")
        expect(models.get_by_text(f"{name} · {kind}")).to_be_visible()
        expect(models.get_by_text(re.compile(r" · mIoU "))).to_have_count(1)
        app.navigate(PAGES["home"])
    app.screenshot("compare_sources")
