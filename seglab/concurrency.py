"""One server process, many sessions: torch's thread cap, a bound on forward passes, shared computations.

A Streamlit server runs every browser session's script in its own thread of one process. Three
rules keep a class of 30 sessions from slowing each other down (issue 10):

- :func:`configure_torch_threads`: torch's intra-op threads for the whole process, half the cores
  (``$SEGLAB_TORCH_THREADS`` overrides), so one forward pass cannot starve the server of CPU.
- :func:`inference_slot`: every forward pass seglab runs (``seglab.engine.predict``, hence evaluation,
  prediction, label quality, the loss inspector, the leaderboard) holds one of a few process-wide
  slots (``$SEGLAB_INFERENCE_SLOTS``, default one per two torch threads' worth of cores, at least
  one). Passes beyond that wait their turn instead of sharing the cores and all finishing late.
- :class:`SharedComputations`: concurrent callers asking for the same key wait for one computation
  and all get its result (evaluations and dataset statistics are computed once, not once per session).
- :class:`BackgroundComputations`: the same sharing for work that pages show while it runs (label quality
  of a model nobody evaluated yet): one thread per key, progress and partial results, then the result.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager
from typing import Generic, TypeVar

THREADS_ENV = "SEGLAB_TORCH_THREADS"
SLOTS_ENV = "SEGLAB_INFERENCE_SLOTS"

T = TypeVar("T")


def _positive_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def torch_threads() -> int:
    """Intra-op threads for a server process: ``$SEGLAB_TORCH_THREADS``, else half the cores (at least 1)."""
    return _positive_int(THREADS_ENV) or max(1, (os.cpu_count() or 1) // 2)


def configure_torch_threads(threads: int | None = None) -> int:
    """Cap torch's intra-op threads for this process (``threads``, else :func:`torch_threads`); returns the cap.

    Called once by the app at start-up, before any session runs a model; the CLI keeps torch's default.
    """
    import torch

    threads = threads or torch_threads()
    torch.set_num_threads(threads)
    return threads


def inference_slots() -> int:
    """Forward passes that may run at once: ``$SEGLAB_INFERENCE_SLOTS``, else the cores over two threads' worth."""
    cores = os.cpu_count() or 1
    return _positive_int(SLOTS_ENV) or max(1, cores // (2 * torch_threads()))


class InferenceGate:
    """A bound on the forward passes running at once in this process; re-entrant within a thread
    (a prediction that calls another prediction takes one slot, and cannot deadlock on its own)."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"inference slots must be at least 1, got {slots}")
        self.slots = slots
        self._semaphore = threading.BoundedSemaphore(slots)
        self._held = threading.local()
        self._lock = threading.Lock()
        self.running = 0  # passes holding a slot now
        self.peak = 0  # most passes ever holding a slot at once (tests, benchmarks)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot for the duration of the block (waiting for one to free up first)."""
        depth = getattr(self._held, "depth", 0)
        if depth == 0:
            self._semaphore.acquire()
            with self._lock:
                self.running += 1
                self.peak = max(self.peak, self.running)
        self._held.depth = depth + 1
        try:
            yield
        finally:
            self._held.depth = depth
            if depth == 0:
                with self._lock:
                    self.running -= 1
                self._semaphore.release()


INFERENCE = InferenceGate(inference_slots())


def inference_slot() -> AbstractContextManager[None]:
    """Hold one of the process-wide inference slots (see :class:`InferenceGate`) while a model runs."""
    return INFERENCE.slot()


class SharedComputations(Generic[T]):
    """One computation per key at a time, its result handed to every caller that asked meanwhile.

    The first caller of a key computes; callers of the same key arriving before it finishes wait and
    get the same result (or the same error). A computation stopped by a ``BaseException`` that is not
    an ``Exception`` (Streamlit stopping or rerunning the owner's script) is not shared: one of the
    waiters computes instead. The ``capacity`` latest results are also kept (0: none, when a disk
    cache serves later callers). Different keys compute in parallel.
    """

    def __init__(self, capacity: int = 0) -> None:
        self.capacity = capacity
        self.computations = 0  # how many times ``compute`` ran (tests, benchmarks)
        self._lock = threading.Lock()
        self._running: dict[Hashable, Future[T]] = {}
        self._results: OrderedDict[Hashable, T] = OrderedDict()
        self._waiting: dict[Hashable, int] = {}

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._results

    def waiting(self, key: Hashable | None = None) -> int:
        """How many callers are waiting for another's computation of ``key`` (of any key when None)."""
        with self._lock:
            return self._waiting.get(key, 0) if key is not None else sum(self._waiting.values())

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The result for ``key``: kept, being computed by another caller (waited for), or computed now."""
        while True:
            with self._lock:
                if key in self._results:
                    self._results.move_to_end(key)
                    return self._results[key]
                running = self._running.get(key)
                if running is None:
                    mine: Future[T] = Future()
                    self._running[key] = mine
                    self.computations += 1
                else:
                    self._waiting[key] = self._waiting.get(key, 0) + 1
            if running is None:
                return self._compute(key, mine, compute)
            try:
                return running.result()
            except _Abandoned:
                continue  # the owner was stopped: compute it here (or wait for whoever does)
            finally:
                with self._lock:
                    self._waiting[key] -= 1
                    if not self._waiting[key]:
                        del self._waiting[key]

    def _compute(self, key: Hashable, future: Future[T], compute: Callable[[], T]) -> T:
        try:
            value = compute()
        except Exception as error:
            self._finish(key, None)
            future.set_exception(error)
            raise
        except BaseException:
            self._finish(key, None)
            future.set_exception(_Abandoned())
            raise
        self._finish(key, (value,))
        future.set_result(value)
        return value

    def _finish(self, key: Hashable, result: tuple[T] | None) -> None:
        with self._lock:
            self._running.pop(key, None)
            if result is not None and self.capacity > 0:
                self._results[key] = result[0]
                while len(self._results) > self.capacity:
                    self._results.popitem(last=False)


class _Abandoned(Exception):
    """The computation's owner was stopped before it finished (never seen outside this module)."""


class BackgroundJob(Generic[T]):
    """A computation running in its own thread that callers watch instead of waiting for: its progress, a peek
    at its partial result, then its result or error. ``compute(job)`` reports through :meth:`progress` and
    :meth:`set_peek`."""

    def __init__(self, name: str, compute: Callable[[BackgroundJob[T]], T]) -> None:
        self.done, self.total = 0, 0
        self.error: Exception | None = None
        self._result: tuple[T] | None = None
        self._peek: Callable[[], T | None] | None = None
        self._finished = threading.Event()
        self._compute = compute
        self._thread = threading.Thread(target=self._run, name=f"seglab-job-{name}", daemon=True)

    def _run(self) -> None:
        try:
            self._result = (self._compute(self),)
        except Exception as error:  # handed to every watcher (a BaseException ends the thread as usual)
            self.error = error
        finally:
            self._peek = None  # what it held is no longer needed
            self._finished.set()

    def start(self) -> BackgroundJob[T]:
        """Run it (once)."""
        self._thread.start()
        return self

    def progress(self, done: int, total: int) -> None:
        """Called by the computation: ``done`` of ``total`` units."""
        self.done, self.total = int(done), int(total)

    def set_peek(self, peek: Callable[[], T | None]) -> None:
        """Called by the computation: how to build its partial result now (from any thread; None: nothing yet)."""
        self._peek = peek

    @property
    def finished(self) -> bool:
        """Whether it ended (with a result or an error)."""
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the end; whether it ended."""
        return self._finished.wait(timeout)

    def wait_for_progress(self, timeout: float, units: int = 1, poll: float = 0.02) -> bool:
        """Wait up to ``timeout`` seconds for ``units`` done (or all, when fewer) or the end; whether it came."""
        deadline = time.monotonic() + timeout

        def arrived() -> bool:
            return self.finished or (self.done > 0 and self.done >= min(units, self.total))

        while not arrived() and time.monotonic() < deadline:
            self._finished.wait(poll)
        return arrived()

    def result(self) -> T:
        """The result (raises the computation's error; RuntimeError while it runs)."""
        if not self.finished:
            raise RuntimeError("the computation is still running")
        if self.error is not None:
            raise self.error
        assert self._result is not None
        return self._result[0]

    def partial(self) -> T | None:
        """The result so far: the result once finished, else the computation's peek (None before its first)."""
        if self.finished:
            return self._result[0] if self._result is not None else None
        peek = self._peek
        return peek() if peek is not None else None


class BackgroundComputations(Generic[T]):
    """One :class:`BackgroundJob` per key: callers asking for a key being computed join its job; the
    ``capacity`` latest finished jobs are kept (a failed one too, so its watchers see the error, until a caller
    asks to retry). Each job is one thread that ends with its computation: nothing outlives the work."""

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = capacity
        self.computations = 0  # how many jobs were started (tests, benchmarks)
        self._lock = threading.Lock()
        self._jobs: OrderedDict[Hashable, BackgroundJob[T]] = OrderedDict()

    def start(self, key: Hashable, compute: Callable[[BackgroundJob[T]], T], retry: bool = False) -> BackgroundJob[T]:
        """The job of ``key``: running or kept (joined), else started now (``retry``: a failed one is restarted)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not (retry and job.finished and job.error is not None):
                self._jobs.move_to_end(key)
                return job
            job = BackgroundJob(str(hash(key) & 0xFFFF), compute)
            self._jobs[key] = job
            self.computations += 1
            finished = [other for other, kept in self._jobs.items() if kept.finished]
            for other in finished[: max(0, len(finished) - self.capacity)]:
                del self._jobs[other]
        return job.start()

    def running(self) -> int:
        """How many jobs are running now."""
        with self._lock:
            return sum(not job.finished for job in self._jobs.values())

    def wait_all(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (each) for every job started so far to end; whether all did (tests,
        benchmarks)."""
        with self._lock:
            jobs = list(self._jobs.values())
        return all(job.wait(timeout) for job in jobs)
