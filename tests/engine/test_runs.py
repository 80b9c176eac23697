"""Tests for seglab/engine/runs.py: real background training processes, following, stopping, dead runs."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec
from seglab.engine.checkpoint import load_checkpoint
from seglab.engine.config import TrainConfig
from seglab.engine.run_dir import RunDirectory
from seglab.engine.runs import (
    any_running,
    follow_events,
    list_runs,
    new_run_name,
    process_alive,
    run_info,
    runs_table,
    runs_to_watch,
    start_run,
    stop_run,
    wait_for_run,
    watch_list,
)
from seglab.errors import ConfigError
from tests.helpers.configs import tiny_train_config
from tests.helpers.paths import ROOT

START_TIMEOUT_S = 120  # a child imports torch: slow when other processes share the 2 cores


@pytest.fixture(autouse=True, scope="module")
def child_environment(tmp_path_factory):
    """Children find this checkout's seglab and write caches into a temporary folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        patch.setenv("SEGLAB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def background_runs(child_environment, tmp_path_factory):
    """Three runs started together, so their start-up (importing torch) overlaps."""
    runs_dir = tmp_path_factory.mktemp("runs")
    runs = {
        "tiny": start_run(tiny_config(epochs=2), runs_dir, name="tiny"),  # default nice: the app's path
        "long": start_run(tiny_config(epochs=10_000, train_size=16), runs_dir, name="long", nice=0),
        "doomed": start_run(tiny_config(epochs=10_000, train_size=16), runs_dir, name="doomed", nice=0),
        "broken": start_run(broken_data_config(), runs_dir, name="broken", nice=0),
    }
    try:
        yield runs
    finally:
        for run in runs.values():
            kill_if_alive(run)


def tiny_config(epochs: int = 1, train_size: int = 8) -> TrainConfig:
    shapes = ShapesConfig(train_size=train_size, val_size=4, image_size=32, seed=2)
    return tiny_train_config(shapes, epochs=epochs, preview_images=1, threads=1)


def broken_data_config() -> TrainConfig:
    config = tiny_config()
    config.data = DataSpec(kind="camvid", root="/nonexistent/camvid")
    return config


def kill_if_alive(run: RunDirectory) -> None:
    pid = run.read_status().get("pid")
    if pid and process_alive(pid, run.read_status().get("process_start")):
        os.killpg(pid, signal.SIGKILL)  # start_new_session: the child leads its own group


def wait_for_event(run: RunDirectory, kind: str, follower=None, timeout_s: float = START_TIMEOUT_S) -> list[dict]:
    """Poll until an event of ``kind`` arrives; return the batches each poll() handed out."""
    follower = follower or follow_events(run.path)
    batches = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        new = follower.poll()
        if new:
            batches.append(new)
        if any(event["type"] == kind for event in new):
            return batches
        if run.read_status().get("state") not in (None, "running") and not new:
            break
        time.sleep(0.05)
    log = run.log_path.read_text() if run.log_path.exists() else ""
    pytest.fail(f"no {kind!r} event from {run.path} (status {run.read_status()}); train.log:\n{log[-2000:]}")


# The two endless runs are handled first, as soon as they train, so they do not keep the cores busy.
def test_a_killed_process_is_reported_failed_not_running_forever(background_runs):
    run = background_runs["doomed"]
    try:
        wait_for_event(run, "step")
        pid = run.read_status()["pid"]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        info = run_info(run.path)
        while info.state == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
            info = run_info(run.path)
    finally:
        kill_if_alive(run)
    assert info.state == "failed"
    assert f"pid {pid}" in info.error and "died" in info.error and "train.log" in info.error
    assert run.read_status()["state"] == "failed"  # written back, so every reader agrees
    assert wait_for_run(run.path, timeout_s=1).state == "failed"


def test_follow_then_stop_run_saves_last_and_ends_stopped(background_runs):
    run = background_runs["long"]
    follower = follow_events(run.path)
    try:
        before = wait_for_event(run, "step", follower)
        stop_run(run.path, grace_s=60)
        after = wait_for_event(run, "end", follower, timeout_s=60)
        info = wait_for_run(run.path, timeout_s=30)
    finally:
        kill_if_alive(run)
    # poll() hands out each complete event once, as it arrives
    assert before[0][0]["type"] == "start" and after[-1][-1]["type"] == "end"
    assert [e for batch in before + after for e in batch] == follower.events == run.read_events()
    assert len(before + after) >= 2
    assert info.state == "stopped", (info, run.log_path.read_text()[-2000:])
    assert info.error is None and 0 < info.step < 10_000 * 4
    last = load_checkpoint(run.last_path)
    assert last.step == info.step and last.optimizer_state is not None
    assert follower.events[-1]["state"] == "stopped"  # saved last.pt without a final evaluation: Stop is quick


def test_background_run_finishes_and_is_listed(background_runs):
    run = background_runs["tiny"]
    try:
        assert run.path.name == "tiny" and run.config_path.is_file()
        assert run.read_status()["pid"] > 0
        info = wait_for_run(run.path, timeout_s=START_TIMEOUT_S)
    finally:
        kill_if_alive(run)
    assert info.state == "finished", (info, run.log_path.read_text()[-2000:])
    types = [event["type"] for event in run.read_events()]
    assert types[0] == "start" and types[-1] == "end" and "step" in types and types.count("eval") == 2
    assert info.step == 4 and info.epoch == 2 and info.has_best and info.has_last
    assert info.best_metric is not None and info.best_metric_name == "miou" and "miou" in info.latest
    assert (info.model, info.loss, info.data) == ("tiny_unet_small", TrainConfig().loss, "shapes")
    assert info.checkpoint == run.best_path
    assert load_checkpoint(info.checkpoint).num_classes == 7
    listed = {r.name: r for r in list_runs(run.path.parent)}
    assert set(listed) == {"tiny", "long", "doomed", "broken"}
    assert (listed["tiny"].state, listed["long"].state, listed["doomed"].state) == ("finished", "stopped", "failed")
    assert "training tiny_unet_small" in run.log_path.read_text()


