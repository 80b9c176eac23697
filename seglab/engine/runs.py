"""Background runs: start training as a separate process, list, follow and stop runs.

A run is a process writing files into its folder (see :mod:`seglab.engine.run_dir`); everything here only
reads those files, so a browser page never blocks on training and a crashed run cannot take the
app down. A run whose process vanished without writing a final status is marked failed.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seglab.engine.config import TrainConfig
from seglab.engine.distributed import launch_command
from seglab.engine.run_dir import FAILED, RUNNING, EventFollower, RunDirectory
from seglab.engine.run_folder import looks_like_run, run_folder_conflict
from seglab.errors import ConfigError
from seglab.io.atomic_files import write_json_atomic
from seglab.io.names import display_name
from seglab.io.output_paths import prepare_output_folder

DEFAULT_RUNS_DIR = Path("checkpoints")


@dataclass
class RunInfo:
    """A run folder summarised from its status and config files."""

    name: str
    path: Path
    state: str  # running | finished | failed | stopped | created
    error: str | None
    step: int
    epoch: int
    best_metric: float | None
    best_metric_name: str
    latest: dict[str, Any]  # latest evaluation summary (miou, pixel_acc, ...)
    model: str
    loss: str
    data: str
    started: float | None
    updated: float | None
    has_best: bool
    has_last: bool
    problem: str | None = None  # why the run is unusable (RunDirectory.problem), shown next to it

    @property
    def usable(self) -> bool:
        """A readable config.json and a checkpoint that passes the cheap file check."""
        return self.problem is None and (self.has_best or self.has_last)

    @property
    def checkpoint(self) -> Path | None:
        """best.pt when present, else last.pt; None when there is none or the run is unusable."""
        if self.problem is not None:
            return None
        if self.has_best:
            return self.path / "best.pt"
        return self.path / "last.pt" if self.has_last else None


def new_run_name(config: TrainConfig, runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR) -> str:
    """``<model>-<loss>-<yyyymmdd-hhmmss>``, made unique within ``runs_dir``."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{config.model}-{config.loss}-{stamp}").strip("-")
    name, counter = base, 1
    while (Path(runs_dir) / name).exists():
        counter += 1
        name = f"{base}-{counter}"
    return name


def start_run(
    config: TrainConfig,
    runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR,
    name: str | None = None,
    *,
    nice: int = 10,
    extra_args: list[str] | None = None,
    nproc: int = 1,
) -> RunDirectory:
    """Launch ``python -m seglab train`` for ``config`` in a new session; return its run folder.

    With ``nproc > 1`` it launches ``python -m torch.distributed.run --standalone --nproc-per-node
    N -m seglab train ...`` instead: N processes with DistributedDataParallel (one per GPU; on CPU,
    gloo). The pid recorded is the launcher's, and stopping or killing it ends every worker.
    The child runs at lower priority (``nice``) so the app stays responsive on a small machine.
    Its output goes to ``train.log`` in the run folder.
    """
    config.validate()
    if not isinstance(nproc, int) or nproc < 1:
        raise ConfigError(f"nproc must be a whole number >= 1 (one process per GPU), got {nproc!r}")
    name = name or new_run_name(config, runs_dir)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith("."):
        raise ConfigError(f"run name {name!r} may only contain letters, digits, '.', '_' and '-'")
    run = RunDirectory(Path(runs_dir) / name)
    conflict = run_folder_conflict(run.path)  # the rule `seglab train --out` applies, so the child accepts the folder
    if conflict is not None:
        raise ConfigError(f"run folder {run.path} already exists and {conflict}; pick another name")
    prepare_output_folder(run.path, what="the run folder")
    # The child recognises the folder prepared for it by this id (its status.json holds it, no run output yet).
    launch_id = uuid.uuid4().hex
    write_json_atomic(run.config_path, config.to_dict())
    run.write_status("created", launch_id=launch_id, error=None)
    launcher = launch_command(nproc) if nproc > 1 else [sys.executable, "-m", "seglab"]
    command = [
        *launcher,
        "train",
        "--config",
        str(run.config_path),
        "--out",
        str(run.path),
        "--quiet",
        "--launch-id",
        launch_id,
    ]
    command += extra_args or []
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(run.log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )
    run.write_status(
        RUNNING, pid=process.pid, process_start=_process_start_time(process.pid), started=time.time(), error=None
    )
    _reap_in_background(process)
    return run


