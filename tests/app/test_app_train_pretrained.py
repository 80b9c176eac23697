"""The Train page's "Start from ImageNet weights" toggle and the download note in the live view (AppTest).

Every test runs with an empty temporary torch hub cache and no network (the ``hub_cache`` fixture).
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import torch
from torchvision.models import mobilenet_v3_large, resnet18

import seglab.engine.runs
from seglab.engine.config import TrainConfig
from seglab.engine.run_dir import RunDirectory
from seglab.engine.runs import _process_start_time, run_info, stop_run, wait_for_run
from seglab.errors import ConfigError
from tests.helpers.train_page import open_train, texts, write_run

LABEL = "Start from ImageNet weights"


@pytest.fixture
def runs_dir(tmp_path, monkeypatch, hub_cache):
    runs = tmp_path / "runs"
    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(tmp_path / "cache"))
    return runs


@pytest.fixture
def launched(monkeypatch) -> list[TrainConfig]:
    """The configs the Launch button hands to ``start_run`` (nothing is started)."""
    configs: list[TrainConfig] = []

    def start_run(config, runs_dir, name=None, nproc=1):
        configs.append(config)
        raise ConfigError("test: not started")

    monkeypatch.setattr(seglab.engine.runs, "start_run", start_run)
    return configs


def test_toggle_is_disabled_and_explained_for_models_without_imagenet_weights(runs_dir):
    at = open_train()
    assert at.selectbox(key="train_model").value == "tiny_unet"
    toggle = at.toggle(key="train_pretrained_unavailable")
    assert toggle.label == LABEL and toggle.disabled and toggle.value is False
    assert not [widget for widget in at.toggle if widget.key == "train_pretrained"]
    assert "tiny_unet has no ImageNet weights" in texts(at.caption)
    assert "deeplabv3_resnet18" in texts(at.caption)  # names the models that have them


def test_toggle_says_download_size_or_cached_and_reaches_the_run_config(runs_dir, hub_cache, launched):
    at = open_train()
    at.selectbox(key="train_model").select("deeplabv3_resnet18").run()
    assert not at.exception
    toggle = at.toggle(key="train_pretrained")
    assert toggle.label == LABEL and not toggle.disabled and toggle.value is False
    assert toggle.help == TrainConfig.option_help()["pretrained"]
    assert "Downloads resnet18-f37072fd.pth (44.7 MB) once" in texts(at.caption)

    toggle.set_value(True).run()
    at.button(key="train_launch").click().run()
    assert not at.exception
    assert [config.pretrained for config in launched] == ["imagenet"]
    assert list(hub_cache.iterdir()) == []  # the page itself never downloads

    torch.save(resnet18(weights=None).state_dict(), hub_cache / "resnet18-f37072fd.pth")
    at.run()
    assert "Already cached: resnet18-f37072fd.pth" in texts(at.caption)

    # Back to a model without ImageNet weights: the toggle's old state must not leak into the run.
    at.selectbox(key="train_model").select("tiny_unet").run()
    at.button(key="train_launch").click().run()
    assert not at.exception
    assert [config.pretrained for config in launched] == ["imagenet", "none"]


def test_live_view_shows_the_download_note_while_the_run_starts(runs_dir):
    sleeper = subprocess.Popen(["sleep", "60"])  # stands in for a training process that is downloading
    try:
        run = write_run(
            runs_dir,
            "fetching",
            "running",
            started=time.time(),
            pid=sleeper.pid,
            process_start=_process_start_time(sleeper.pid),
        )
        note = "Downloading ImageNet weights resnet18-f37072fd.pth (44.7 MB) into /cache, once: later runs reuse it"
        (run / "events.jsonl").write_text(json.dumps({"time": time.time(), "type": "note", "message": note}) + "\n")
        at = open_train()
        assert note in texts(at.caption)
        assert "Waiting for the first logged step" not in texts(at.caption)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_launch_with_the_toggle_trains_from_the_cached_imagenet_encoder(runs_dir, hub_cache):
    """The real background run (a subprocess: the fake file must be cached, it has no network patch)."""
    torch.save(mobilenet_v3_large(weights=None).state_dict(), hub_cache / "mobilenet_v3_large-8738ca79.pth")
    at = open_train()
    at.selectbox(key="train_model").select("lraspp_mobilenet_v3_large").run()
    at.toggle(key="train_pretrained").set_value(True)
    at.number_input(key="train_epochs").set_value(1)
    at.number_input(key="train_crop_size").set_value(32)
    at.number_input(key="train_batch_size").set_value(2)
    at.text_input(key="train_run_name").input("imagenet")
    at.button(key="train_launch").click().run()
    run = runs_dir / "imagenet"
    try:
        assert not at.exception and not at.error
        info = wait_for_run(run, timeout_s=120)
        assert info.state == "finished", (run / "train.log").read_text()
    finally:
        if run_info(run).state == "running":
            stop_run(run, grace_s=1.0, wait=True)
    assert TrainConfig.load(run / "config.json").pretrained == "imagenet"
    start = next(event for event in RunDirectory(run).read_events() if event["type"] == "start")
    assert start["weights"] == f"ImageNet backbone from {hub_cache / 'mobilenet_v3_large-8738ca79.pth'}"
