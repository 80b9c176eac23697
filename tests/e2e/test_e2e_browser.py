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

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers.browser import (
    ERROR,
    EXCEPTION,
    FRONTEND_READY,
    GRID,
    PAGE_TIMEOUT_MS,
    PAGES,
    RUN_NAME,
    SKELETON,
    TRAIN_TIMEOUT_MS,
    App,
    AppServer,
    expect,
)

pytestmark = pytest.mark.e2e


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
