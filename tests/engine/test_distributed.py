"""Tests for seglab/engine/distributed.py and DDP training on CPU (gloo): samplers, collectives, torchrun runs.

Two kinds of multi-process runs, both with 2 processes and one thread each:
- spawned workers that set torchrun's environment variables themselves and call the library, so
  each rank can report what it computed (``spawned`` fixture: one process group, several scenarios);
- the real user path, ``python -m torch.distributed.run --standalone --nproc-per-node=2 -m seglab
  train`` launched by ``seglab.engine.runs.start_run(..., nproc=2)`` (``ddp_runs`` fixture).
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as multiprocessing
from torch.utils.data import DistributedSampler

from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec
from seglab.engine import distributed
from seglab.engine.checkpoint import load_checkpoint, load_model_state
from seglab.engine.config import TrainConfig
from seglab.engine.run_dir import RunDirectory
from seglab.engine.runs import (
    _child_pids,
    follow_events,
    kill_process_tree,
    process_alive,
    run_info,
    start_run,
    stop_run,
    wait_for_run,
)
from seglab.engine.trainer import Trainer, schedule_from_config, train
from seglab.errors import ConfigError, TrainingDivergedError
from seglab.metrics.confusion import ConfusionMatrix
from tests.helpers.configs import tiny_train_config
from tests.helpers.paths import ROOT

START_TIMEOUT_S = 180  # torchrun + 2 workers importing torch on 2 shared cores


def ddp_config(**options) -> TrainConfig:
    """2 steps per epoch and rank with 2 processes (16 images / 2 ranks / batch 4), 4 with one process.

    7 validation images: the two ranks evaluate 4 and 3 of them (no padding).
    """
    shapes = ShapesConfig(train_size=options.pop("train_size", 16), val_size=7, image_size=32, seed=3)
    return tiny_train_config(shapes, **{"preview_images": 1, "threads": 1, "lr": 3e-3, **options})


@pytest.fixture(autouse=True, scope="module")
def worker_environment(tmp_path_factory):
    """Children find this checkout's seglab, use one thread each and write caches into a temporary folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        patch.setenv("SEGLAB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        patch.setenv("OMP_NUM_THREADS", "1")
        if Path(
            "/sys/class/net/lo"
        ).exists():  # gloo on loopback: a hostname resolving to an odd address cannot break it
            patch.setenv("GLOO_SOCKET_IFNAME", "lo")
        for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
            patch.delenv(name, raising=False)
        yield


# -- the real user path: start_run(nproc=2) -> torchrun -> seglab train ----------------------------
@pytest.fixture(scope="module")
def ddp_runs(worker_environment, tmp_path_factory):
    """Two torchrun runs started together so their start-up overlaps: one to stop, one to kill."""
    runs_dir = tmp_path_factory.mktemp("runs")
    runs = {
        "stopped": start_run(ddp_config(epochs=10_000), runs_dir, name="stopped", nproc=2, nice=0),
        "killed": start_run(ddp_config(epochs=10_000), runs_dir, name="killed", nproc=2, nice=0),
    }
    launchers = {name: run.read_status()["pid"] for name, run in runs.items()}
    try:
        yield runs, launchers
    finally:
        for pid in launchers.values():
            if process_alive(pid):
                kill_process_tree(pid)


