"""Tests for seglab/engine/run_folder.py: the run-folder rule, the lock held for a run's life (against a real
second process), stale locks of killed processes, and leftovers of interrupted saves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seglab.analysis.leaderboard import find_checkpoints
from seglab.cli.commands import main
from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec
from seglab.engine.config import TrainConfig
from seglab.engine.run_dir import RunDirectory
from seglab.engine.run_folder import RunLock, claim_run_folder, clean_temporary_files, run_folder_conflict
from seglab.engine.runs import list_runs, run_info, start_run, wait_for_run
from seglab.engine.trainer import Trainer, train
from seglab.errors import ConfigError
from tests.helpers.paths import ROOT

TINY = DataSpec(shapes=ShapesConfig(train_size=8, val_size=4, test_size=2, image_size=32))
TINY_FLAGS = (
    "--data shapes --shapes train_size=8 --shapes val_size=4 --shapes image_size=32 --model tiny_unet_small "
    "--batch-size 4 --crop-size 0 --preview-images 0 --device cpu --threads 1 --quiet"
).split()


def tiny_config(**options) -> TrainConfig:
    base = dict(data=TINY, model="tiny_unet_small", epochs=1, batch_size=4, crop_size=0, preview_images=0, device="cpu")
    return TrainConfig(**{**base, **options})


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def hold_lock_in_another_process(folder: Path) -> subprocess.Popen:
    """A child process that takes the folder's lock and sleeps; returns once it holds it."""
    code = (
        "import sys, time\nfrom seglab.engine.run_folder import RunLock\n"
        f"RunLock({str(folder)!r}).acquire()\nprint('locked', flush=True)\ntime.sleep(600)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    return child


# -- the rule ---------------------------------------------------------------------------------------
def test_the_rule_new_empty_prepared_and_existing_folders(tmp_path):
    assert run_folder_conflict(tmp_path / "new") is None
    (tmp_path / "empty").mkdir()
    assert run_folder_conflict(tmp_path / "empty") is None
    run = RunDirectory(tmp_path / "run")
    run.path.mkdir()
    run.config_path.write_text("{}")
    run.write_status("created", launch_id="abc")
    assert run_folder_conflict(run.path, launch_id="abc") is None  # prepared for this launch
    assert "holds a run" in run_folder_conflict(run.path, launch_id="other")
    (run.path / "events.jsonl").write_text("")
    assert "holds a run" in run_folder_conflict(run.path, launch_id="abc")  # once it has output, never again
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("x")
    assert "not a seglab run folder" in run_folder_conflict(tmp_path / "mine")


def test_the_python_api_follows_the_same_rule(tmp_path):
    train(tiny_config(), tmp_path / "run")
    with pytest.raises(ConfigError, match="already exists and holds a run"):
        train(tiny_config(seed=1), tmp_path / "run")
    result = train(tiny_config(epochs=2), tmp_path / "run", resume=True)
    assert result.steps == 4
    train(tiny_config(seed=1), tmp_path / "run", overwrite=True)
    assert len(list(tmp_path.glob("run-replaced-*"))) == 1


def test_the_app_launcher_and_the_cli_share_the_rule(tmp_path):
    """start_run refuses a folder holding a run with the CLI's words; its own prepared folder is accepted."""
    train(tiny_config(), tmp_path / "taken")
    with pytest.raises(ConfigError, match="already exists and holds a run"):
        start_run(tiny_config(), tmp_path, name="taken")
    run = start_run(tiny_config(), tmp_path, name="fresh", nice=0)
    info = wait_for_run(run.path, timeout_s=180)
    assert info.state == "finished", run.log_path.read_text()[-2000:]
    assert run.read_status()["launch_id"]


def test_resume_without_last_pt_but_with_a_best_pt_is_refused(tmp_path):
    train(tiny_config(), tmp_path / "run")
    (tmp_path / "run" / "last.pt").unlink()
    with pytest.raises(ConfigError, match="no last.pt to continue from"):
        claim_run_folder(tmp_path / "run", resume=True)
    assert (tmp_path / "run" / "best.pt").is_file()


# -- the lock -----------------------------------------------------------------------------------------
def test_a_second_run_into_a_locked_folder_is_refused_at_once(capsys, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    holder = hold_lock_in_another_process(folder)
    try:
        code = main(["train", *TINY_FLAGS, "--epochs", "1", "--out", str(folder)])
        err = capsys.readouterr().err
        assert code == 2 and f"is in use: process {holder.pid}" in err and "Traceback" not in err
        with pytest.raises(ConfigError, match="is in use"):
            Trainer(tiny_config(), out_dir=folder).fit()  # the library refuses too
        assert not (folder / "events.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()


def test_two_real_runs_into_one_folder_the_second_refuses_and_the_first_is_intact(capsys, tmp_path):
    folder = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "seglab", "train", *TINY_FLAGS, "--epochs", "100000", "--out", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not (folder / "last.pt").is_file() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.1)
        assert (folder / "last.pt").is_file(), first.stderr.read() if first.poll() is not None else "no last.pt"
        for extra in ([], ["--resume"], ["--overwrite"]):
            code = main(["train", *TINY_FLAGS, "--epochs", "1", "--out", str(folder), *extra])
            err = capsys.readouterr().err
            assert code == 2 and f"is in use: process {first.pid}" in err, (extra, err)
        assert not list(tmp_path.glob("run-replaced-*"))  # --overwrite did not move a live run away
        starts = [e for e in RunDirectory(folder).read_events() if e["type"] == "start"]
        assert len(starts) == 1  # nothing of a second run in the events
    finally:
        first.kill()
        first.wait()


def test_a_killed_runs_stale_lock_is_reported_and_does_not_block(capsys, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    holder = hold_lock_in_another_process(folder)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    lock = RunLock(folder).acquire()  # not blocked: the kernel released the dead process's lock
    try:
        assert lock.previous_holder["pid"] == holder.pid
        assert f"process {holder.pid}" in lock.stale_note() and "killed" in lock.stale_note()
    finally:
        lock.release()
    assert (folder / ".lock").read_text() == ""  # a clean release leaves no holder behind
    assert RunLock(folder).acquire().stale_note() is None


def test_the_cli_reports_the_stale_lock_of_a_killed_run_and_takes_over(capsys, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    holder = hold_lock_in_another_process(folder)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    code = main(["train", *TINY_FLAGS, "--epochs", "1", "--out", str(folder)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"note: process {holder.pid}" in err and "ended without releasing it" in err


def test_the_lock_is_held_for_the_runs_life_and_released_after(tmp_path):
    seen = []

    def probe(event):
        if event["type"] == "step":
            child = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"from seglab.engine.run_folder import RunLock; RunLock({str(tmp_path)!r}).acquire()",
                ],
                capture_output=True,
                text=True,
            )
            seen.append(child.returncode != 0 and "is in use" in child.stderr)

    Trainer(tiny_config(), out_dir=tmp_path, callbacks=[probe]).fit()
    assert seen and all(seen)
    RunLock(tmp_path).acquire().release()  # free again once the run ended


# -- leftovers of interrupted saves ------------------------------------------------------------------
def test_temporary_files_of_a_killed_save_are_cleaned_when_the_run_resumes(capsys, tmp_path):
    run = tmp_path / "run"
    assert main(["train", *TINY_FLAGS, "--epochs", "1", "--out", str(run)]) == 0
    leftovers = [run / ".best.pt.k2j3h4.tmp", run / ".last.pt.abc123.tmp", run / ".status.json.x1.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a checkpoint")
    (run / "previews").mkdir(exist_ok=True)
    (run / "previews" / ".eval_0000002.png.tmp").write_bytes(b"x")
    # Never shown as checkpoints meanwhile.
    assert find_checkpoints(tmp_path, include_last=True) == [run / "best.pt", run / "last.pt"]
    assert run_info(run).checkpoint == run / "best.pt"
    capsys.readouterr()
    assert main(["train", *TINY_FLAGS, "--epochs", "2", "--out", str(run), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "removed 4 temporary file(s) left by an interrupted save" in err
    assert not [p for p in run.rglob("*.tmp")]


def test_clean_temporary_files_only_touches_hidden_tmp_files(tmp_path):
    for name in (".best.pt.1.tmp", "notes.tmp", "best.pt", ".lock"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in clean_temporary_files(tmp_path)] == [".best.pt.1.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "best.pt", "notes.tmp"]


def test_a_killed_cli_run_is_reported_without_pointing_at_a_missing_train_log(tmp_path):
    folder = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "seglab", "train", *TINY_FLAGS, "--epochs", "100000", "--out", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while not (folder / "last.pt").is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        first.kill()
        first.wait()
    info = run_info(folder)
    assert info.state == "failed" and f"pid {first.pid}" in info.error
    assert not (folder / "train.log").exists() and "see train.log" not in info.error
    assert "started from a terminal" in info.error and "events.jsonl" in info.error
    assert json.loads((folder / "status.json").read_text())["state"] == "failed"
    assert [r.name for r in list_runs(tmp_path)] == ["run"]


KILLED_MID_SAVE = """
import io, sys, time, torch
from seglab.engine.config import TrainConfig
from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec
from seglab.engine.trainer import Trainer

real_save, calls = torch.save, []

def slow_save(payload, stream, *args, **kwargs):
    calls.append(1)
    if len(calls) <= 2:  # epoch 1: last.pt and best.pt are written
        return real_save(payload, stream, *args, **kwargs)
    buffer = io.BytesIO()
    real_save(payload, buffer)
    stream.write(buffer.getvalue()[:1000])  # half a file on disk, then the kill
    stream.flush()
    print("saving", flush=True)
    time.sleep(600)

torch.save = slow_save
data = DataSpec(shapes=ShapesConfig(train_size=8, val_size=4, test_size=2, image_size=32))
config = TrainConfig(data=data, model="tiny_unet_small", epochs=3, batch_size=4, crop_size=0, preview_images=0,
                     device="cpu", threads=1)
Trainer(config, out_dir=sys.argv[1]).fit()
"""


def test_a_sigkill_during_a_save_leaves_a_tmp_file_that_is_never_listed_and_cleaned_on_resume(capsys, tmp_path):
    run = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", KILLED_MID_SAVE, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "saving"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    leftovers = list(run.glob(".*.pt.*.tmp"))
    assert len(leftovers) == 1
    assert find_checkpoints(tmp_path, include_last=True) == [run / "best.pt", run / "last.pt"]
    assert run_info(run).checkpoint == run / "best.pt" and run_info(run).usable
    code = main(["train", "--config", str(run / "config.json"), "--out", str(run), "--resume", "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "removed 1 temporary file(s)" in err and "resuming" in err
    assert not list(run.glob("*.tmp")) and run_info(run).state == "finished"


def test_trainer_fit_cleans_leftovers_too(tmp_path):
    (tmp_path / ".last.pt.x9.tmp").write_bytes(b"half")
    Trainer(tiny_config(), out_dir=tmp_path).fit()
    assert not list(tmp_path.glob("*.tmp"))
