"""The Train page under Streamlit's AppTest: form, LR preview, launch, live view, past runs, errors."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from pages import ui
from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec
from seglab.engine.config import TrainConfig
from seglab.engine.run_plan import PHOTO_RECIPE, RunPlan, build_config, quick_run_config
from seglab.engine.runs import _process_start_time, run_info, stop_run, wait_for_run
from seglab.losses.criterion import LOSS_EXPLANATIONS
from tests.helpers.paths import ROOT
from tests.helpers.train_page import open_train, texts, write_run
from tests.helpers.trained_runs import TINY_SHAPES


@pytest.fixture
def runs_dir(tmp_path, monkeypatch) -> Path:
    runs = tmp_path / "runs"
    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(tmp_path / "cache"))
    return runs


def plotly_specs(at: AppTest) -> list[dict]:
    return [json.loads(element.proto.spec) for element in at.get("plotly_chart")]


def trace_values(values) -> np.ndarray:
    """Plotly JSON holds arrays as lists or as base64 typed arrays ({"dtype", "bdata"})."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
    return np.asarray(values, dtype=np.float64)


def lr_preview(at: AppTest) -> tuple[np.ndarray, np.ndarray]:
    """(steps, learning rates) drawn by the page's schedule preview."""
    for spec in plotly_specs(at):
        if "this run will follow" in json.dumps(spec["layout"].get("title", "")):
            trace = spec["data"][0]
            return trace_values(trace["x"]), trace_values(trace["y"])
    raise AssertionError("no LR preview chart on the page")


def test_page_shows_the_form_and_an_empty_run_list(runs_dir):
    at = open_train()
    for key in (
        "train_model",
        "train_loss",
        "train_loss_extra",
        "train_class_weights",
        "train_optimizer",
        "train_schedule",
    ):
        assert at.selectbox(key=key) is not None
    assert at.selectbox(key="train_model").value == TrainConfig().model
    assert at.session_state["train_configure_open"] is True
    assert {button.label for button in at.button} >= {"Launch", "Quick run"}
    assert not at.error
    assert "16 training images" in texts(at.caption)
    assert "No runs yet" in texts(at.info)
    help_texts = TrainConfig.option_help()  # the tooltips are the options' field metadata
    assert at.number_input(key="train_crop_size").help == help_texts["crop_size"]
    assert at.selectbox(key="train_optimizer").help == help_texts["optimizer"]


def test_changing_the_loss_changes_the_explanation_and_options(runs_dir):
    at = open_train()
    assert LOSS_EXPLANATIONS["ce"] in texts(at.caption)
    at.selectbox(key="train_loss").select("dice").run()
    assert LOSS_EXPLANATIONS["dice"] in texts(at.caption)
    assert LOSS_EXPLANATIONS["ce"] not in texts(at.caption)
    assert not [slider for slider in at.slider if slider.key == "train_top_k"]
    at.selectbox(key="train_loss").select("hard_ce").run()
    at.selectbox(key="train_loss_extra").select("dice").run()
    assert LOSS_EXPLANATIONS["hard_ce"] in texts(at.caption) and LOSS_EXPLANATIONS["dice"] in texts(at.caption)
    assert at.slider(key="train_top_k").value == 25  # hard-pixel mining options appear with hard_ce
    assert at.number_input(key="train_hard_example_mining_step") is not None


def test_lr_preview_is_the_library_curve_and_follows_the_widgets(runs_dir):
    at = open_train()
    steps, rates = lr_preview(at)
    plan = RunPlan.check(build_config(TINY_SHAPES), train_images=16, num_classes=7)
    expected_steps, expected_rates = plan.lr_curve()
    np.testing.assert_allclose(steps, expected_steps)
    np.testing.assert_allclose(rates, expected_rates)

    at.selectbox(key="train_schedule").select("cosine").run()
    _, cosine = lr_preview(at)
    assert not np.allclose(cosine, rates)
    at.number_input(key="train_lr").set_value(0.02).run()
    _, faster = lr_preview(at)
    np.testing.assert_allclose(faster, cosine * 0.02 / TrainConfig().lr)
    at.number_input(key="train_warmup_steps").set_value(10).run()
    _, warm = lr_preview(at)
    assert warm[0] < warm[10]
    assert "LR peaks at 0.02" in texts(at.caption)