def wait_for_event(run: RunDirectory, kind: str, follower, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(event["type"] == kind for event in follower.poll()) or any(e["type"] == kind for e in follower.events):
            return
        if run.read_status().get("state") not in (None, "running"):
            break
        time.sleep(0.05)
    log = run.log_path.read_text() if run.log_path.exists() else ""
    pytest.fail(f"no {kind!r} event from {run.path} (status {run.read_status()}); train.log:\n{log[-3000:]}")


def wait_until_dead(pids: list[int], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while any(process_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(process_alive(pid) for pid in pids), [pid for pid in pids if process_alive(pid)]


def test_killing_a_torchrun_run_ends_every_worker_and_marks_it_failed(ddp_runs):
    runs, launchers = ddp_runs
    run, launcher = runs["killed"], launchers["killed"]
    wait_for_event(run, "step", follow_events(run.path))
    workers = _child_pids(launcher)
    assert len(workers) == 2, workers  # torchrun's agent is the recorded pid; the ranks are its children
    kill_process_tree(launcher)  # what stop_run's SIGKILL escalation does
    wait_until_dead([launcher, *workers])
    info = run_info(run.path)
    assert info.state == "failed" and f"pid {launcher}" in info.error


def test_a_torchrun_run_writes_one_set_of_files_stops_together_and_matches_one_process(ddp_runs, tmp_path):
    runs, launchers = ddp_runs
    run, launcher = runs["stopped"], launchers["stopped"]
    follower = follow_events(run.path)
    wait_for_event(run, "eval", follower)
    assert "torch.distributed.run" in Path(f"/proc/{launcher}/cmdline").read_text()
    workers = _child_pids(launcher)
    assert len(workers) == 2, workers
    stop_run(run.path, grace_s=90)  # the STOP file: rank 0 sees it and tells rank 1 at the same step
    info = wait_for_run(run.path, timeout_s=90)
    wait_until_dead([launcher, *workers])
    log = run.log_path.read_text()
    assert info.state == "stopped" and info.error is None, (info, log[-3000:])  # clean stop: no SIGTERM needed
    assert run.read_status()["pid"] == launcher and run.read_status()["processes"] == 2

    # one set of files, written by rank 0 only
    names = {path.name for path in run.path.iterdir()}
    assert names == {
        "config.json",
        "label_map.json",
        "events.jsonl",
        "status.json",
        "best.pt",
        "last.pt",
        "previews",
        "train.log",
        "STOP",
        ".lock",
    }
    assert all(path.name.startswith("eval_") for path in run.previews_path.iterdir())
    assert log.count("training tiny_unet_small") == 1 and "2 processes x batch 4" in log
    events = run.read_events()
    assert (
        [e["type"] for e in events].count("start") == 1
        and events[-1]["type"] == "end"
        and events[-1]["state"] == "stopped"
    )
    assert events[0]["processes"] == 2 and events[0]["steps_per_epoch"] == 2
    steps = [e["step"] for e in events if e["type"] == "step"]
    assert steps == list(range(1, info.step + 1))  # every step logged once, not once per rank
    evals = [e for e in events if e["type"] == "eval"]
    assert [e["epoch"] for e in evals] == list(range(1, len(evals) + 1)) and all(
        e["step"] == 2 * e["epoch"] for e in evals
    )

    # checkpoints hold the plain model and its step/epoch
    last, best = load_checkpoint(run.last_path), load_checkpoint(run.best_path)
    assert last.step == info.step and last.epoch == info.step // 2 and last.extra["processes"] == 2
    assert not any(name.startswith("module.") for name in last.model_state)

    # the summed confusion matrix equals one process evaluating the same weights on the whole split
    config = TrainConfig.load(run.config_path)
    single = Trainer(config)
    load_model_state(single.model, best.model_state, source=str(run.best_path))
    best_event = next(e for e in evals if e["step"] == best.step)
    expected = single.evaluate()
    assert np.array_equal(np.asarray(best_event["metrics"]["confusion"]), expected.confusion)
    assert expected.confusion.sum() == 7 * 32 * 32 - _void_pixels(single)
    assert best_event["metrics"]["miou"] == pytest.approx(expected.miou)

    # resume with one process: step and epoch continue from the 2-process checkpoint
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    for name in ("config.json", "label_map.json", "last.pt"):
        (resumed_dir / name).write_bytes((run.path / name).read_bytes())
    result = train(ddp_config(epochs=last.epoch + 1), resumed_dir, resume=True)
    assert (result.epochs, result.steps) == (last.epoch + 1, last.step + 4)  # 4 steps per epoch with one process
    assert load_checkpoint(resumed_dir / "last.pt").step == last.step + 4


def _void_pixels(trainer: Trainer) -> int:
    return sum(
        int((trainer.val_data[i][1] == trainer.label_map.ignore_index).sum()) for i in range(len(trainer.val_data))
    )


# -- spawned workers: what each rank computes ------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class NaNOnRank:
    """Wraps a criterion: NaN loss on this rank only, at one step."""

    def __init__(self, trainer: Trainer, step: int):
        self.trainer, self.criterion, self.step = trainer, trainer.criterion, step

    def set_step(self, step: int) -> None:
        self.criterion.set_step(step)

    def __call__(self, outputs, target):
        loss, terms = self.criterion(outputs, target)
        return (loss * float("nan"), terms) if self.trainer.step == self.step else (loss, terms)


def without_clocks(history: list[dict]) -> list[dict]:
    """Eval events minus the wall-clock fields each rank measures for itself."""
    return [{k: v for k, v in event.items() if k not in ("elapsed", "eval_seconds")} for event in history]


def spawned_worker(rank: int, world_size: int, port: int, folder: str) -> None:
    """One rank: the torchrun environment by hand, then every scenario in one process group."""
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    folder = Path(folder)
    report = {}
    with distributed.process_group(torch.device("cpu")) as world:
        report["world"] = [world.rank, world.local_rank, world.size, world.is_main]
        report["launched"] = distributed.launched_by_torchrun()
        report["broadcast"] = distributed.broadcast_from_main([rank + 1, 10.0 * rank], torch.device("cpu"))
        report["mean"] = distributed.mean_over_processes(
            torch.tensor([float(rank), float("nan") if rank else 1.0])
        ).tolist()
        report["object"] = distributed.broadcast_object(f"name-of-rank-{rank}")
        norm = torch.nn.BatchNorm2d(3)
        norm.running_mean.fill_(float(rank))
        distributed.broadcast_buffers(norm)
        report["buffer"] = norm.running_mean.tolist()
        # a confusion matrix over this rank's shard of 11 random "images", then summed over ranks
        generator = torch.Generator().manual_seed(0)
        preds, targets = (
            torch.randint(0, 4, (11, 5, 5), generator=generator),
            torch.randint(0, 5, (11, 5, 5), generator=generator),
        )
        matrix = ConfusionMatrix(4, ignore_index=4)
        for index in distributed.ShardSampler(11, world.rank, world.size):
            matrix.update(preds[index], targets[index])
        report["confusion"] = matrix.all_reduce().matrix.tolist()

        # resume a one-process run with two processes
        result = train(ddp_config(epochs=2), folder / "resumed", resume=True)
        report["resumed"] = {"steps": result.steps, "epochs": result.epochs, "history": without_clocks(result.history)}

        # a NaN loss on rank 1 only: both ranks stop with the same error at the same step
        trainer = Trainer(ddp_config(epochs=3), out_dir=folder / "nan")
        if rank == 1:
            trainer.criterion = NaNOnRank(trainer, step=3)
        try:
            trainer.fit()
            report["nan"] = None
        except TrainingDivergedError as error:
            report["nan"] = str(error)

        # a stop requested on rank 0 (through the STOP file) ends both ranks at the same step
        trainer = Trainer(ddp_config(epochs=50), out_dir=folder / "stop")
        if world.is_main:
            trainer.callbacks.append(
                lambda event: event["type"] == "step" and event["step"] == 3 and trainer.run.request_stop()
            )
        result = trainer.fit()
        report["stop"] = {"state": result.state, "steps": result.steps, "run": trainer.run is not None}

        # a time budget: rank 0's clock decides for both, so both take as many steps and evaluate alike
        result = train(ddp_config(epochs=10_000, time_budget_s=1.0), folder / "budget")
        report["budget"] = {"state": result.state, "steps": result.steps, "history": without_clocks(result.history)}
    report["group_left"] = not torch.distributed.is_initialized()
    (folder / f"rank{rank}.json").write_text(json.dumps(report))


@pytest.fixture(scope="module")
def spawned(worker_environment, tmp_path_factory):
    """Run ``spawned_worker`` on 2 ranks; return each rank's report and the folder."""
    folder = tmp_path_factory.mktemp("spawned")
    first = train(ddp_config(epochs=1), folder / "resumed")  # one process: 4 steps
    assert (first.steps, first.epochs) == (4, 1)
    context = multiprocessing.start_processes(
        spawned_worker, args=(2, free_port(), str(folder)), nprocs=2, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + START_TIMEOUT_S  # a deadlocked collective must fail the test, not hang it
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("spawned ranks did not finish: a collective is probably waiting for a rank that left")
    return [json.loads((folder / f"rank{rank}.json").read_text()) for rank in range(2)], folder


def test_spawned_ranks_see_torchrun_environment_and_leave_the_group(spawned):
    reports, _ = spawned
    assert [r["world"] for r in reports] == [[0, 0, 2, True], [1, 1, 2, False]]
    assert all(r["launched"] and r["group_left"] for r in reports)


def test_flag_broadcast_mean_and_object_broadcast(spawned):
    reports, _ = spawned
    for report in reports:
        assert report["broadcast"] == [1.0, 0.0]  # rank 0's values everywhere
        assert report["mean"][0] == 0.5 and math.isnan(report["mean"][1])  # a NaN anywhere is a NaN everywhere
        assert report["object"] == "name-of-rank-0"
        assert report["buffer"] == [0.0, 0.0, 0.0]


def test_sharded_confusion_matrix_all_reduced_equals_one_process(spawned):
    reports, _ = spawned
    generator = torch.Generator().manual_seed(0)
    preds, targets = (
        torch.randint(0, 4, (11, 5, 5), generator=generator),
        torch.randint(0, 5, (11, 5, 5), generator=generator),
    )
    expected = ConfusionMatrix(4, ignore_index=4).update(preds, targets).matrix.tolist()
    assert reports[0]["confusion"] == reports[1]["confusion"] == expected


def test_resume_with_more_processes_continues_and_ranks_agree(spawned):
    reports, folder = spawned
    resumed = [r["resumed"] for r in reports]
    assert resumed[0] == resumed[1]  # identical metrics (and everything else) on both ranks
    assert (resumed[0]["steps"], resumed[0]["epochs"]) == (4 + 2, 2)  # 4 one-process steps, then 2 per rank
    assert [e["step"] for e in resumed[0]["history"]] == [6]
    run = RunDirectory(folder / "resumed")
    steps = [e for e in run.read_events() if e["type"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3, 4, 5, 6]
    # The LR schedule, now 2 steps per epoch, resumes at the start of epoch 2 (not at step 4 of 4: its end).
    schedule = schedule_from_config(ddp_config(epochs=2), steps_per_epoch=2)
    assert [e["lr"] for e in steps[4:]] == pytest.approx([schedule.lr_at(2), schedule.lr_at(3)])
    assert steps[4]["lr"] > 0
    last = load_checkpoint(run.last_path)
    assert (last.step, last.epoch, last.extra["processes"]) == (6, 2, 2)
    assert not any(name.startswith("module.") for name in last.model_state)
    assert not list(folder.glob("resumed/*rank*"))


def test_nan_on_one_rank_stops_every_rank_with_the_same_error(spawned):
    reports, folder = spawned
    messages = [r["nan"] for r in reports]
    assert messages[0] == messages[1] and messages[0] is not None and "loss is nan at step 3" in messages[0]
    status = RunDirectory(folder / "nan").read_status()
    assert status["state"] == "failed" and status["error"] == messages[0]
    assert load_checkpoint(folder / "nan" / "last.pt").step == 2


def test_a_stop_file_read_by_rank_zero_stops_both_ranks_at_the_same_step(spawned):
    reports, folder = spawned
    assert [r["stop"] for r in reports] == [
        {"state": "stopped", "steps": 3, "run": True},
        {"state": "stopped", "steps": 3, "run": False},
    ]
    assert load_checkpoint(folder / "stop" / "last.pt").step == 3


def test_a_time_budget_ends_both_ranks_together(spawned):
    reports, folder = spawned
    budgets = [r["budget"] for r in reports]
    assert budgets[0] == budgets[1] and budgets[0]["state"] == "finished" and budgets[0]["steps"] > 0
    assert budgets[0]["history"][-1]["step"] == budgets[0]["steps"]
    assert RunDirectory(folder / "budget").read_status()["step"] == budgets[0]["steps"]


# -- in-process units ------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [0, 1, 7, 8, 11])
@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_shard_sampler_covers_every_index_once_without_padding(length, world_size):
    shards = [list(distributed.ShardSampler(length, rank, world_size)) for rank in range(world_size)]
    assert sorted(index for shard in shards for index in shard) == list(range(length))  # disjoint, complete, no repeats
    assert [len(distributed.ShardSampler(length, rank, world_size)) for rank in range(world_size)] == [
        len(s) for s in shards
    ]
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_distributed_sampler_would_pad_which_is_why_evaluation_shards():
    padded = [list(DistributedSampler(range(7), num_replicas=2, rank=rank, shuffle=False)) for rank in range(2)]
    assert sum(map(len, padded)) == 8  # one image counted twice


def test_shard_sampler_rejects_impossible_ranks():
    with pytest.raises(ConfigError, match="rank 2 of 2"):
        distributed.ShardSampler(5, 2, 2)


def test_single_process_world_and_launch_command(monkeypatch):
    assert not distributed.launched_by_torchrun()
    world = distributed.setup(torch.device("cpu"))
    assert world == distributed.World() and world.is_main and not world.distributed
    assert distributed.launcher_pid() == os.getpid()
    model = torch.nn.Conv2d(3, 2, 1)
    assert distributed.wrap_model(model, torch.device("cpu"), world) == (model, model)
    with pytest.raises(ConfigError, match="sync_bn needs CUDA"):
        distributed.wrap_model(model, torch.device("cpu"), distributed.World(rank=0, size=2), sync_bn=True)
    assert distributed.max_processes() >= 1 and distributed.max_processes() == max(1, distributed.available_devices())
    command = distributed.launch_command(3)
    assert command[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=3", "-m", "seglab"]
    with pytest.raises(ConfigError):
        distributed.launch_command(0)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not distributed.launched_by_torchrun()  # torchrun with one process: plain single-process training


def test_start_run_refuses_a_bad_process_count(tmp_path):
    with pytest.raises(ConfigError, match="nproc"):
        start_run(ddp_config(), tmp_path, name="zero", nproc=0)
    assert not (tmp_path / "zero").exists()


def test_train_page_offers_processes_only_with_several_gpus(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    import seglab.engine.runs
    from pages import ui

    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state[ui.SPEC_KEY] = DataSpec(
        shapes=ShapesConfig(train_size=16, val_size=8, test_size=8, image_size=64)
    ).to_dict()
    at.switch_page("pages/train.py").run()
    assert not at.exception and not [s for s in at.slider if s.key == "train_processes"]  # this machine: no GPU

    launches = []

    def fake_start_run(config, runs_dir, name=None, *, nproc=1, **options):
        launches.append(nproc)
        run = RunDirectory(Path(runs_dir) / "fake")
        run.path.mkdir(parents=True)
        run.config_path.write_text(json.dumps(config.to_dict()))
        run.write_status("finished", started=time.time())
        return run

    monkeypatch.setattr(distributed, "available_devices", lambda: 4)
    monkeypatch.setattr(seglab.engine.runs, "start_run", fake_start_run)
    at.run()
    slider = next(s for s in at.slider if s.key == "train_processes")
    assert slider.value == 4 and slider.max == 4
    slider.set_value(2).run()
    at.button(key="train_launch").click().run()
    assert not at.exception and launches == [2]
