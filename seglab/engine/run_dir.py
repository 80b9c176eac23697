"""The files of one run folder ``checkpoints/<run-name>/`` and how to read and write them.

Layout::

    config.json      TrainConfig.to_dict(): everything needed to rebuild the run
    label_map.json   the classes the run was trained on
    events.jsonl     one JSON object per line: "start", "step" (every N steps), "eval", "end"
    status.json      {"state": running|finished|failed|stopped, "error", "pid", "step", ...}
    last.pt best.pt  checkpoints (seglab.engine.checkpoint)
    previews/        eval_<step>.png: image | ground truth | prediction for a few val images
    STOP             present = please stop (written by `seglab.engine.runs.stop_run`)
    train.log        stdout/stderr of a background run (started by the app; a terminal run prints there)
    .lock            flock held by the training process for the run's life (seglab.engine.run_folder)

Writers are the training process only; readers (the app, `seglab runs`) never modify a run except
to mark a run whose process died as failed.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seglab.io.atomic_files import write_json_atomic
from seglab.io.json_values import json_default

RUNNING, FINISHED, FAILED, STOPPED = "running", "finished", "failed", "stopped"
STATES = (RUNNING, FINISHED, FAILED, STOPPED)


class RunDirectory:
    """Paths and small file operations of a run folder."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.name

    config_path = property(lambda self: self.path / "config.json")
    label_map_path = property(lambda self: self.path / "label_map.json")
    events_path = property(lambda self: self.path / "events.jsonl")
    status_path = property(lambda self: self.path / "status.json")
    last_path = property(lambda self: self.path / "last.pt")
    best_path = property(lambda self: self.path / "best.pt")
    stop_path = property(lambda self: self.path / "STOP")
    log_path = property(lambda self: self.path / "train.log")
    previews_path = property(lambda self: self.path / "previews")

    def exists(self) -> bool:
        return self.config_path.is_file()

    # -- usable? ---------------------------------------------------------------------------------
    def config_problem(self) -> str | None:
        """Why config.json cannot describe this run (missing, unreadable, not an object), else None."""
        if not self.config_path.is_file():
            return "no config.json: not a complete seglab run (it cannot be rebuilt or resumed)"
        try:
            data = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            return f"config.json is unreadable ({str(error)[:80]})"
        return None if isinstance(data, dict) else "config.json is not a JSON object"

    def checkpoint_path(self) -> Path | None:
        """best.pt when present, else last.pt, else None: the checkpoint that stands for the run."""
        for path in (self.best_path, self.last_path):
            if path.is_file():
                return path
        return None

    def problem(self) -> str | None:
        """The one definition of an unusable run, for every listing (``seglab runs``, the app, the Leaderboard).

        A run is unusable when its config.json is missing or unreadable, or when the checkpoint that
        stands for it (best.pt, else last.pt) is empty, truncated or not a PyTorch file. The check is
        cheap (file sizes and zip directories); a run without any checkpoint yet is not a problem.
        """
        from seglab.engine.checkpoint import checkpoint_file_problem

        config = self.config_problem()
        if config is not None:
            return config
        checkpoint = self.checkpoint_path()
        return checkpoint_file_problem(checkpoint) if checkpoint is not None else None

    # -- status --------------------------------------------------------------------------------
    def read_status(self) -> dict[str, Any]:
        """The status dict, or ``{}`` when absent/unreadable (a run being created)."""
        try:
            data = json.loads(self.status_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_status(self, state: str, **fields: Any) -> None:
        """Replace status.json atomically, keeping earlier fields not given again."""
        status = self.read_status()
        status.update(fields)
        status["state"] = state
        status["updated"] = time.time()
        write_json_atomic(self.status_path, status)

    # -- events --------------------------------------------------------------------------------
    def append_event(self, event: dict[str, Any]) -> None:
        """Append one JSON line (with a timestamp) to events.jsonl; one write call per line."""
        event = {"time": round(time.time(), 3), **event}
        line = json.dumps(event, allow_nan=False, default=json_default) + "\n"
        with open(self.events_path, "a", encoding="utf-8") as stream:
            stream.write(line)

    def read_events(self) -> list[dict[str, Any]]:
        """All complete events."""
        return EventFollower(self.events_path).poll()

    def request_stop(self) -> None:
        self.stop_path.write_text(str(time.time()))

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    def latest_preview(self) -> Path | None:
        previews = sorted(self.previews_path.glob("eval_*.png")) if self.previews_path.is_dir() else []
        return previews[-1] if previews else None


@dataclass
class EventFollower:
    """Reads new complete lines of an events file incrementally (a writer may be mid-line)."""

    path: Path
    offset: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def poll(self) -> list[dict[str, Any]]:
        """Return the events appended since the last call (and keep them all in ``events``)."""
        try:
            with open(self.path, "rb") as stream:
                stream.seek(self.offset)
                chunk = stream.read()
        except OSError:
            return []
        end = chunk.rfind(b"\n") + 1  # leave a partial last line for the next poll
        new = []
        for raw in chunk[:end].splitlines():
            try:
                event = json.loads(raw)
            except ValueError:  # JSONDecodeError or UnicodeDecodeError
                continue  # a damaged line (e.g. a crash mid-write) must not hide the rest
            if isinstance(event, dict):
                new.append(event)
        self.offset += end
        self.events.extend(new)
        return new
