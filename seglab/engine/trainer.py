"""The Trainer: one training run, from a TrainConfig to checkpoints, events and metrics.

Reads top to bottom like torchvision's reference recipe: build data, model, loss, optimiser and
schedule; ``train_one_epoch``; ``evaluate``; ``fit``. Progress goes to callbacks with one
signature, ``callback(event: dict)``; the run folder's events file, the CLI progress bar and
the app's live view all hang on it.

Under ``torchrun`` the same Trainer runs in every process with ``DistributedDataParallel``
(:mod:`seglab.engine.distributed`): each rank trains on its shard with ``batch_size`` images per step,
evaluates its shard of the validation split and the confusion matrices are summed; only rank 0
writes the run folder (:class:`~seglab.engine.run_recorder.RunRecorder`, the first callback) and calls the callbacks.

Its parts live beside it: the DataLoaders (:mod:`~seglab.engine.train_loaders`), mixed precision
(:mod:`~seglab.engine.precision`), validation (:mod:`~seglab.engine.validation`), stopping and how a run ends
(:mod:`~seglab.engine.stopping`), its checkpoints and resuming (:mod:`~seglab.engine.trainer_checkpoints`) and the
ImageNet weights a run starts from (:mod:`~seglab.engine.imagenet_fetch`).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from seglab.analysis.stats import DatasetStats, compute_stats
from seglab.data.spec import build_dataset
from seglab.engine import distributed
from seglab.engine.config import TrainConfig
from seglab.engine.divergence import DivergenceGuard, diverged_error
from seglab.engine.imagenet_fetch import fetch_run_weights
from seglab.engine.optim import apply_lr, build_param_groups
from seglab.engine.precision import mixed_precision
from seglab.engine.recipe import criterion_from_config, optimizer_from_config, schedule_from_config
from seglab.engine.run_dir import FINISHED, STOPPED, RunDirectory
from seglab.engine.run_folder import RunLock, claim_run_folder, clean_temporary_files
from seglab.engine.run_recorder import RunRecorder
from seglab.engine.stopping import STOP_REQUESTED, STOPPED_BY_CALLBACK, StopControl, StopTraining, run_ending
from seglab.engine.train_loaders import eval_loader, train_loader
from seglab.engine.trainer_checkpoints import resume_training, save_training_checkpoint
from seglab.engine.validation import ConsumerFactory, evaluate_and_save, validate
from seglab.errors import TrainingDivergedError
from seglab.io.json_values import sanitize_for_json
from seglab.metrics.confusion import SegmentationMetrics
from seglab.models import build_model
from seglab.options import resolve_device

if TYPE_CHECKING:
    from seglab.engine.evaluation import ProbabilityConsumer

Callback = Callable[[dict[str, Any]], None]


@dataclass
class FitResult:
    """What ``Trainer.fit`` returns."""

    state: str  # finished | stopped
    steps: int
    epochs: int
    seconds: float
    best_metric: float
    best_metrics: dict[str, Any]
    last_metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)  # every eval event


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Trains one model; writes a run folder when ``out_dir`` is given.

    Under torchrun it joins the process group (:func:`seglab.engine.distributed.setup`); only rank 0
    keeps ``run`` and ``callbacks``, the other ranks train and evaluate without writing anything.
    ``eval_consumer``: see :data:`~seglab.engine.validation.ConsumerFactory`.
    Prefer :func:`train` or ``seglab train``, which also leave the process group at the end.
    """

    def __init__(
        self,
        config: TrainConfig,
        out_dir: str | os.PathLike | None = None,
        callbacks: Iterable[Callback] = (),
        eval_consumer: ConsumerFactory | None = None,
    ):
        config.validate()
        self.config = config
        self.device = resolve_device(config.device)
        self.world = distributed.setup(self.device)
        self.device = distributed.process_device(self.device, self.world)
        self.run = RunDirectory(out_dir) if out_dir is not None and self.world.is_main else None
        # The run folder is written from the events, before any other callback sees them.
        recorder: list[Callback] = [RunRecorder(self.run, self)] if self.run is not None else []
        self.callbacks = [*recorder, *callbacks] if self.world.is_main else []
        self.keeps_checkpoints = out_dir is not None  # on every rank, though only rank 0 writes them
        # Work on every image's probabilities (label quality, from the CLI): one process alone.
        self.eval_consumer = eval_consumer if self.run is not None and not self.world.distributed else None
        if config.threads:
            torch.set_num_threads(config.threads)
        seed_everything(config.seed)
        if config.starts_from_imagenet:  # before the data: offline, fail within seconds
            fetch_run_weights(config.model, self.world, self.run, self.emit)

        self._stats: DatasetStats | None = None  # the training split's statistics, computed when first needed
        self.train_data = build_dataset(config.data)
        self.val_data = build_dataset(config.data.with_split(config.val_split))
        self.label_map = self.train_data.label_map
        self.train_loader, self.train_augmented, self.train_sampler = train_loader(
            config, self.train_data, self.world, self.device, self._rare_class_focus()
        )
        self.val_loader = eval_loader(config, self.val_data, self.world)

        model = build_model(config.model, self.label_map.num_classes, **config.model_build_options()).to(self.device)
        self.weights_source = model.weights_source
        if config.channels_last:  # faster convolutions on GPUs and with oneDNN on CPUs (about 1.3x here)
            model = model.to(memory_format=torch.channels_last)
        # self.model: the plain model (evaluation, previews, checkpoints); self.train_model: what a training
        # step calls, DistributedDataParallel(self.model) under torchrun.
        self.model, self.train_model = distributed.wrap_model(model, self.device, self.world, sync_bn=config.sync_bn)
        self.criterion = criterion_from_config(
            config, self.label_map.num_classes, self.label_map.ignore_index, self._class_weights()
        ).to(self.device)
        groups = build_param_groups(
            self.model,
            weight_decay=config.weight_decay,
            encoder_lr_mult=config.encoder_lr_mult,
            last_layer_lr_mult=config.last_layer_lr_mult,
        )
        self.optimizer = optimizer_from_config(config, groups)
        self.schedule = schedule_from_config(config, steps_per_epoch=len(self.train_loader))
        self.precision = mixed_precision(config, self.device)
        self.use_amp, self.amp_dtype, self.scaler = self.precision.enabled, self.precision.dtype, self.precision.scaler

        self.step = 0
        self.epoch = 0
        self.best_value = -math.inf
        self.best_metrics: dict[str, Any] = {}
        self.last_metrics: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.train_seconds = 0.0
        self.stopper = StopControl(self.run, config.time_budget_s, self.world, self.device)
        self.schedule_offset = 0  # LR schedule position minus step, after resuming with another number of processes
        self.guard = DivergenceGuard()  # NaN, inf and exploding losses; non-finite weights after a step
        # "best"/"last" -> the step of the checkpoint on disk, known on every rank so all ranks word errors alike
        self.saved_steps: dict[str, int] = {}

    # -- building blocks ---------------------------------------------------------------------
    def _class_weights(self) -> torch.Tensor | None:
        if self.config.class_weights == "none":
            return None
        return torch.tensor(self._train_stats().class_weights(self.config.class_weights), dtype=torch.float32)

    def _rare_class_focus(self) -> np.ndarray | None:
        """Crop-centring weights per class: median-frequency weights (rarer within its images = drawn more)."""
        if self.config.crop_size == 0 or self.config.rare_class_crops == 0:
            return None
        return self._train_stats().median_frequency_weights()

    def _train_stats(self) -> DatasetStats:
        if self._stats is None:
            self._stats = compute_stats(self.train_data)
        return self._stats

    # -- events ------------------------------------------------------------------------------
    def emit(self, event: dict[str, Any]) -> None:
        event = sanitize_for_json(event)
        for callback in self.callbacks:
            try:
                callback(event)
            except StopTraining as reason:
                if not self.world.distributed:
                    raise
                # Callbacks run on rank 0 only; all ranks must stop at the same step, so it waits for the next check.
                self.stopper.pending = str(reason) or STOPPED_BY_CALLBACK

    # -- one epoch ---------------------------------------------------------------------------
    def train_one_epoch(self) -> dict[str, float]:
        """One pass over the training split; returns the mean of each loss term."""
        config = self.config
        self.train_model.train()
        self.train_augmented.set_epoch(self.epoch)
        if self.train_sampler is not None:
            self.train_sampler.set_epoch(self.epoch)  # a new shuffle each epoch, the same on every rank
        totals: dict[str, float] = {}
        batches = 0
        window_images, window_start = 0, time.perf_counter()
        for images, targets in self.train_loader:
            self.stopper.check()
            step_start = time.perf_counter()
            images = images.to(self.device, non_blocking=True)
            targets = targets.to(self.device, non_blocking=True)
            if config.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            lr = self._update_lr()
            self.criterion.set_step(self.step)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                outputs = self.train_model(images)
                loss, terms = self.criterion(outputs, targets)
            loss_value, terms = distributed.loss_over_processes(loss, terms, self.world, self.device)
            # Under DDP every rank sees the same mean (and the same history), so all stop here together.
            if problem := self.guard.loss_problem(loss_value):
                raise self.diverged(problem)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            max_norm = config.grad_clip if config.grad_clip is not None else math.inf
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
            if not torch.isfinite(grad_norm) and not self.scaler.is_enabled():  # float16 loss scaling skips such steps
                raise self.diverged(f"gradient norm is {grad_norm.item()}")
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if problem := self._weights_problem():  # finite gradients times a huge LR can still overflow the weights
                raise self.diverged(problem)

            self.step += 1
            batches += 1
            for name, value in terms.items():
                totals[name] = totals.get(name, 0.0) + value
            window_images += images.shape[0]
            self.train_seconds += time.perf_counter() - step_start
            if self.step % config.log_every == 0 or batches == len(self.train_loader):  # short runs still get points
                elapsed = time.perf_counter() - window_start
                self.emit(
                    {
                        "type": "step",
                        "step": self.step,
                        "epoch": self.epoch,
                        "loss": terms.get("total", loss_value),
                        "terms": terms,
                        "lr": lr,
                        "grad_norm": float(grad_norm),
                        "images_per_s": window_images * self.world.size / max(elapsed, 1e-9),  # all processes together
                        "elapsed": self.elapsed(),
                    }
                )
                window_images, window_start = 0, time.perf_counter()
        return {name: total / max(batches, 1) for name, total in totals.items()}

    def _weights_problem(self) -> str | None:
        """Non-finite weights after a step; under DDP any rank's problem stops every rank."""
        problem = self.guard.weights_problem(self.model)
        if self.world.distributed and distributed.any_process(bool(problem), self.device) and problem is None:
            problem = "weights became NaN or infinite in another process"
        return problem

    def diverged(self, problem: str) -> TrainingDivergedError:
        """The error that ends this run as diverged, naming the checkpoints it keeps."""
        saved = self.saved_steps if self.keeps_checkpoints else None
        return diverged_error(problem, step=self.step, epoch=self.epoch, saved_steps=saved)

    def _update_lr(self) -> float:
        schedule_step = self.step + self.schedule_offset
        if self.config.time_budget_s:
            # With a time budget the schedule follows the clock, so the LR still anneals to its floor.
            by_time = self.stopper.clock / self.config.time_budget_s * self.schedule.total_steps
            schedule_step = int(min(max(schedule_step, by_time), self.schedule.total_steps))
        apply_lr(self.optimizer, self.schedule, schedule_step)
        return float(self.schedule.lr_at(schedule_step))

    def elapsed(self) -> float:
        """Seconds since ``fit`` started (wall clock, evaluation included)."""
        return self.stopper.elapsed()

    # -- evaluation --------------------------------------------------------------------------
    def evaluate(
        self, loader: DataLoader | None = None, consumer: ProbabilityConsumer | None = None
    ) -> SegmentationMetrics:
        """Streaming confusion matrix over the whole split (void pixels dropped).

        Under DDP every rank must call it: each evaluates its shard and the matrices are summed (``consumer``:
        see :func:`~seglab.engine.validation.validate`)."""
        return validate(
            self.model,
            loader or self.val_loader,
            self.label_map,
            self.device,
            self.precision,
            channels_last=self.config.channels_last,
            world=self.world,
            consumer=consumer,
        )

    def _evaluate_and_save(self) -> dict[str, Any]:
        """Evaluate, announce it (the run recorder saves last.pt and an improved best.pt); the metrics."""
        return evaluate_and_save(self)

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, which: str) -> Path:
        """Write ``last.pt`` or ``best.pt`` atomically."""
        return save_training_checkpoint(self, which)

    def resume(self, path: str | os.PathLike) -> None:
        """Continue from a checkpoint (usually ``last.pt``): weights, optimiser, step, epoch, best."""
        resume_training(self, path)

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> FitResult:
        """Train until ``epochs`` or the time budget; evaluate every ``eval_every`` epochs and at the end."""
        # The run folder is this process's for the whole run (re-entrant: seglab train already holds it).
        lock = RunLock(self.run.path) if self.run is not None else None
        if self.run is not None and lock is not None:
            self.run.path.mkdir(parents=True, exist_ok=True)
            lock.acquire()
            clean_temporary_files(self.run.path)  # a killed save's leftovers; no one else writes here now
        try:
            return self._fit()
        finally:
            if lock is not None:
                lock.release()

    def _fit(self) -> FitResult:
        config = self.config
        self.stopper.start()
        self.emit(
            {
                "type": "start",
                "step": self.step,
                "epoch": self.epoch,
                "config": config.to_dict(),
                "train_images": len(self.train_data),
                "val_images": len(self.val_data),
                "steps_per_epoch": len(self.train_loader),
                "device": str(self.device),
                "processes": self.world.size,
                "weights": self.weights_source,
            }
        )
        try:
            state = self._train_until_done()
        except (Exception, KeyboardInterrupt) as error:
            ended, message = run_ending(
                error,
                folder=self.run.path if self.run is not None else None,
                log_written=self.run is not None and self.run.log_path.is_file(),
                distributed=self.world.distributed,
            )
            self._mark(ended, error=message)
            raise
        self._mark(state, error=None)
        return FitResult(
            state=state,
            steps=self.step,
            epochs=self.epoch,
            seconds=self.elapsed(),
            best_metric=self.best_value,
            best_metrics=self.best_metrics,
            last_metrics=self.last_metrics,
            history=self.history,
        )

    def _train_until_done(self) -> str:
        """The epoch loop; returns the final state (a stop request saves last.pt without evaluating)."""
        config = self.config
        try:
            while self.epoch < config.epochs:
                epoch_terms = self.train_one_epoch()
                self.epoch += 1
                self.emit(
                    {
                        "type": "epoch",
                        "step": self.step,
                        "epoch": self.epoch,
                        "terms": epoch_terms,
                        "elapsed": self.elapsed(),
                    }
                )
                if self.epoch % config.eval_every == 0 or self.epoch == config.epochs:
                    self._evaluate_and_save()
        except StopTraining as reason:
            if STOP_REQUESTED in str(reason):
                if self.run is not None:
                    self.save("last")  # quick: a user waiting for Stop should not wait for an evaluation
                    self.saved_steps["last"] = self.step
                return STOPPED
            if not self.history or self.history[-1]["step"] != self.step:  # not already evaluated at this step
                self._evaluate_and_save()
        return FINISHED

    def _mark(self, state: str, error: str | None) -> None:
        """Announce how the run ended (the run recorder writes it down); on a full disk this may fail too, and must
        not hide the first error."""
        try:
            self.emit(
                {
                    "type": "end",
                    "state": state,
                    "step": self.step,
                    "epoch": self.epoch,
                    "error": error,
                    "elapsed": self.elapsed(),
                }
            )
        except OSError:
            pass


def train(
    config: TrainConfig,
    out_dir: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: Iterable[Callback] = (),
    eval_consumer: ConsumerFactory | None = None,
) -> FitResult:
    """Train ``config`` (resuming from ``out_dir/last.pt`` when asked and present).

    ``out_dir`` follows the run-folder rule of ``seglab train --out``
    (:func:`seglab.engine.run_folder.claim_run_folder`): a folder that already holds a run is refused unless
    ``resume`` or ``overwrite`` (moves it aside).
    Under torchrun every process calls this; it joins the process group and always leaves it.
    ``eval_consumer``: see :class:`Trainer` (``seglab train`` passes label quality's).
    """
    config.validate()
    with distributed.process_group(resolve_device(config.device)) as world:
        claim = None
        if out_dir is not None and world.is_main:
            claim = claim_run_folder(out_dir, resume=resume, overwrite=overwrite)
        try:
            trainer = Trainer(config, out_dir=out_dir, callbacks=callbacks, eval_consumer=eval_consumer)
            if resume and out_dir is not None and (Path(out_dir) / "last.pt").is_file():
                trainer.resume(Path(out_dir) / "last.pt")
            return trainer.fit()
        finally:
            if claim is not None:
                claim.release()