def _reap_in_background(process: subprocess.Popen) -> None:
    """Wait for the child in a daemon thread so it never lingers as a zombie of the app."""
    threading.Thread(target=process.wait, daemon=True).start()


def _process_start_time(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (Linux), to tell a pid reused by another process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def process_alive(pid: int | None, start_time: int | None = None) -> bool:
    """True when ``pid`` is a live, non-zombie process (and the same one, if start_time is known)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return False
    except (OSError, IndexError):
        pass
    if start_time is not None:
        current = _process_start_time(pid)
        return current is None or current == start_time
    return True


def run_info(path: str | os.PathLike, *, check_alive: bool = True) -> RunInfo:
    """Summarise one run folder; a 'running' run whose process is gone is marked failed on disk."""
    run = RunDirectory(path)
    status = run.read_status()
    state = status.get("state", "created")
    if check_alive and state == RUNNING and not process_alive(status.get("pid"), status.get("process_start")):
        # Re-read: the process may have written its final status between our two reads.
        status = run.read_status()
        if status.get("state") == RUNNING:
            run.write_status(FAILED, error=_death_notice(run, status.get("pid")))
            status = run.read_status()
        state = status.get("state", state)
    config = _read_json(run.config_path)
    data = config.get("data", {}) if isinstance(config.get("data"), dict) else {}
    return RunInfo(
        name=display_name(run.name),  # shown in the app and in `seglab runs`; path stays the real one
        path=run.path,
        state=state,
        error=status.get("error"),
        step=int(status.get("step") or 0),
        epoch=int(status.get("epoch") or 0),
        best_metric=status.get("best_metric"),
        best_metric_name=status.get("best_metric_name", config.get("best_metric", "miou")),
        latest=status.get("latest") or {},
        model=str(config.get("model", "?")),
        loss=str(config.get("loss", "?")),
        data=f"{data.get('kind', '?')}",
        started=status.get("started"),
        updated=status.get("updated"),
        has_best=run.best_path.is_file(),
        has_last=run.last_path.is_file(),
        problem=run.problem(),
    )


def _death_notice(run: RunDirectory, pid: int | None) -> str:
    """What to tell about a run whose process vanished, pointing only at files that exist."""
    error = f"the training process (pid {pid}) died without finishing (killed, or out of memory)"
    if run.log_path.is_file():
        error += f"; see {run.log_path.name}"
        last_line = _last_log_line(run.log_path)
        if last_line:  # e.g. "seglab train: error: ..." when it failed before training started
            error += f" (last line: {last_line})"
        return error
    error += "; it was started from a terminal (no train.log), so its messages went there"
    last = _last_event(run.events_path)
    if last:
        stamp = last.get("time")
        when = (
            _dt.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S") if isinstance(stamp, (int, float)) else "?"
        )
        error += f"; its last event in {run.events_path.name}: {last.get('type')} at step {last.get('step')} ({when})"
    return error


def _last_event(path: Path, tail_bytes: int = 16384) -> dict[str, Any] | None:
    """The last complete event of an events.jsonl file, reading only its tail."""
    try:
        with open(path, "rb") as stream:
            stream.seek(max(0, path.stat().st_size - tail_bytes))
            lines = stream.read().splitlines()
    except OSError:
        return None
    for raw in reversed(lines):
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if isinstance(event, dict):
            return event
    return None


def list_runs(runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR) -> list[RunInfo]:
    """Every run folder under ``runs_dir`` (newest first), usable or not (see ``RunInfo.problem``).

    A folder is a run folder when it holds any file a run writes (config.json, status.json,
    events.jsonl, best.pt, last.pt); one without config.json is listed as unusable, not hidden.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and looks_like_run(p)]
    infos = [run_info(p) for p in folders]
    return sorted(infos, key=lambda info: (info.started or 0.0, info.name), reverse=True)


def runs_to_watch(runs: Sequence[RunInfo]) -> list[str]:
    """Names of the runs a first look follows: every running one, then the latest (``runs`` newest first)."""
    return list(dict.fromkeys([run.name for run in runs if run.state == RUNNING] + [run.name for run in runs[:1]]))