def test_bad_option_combination_is_an_error_not_a_traceback(runs_dir):
    at = open_train()
    at.number_input(key="train_warmup_steps").set_value(5000).run()
    assert "warmup_steps" in texts(at.error)
    at.button(key="train_launch").click().run()
    assert not at.exception
    assert "fix it first" in texts(at.error)
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_invalid_run_name_is_reported(runs_dir):
    at = open_train()
    at.text_input(key="train_run_name").input("bad name!")
    at.button(key="train_launch").click().run()
    assert not at.exception
    assert "may only contain" in texts(at.error)


@pytest.mark.slow
def test_launch_trains_in_the_background_and_lists_the_finished_run(runs_dir):
    at = open_train()
    at.selectbox(key="train_model").select("tiny_unet_small")
    at.number_input(key="train_epochs").set_value(3)
    at.number_input(key="train_crop_size").set_value(32)
    at.number_input(key="train_batch_size").set_value(2)
    at.text_input(key="train_run_name").input("tiny")
    at.button(key="train_launch").click().run()
    run = runs_dir / "tiny"
    try:
        assert not at.exception and not at.error
        assert (run / "config.json").is_file()
        config = TrainConfig.load(run / "config.json")
        assert (config.model, config.epochs, config.crop_size, config.batch_size) == ("tiny_unet_small", 3, 32, 2)
        assert config.data == TINY_SHAPES.with_split("train")
        assert at.multiselect(key="train_watched_runs").value == ["tiny"]  # the new run is watched
        assert at.session_state["train_configure_open"] is False  # the form folds away to show the live view
        assert at.text_input(key="train_run_name").value == ""
        assert "Started **tiny**" in texts(at.toast)
        info = wait_for_run(run, timeout_s=120)
        assert info.state == "finished", (run / "train.log").read_text()
    finally:
        if run_info(run).state == "running":
            stop_run(run, grace_s=1.0, wait=True)
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    row = table[table["run"] == "tiny"].iloc[0]
    assert (row["status"], row["model"], row["data"]) == ("finished", "tiny_unet_small", "shapes")
    assert 0.0 <= row["best"] <= 1.0
    assert "finished" in texts(at.markdown)
    assert len(plotly_specs(at)) == 5  # LR preview + loss, validation, LR, throughput of the watched run
    captions = [image.proto.imgs[0].caption for image in at.get("image")]
    assert captions == ["Validation samples at step 24: image | ground truth | prediction"]


def test_quick_run_launches_the_default_config_on_the_current_data(runs_dir):
    at = open_train()
    at.text_input(key="train_run_name").input("quick")
    at.button(key="train_quick").click().run()
    run = runs_dir / "quick"
    try:
        assert not at.exception and not at.error
        assert TrainConfig.load(run / "config.json") == quick_run_config(TINY_SHAPES, (64, 64))
        assert (
            "recommended recipe" in at.button(key="train_quick").help
            and "TrainConfig" not in at.button(key="train_quick").help
        )
    finally:
        stop_run(run, grace_s=2.0, wait=True)


def test_the_form_starts_from_sizes_that_suit_the_data(runs_dir, tmp_path):
    at = open_train()
    assert (at.number_input(key="train_crop_size").value, at.number_input(key="train_batch_size").value) == (64, 16)
    at.number_input(key="train_epochs").set_value(7).run()
    at.session_state[ui.SPEC_KEY] = DataSpec(
        shapes=ShapesConfig(train_size=8, val_size=4, test_size=4, image_size=400)
    ).to_dict()
    at.run()
    assert not at.exception and not at.warning
    assert (at.number_input(key="train_crop_size").value, at.number_input(key="train_batch_size").value) == (256, 4)
    assert at.number_input(key="train_epochs").value == 7  # the user's other choices stay


