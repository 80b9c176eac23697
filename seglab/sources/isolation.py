"""Run a model file in a worker subprocess with a per-image time limit, or in-process when trusted.

Why a subprocess started with ``python -m seglab.sources.worker`` (not ``multiprocessing``): a
fork from a Streamlit server thread inherits its locks and threads, and the 'spawn' start method
re-imports ``__main__``, which Streamlit replaces. A plain subprocess has neither problem; the
protocol (:mod:`seglab.sources.worker`) carries ``.npy`` bytes, never pickles.

A worker that does not answer before the deadline is killed and the call raises
:class:`SourceError`; one that dies (segfault, abort, out of memory) is reported with its signal and
the last line it wrote to stderr. Either way the next call starts a fresh worker.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from seglab.errors import SourceError
from seglab.sources.worker import LENGTH, MAX_HEADER_BYTES, decode_array, encode_message, encode_parts, parse_header

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding seglab/, for the worker's sys.path


class InProcessRunner:
    """A runner in this process: fastest, no isolation and no time limit (trusted files: export checks, benchmarks)."""

    def __init__(self, kind: str, path: str, options: dict[str, Any], *, name: str = "model") -> None:
        from seglab.sources.runners import load_runner

        self.name = name
        self.runner = self._guarded(load_runner, kind, path, options)
        self.info = self.runner.info()

    def run(self, array: np.ndarray, deadline: float | None = None) -> np.ndarray:
        return self._guarded(self.runner.run, array)

    def _guarded(self, function: Any, *args: Any) -> Any:
        """Call ``function``; the runtime's exceptions become :class:`SourceError`, as from a worker."""
        from seglab.sources.runners import failure_message

        try:
            return function(*args)
        except Exception as error:
            raise SourceError(f"{self.name}: {failure_message(error)}") from None

    def close(self) -> None:
        self.runner = None


class WorkerRunner:
    """The same interface, the runner living in a worker process (see the module docstring)."""

    def __init__(self, kind: str, path: str, options: dict[str, Any], *, name: str, load_timeout_s: float) -> None:
        self.kind, self.path, self.options, self.name = kind, path, options, name
        self.load_timeout_s = load_timeout_s
        self.process: subprocess.Popen | None = None
        self.info: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stderr: Any = None
        with self._lock:
            self._start()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def run(self, array: np.ndarray, deadline: float | None = None) -> np.ndarray:
        """Send one input and wait for the output until ``deadline`` (``time.monotonic()`` seconds)."""
        with self._lock:
            if self.process is None or self.process.poll() is not None:
                self._start()
            _, arrays = self._exchange({"op": "run"}, [array], deadline, "predicting")
        return arrays[0]

    def close(self) -> None:
        with self._lock:
            self._stop(graceful=True)

    def __del__(self) -> None:  # a forgotten source must not leave a worker behind
        try:
            self._stop(graceful=False)
        except Exception:
            pass

    # -- process ------------------------------------------------------------------------------------
    def _start(self) -> None:
        self._stop(graceful=False)
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), environment.get("PYTHONPATH")]))
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "seglab.sources.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=environment,
            cwd=str(PACKAGE_ROOT),
        )
        _widen_pipes(self.process)
        header, _ = self._exchange(
            {"op": "load", "kind": self.kind, "path": self.path, "options": self.options},
            [],
            time.monotonic() + self.load_timeout_s,
            "loading the model",
        )
        self.info = header.get("info", {})

    def _stop(self, *, graceful: bool) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if graceful and process.poll() is None and process.stdin is not None:
            try:
                process.stdin.write(encode_message({"op": "exit"}))
                process.stdin.flush()
                process.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                pass
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    # -- messages -----------------------------------------------------------------------------------
    def _exchange(self, header: dict[str, Any], arrays: list[np.ndarray], deadline: float | None, doing: str):
        assert self.process is not None and self.process.stdin is not None
        try:
            for part in encode_parts(header, arrays):
                self.process.stdin.write(part)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            self._died(doing)
        prefix = self._read(LENGTH.size, deadline, doing)
        (length,) = LENGTH.unpack(prefix)
        if length > MAX_HEADER_BYTES:
            self._stop(graceful=False)
            raise SourceError(f"{self.name}: the model worker sent a malformed reply; it was stopped")
        reply = parse_header(self._read(length, deadline, doing))
        outputs = [decode_array(self._read(size, deadline, doing)) for size in reply.get("sizes", [])]
        if not reply.get("ok"):
            raise SourceError(f"{self.name}: {reply.get('error', 'the model failed')}")
        return reply, outputs

    def _read(self, count: int, deadline: float | None, doing: str) -> bytearray:
        """``count`` bytes from the worker, read straight into one buffer (no joining of chunks)."""
        assert self.process is not None and self.process.stdout is not None
        descriptor = self.process.stdout.fileno()
        buffer = bytearray(count)
        view, filled = memoryview(buffer), 0
        while filled < count:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                self._timed_out(doing)
            ready, _, _ = select.select([descriptor], [], [], wait)
            if not ready:
                self._timed_out(doing)
            received = os.readv(descriptor, [view[filled:]])
            if not received:
                self._died(doing)
            filled += received
        return buffer

    def _timed_out(self, doing: str) -> None:
        self._stop(graceful=False)
        limit = "loading" if doing == "loading the model" else "one image"
        raise SourceError(
            f"{self.name}: no answer within the time limit while {doing} ({limit}); the model was stopped. "
            "A slow model on a CPU may need a longer limit (timeout_s, --timeout-s)"
        )

    def _died(self, doing: str) -> None:
        process = self.process
        code = process.wait() if process is not None else None
        reason = f"exit code {code}"
        if code is not None and code < 0:
            try:
                reason = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                reason = f"killed by signal {-code}"
        last = self._last_error_line()
        self._stop(graceful=False)
        raise SourceError(
            f"{self.name}: the model worker crashed while {doing} ({reason}){': ' + last if last else ''}. "
            "The model file is faulty or unsupported by this runtime; seglab itself keeps running"
        )

    def _last_error_line(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            lines = [line.strip() for line in self._stderr.read().decode(errors="replace").splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        return lines[-1][:300] if lines else ""


PIPE_BYTES = 1 << 20
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux), named in the fcntl module only from Python 3.10 on some builds


def _widen_pipes(process: subprocess.Popen) -> None:
    """Grow both pipes from 64 KB to 1 MB: a 7 MB logits array then crosses in a few wake-ups, not a hundred.

    Measured on 2 cores with a 480x360, 7-class output: the worker's overhead per image fell from 21 ms to 15 ms.
    Best effort: other systems (or a lower /proc/sys/fs/pipe-max-size) keep the default size.
    """
    import fcntl

    for stream in (process.stdin, process.stdout):
        try:
            assert stream is not None
            fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", F_SETPIPE_SZ), PIPE_BYTES)
        except (OSError, AttributeError, ValueError):
            pass


def make_runner(kind: str, path: str, options: dict[str, Any], *, isolated: bool, name: str, load_timeout_s: float):
    """A :class:`WorkerRunner` (untrusted files, the default) or an :class:`InProcessRunner`."""
    if isolated:
        return WorkerRunner(kind, path, options, name=name, load_timeout_s=load_timeout_s)
    return InProcessRunner(kind, path, options, name=name)
