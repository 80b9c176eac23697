"""Owning a run folder while training: one rule for new, resumed and replaced runs, and a lock.

The rule (:func:`run_folder_conflict`), shared by ``seglab train --out``, :func:`seglab.engine.trainer.train`
and the app's launcher (:func:`seglab.engine.runs.start_run`): a new run starts only in a folder that does
not exist, is empty, or was prepared for this very process by the launcher. A folder holding a
run is continued with ``resume``, or moved aside to ``<name>-replaced-<time>`` with ``overwrite``;
nothing is ever deleted except temporary files of an interrupted save.

While a run trains, its process holds an exclusive ``flock`` on ``<folder>/.lock``
(:class:`RunLock`): a second run into the same folder is refused at once, naming the first one's
pid. The kernel drops the lock when its process dies, so a killed run never blocks its folder;
the pid it left in the lock file tells the next run whom it replaces.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from seglab.engine.run_dir import RunDirectory
from seglab.errors import ConfigError
from seglab.io.output_paths import prepare_output_folder, write_failure

LOCK_NAME = ".lock"
RUN_MARKERS = ("config.json", "status.json", "events.jsonl", "last.pt", "best.pt")
# What a run produces that must never be overwritten; a folder with only set-up files holds nothing to lose.
RUN_OUTPUTS = ("events.jsonl", "last.pt", "best.pt", "previews")

_held: dict[str, list[int]] = {}  # resolved folder -> [file descriptor, depth]: the locks this process holds
_held_guard = threading.Lock()


def looks_like_run(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds any file a seglab run writes (config, status, events or a checkpoint)."""
    folder = Path(folder)
    return any((folder / name).exists() for name in RUN_MARKERS)


def describe_run(folder: str | os.PathLike) -> str:
    """A few words on the run in ``folder``: state, step and best score from its status.json."""
    status = RunDirectory(folder).read_status()
    parts = [str(status.get("state", "unknown state"))]
    if status.get("step"):
        parts.append(f"step {status['step']}")
    if isinstance(status.get("best_metric"), (int, float)):
        parts.append(f"best {status.get('best_metric_name', 'miou')} {status['best_metric']:.4f}")
    return ", ".join(parts)


def run_folder_conflict(folder: str | os.PathLike, launch_id: str | None = None) -> str | None:
    """Why a new run may not start in ``folder`` (what is already there), or None when it may.

    A new run may start in a folder that does not exist or is empty, or in one that the launcher
    prepared for it (status.json holds the same ``launch_id`` and no run output exists yet).
    """
    folder = Path(folder)
    if not folder.exists():
        return None
    if not folder.is_dir():
        return "is a file, not a folder"
    entries = sorted(entry.name for entry in folder.iterdir() if entry.name != LOCK_NAME)
    if not entries:
        return None
    has_outputs = any((folder / name).exists() for name in RUN_OUTPUTS)
    status = RunDirectory(folder).read_status()
    if launch_id is not None and status.get("launch_id") == launch_id and not has_outputs:
        return None
    if looks_like_run(folder):
        return f"holds a run ({describe_run(folder)})"
    listed = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
    return f"is not empty and is not a seglab run folder ({len(entries)} entries: {listed})"


def moved_aside_name(folder: Path) -> Path:
    """``<folder>-replaced-<yyyymmdd-hhmmss>``, unique beside ``folder``."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    target, counter = folder.with_name(f"{folder.name}-replaced-{stamp}"), 1
    while target.exists():
        counter += 1
        target = folder.with_name(f"{folder.name}-replaced-{stamp}-{counter}")
    return target


def clean_temporary_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files an interrupted atomic save left in a run folder; return them.

    Only safe while holding the folder's lock: then no other process is writing there.
    """
    folder = Path(folder)
    removed = []
    for place in (folder, folder / "previews"):
        if not place.is_dir():
            continue
        for entry in place.iterdir():
            if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file():
                try:
                    entry.unlink()
                except FileNotFoundError:
                    continue
                removed.append(entry)
    return removed


