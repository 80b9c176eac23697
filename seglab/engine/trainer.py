"""The Trainer: one training run, from a TrainConfig to checkpoints, events and metrics.

Reads top to bottom like torchvision's reference recipe: build data, model, loss, optimiser and
schedule; ``train_one_epoch``; ``evaluate``; ``fit``. Progress goes to callbacks with one
signature, ``callback(event: dict)``; the run folder's events file, the CLI progress bar and
the app's live view all hang on it.

Under ``torchrun`` the same Trainer runs in every process with ``DistributedDataParallel``
(:mod:`seglab.engine.distributed`): each rank trains on its shard with ``batch_size`` images per step,
evaluates its shard of the validation split and the confusion matrices are summed; only rank 0
writes the run folder (:class:`~seglab.engine.run_recorder.RunRecorder`, the first callback) and calls the callbacks.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch.utils.data import DataLoader

from seglab.analysis.stats import DatasetStats, compute_stats
from seglab.data.base import SegmentationDataset
from seglab.data.cache import MemoryCachedDataset
from seglab.data.spec import build_dataset
from seglab.data.transforms import AugmentedDataset, eval_transform, pad_collate, train_transform
from seglab.engine import distributed
from seglab.engine.checkpoint import (
    NonFiniteWeightsError,
    checkpoint_payload,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)
from seglab.engine.config import TrainConfig
from seglab.engine.divergence import DivergenceGuard
from seglab.engine.optim import apply_lr, build_param_groups
from seglab.engine.predict import predict_probabilities
from seglab.engine.recipe import criterion_from_config, drops_last_batch, optimizer_from_config, schedule_from_config
from seglab.engine.run_dir import FAILED, FINISHED, STOPPED, RunDirectory
from seglab.engine.run_folder import RunLock, claim_run_folder, clean_temporary_files
from seglab.engine.run_recorder import RunRecorder
from seglab.errors import CheckpointError, ConfigError, SeglabError, TrainingDivergedError
from seglab.io.json_values import json_number, sanitize_for_json
from seglab.io.output_paths import write_failure
from seglab.metrics.confusion import ConfusionMatrix, SegmentationMetrics
from seglab.models import build_model, fetch_imagenet_weights
from seglab.options import resolve_device

if TYPE_CHECKING:
    from seglab.engine.evaluation import ProbabilityConsumer

Callback = Callable[[dict[str, Any]], None]
# Called at each evaluation with the validation split: what gets that evaluation's probabilities (or None).
ConsumerFactory = Callable[[SegmentationDataset], "ProbabilityConsumer | None"]

STOP_REQUESTED, TIME_BUDGET_SPENT = "stop requested", "time budget spent"
# Under DDP rank 0 broadcasts why it stops as a number: an index into this tuple.
_STOP_REASONS = ("", STOP_REQUESTED, TIME_BUDGET_SPENT, "stopped by a callback")


class StopTraining(Exception):
    """Raised inside the loop when a stop was requested or the time budget is spent."""


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


def _amp_dtype(name: str) -> torch.dtype:
    """The autocast dtype on CUDA: bfloat16 where the GPU has it (Ampere and newer), else float16."""
    if name == "bfloat16" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return getattr(torch, name)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX): only then is CPU autocast faster."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Trains one model; writes a run folder when ``out_dir`` is given.

    Under torchrun it joins the process group (:func:`seglab.engine.distributed.setup`); only rank 0
    keeps ``run`` and ``callbacks``, the other ranks train and evaluate without writing anything.
    ``eval_consumer(val_data)``, called at each evaluation of a run with a folder in one process, gives what gets
    that evaluation's probabilities; it is finished only when the evaluation's weights become best.pt.
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
        # Work on each evaluation's probabilities, finished only when its weights become best.pt (label quality,
        # from the CLI); one process alone, as it needs every image of the split.
        self.eval_consumer = eval_consumer if self.run is not None and not self.world.distributed else None
        if config.threads:
            torch.set_num_threads(config.threads)
        seed_everything(config.seed)
        if config.starts_from_imagenet:  # before the data: offline, fail within seconds
            self._fetch_imagenet_weights()

        self._stats: DatasetStats | None = None  # the training split's statistics, computed when first needed
        self.train_data = build_dataset(config.data)
        self.val_data = build_dataset(config.data.with_split(config.val_split))
        self.label_map = self.train_data.label_map
        self.train_loader = self._train_loader()
        self.val_loader = self._eval_loader(self.val_data)

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
        cuda_amp = config.amp and self.device.type == "cuda"
        self.use_amp = cuda_amp or (config.cpu_bf16 and self.device.type == "cpu" and cpu_has_native_bf16())
        self.amp_dtype = _amp_dtype(config.amp_dtype) if cuda_amp else torch.bfloat16
        # Loss scaling only for float16: bfloat16 has float32's exponent range.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)

        self.step = 0
        self.epoch = 0
        self.best_value = -math.inf
        self.best_metrics: dict[str, Any] = {}
        self.last_metrics: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self._train_seconds = 0.0
        self._fit_started = 0.0
        self._clock = 0.0  # elapsed() at the last stop check; under DDP rank 0's, so all ranks use one LR
        self._stop_reason = ""  # a StopTraining raised by a callback under DDP, announced at the next step
        self._schedule_offset = 0  # LR schedule position minus step, after resuming with another number of processes
        self.guard = DivergenceGuard()  # NaN, inf and exploding losses; non-finite weights after a step
        # "best"/"last" -> the step of the checkpoint on disk, known on every rank so all ranks word errors alike
        self._saved_steps: dict[str, int] = {}

    # -- building blocks ---------------------------------------------------------------------
    def _train_loader(self) -> DataLoader:
        config = self.config
        transform = train_transform(
            crop_size=config.crop_size or None,
            scale_range=(config.scale_min, config.scale_max),
            hflip=config.hflip,
            vflip=config.vflip,
            color_jitter=config.color_jitter,
            class_focus=self._rare_class_focus(),
            focus_probability=config.rare_class_crops,
            ignore_index=self.label_map.ignore_index,
        )
        data = AugmentedDataset(MemoryCachedDataset(self.train_data), transform, seed=config.seed)
        self.train_augmented = data
        self.train_sampler = (
            distributed.train_sampler(data, self.world, config.seed) if self.world.distributed else None
        )
        images_per_process = len(self.train_sampler) if self.train_sampler is not None else len(data)
        generator = torch.Generator().manual_seed(config.seed)
        return DataLoader(
            data,
            batch_size=config.batch_size,
            shuffle=self.train_sampler is None,
            sampler=self.train_sampler,
            drop_last=drops_last_batch(images_per_process, config.batch_size),
            num_workers=config.num_workers,
            generator=generator,
            collate_fn=pad_collate(self.label_map.ignore_index),
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,  # workers must see set_epoch() every epoch
        )

    def _eval_loader(self, dataset: SegmentationDataset) -> DataLoader:
        # No padding to a multiple of the stride: every model takes any size, and seglab.engine.predict (eval,
        # Inspect, Leaderboard) feeds images as they are, so the validation mIoU logged here is the same number.
        transform = eval_transform(pad_multiple=1, ignore_index=dataset.ignore_index)
        data = AugmentedDataset(MemoryCachedDataset(dataset), transform, seed=0)
        shard = (
            distributed.ShardSampler(len(data), self.world.rank, self.world.size) if self.world.distributed else None
        )
        return DataLoader(
            data,
            batch_size=self.config.batch_size,
            shuffle=False,
            sampler=shard,
            num_workers=self.config.num_workers,
            collate_fn=pad_collate(dataset.ignore_index),
        )

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

    def _fetch_imagenet_weights(self) -> None:
        """Download the encoder's ImageNet file into torch's hub cache if it is not there yet (rank 0 only;
        the other ranks wait and read the cache). Progress goes out as "note" events (the app's live view)
        and, in a terminal, as torch hub's tqdm bar."""
        error = None
        if self.world.is_main:
            events = self.run.events_path if self.run is not None else None
            had_events = events is not None and events.exists()
            if events is not None:
                events.parent.mkdir(parents=True, exist_ok=True)
            try:
                fetch_imagenet_weights(
                    self.config.model,
                    report=lambda message: self.emit({"type": "note", "message": message}),
                    progress_bar=sys.stderr.isatty(),
                )
            except ConfigError as failure:
                error = str(failure)
                if events is not None and not had_events:  # a run that never started: a rerun into --out is accepted
                    events.unlink(missing_ok=True)
        error = distributed.broadcast_object(error)
        if error is not None:
            raise ConfigError(error)

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
                self._stop_reason = str(reason) or _STOP_REASONS[3]

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
            self._check_stop()
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
            loss_value, terms = self._loss_over_processes(loss, terms)
            # Under DDP every rank sees the same mean (and the same history), so all stop here together.
            if problem := self.guard.loss_problem(loss_value):
                raise self._diverged(problem)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            max_norm = config.grad_clip if config.grad_clip is not None else math.inf
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
            if not torch.isfinite(grad_norm) and not self.scaler.is_enabled():  # float16 loss scaling skips such steps
                raise self._diverged(f"gradient norm is {grad_norm.item()}")
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if problem := self._weights_problem():  # finite gradients times a huge LR can still overflow the weights
                raise self._diverged(problem)

            self.step += 1
            batches += 1
            for name, value in terms.items():
                totals[name] = totals.get(name, 0.0) + value
            window_images += images.shape[0]
            self._train_seconds += time.perf_counter() - step_start
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

    def _loss_over_processes(self, loss: torch.Tensor, terms: dict[str, float]) -> tuple[float, dict[str, float]]:
        """The loss and its terms: this process's, or under DDP their mean over all processes.

        The mean is what rank 0 logs, and since a NaN or inf on any rank makes it non-finite, every
        rank takes the same decision in the NaN guard (before ``backward``, where DDP synchronises).
        """
        if not self.world.distributed:
            return loss.item(), terms
        values = torch.tensor([loss.item(), *terms.values()], dtype=torch.float64, device=self.device)
        mean = distributed.mean_over_processes(values).tolist()
        return mean[0], dict(zip(terms, mean[1:]))

    def _weights_problem(self) -> str | None:
        """Non-finite weights after a step; under DDP any rank's problem stops every rank."""
        problem = self.guard.weights_problem(self.model)
        if self.world.distributed:
            flag = torch.tensor([1.0 if problem else 0.0], device=self.device)
            if float(distributed.mean_over_processes(flag)) > 0 and problem is None:
                problem = "weights became NaN or infinite in another process"
        return problem

    def _diverged(self, problem: str) -> TrainingDivergedError:
        """The error that ends a diverged run: what happened, where, what to do, and which checkpoints remain."""
        if not self.keeps_checkpoints:
            kept = ""
        elif self._saved_steps:
            kept = " and ".join(f"{which}.pt (step {step})" for which, step in sorted(self._saved_steps.items()))
            kept = f" The last good checkpoints are kept: {kept}."
        else:
            kept = " No checkpoint was written: it diverged before the first evaluation."
        return TrainingDivergedError(
            f"{problem} at step {self.step} (epoch {self.epoch}): the training diverged; lower --lr or enable "
            f"--grad-clip.{kept}"
        )

    def _update_lr(self) -> float:
        schedule_step = self.step + self._schedule_offset
        if self.config.time_budget_s:
            # With a time budget the schedule follows the clock, so the LR still anneals to its floor.
            by_time = self._clock / self.config.time_budget_s * self.schedule.total_steps
            schedule_step = int(min(max(schedule_step, by_time), self.schedule.total_steps))
        apply_lr(self.optimizer, self.schedule, schedule_step)
        return float(self.schedule.lr_at(schedule_step))

    def _check_stop(self) -> None:
        """Raise StopTraining on a STOP file or a spent time budget; under DDP rank 0 decides for all ranks."""
        self._clock = self.elapsed()
        reason = self._stop_reason
        if not reason and self.run is not None and self.run.stop_requested():
            reason = STOP_REQUESTED
        elif not reason and self.config.time_budget_s and self._clock >= self.config.time_budget_s:
            reason = TIME_BUDGET_SPENT
        if self.world.distributed:
            code = _STOP_REASONS.index(reason) if reason in _STOP_REASONS else 3
            decided, self._clock = distributed.broadcast_from_main([code, self._clock], self.device)
            reason = reason if self.world.is_main else _STOP_REASONS[int(decided)]
        if reason:
            raise StopTraining(reason)

    def elapsed(self) -> float:
        """Seconds since ``fit`` started (wall clock, evaluation included)."""
        return time.perf_counter() - self._fit_started if self._fit_started else 0.0

    # -- evaluation --------------------------------------------------------------------------
    @torch.inference_mode()
    def evaluate(
        self, loader: DataLoader | None = None, consumer: ProbabilityConsumer | None = None
    ) -> SegmentationMetrics:
        """Streaming confusion matrix over the whole split (void pixels dropped).

        Under DDP every rank must call it: each evaluates its shard and the matrices are summed. ``consumer``
        (one process, the validation loader only) gets each batch's probabilities cropped to the images' sizes.
        """
        loader = loader or self.val_loader
        if self.world.distributed:
            distributed.broadcast_buffers(self.model)  # every rank evaluates exactly the weights rank 0 saves
        self.model.eval()
        matrix = ConfusionMatrix(
            self.label_map.num_classes, ignore_index=self.label_map.ignore_index, device=self.device
        )
        done = 0
        for images, targets in loader:
            images = images.to(self.device, non_blocking=True)
            if self.config.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                probabilities = predict_probabilities(self.model, images)  # the forward pass of `seglab eval`
            matrix.update(probabilities.argmax(dim=1), targets.to(self.device))
            if consumer is not None:
                self._hand_over(consumer, list(range(done, done + len(images))), probabilities)
            done += len(images)
        matrix.all_reduce()  # sums the shards; a no-op in a single process
        return matrix.compute(background_index=self.label_map.background_index)

    def _hand_over(self, consumer: ProbabilityConsumer, indices: list[int], probabilities: torch.Tensor) -> None:
        """One batch of validation probabilities to ``consumer``, each cropped to its image (batches are padded)."""
        masks = [self.val_loader.dataset.dataset.load_mask(index) for index in indices]  # memory-cached
        batch = probabilities.float().cpu().numpy()
        consumer.add_batch(indices, [batch[i, :, : m.shape[0], : m.shape[1]] for i, m in enumerate(masks)], masks)

    def _evaluate_and_save(self) -> dict[str, Any]:
        consumer = self.eval_consumer(self.val_data) if self.eval_consumer is not None else None
        try:
            return self._evaluate_and_save_with(consumer)
        finally:
            if consumer is not None:
                consumer.close()

    def _evaluate_and_save_with(self, consumer: ProbabilityConsumer | None) -> dict[str, Any]:
        started = time.perf_counter()
        metrics = self.evaluate(consumer=consumer)
        summary = metrics.to_dict(self.label_map.names)
        value = summary.get(self.config.best_metric)
        if value is None and self.config.best_metric not in summary:
            raise ConfigError(f"best_metric {self.config.best_metric!r} is not a metric; try miou or pixel_acc")
        improved = value is not None and value > self.best_value
        if improved:
            self.best_value, self.best_metrics = cast(float, value), summary
        self.last_metrics = summary
        event = {
            "type": "eval",
            "step": self.step,
            "epoch": self.epoch,
            "split": self.config.val_split,
            "metrics": summary,
            "best": improved,
            "eval_seconds": time.perf_counter() - started,
            "elapsed": self.elapsed(),
        }
        self.history.append(sanitize_for_json(event))
        self.emit(event)  # the run recorder saves the previews, last.pt, best.pt (when improved) and the status
        if self.keeps_checkpoints:
            self._saved_steps["last"] = self.step
            if improved:
                self._saved_steps["best"] = self.step
        if improved and consumer is not None:
            consumer.finish()  # best.pt now holds the weights it saw
        return summary

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, which: str) -> Path:
        """Write ``last.pt`` or ``best.pt`` atomically."""
        assert self.run is not None
        payload = checkpoint_payload(
            model=self.model,
            config=self.config.to_dict(),
            label_map=self.label_map,
            step=self.step,
            epoch=self.epoch,
            metrics=self.best_metrics if which == "best" else self.last_metrics,
            optimizer=self.optimizer if which == "last" else None,  # best.pt stays small: weights only
            extra={
                "best_value": json_number(self.best_value),
                "best_metrics": self.best_metrics,
                "train_seconds": self._train_seconds,
                "torch_rng": torch.get_rng_state(),
                "processes": self.world.size,
                "schedule_offset": self._schedule_offset,
            },
        )
        try:
            path = save_checkpoint(payload, self.run.path / f"{which}.pt")
        except NonFiniteWeightsError as error:  # e.g. BatchNorm statistics that overflowed during evaluation
            raise self._diverged(str(error).split(": ", 1)[-1].split(";")[0]) from None
        return path

    def resume(self, path: str | os.PathLike) -> None:
        """Continue from a checkpoint (usually ``last.pt``): weights, optimiser, step, epoch, best."""
        checkpoint = load_checkpoint(path, map_location=self.device)
        if checkpoint.num_classes != self.label_map.num_classes or checkpoint.model_name != self.config.model:
            raise CheckpointError(
                f"cannot resume from {checkpoint.path}: it is a {checkpoint.model_name} model "
                f"for {checkpoint.num_classes} classes ({checkpoint.label_map.name}) "
                f"but this run trains {self.config.model} on "
                f"{self.label_map.num_classes} classes ({self.label_map.name}); "
                "use a new run folder or the same model and data"
            )
        load_model_state(self.model, checkpoint.model_state, source=str(checkpoint.path))
        if checkpoint.optimizer_state is not None:
            self.optimizer.load_state_dict(checkpoint.optimizer_state)
        self.step, self.epoch = checkpoint.step, checkpoint.epoch
        self._schedule_offset = int(checkpoint.extra.get("schedule_offset") or 0)
        if int(checkpoint.extra.get("processes") or 1) != self.world.size:
            # Steps per epoch changed with the number of processes: the step count goes on, but the LR
            # schedule (counted in this run's steps) resumes where the saved epochs left it.
            self._schedule_offset = self.epoch * len(self.train_loader) - self.step
        best = checkpoint.extra.get("best_value")
        self.best_value = best if best is not None else -math.inf
        self.best_metrics = checkpoint.extra.get("best_metrics") or {}
        self.last_metrics = checkpoint.metrics
        rng = checkpoint.extra.get("torch_rng")
        if isinstance(rng, torch.Tensor):
            torch.set_rng_state(rng)
        if self.keeps_checkpoints:
            self._saved_steps = {"last": self.step}

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
        self._fit_started = time.perf_counter() - 0.0
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
        except TrainingDivergedError as error:
            self._mark(FAILED, error=str(error))
            raise
        except KeyboardInterrupt:
            where = "train.log" if self.run is not None and self.run.log_path.is_file() else "torchrun's output"
            cause = "SIGTERM or Ctrl-C" + (
                f", or another torchrun process failed: see {where}" if self.world.distributed else ""
            )
            self._mark(
                STOPPED, error=f"interrupted before it could save ({cause}); last.pt is from the last evaluation"
            )
            raise
        except SeglabError as error:  # already a sentence a user can act on (e.g. a full disk while saving)
            self._mark(FAILED, error=str(error))
            raise
        except OSError as error:
            reason = write_failure(error, error.filename or (self.run.path if self.run else "."))
            self._mark(FAILED, error=f"cannot write {error.filename}: {reason}" if error.filename else reason)
            raise
        except Exception as error:
            self._mark(FAILED, error=f"{type(error).__name__}: {error}")
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
                    self._saved_steps["last"] = self.step
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