def test_photos_start_the_form_from_seglabs_photo_recipe(runs_dir, photo_folder):
    at = open_train()
    at.session_state[ui.SPEC_KEY] = photo_folder.to_dict()
    at.run()
    assert not at.exception and not at.warning
    assert at.selectbox(key="train_model").value == PHOTO_RECIPE["model"]
    assert at.selectbox(key="train_class_weights").value == PHOTO_RECIPE["class_weights"]
    assert at.slider(key="train_rare_class_crops").value == PHOTO_RECIPE["rare_class_crops"]
    at.selectbox(key="train_class_weights").set_value("none").run()  # the user's choice stays on reruns
    assert at.selectbox(key="train_class_weights").value == "none" and not at.warning


def test_failed_run_shows_its_error(runs_dir):
    write_run(runs_dir, "older", "finished", started=1000.0, best_metric=0.5, best_metric_name="miou")
    write_run(runs_dir, "broken", "failed", started=2000.0, error="TrainingDivergedError: loss is nan at step 3")
    at = open_train()
    assert at.multiselect(key="train_watched_runs").value == ["broken"]  # the latest run is watched by default
    assert "loss is nan at step 3" in texts(at.error)
    table = at.dataframe[0].value
    assert list(table["run"]) == ["broken", "older"]
    assert "loss is nan" in table.set_index("run").loc["broken", "error"]
    assert table.set_index("run").loc["older", "error"] == ""  # no literal "None" for a run without error


def test_a_finished_demo_run_without_previews_says_so(runs_dir):
    shutil.copytree(ROOT / "checkpoints" / "shapes-ce", runs_dir / "demo", ignore=shutil.ignore_patterns("*.pt"))
    at = open_train()
    at.multiselect(key="train_watched_runs").set_value(["demo"]).run()
    assert not at.exception
    assert "saved no sample predictions" in texts(at.caption)
    assert "appear after the first evaluation" not in texts(at.caption)


def test_reload_reattaches_to_running_runs_and_stop_asks_them_to_stop(runs_dir):
    sleeper = subprocess.Popen(["sleep", "60"])  # stands in for a training process
    try:
        write_run(runs_dir, "old", "finished", started=time.time() - 100)
        running = write_run(
            runs_dir,
            "live",
            "running",
            started=time.time() - 200,
            pid=sleeper.pid,
            process_start=_process_start_time(sleeper.pid),
        )
        write_run(runs_dir, "newest", "finished", started=time.time())
        at = open_train()  # a fresh session: everything comes from the run folders
        assert at.multiselect(key="train_watched_runs").value == ["live", "newest"]
        assert at.session_state["train_configure_open"] is False  # something trains: the form starts folded
        assert "Waiting for the first logged step" in texts(at.caption)
        at.button(key="train_stop_live").click().run()
        assert not at.exception
        assert (running / "STOP").is_file()
        assert "Asked **live** to stop" in texts(at.toast)
        at.run()  # the next refresh
        assert "stopping" in texts(at.caption)
        assert not [button for button in at.button if button.key == "train_stop_live"]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_watching_can_be_changed_and_bad_data_is_an_error(runs_dir):
    write_run(runs_dir, "a", "finished", started=1.0)
    write_run(runs_dir, "b", "stopped", started=2.0)
    at = open_train()
    at.multiselect(key="train_watched_runs").set_value(["a", "b"]).run()
    assert not at.exception
    assert texts(at.markdown).count("tiny_unet_small") >= 2
    at.multiselect(key="train_watched_runs").set_value([]).run()
    assert "tiny_unet_small" not in texts(at.markdown)

    broken = open_train(DataSpec(kind="camvid", root=str(runs_dir / "missing")))
    assert not broken.exception
    assert "Loading the training split" in texts(broken.error)
    broken.button(key="train_quick").click().run()
    assert not broken.exception
    assert "cannot be loaded" in texts(broken.error)
    assert sorted(path.name for path in runs_dir.iterdir()) == ["a", "b"]  # nothing launched


def test_form_values_survive_a_visit_to_another_page(runs_dir):
    at = open_train()
    at.selectbox(key="train_schedule").select("cosine")
    at.number_input(key="train_lr").set_value(0.02).run()
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert (at.selectbox(key="train_schedule").value, at.number_input(key="train_lr").value) == ("cosine", 0.02)