class RunLock:
    """An exclusive, non-blocking ``flock`` on ``<folder>/.lock``, re-entrant within one process."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.previous_holder: dict | None = None  # what a holder that never released it left in the file
        self._key: str | None = None

    @property
    def held(self) -> bool:
        return self._key is not None

    def acquire(self) -> RunLock:
        """Take the lock (the folder must exist); raise ConfigError naming the holder when it is taken."""
        key = str(self.folder.resolve())
        with _held_guard:
            if key in _held:  # this process already trains here (e.g. the CLI claimed it, then Trainer.fit)
                _held[key][1] += 1
                self._key = key
                return self
            path = self.folder / LOCK_NAME
            try:
                handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as error:
                raise ConfigError(
                    f"cannot write into run folder {self.folder}: {write_failure(error, path)}; "
                    "pick a folder you can write to (--out)"
                ) from None
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(handle)
                os.close(handle)
                raise ConfigError(
                    f"run folder {self.folder} is in use: {_describe_holder(holder)} is training into it. Wait for "
                    "it to end or stop it (seglab runs shows it; the app's Train page has Stop), or use another --out"
                ) from None
            self.previous_holder = _read_holder(handle)
            _write_holder(handle)
            _held[key] = [handle, 1]
            self._key = key
        return self

    def release(self) -> None:
        """Drop the lock (the outermost release empties the lock file: a clean exit leaves no holder)."""
        if self._key is None:
            return
        with _held_guard:
            entry = _held.get(self._key)
            if entry is not None:
                entry[1] -= 1
                if entry[1] == 0:
                    del _held[self._key]
                    try:
                        os.ftruncate(entry[0], 0)
                    except OSError:
                        pass
                    os.close(entry[0])  # closing the descriptor releases the flock
        self._key = None

    def stale_note(self) -> str | None:
        """A line about a previous holder that died without releasing the lock, if there was one."""
        holder = self.previous_holder
        if not holder:
            return None
        return (
            f"note: {_describe_holder(holder)} trained into {self.folder} and ended without releasing it "
            "(killed?); the kernel freed its lock, so this run takes the folder over"
        )

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


def _read_holder(handle: int) -> dict | None:
    try:
        raw = os.pread(handle, 4096, 0)
        holder = json.loads(raw) if raw.strip() else None
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _write_holder(handle: int) -> None:
    record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
    data = json.dumps(record).encode()
    try:
        os.ftruncate(handle, 0)
        os.pwrite(handle, data, 0)
    except OSError:
        pass  # the lock itself is what matters; the record only improves messages


def _describe_holder(holder: dict | None) -> str:
    if not holder or not isinstance(holder.get("pid"), int):
        return "another process"
    since = holder.get("since")
    when = f", since {_dt.datetime.fromtimestamp(since):%Y-%m-%d %H:%M:%S}" if isinstance(since, (int, float)) else ""
    host = f" on {holder['host']}" if holder.get("host") and holder.get("host") != socket.gethostname() else ""
    return f"process {holder['pid']}{host}{when}"


@dataclass
class RunFolderClaim:
    """A run folder this process may train into, locked until :meth:`release` (or the ``with`` block ends)."""

    path: Path
    lock: RunLock
    moved_to: Path | None = None  # where --overwrite moved the previous run
    notes: list[str] = field(default_factory=list)  # lines to show the user (stale lock, cleaned files, move)

    def release(self) -> None:
        self.lock.release()

    def __enter__(self) -> RunFolderClaim:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def claim_run_folder(
    path: str | os.PathLike, *, resume: bool = False, overwrite: bool = False, launch_id: str | None = None
) -> RunFolderClaim:
    """Check ``path`` against the run-folder rule, lock it and clean leftovers of interrupted saves.

    - a folder that does not exist, is empty or was prepared by the launcher (``launch_id``): a new run;
    - a folder holding a run: refused unless ``resume`` (continue from its last.pt) or ``overwrite``
      (the old run is moved aside to ``<name>-replaced-<time>``, nothing is deleted);
    - a file, an unwritable place, or a folder another process trains into: refused.

    Raises ConfigError saying what is there and what to do.
    """
    if resume and overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite moves it aside: pass only one of them")
    folder = prepare_output_folder(path)
    lock = RunLock(folder).acquire()
    try:
        claim = RunFolderClaim(path=folder, lock=lock)
        conflict = run_folder_conflict(folder, launch_id)
        if conflict is not None and overwrite and looks_like_run(folder):
            claim.moved_to = moved_aside_name(folder)
            folder.rename(claim.moved_to)  # the old run keeps its lock file and stays locked until then
            lock.release()
            folder.mkdir()
            claim.lock = lock = RunLock(folder).acquire()
            claim.notes.append(f"moved the previous run ({describe_run(claim.moved_to)}) to {claim.moved_to}")
        elif conflict is not None and not (resume and looks_like_run(folder)):
            raise ConfigError(_refusal(folder, conflict, resume=resume))
        elif resume and not (folder / "last.pt").is_file() and any((folder / n).exists() for n in RUN_OUTPUTS):
            raise ConfigError(
                f"--resume: {folder} has no last.pt to continue from but holds a run ({describe_run(folder)}); "
                "pass --overwrite to move it aside and start again, or pick a new --out"
            )
        if note := lock.stale_note():
            claim.notes.append(note)
        removed = clean_temporary_files(folder)
        if removed:
            names = ", ".join(path.name for path in removed[:3])
            claim.notes.append(f"removed {len(removed)} temporary file(s) left by an interrupted save: {names}")
        return claim
    except BaseException:
        lock.release()
        raise


def _refusal(folder: Path, conflict: str, *, resume: bool) -> str:
    if looks_like_run(folder):
        return (
            f"run folder {folder} already exists and {conflict}; nothing was changed. Continue it with --resume, "
            f"pick a new --out name, or pass --overwrite to move it aside (to {folder.name}-replaced-<time>)"
        )
    what = "--resume needs a seglab run folder, but" if resume else "cannot train into"
    return f"{what} {folder}: it {conflict}; pick a new or empty --out folder"
