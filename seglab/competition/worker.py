"""The one scoring worker: takes submissions from the queue and scores each in a child process.

- **One at a time, one worker**: the worker holds an exclusive ``flock`` on ``worker.lock`` in the
  data folder; a second worker (another terminal, or the app starting one) exits at once. The lock
  dies with the process, so a killed worker never blocks its successor.
- **Resumes after any crash**: holding the lock, a starting worker queues again every submission
  left in ``scoring`` (no other worker can be alive); leases also expire, as a backstop.
- **Isolation**: each scoring runs in a forked child with ``RLIMIT_AS`` (memory) and a wall-clock
  limit; the worker imports torch and seglab once, so a child starts in milliseconds instead of
  re-importing torch (seconds on a small machine). The child never touches the database: it writes
  its result (confusion matrices, or the reason it failed) to a file and exits; a crash, a limit or
  a kill shows up as its exit status and marks only that submission failed.
- **Dies with its parent** when started by the app (``--parent-pid``), and the child dies with the
  worker (``PR_SET_PDEATHSIG``), so no orphan keeps scoring after a restart.
"""

from __future__ import annotations

import ctypes
import errno
import faulthandler
import fcntl
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seglab.competition.clock import now
from seglab.competition.competitions import Competition, HiddenImage, competition_by_id, hidden_images
from seglab.competition.errors import CompetitionError, ScoringError
from seglab.competition.jobs import LEASE_S, Job, claim_next, complete, fail, release, renew_lease, requeue_orphans
from seglab.competition.store import CompetitionStore
from seglab.io.atomic_files import atomic_write

POLL_S = 1.0
LOCK_RETRIES = 10  # a probe by the app holds the lock for microseconds: retry before giving up
CHILD_ERROR, CHILD_MEMORY, CHILD_UNEXPECTED = 3, 4, 5
PR_SET_PDEATHSIG = 1
Log = Callable[[str], None]


