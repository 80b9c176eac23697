"""How a training run stops: the reasons it stops early, and the state and message it records when it ends.

A stop request (the run folder's STOP file), a spent time budget or a callback raising :class:`StopTraining`
end the loop cleanly; under torchrun rank 0 decides and broadcasts the reason as an index into
:data:`STOP_REASONS`, so every process stops at the same step. An exception ends it as failed, or as stopped
when interrupted, with a message a user can act on (:func:`run_ending`).
"""

from __future__ import annotations

import time
from os import PathLike

import torch

from seglab.engine import distributed
from seglab.engine.run_dir import FAILED, STOPPED, RunDirectory
from seglab.errors import SeglabError
from seglab.io.output_paths import write_failure

STOP_REQUESTED, TIME_BUDGET_SPENT, STOPPED_BY_CALLBACK = "stop requested", "time budget spent", "stopped by a callback"
# Under DDP rank 0 broadcasts why it stops as a number: an index into this tuple.
STOP_REASONS = ("", STOP_REQUESTED, TIME_BUDGET_SPENT, STOPPED_BY_CALLBACK)


class StopTraining(Exception):
    """Raised inside the loop when a stop was requested or the time budget is spent."""


def stop_code(reason: str) -> int:
    """``reason`` as the number rank 0 broadcasts (any reason of a callback's own is "stopped by a callback")."""
    return STOP_REASONS.index(reason) if reason in STOP_REASONS else STOP_REASONS.index(STOPPED_BY_CALLBACK)


class StopControl:
    """A run's clock and its decision to stop early: a STOP file, a spent time budget or a callback's StopTraining.

    Under DDP rank 0 decides and broadcasts its decision and its clock, so every process stops at the same
    step and reads the same time (one LR schedule when it follows the clock).
    """

    def __init__(
        self, run: RunDirectory | None, time_budget_s: float | None, world: distributed.World, device: torch.device
    ) -> None:
        self.run, self.time_budget_s, self.world, self.device = run, time_budget_s, world, device
        self.started = 0.0
        self.clock = 0.0  # elapsed() at the last check; under DDP rank 0's
        self.pending = ""  # a StopTraining raised by a callback under DDP, announced at the next check

    def start(self) -> None:
        """Start the clock (``fit`` starts)."""
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since :meth:`start` (wall clock, evaluation included); 0 before."""
        return time.perf_counter() - self.started if self.started else 0.0

    def check(self) -> None:
        """Raise StopTraining on a STOP file, a spent time budget or a pending callback's stop."""
        self.clock = self.elapsed()
        reason = self.pending
        if not reason and self.run is not None and self.run.stop_requested():
            reason = STOP_REQUESTED
        elif not reason and self.time_budget_s and self.clock >= self.time_budget_s:
            reason = TIME_BUDGET_SPENT
        if self.world.distributed:
            decided, self.clock = distributed.broadcast_from_main([stop_code(reason), self.clock], self.device)
            reason = reason if self.world.is_main else STOP_REASONS[int(decided)]
        if reason:
            raise StopTraining(reason)


def run_ending(
    error: BaseException, *, folder: str | PathLike | None, log_written: bool, distributed: bool
) -> tuple[str, str | None]:
    """The state and the message a run records when ``error`` ends it.

    ``folder`` is the run folder (named in file-system errors without a file name), ``log_written`` whether its
    train.log exists (where a torchrun failure is told), ``distributed`` whether it ran under torchrun.
    """
    if isinstance(error, KeyboardInterrupt):
        where = "train.log" if log_written else "torchrun's output"
        cause = "SIGTERM or Ctrl-C" + (f", or another torchrun process failed: see {where}" if distributed else "")
        return STOPPED, f"interrupted before it could save ({cause}); last.pt is from the last evaluation"
    if isinstance(error, SeglabError):  # already a sentence a user can act on (e.g. a full disk while saving)
        return FAILED, str(error)
    if isinstance(error, OSError):
        reason = write_failure(error, error.filename or folder or ".")
        return FAILED, f"cannot write {error.filename}: {reason}" if error.filename else reason
    return FAILED, f"{type(error).__name__}: {error}"
