"""The run folder of a training run, written from the Trainer's events.

A :class:`RunRecorder` is the first callback of a :class:`~seglab.engine.trainer.Trainer` given an
``out_dir`` (rank 0 only): every event goes to ``events.jsonl``; ``start`` writes ``config.json``,
``label_map.json`` and a running ``status.json``; ``eval`` writes the preview strip, ``last.pt``,
``best.pt`` when the metric improved and the status with the latest metrics; ``end`` writes the final
status. The Trainer keeps the training state and builds the checkpoints (:meth:`Trainer.save`); the
CLI progress bar and the app's live view are further callbacks on the same events.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from seglab.engine import distributed
from seglab.engine.run_dir import RUNNING, RunDirectory
from seglab.io.atomic_files import atomic_write, write_json_atomic
from seglab.io.json_values import json_number, sanitize_for_json

if TYPE_CHECKING:
    from seglab.engine.trainer import Trainer

LATEST_METRICS = ("miou", "miou_no_background", "pixel_acc", "mean_acc")  # what status.json shows while running


class RunRecorder:
    """Writes ``run`` from ``trainer``'s events (call it with each event, before any other callback)."""

    def __init__(self, run: RunDirectory, trainer: Trainer):
        self.run = run
        self.trainer = trainer

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "start":
            self._start()
        if kind == "end":
            self._end(event)
            return
        self.run.append_event(event)
        if kind == "eval":
            self._evaluated(event)

    def _start(self) -> None:
        trainer = self.trainer
        self.run.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.run.config_path, trainer.config.to_dict())
        trainer.label_map.save(self.run.label_map_path)
        # Under torchrun the pid is the launcher's (torchrun's agent): stopping it stops every worker.
        self.run.write_status(
            RUNNING, pid=distributed.launcher_pid(), started=time.time(), error=None, processes=trainer.world.size
        )

    def _evaluated(self, event: dict[str, Any]) -> None:
        trainer = self.trainer
        self.save_previews()
        trainer.save("last")
        if event.get("best"):
            trainer.save("best")
        metrics = event.get("metrics") or {}
        self.run.write_status(
            RUNNING,
            step=trainer.step,
            epoch=trainer.epoch,
            latest=sanitize_for_json({key: metrics.get(key) for key in LATEST_METRICS}),
            best_metric=json_number(trainer.best_value),
            best_metric_name=trainer.config.best_metric,
        )

    def _end(self, event: dict[str, Any]) -> None:
        """Record how the run ended; on a full disk this may fail too, and must not hide the first error."""
        try:
            self.run.append_event(event)
        except OSError:
            pass
        trainer = self.trainer
        try:
            self.run.write_status(
                event["state"],
                error=event.get("error"),
                step=trainer.step,
                epoch=trainer.epoch,
                best_metric=json_number(trainer.best_value),
                best_metric_name=trainer.config.best_metric,
            )
        except OSError:
            pass

    def save_previews(self) -> None:
        """``previews/eval_<step>.png``: the first validation images, their ground truth and prediction."""
        from PIL import Image

        from seglab.engine.predict import preview_strip

        trainer = self.trainer
        count = min(trainer.config.preview_images, len(trainer.val_data))
        if count <= 0:
            return
        strip = preview_strip(trainer.model, trainer.val_data, range(count), device=trainer.device)
        with atomic_write(self.run.previews_path / f"eval_{trainer.step:07d}.png") as stream:
            Image.fromarray(strip).save(stream, format="PNG")