def watch_list(watched: Sequence[str] | None, runs: Sequence[RunInfo], started: str | None = None) -> list[str]:
    """The runs a live view follows: the ``watched`` ones still on disk (``None``, a first look:
    :func:`runs_to_watch`), with the ``started`` run first."""
    names = {run.name for run in runs}
    kept = runs_to_watch(runs) if watched is None else [name for name in watched if name in names]
    return list(dict.fromkeys([started, *kept] if started else kept))


def any_running(runs: Iterable[RunInfo], names: Collection[str] | None = None) -> bool:
    """Whether one of ``runs`` (only those in ``names``, when given) is training now."""
    return any(run.state == RUNNING for run in runs if names is None or run.name in names)


def runs_table(runs: Iterable[RunInfo]) -> list[dict[str, Any]]:
    """One row per run for a table of past runs: state, recipe, best metric, progress, start time and error."""
    return [
        {
            "run": run.name,
            "status": run.state,
            "model": run.model,
            "loss": run.loss,
            "data": run.data,
            "best": run.best_metric,
            "metric": run.best_metric_name,
            "steps": run.step,
            "epochs": run.epoch,
            "started": _dt.datetime.fromtimestamp(run.started) if run.started else None,
            "error": run.error or "",
        }
        for run in runs
    ]


def follow_events(path: str | os.PathLike) -> EventFollower:
    """An incremental reader of a run's events: call ``.poll()`` for what is new."""
    return EventFollower(RunDirectory(path).events_path)


def stop_run(path: str | os.PathLike, *, grace_s: float = 20.0, wait: bool = False) -> None:
    """Ask a run to stop: it finishes its step, saves ``last.pt`` and marks itself stopped.

    If the process is still alive after ``grace_s`` seconds it gets SIGTERM, then SIGKILL. With
    ``wait=False`` the escalation happens in a background thread and this returns at once.
    Under torchrun the STOP file is read by rank 0, which tells the other ranks at the same step;
    SIGTERM goes to the launcher, which forwards it to its workers, and SIGKILL to all of them.
    """
    run = RunDirectory(path)
    run.request_stop()
    status = run.read_status()
    pid, start = status.get("pid"), status.get("process_start")
    if not pid or not process_alive(pid, start):
        return

    def escalate() -> None:
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if not process_alive(pid, start):
                return
            time.sleep(0.2)
        for sig, pause in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
            if not process_alive(pid, start):
                return
            try:
                if sig == signal.SIGKILL:
                    kill_process_tree(pid)
                else:
                    os.kill(pid, sig)  # torchrun forwards SIGTERM to its workers and waits for them
            except ProcessLookupError:
                return
            time.sleep(pause)

    if wait:
        escalate()
    else:
        threading.Thread(target=escalate, daemon=True).start()


def kill_process_tree(pid: int) -> None:
    """SIGKILL ``pid``, its process group and its children's groups.

    torchrun starts each worker in a session of its own (``start_new_session``), so killing the
    launcher's group alone would leave the workers running as orphans.
    """
    children = _child_pids(pid)  # before the kill: orphans are re-parented and lost
    for target in [pid, *children]:
        try:
            if os.getpgid(target) == target:  # leads its group: take its DataLoader workers along
                os.killpg(target, signal.SIGKILL)
            else:
                os.kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue


def _child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc; empty elsewhere)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children += [int(child) for child in task.read_text().split()]
        except (OSError, ValueError):
            continue
    return children


def wait_for_run(path: str | os.PathLike, timeout_s: float = 120.0, poll_s: float = 0.2) -> RunInfo:
    """Block until a run leaves the running state (or the timeout passes); return its summary."""
    deadline = time.monotonic() + timeout_s
    info = run_info(path)
    while info.state in (RUNNING, "created") and time.monotonic() < deadline:
        time.sleep(poll_s)
        info = run_info(path)
    return info


def _last_log_line(path: Path, tail_bytes: int = 4096) -> str:
    """The last non-empty line of a run's train.log ("" when there is none)."""
    try:
        with open(path, "rb") as stream:
            stream.seek(max(0, path.stat().st_size - tail_bytes))
            tail = stream.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