def test_a_run_that_fails_before_training_reports_the_reason(background_runs):
    run = background_runs["broken"]
    try:
        info = wait_for_run(run.path, timeout_s=START_TIMEOUT_S)
    finally:
        kill_if_alive(run)
    assert info.state == "failed"
    assert "died without finishing" in info.error and "/nonexistent/camvid does not exist" in info.error
    assert info.step == 0 and not info.has_last


def test_a_stale_running_status_with_a_dead_pid_is_marked_failed(tmp_path):
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    run = RunDirectory(tmp_path / "stale")
    run.path.mkdir()
    run.config_path.write_text(json.dumps(tiny_config().to_dict()))
    run.write_status("running", pid=finished.pid, step=3)
    info = run_info(run.path)
    assert info.state == "failed" and "died" in info.error and info.step == 3
    assert run_info(run.path, check_alive=False).state == "failed"


def test_process_alive_tells_a_reused_pid_apart():
    assert process_alive(os.getpid())
    assert not process_alive(None) and not process_alive(0)
    status = Path(f"/proc/{os.getpid()}/stat")
    if status.exists():
        start = int(status.read_text().rsplit(")", 1)[1].split()[19])
        assert process_alive(os.getpid(), start)
        assert not process_alive(os.getpid(), start + 1)


def test_start_run_refuses_bad_names_and_existing_folders(tmp_path):
    with pytest.raises(ConfigError, match="may only contain"):
        start_run(tiny_config(), tmp_path, name="../escape")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="already exists"):
        start_run(tiny_config(), tmp_path, name="taken")
    assert not any(p.name == "train.log" for p in tmp_path.rglob("*"))  # nothing was launched


def test_new_run_names_are_unique_and_safe(tmp_path):
    config = tiny_config()
    config.loss = "ce+0.5*dice"
    name = new_run_name(config, tmp_path)
    assert name.startswith("tiny_unet_small-ce-0.5-dice-") and "/" not in name and "*" not in name
    (tmp_path / name).mkdir()
    assert new_run_name(config, tmp_path) == f"{name}-2"


def test_list_runs_skips_non_runs_and_sorts_newest_first(tmp_path):
    assert list_runs(tmp_path / "missing") == []
    for name, started in (("old", 100.0), ("new", 200.0)):
        run = RunDirectory(tmp_path / name)
        run.path.mkdir()
        run.config_path.write_text('{"model": "tiny_unet", "loss": "ce", "data": {"kind": "shapes"}}')
        run.write_status("finished", started=started, best_metric=0.5, best_metric_name="miou")
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / ".hidden").mkdir()
    runs = list_runs(tmp_path)
    assert [r.name for r in runs] == ["new", "old"]
    assert runs[0].best_metric == 0.5 and runs[0].model == "tiny_unet" and runs[0].checkpoint is None


def test_runs_to_watch_and_runs_table_summarise_listed_runs(tmp_path):
    for name, started in (("old", 100.0), ("middle", 150.0), ("new", 200.0)):
        run = RunDirectory(tmp_path / name)
        run.path.mkdir()
        run.config_path.write_text('{"model": "tiny_unet", "loss": "ce", "data": {"kind": "shapes"}}')
        run.write_status("finished", started=started, best_metric=0.5, best_metric_name="miou")
    new, middle, old = list_runs(tmp_path)
    assert runs_to_watch([new, middle, old]) == ["new"]  # nothing trains: the latest run
    running = replace(old, state="running")
    assert runs_to_watch([new, middle, running]) == ["old", "new"]  # what trains, then the latest, once each
    assert runs_to_watch([replace(new, state="running"), old]) == ["new"]
    assert runs_to_watch([]) == []
    rows = runs_table([new, replace(old, error="boom", started=None)])
    assert [row["run"] for row in rows] == ["new", "old"]
    assert rows[0] | {"started": None} == {
        "run": "new",
        "status": "finished",
        "model": "tiny_unet",
        "loss": "ce",
        "data": new.data,
        "best": 0.5,
        "metric": "miou",
        "steps": new.step,
        "epochs": new.epoch,
        "started": None,
        "error": "",
    }
    assert rows[0]["started"] == datetime.datetime.fromtimestamp(200.0)
    assert (rows[1]["started"], rows[1]["error"]) == (None, "boom")


def test_watch_list_keeps_runs_still_on_disk_and_puts_a_started_run_first(tmp_path):
    for name, started in (("old", 100.0), ("new", 200.0)):
        run = RunDirectory(tmp_path / name)
        run.path.mkdir()
        run.config_path.write_text('{"model": "tiny_unet", "loss": "ce", "data": {"kind": "shapes"}}')
        run.write_status("finished", started=started)
    new, old = list_runs(tmp_path)
    running = replace(old, state="running")
    assert watch_list(None, [new, running]) == ["old", "new"]  # a first look: runs_to_watch
    assert watch_list([], [new, running]) == []  # the user's empty choice stays empty
    assert watch_list(["gone", "old"], [new, old]) == ["old"]  # a deleted run drops out
    assert watch_list(["old"], [new, old], started="new") == ["new", "old"]
    assert watch_list(["new", "old"], [new, old], started="new") == ["new", "old"]  # once each
    assert any_running([new, running]) and not any_running([new, old])
    assert not any_running([new, running], ["new"]) and any_running([new, running], ["old", "x"])
