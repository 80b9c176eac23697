"""Fetching the ImageNet encoder weights a training run starts from, before it reads any data.

Rank 0 downloads the file into torch's hub cache if it is not there yet (the other ranks wait, then read the
cache), so an offline machine fails within seconds rather than after the data is loaded. Progress goes out as
"note" events (the app's live view) and, in a terminal, as torch hub's tqdm bar.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from seglab.engine import distributed
from seglab.engine.run_dir import RunDirectory
from seglab.errors import ConfigError
from seglab.models import fetch_imagenet_weights


def fetch_run_weights(
    model: str,
    world: distributed.World,
    run: RunDirectory | None,
    emit: Callable[[dict[str, Any]], None],
) -> None:
    """Fetch ``model``'s ImageNet weights for a run (``run``: its folder on rank 0, else None); ConfigError on
    every rank when they cannot be had. A run that never started leaves no events file behind, so a rerun into
    the same ``--out`` is accepted."""
    error = None
    if world.is_main:
        events = run.events_path if run is not None else None
        had_events = events is not None and events.exists()
        if events is not None:
            events.parent.mkdir(parents=True, exist_ok=True)
        try:
            fetch_imagenet_weights(
                model,
                report=lambda message: emit({"type": "note", "message": message}),
                progress_bar=sys.stderr.isatty(),
            )
        except ConfigError as failure:
            error = str(failure)
            if events is not None and not had_events:  # a run that never started: a rerun into --out is accepted
                events.unlink(missing_ok=True)
    error = distributed.broadcast_object(error)
    if error is not None:
        raise ConfigError(error)
