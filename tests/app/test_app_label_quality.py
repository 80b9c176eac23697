"""AppTest tests for the Label quality page (pages/label_quality.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pages import ui
from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec
from tests.helpers.apptest import metrics_shown, use_runs_dir
from tests.helpers.apptest import open_page as open_app_page
from tests.helpers.trained_runs import TINY_SHAPES

CLEAN = TINY_SHAPES.shapes  # the data of the shared tiny runs
NOISY = DataSpec(shapes=ShapesConfig(train_size=16, val_size=8, test_size=8, image_size=64, label_noise=0.3))


def open_page(runs_dir: Path, monkeypatch, spec: DataSpec) -> AppTest:
    """The Label quality page; runs_dir's tiny run was trained on TINY_SHAPES, whose images are CLEAN's."""
    use_runs_dir(monkeypatch, runs_dir)
    at = open_app_page("pages/label_quality.py", spec)
    if at.get("progress"):  # a busy machine: the first render showed the images scored so far
        finish_scoring()
        at.run()
        assert not at.exception, at.exception
    return at


def finish_scoring() -> None:
    """Wait for the page's scoring jobs (shared by the server's sessions) to end."""
    from pages.loaders import _label_quality_store

    assert _label_quality_store().wait_all(120)


@pytest.fixture
def app(runs_dir, monkeypatch) -> AppTest:
    """The page on the noisy Shapes val split with the tiny checkpoint."""
    return open_page(runs_dir, monkeypatch, NOISY)


def widget(elements, label: str):
    return next(element for element in elements if element.label == label)


def page_text(at: AppTest) -> str:
    return "\n".join(
        str(element.value) for element in [*at.markdown, *at.caption, *at.subheader, *at.info, *at.warning]
    )


def test_images_are_ranked_worst_first_and_the_worst_is_shown(app):
    table = app.dataframe[0].value
    assert len(table) == 8 and list(table["rank"]) == list(range(1, 9))
    assert {"sample", "score", "objects", "worst object"} <= set(table.columns)
    assert table["score"].is_monotonic_increasing
    assert widget(app.selectbox, "Image").value == table["sample"][0]
    assert metrics_shown(app)["Image score"] == f"{table['score'][0]:.3f}"
    assert "confident learning" in page_text(app) and "object #" in page_text(app)


def test_selecting_another_image_changes_what_is_shown(app):
    table = app.dataframe[0].value
    before = (metrics_shown(app), page_text(app))
    last = table["sample"].iloc[-1]
    widget(app.selectbox, "Image").select(last).run()
    assert not app.exception, app.exception
    after = (metrics_shown(app), page_text(app))
    assert after[0]["Image score"] == f"{table['score'].iloc[-1]:.3f}"
    assert after != before and f"objects of {last}" in str([expander.label for expander in app.expander])


def test_validation_panel_shows_precision_against_the_known_corruptions(app):
    assert "Does it work?" in page_text(app)
    metrics = metrics_shown(app)
    precision = next(label for label in metrics if label.startswith("Precision@"))
    assert int(precision.split("@")[1]) > 0 and metrics[precision].endswith("%")
    assert "Random ranking" in metrics


def test_clean_shapes_have_no_validation_panel(runs_dir, monkeypatch):
    at = open_page(runs_dir, monkeypatch, DataSpec(shapes=CLEAN))
    assert at.dataframe and "Does it work?" not in page_text(at)


def test_open_in_inspect_carries_the_image_to_the_inspect_page(app):
    sample = widget(app.selectbox, "Image").value
    widget(app.button, "Open in Inspect").click().run()
    assert not app.exception, app.exception
    assert app.session_state[ui.SAMPLE_KEY] == sample and app.title[0].value == "Inspect"


def test_after_inspect_the_page_reads_the_labels_scored_in_the_evaluation_pass(tmp_path, tiny_runs, monkeypatch):
    """Inspect's evaluation scores the labels in its own model pass: Label quality then runs no model at all."""
    import seglab.analysis.label_quality.cache as label_quality_cache

    runs = tmp_path / "runs"
    tiny_runs.copy_to(runs / "a")
    use_runs_dir(monkeypatch, runs, tmp_path / "cache")
    at = open_app_page("pages/failures.py", NOISY)

    def no_second_pass(*args, **kwargs):
        raise AssertionError("Label quality predicted the split again")

    monkeypatch.setattr(label_quality_cache, "score_dataset", no_second_pass)
    at.switch_page("pages/label_quality.py").run()
    assert not at.exception, at.exception
    assert not at.error, [error.value for error in at.error]
    assert len(at.dataframe[0].value) == 8  # every image of the split ranked


def test_a_model_nobody_evaluated_shows_its_first_images_then_the_whole_ranking(tmp_path, tiny_runs, monkeypatch):
    """The first render does not wait for the whole split: a progress bar and the images scored so far, then
    the complete page once the shared job ends; a second session joins the same job."""
    import threading

    import seglab.analysis.label_quality.dataset as label_quality_dataset

    runs = tmp_path / "runs"
    tiny_runs.copy_to(runs / "a")
    release = threading.Event()
    batches = label_quality_dataset._probability_batches

    def held_after_three(*args, **kwargs):  # the model is "slow": three images, then it waits for the test
        for count, item in enumerate(batches(*args, **kwargs)):
            if count == 3:
                assert release.wait(120)
            yield item

    monkeypatch.setattr(label_quality_dataset, "_probability_batches", held_after_three)
    at = open_partial(runs, tmp_path, monkeypatch)
    try:
        assert len(at.get("progress")) == 1 and "Scored 3 of 8 images" in at.get("progress")[0].proto.text
        assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 3  # the 3 scored so far, ranked
        assert "Partial ranking" in page_text(at) and not at.metric  # no details before all are scored
        other = open_partial(runs, tmp_path, monkeypatch)  # another browser: joins the running job
        assert "Scored 3 of 8 images" in other.get("progress")[0].proto.text
        from pages.loaders import _label_quality_store

        assert _label_quality_store().running() == 1
    finally:
        release.set()
    finish_scoring()
    at.run()
    assert not at.exception, at.exception
    assert not at.get("progress") and len(at.dataframe[0].value) == 8 and "Image score" in metrics_shown(at)


def open_partial(runs: Path, tmp_path: Path, monkeypatch) -> AppTest:
    """The page as it renders first (scoring maybe still running), the runs and cache in ``tmp_path``."""
    use_runs_dir(monkeypatch, runs, tmp_path / "cache")
    return open_app_page("pages/label_quality.py", NOISY)


def test_a_failed_scoring_shows_its_message_and_can_be_retried(tmp_path, tiny_runs, monkeypatch):
    import seglab.analysis.label_quality.dataset as label_quality_dataset
    from seglab.errors import ConfigError

    runs = tmp_path / "runs"
    tiny_runs.copy_to(runs / "a")
    batches = label_quality_dataset._probability_batches

    def broken(*args, **kwargs):
        raise ConfigError("the prediction folder lost its files")
        yield from batches(*args, **kwargs)

    monkeypatch.setattr(label_quality_dataset, "_probability_batches", broken)
    at = open_partial(runs, tmp_path, monkeypatch)
    assert "lost its files" in at.error[0].value
    monkeypatch.setattr(label_quality_dataset, "_probability_batches", batches)
    widget(at.button, "Score again").click().run()
    finish_scoring()
    at.run()
    assert not at.error and len(at.dataframe[0].value) == 8
