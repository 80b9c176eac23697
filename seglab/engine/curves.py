"""Training curves from a run's events: the series the live view and later comparisons plot.

``TrainingCurves`` turns the events of ``events.jsonl`` (see :mod:`seglab.engine.run_dir`) into plain
lists -- loss and loss terms, learning rate, throughput vs step, validation metrics vs step -- and
grows incrementally, so a monitor polling every few seconds only parses the new lines.
``RunWatcher`` pairs it with an :class:`~seglab.engine.run_dir.EventFollower` for one run folder.

Events come from another process and may be partial (a run that crashed mid-line, an old
format, NaN written as ``null``): anything missing or non-numeric is skipped, never raised.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seglab.engine.run_dir import EventFollower, RunDirectory
from seglab.io.json_values import json_number

# Validation metrics shown as curves, with the label to show them under.
METRIC_LABELS: dict[str, str] = {
    "miou": "mIoU",
    "miou_no_background": "mIoU without background",
    "pixel_acc": "pixel accuracy",
}

Series = tuple[list[float], list[float]]


def _number(value: Any) -> float | None:
    """A finite float, or None for missing / non-numeric / NaN values (and booleans)."""
    return None if isinstance(value, bool) or not isinstance(value, (int, float)) else json_number(value)


@dataclass
class Curve:
    """One series: x (step) and y values of equal length."""

    steps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def append(self, step: Any, value: Any) -> None:
        """Add a point; silently skipped when either coordinate is missing or not a finite number."""
        step, value = _number(step), _number(value)
        if step is not None and value is not None:
            self.steps.append(step)
            self.values.append(value)

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def last(self) -> float | None:
        return self.values[-1] if self.values else None

    def as_series(self) -> Series:
        return self.steps, self.values


@dataclass
class TrainingCurves:
    """Everything plottable in a run's events, accumulated with :meth:`extend`."""

    losses: dict[str, Curve] = field(default_factory=dict)  # "total" and each loss term, vs step
    lr: Curve = field(default_factory=Curve)
    images_per_s: Curve = field(default_factory=Curve)
    grad_norm: Curve = field(default_factory=Curve)
    metrics: dict[str, Curve] = field(default_factory=dict)  # validation metric -> curve vs step
    best_step: float | None = None  # step of the evaluation that saved best.pt
    steps_per_epoch: int | None = None
    train_images: int | None = None
    val_images: int | None = None
    device: str | None = None
    step: int = 0  # latest step seen in any event
    epoch: int = 0
    elapsed: float | None = None  # seconds since training started, as of the latest event
    end_state: str | None = None  # finished | stopped | failed once the run wrote its "end" event
    error: str | None = None
    note: str | None = None  # the latest "note" event: what start-up is doing (e.g. downloading ImageNet weights)

    @classmethod
    def from_events(cls, events: Iterable[Mapping[str, Any]]) -> TrainingCurves:
        curves = cls()
        curves.extend(events)
        return curves

    def extend(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Add events in file order; unknown types and malformed fields are ignored."""
        for event in events:
            if not isinstance(event, Mapping):
                continue
            self._track_progress(event)
            kind = event.get("type")
            if kind == "start":
                self.steps_per_epoch = _int_or_none(event.get("steps_per_epoch"))
                self.train_images = _int_or_none(event.get("train_images"))
                self.val_images = _int_or_none(event.get("val_images"))
                self.device = event.get("device") if isinstance(event.get("device"), str) else None
                self.end_state, self.error = None, None  # a resumed run starts again
            elif kind == "step":
                self._add_step(event)
            elif kind == "eval":
                self._add_eval(event)
            elif kind == "note" and isinstance(event.get("message"), str):
                self.note = event["message"]
            elif kind == "end":
                self.end_state = event.get("state") if isinstance(event.get("state"), str) else None
                self.error = event.get("error") if isinstance(event.get("error"), str) else None

    def _track_progress(self, event: Mapping[str, Any]) -> None:
        step, epoch, elapsed = _number(event.get("step")), _number(event.get("epoch")), _number(event.get("elapsed"))
        if step is not None:
            self.step = int(step)
        if epoch is not None:
            self.epoch = int(epoch)
        if elapsed is not None:
            self.elapsed = elapsed

    def _add_step(self, event: Mapping[str, Any]) -> None:
        step = event.get("step")
        terms = event["terms"] if isinstance(event.get("terms"), Mapping) else {}
        total = event.get("loss", terms.get("total"))
        self.losses.setdefault("total", Curve()).append(step, total)
        for name, value in terms.items():
            if name != "total":
                self.losses.setdefault(str(name), Curve()).append(step, value)
        self.lr.append(step, event.get("lr"))
        self.images_per_s.append(step, event.get("images_per_s"))
        self.grad_norm.append(step, event.get("grad_norm"))

    def _add_eval(self, event: Mapping[str, Any]) -> None:
        metrics = event["metrics"] if isinstance(event.get("metrics"), Mapping) else {}
        for name in METRIC_LABELS:
            self.metrics.setdefault(name, Curve()).append(event.get("step"), metrics.get(name))
        if event.get("best") is True and _number(event.get("step")) is not None:
            self.best_step = _number(event.get("step"))

    # -- series to plot (``{label: (steps, values)}``, as seglab.viz.line_figure takes) ---------
    def loss_series(self) -> dict[str, Series]:
        """Total loss and each term. Left out: a term that stayed exactly 0 (e.g. "aux" without an aux
        head) and a term identical to the total (a single-term loss), which would only hide it."""
        total = self.losses.get("total", Curve()).as_series()
        return {
            name: curve.as_series()
            for name, curve in self.losses.items()
            if len(curve)
            and (name == "total" or (any(value != 0.0 for value in curve.values) and curve.as_series() != total))
        }

    def metric_series(self) -> dict[str, Series]:
        """Validation metrics vs step under readable labels; metrics never reported are left out."""
        return {METRIC_LABELS[name]: curve.as_series() for name, curve in self.metrics.items() if len(curve)}

    def lr_series(self) -> dict[str, Series]:
        return {"learning rate": self.lr.as_series()} if len(self.lr) else {}

    def throughput_series(self) -> dict[str, Series]:
        return {"images/s": self.images_per_s.as_series()} if len(self.images_per_s) else {}

    def latest_metrics(self) -> dict[str, float]:
        """The last reported value of each validation metric (by metric key, e.g. ``miou``)."""
        return {name: curve.last for name, curve in self.metrics.items() if curve.last is not None}

    def best_metric(self, name: str = "miou") -> float | None:
        """The highest value a validation metric reached so far."""
        curve = self.metrics.get(name)
        return max(curve.values) if curve is not None and len(curve) else None


def headline_numbers(curves: TrainingCurves) -> dict[str, str]:
    """A run's five headline numbers as display text ("-" until known): progress, elapsed time, speed, and the
    latest and best validation mIoU."""
    latest = curves.latest_metrics()
    best = curves.best_metric("miou")
    return {
        "Step · epochs done": f"{curves.step} · {curves.epoch}",
        "Elapsed": f"{curves.elapsed:.0f} s" if curves.elapsed is not None else "-",
        "Images/s": f"{curves.images_per_s.last:.1f}" if curves.images_per_s.last else "-",
        "Latest mIoU": f"{latest['miou']:.3f}" if "miou" in latest else "-",
        "Best mIoU": f"{best:.3f}" if "miou" in latest and best is not None else "-",
    }


def no_points_note(curves: TrainingCurves, running: bool) -> str | None:
    """Why a run has nothing to plot yet (start-up of a running run, or nothing logged), or None once it has."""
    if curves.loss_series() or curves.metric_series():
        return None
    if running:
        return curves.note or "Waiting for the first logged step (start-up, data loading)..."
    return "This run logged no step and no evaluation."


def _int_or_none(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


_PREVIEW_STEP = re.compile(r"eval_(\d+)\.png$")


def preview_step(path: str | os.PathLike) -> int | None:
    """The step a preview image ``previews/eval_<step>.png`` was written at."""
    match = _PREVIEW_STEP.search(Path(path).name)
    return int(match.group(1)) if match else None


class RunWatcher:
    """Follows one run folder: each :meth:`refresh` reads only the events appended since the last one."""

    def __init__(self, path: str | os.PathLike):
        self.run = RunDirectory(path)
        self.curves = TrainingCurves()
        self._follower = EventFollower(self.run.events_path)

    @property
    def name(self) -> str:
        return self.run.name

    def refresh(self) -> int:
        """Read new events into :attr:`curves`; return how many arrived."""
        try:
            size = self.run.events_path.stat().st_size
        except OSError:
            size = None
        if size is not None and size < self._follower.offset:
            # The file shrank: the folder was replaced by a new run of the same name. Start over.
            self.curves = TrainingCurves()
            self._follower = EventFollower(self.run.events_path)
        new = self._follower.poll()
        self._follower.events.clear()  # the curves keep what matters; the raw events would only grow
        self.curves.extend(new)
        return len(new)

    def latest_preview(self) -> tuple[Path, int | None] | None:
        """``(path, step)`` of the newest sample-prediction image, or None before the first evaluation."""
        path = self.run.latest_preview()
        return (path, preview_step(path)) if path is not None else None


def sync_watchers(watchers: dict[str, RunWatcher], wanted: Mapping[str, str | os.PathLike]) -> dict[str, RunWatcher]:
    """Make ``watchers`` (run name -> watcher, changed in place) follow exactly the ``wanted`` runs (name -> folder):
    the others are dropped, new ones start from the first event, one whose folder changed starts over."""
    for name in list(watchers):
        if name not in wanted:
            del watchers[name]
    for name, path in wanted.items():
        if name not in watchers or watchers[name].run.path != Path(path):
            watchers[name] = RunWatcher(path)
    return watchers