def _default_log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the lock ------------------------------------------------------------------------------------------
class WorkerLock:
    """Exclusive, non-blocking ``flock`` on the store's ``worker.lock`` (released when the process dies)."""

    def __init__(self, store: CompetitionStore) -> None:
        self.path = store.lock_path
        self.fd: int | None = None

    def __enter__(self) -> WorkerLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(LOCK_RETRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES) or attempt == LOCK_RETRIES - 1:
                    holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
                    os.close(fd)
                    raise CompetitionError(
                        f"another scoring worker is running (pid {holder}); only one may run"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None


def worker_running(store: CompetitionStore) -> bool:
    """Whether a worker holds the lock (probed with a shared lock, held for microseconds)."""
    if not store.lock_path.is_file():
        return False
    fd = os.open(store.lock_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases the shared lock when it was granted
    return False


# -- heartbeat ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerStatus:
    """The last heartbeat of the most recent worker."""

    worker_id: str
    pid: int
    started_at: float
    last_seen: float
    current_submission: int | None
    running: bool  # the lock is held right now


def _beat(store: CompetitionStore, worker_id: str, started_at: float, current: int | None) -> None:
    with store.transaction() as connection:
        connection.execute(
            """INSERT INTO worker_heartbeat (worker_id, pid, started_at, last_seen, current_submission)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (worker_id) DO UPDATE SET last_seen = excluded.last_seen,
               current_submission = excluded.current_submission""",
            (worker_id, os.getpid(), started_at, now(), current),
        )


def worker_status(store: CompetitionStore) -> WorkerStatus | None:
    """The most recent worker's heartbeat (``None`` if no worker ever ran here)."""
    with store.connect() as connection:
        row = connection.execute("SELECT * FROM worker_heartbeat ORDER BY last_seen DESC LIMIT 1").fetchone()
    if row is None:
        return None
    return WorkerStatus(
        row["worker_id"],
        row["pid"],
        row["started_at"],
        row["last_seen"],
        row["current_submission"],
        worker_running(store),
    )


# -- the child ------------------------------------------------------------------------------------------
def preload() -> None:
    """Import what scoring needs once, in the worker, so forked children start warm (no torch op runs
    here: a thread pool started before fork would not survive into the child)."""
    import torch  # noqa: F401

    import seglab.competition.mask_zip  # noqa: F401
    import seglab.data.spec  # noqa: F401
    import seglab.engine.checkpoint  # noqa: F401
    import seglab.engine.predict  # noqa: F401
    import seglab.models  # noqa: F401


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the worker still kills its child on every exit path it controls


def _limit_memory(extra_mb: int) -> None:
    """RLIMIT_AS = the address space the child starts with (torch alone maps a few GB) + ``extra_mb``."""
    try:
        with open("/proc/self/statm") as stream:
            current = int(stream.read().split()[0]) * resource.getpagesize()
    except OSError:
        return  # no /proc (not Linux): the time limit still applies
    limit = current + extra_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _write_result(path: Path, payload: dict | np.ndarray) -> None:
    with atomic_write(path, durable=False) as stream:  # read by the parent moments later, never after a crash
        if isinstance(payload, np.ndarray):
            np.save(stream, payload, allow_pickle=False)
        else:
            stream.write(json.dumps(payload).encode())


def _child(
    job: Job, competition: Competition, images: list[HiddenImage], file: Path, result: Path, threads: int
) -> None:
    """Score in the forked child and ``os._exit``: never returns, never touches the database."""
    code = CHILD_UNEXPECTED
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        faulthandler.disable()  # a crash is reported as the submission's reason, not as a dump in the log
        _die_with_parent()
        _limit_memory(competition.memory_limit_mb)
        import torch

        from seglab.competition.scoring import score_submission
        from seglab.data.spec import build_dataset

        torch.set_num_threads(threads)
        dataset = build_dataset(competition.spec)
        if list(dataset.ids) != [image.sample_id for image in images]:
            raise ScoringError(
                "the hidden split on the server changed since the competition was created; tell the teacher"
            )
        _write_result(result, score_submission(job.kind, file, dataset))
        code = 0
    except ScoringError as error:
        _write_result(result, {"reason": str(error)})
        code = CHILD_ERROR
    except MemoryError:
        code = CHILD_MEMORY
    except BaseException as error:  # anything else is reported as the submission's failure, nothing more
        message = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        code = CHILD_MEMORY if "allocate" in message.lower() or "out of memory" in message.lower() else CHILD_UNEXPECTED
        if code == CHILD_UNEXPECTED:
            _write_result(result, {"reason": f"scoring failed: {type(error).__name__}: {message}"})
    finally:
        os._exit(code)


def _exit_reason(status: int, competition: Competition) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        if number == signal.SIGKILL:
            return f"the scoring process was killed ({name}): most likely it ran out of memory"
        return f"the scoring process crashed ({name}); the model or file may be corrupt"
    code = os.WEXITSTATUS(status)
    if code == CHILD_MEMORY:
        return f"scoring ran out of memory (limit: {competition.memory_limit_mb} MB); submit a smaller model"
    return f"the scoring process exited with code {code} without a result"


# -- the worker ------------------------------------------------------------------------------------------
class ScoringWorker:
    """Scores queued submissions one by one until stopped (or, with ``once``, until the queue is empty)."""

    def __init__(
        self,
        store: CompetitionStore,
        *,
        threads: int = 1,
        poll_s: float = POLL_S,
        lease_s: float = LEASE_S,
        parent_pid: int | None = None,
        log: Log = _default_log,
    ) -> None:
        self.store, self.threads, self.poll_s, self.lease_s = store, threads, poll_s, lease_s
        self.parent_pid, self.log = parent_pid, log
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{int(now())}"
        self.stop_requested = threading.Event()
        self.started_at = now()
        self.handled = 0
        self._lock_fd: int | None = None

    def should_stop(self) -> bool:
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            self.log(f"parent process {self.parent_pid} is gone: stopping")
            self.stop_requested.set()
        return self.stop_requested.is_set()

    def run(self, *, once: bool = False) -> int:
        """Hold the lock and work; returns the number of submissions handled."""
        with WorkerLock(self.store) as lock:
            self._lock_fd = lock.fd
            preload()
            orphans = requeue_orphans(self.store)
            if orphans:
                self.log(f"queued again {orphans} submission(s) left in 'scoring' by a previous worker")
            previous = self._install_signal_handlers()
            try:
                self.log(f"scoring worker {self.worker_id} on {self.store.folder} ({self.threads} thread(s))")
                while not self.should_stop():
                    job = claim_next(self.store, self.worker_id, self.lease_s)
                    if job is None:
                        _beat(self.store, self.worker_id, self.started_at, None)
                        if once:
                            break
                        self.stop_requested.wait(self.poll_s)
                        continue
                    _beat(self.store, self.worker_id, self.started_at, job.submission_id)
                    self.handle(job)
                _beat(self.store, self.worker_id, self.started_at, None)
            finally:
                for number, handler in previous.items():
                    signal.signal(number, handler)
        return self.handled

    def _install_signal_handlers(self) -> dict[int, Any]:
        """SIGTERM/SIGINT finish the current step and stop; returns the handlers to restore."""
        if threading.current_thread() is not threading.main_thread():
            return {}  # e.g. a test thread: stop through stop_requested

        def stop(signum: int, frame: object) -> None:
            self.stop_requested.set()

        return {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGINT)}

    def handle(self, job: Job) -> None:
        """Score one claimed job in a child process and record the outcome."""
        competition = competition_by_id(self.store, job.competition_id)
        images = hidden_images(self.store, competition)
        file = self.store.file_path(job.file_name)
        if not file.is_file():
            fail(self.store, job, "the uploaded file is missing on the server; submit it again")
            return
        result = self.store.folder / "uploads" / f".result-{job.submission_id}-{job.attempt}"
        result.unlink(missing_ok=True)
        started = time.monotonic()
        self.log(f"scoring #{job.submission_id} ({job.kind}, attempt {job.attempt})")
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # the lock must not outlive the worker in a lingering child
            _child(job, competition, images, file, result, self.threads)
        try:
            status = self._wait(pid, job, competition, started)
            if status is not None:
                self._record(job, competition, images, status, result, time.monotonic() - started)
        finally:
            result.unlink(missing_ok=True)
            for leftover in result.parent.glob(f".{result.name}.*.tmp"):  # a child killed while writing
                leftover.unlink(missing_ok=True)

    def _wait(self, pid: int, job: Job, competition: Competition, started: float) -> int | None:
        """The child's exit status; ``None`` when the job was given up (stop, lost lease, time limit)."""
        next_renewal = started + self.lease_s / 3
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            elapsed = time.monotonic() - started
            if elapsed > competition.time_limit_s:
                self._kill(pid)
                fail(self.store, job, f"scoring took longer than the {competition.time_limit_s:.0f} s time limit")
                self.log(f"#{job.submission_id}: time limit")
                return None
            if self.should_stop():
                self._kill(pid)
                release(self.store, job)
                self.log(f"#{job.submission_id}: stopped, queued again")
                return None
            if time.monotonic() >= next_renewal:
                next_renewal = time.monotonic() + self.lease_s / 3
                if not renew_lease(self.store, job, self.lease_s):
                    self._kill(pid)
                    self.log(f"#{job.submission_id}: lease lost to another worker; dropped")
                    return None
                _beat(self.store, self.worker_id, self.started_at, job.submission_id)
            time.sleep(0.02 if elapsed < 1 else 0.1)

    @staticmethod
    def _kill(pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass

    def _record(
        self, job: Job, competition: Competition, images: list[HiddenImage], status: int, result: Path, seconds: float
    ) -> None:
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        if code == 0 and result.is_file():
            confusions = np.load(result, allow_pickle=False)
            if complete(self.store, job, competition, images, confusions, seconds):
                self.handled += 1
                self.log(f"#{job.submission_id}: scored in {seconds:.1f} s")
            else:
                self.log(f"#{job.submission_id}: lease lost before recording; result dropped")
            return
        reason = None
        if code in (CHILD_ERROR, CHILD_UNEXPECTED) and result.is_file():
            try:
                reason = json.loads(result.read_text())["reason"]
            except (OSError, ValueError, KeyError):
                reason = None
        reason = reason or _exit_reason(status, competition)
        if fail(self.store, job, reason):
            self.handled += 1
        self.log(f"#{job.submission_id}: failed: {reason}")


# -- started by the app ----------------------------------------------------------------------------------
_START_LOCK = threading.Lock()
_STARTED: dict[str, tuple[subprocess.Popen, float]] = {}
RESTART_AFTER_S = 30.0  # a worker that keeps dying (e.g. a broken install) is not restarted on every page view


def ensure_worker(store: CompetitionStore) -> bool:
    """Start a worker for this store in the background unless one runs; returns True if one was started.

    The worker follows this process (``--parent-pid``): it stops when the app stops. Its output goes
    to ``worker.log`` in the data folder. Two callers racing start two workers at most, and the
    second exits at once on the lock.
    """
    with _START_LOCK:
        key = str(store.folder)
        process, started = _STARTED.get(key, (None, 0.0))
        if process is not None and (process.poll() is None or time.monotonic() - started < RESTART_AFTER_S):
            return False
        if worker_running(store):
            return False
        import seglab

        package_root = str(Path(seglab.__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        command = [
            sys.executable,
            "-m",
            "seglab",
            "competition",
            "worker",
            "--dir",
            key,
            "--parent-pid",
            str(os.getpid()),
        ]
        with open(store.folder / "worker.log", "ab") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
            )
        _STARTED[key] = (process, time.monotonic())
        return True
