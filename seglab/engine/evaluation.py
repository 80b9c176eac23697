"""Evaluate a checkpoint, or any prediction source, on a split once, then reuse the result from disk.

Results are keyed by the checkpoint file's SHA-256 (a source's content hash), the dataset
fingerprint and the evaluation protocol (a source's settings and class mapping), so a retrained
checkpoint, edited data or a changed mapping is re-evaluated while everything else is a file
read. The cache holds per-image predictions (labels + confidence) so the app can rank failures
and draw error maps without running the model again, and the diagnostics gathered in the same pass
(:mod:`seglab.analysis.diagnostics`); a cache written before them, or by another diagnostics version, gets
them from its stored predictions on first read (no model run) and is rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from typing import Protocol as TypingProtocol

import numpy as np

from seglab.analysis.diagnostics import Diagnostics, DiagnosticsAccumulator
from seglab.analysis.diagnostics.accumulator import BackgroundDiagnostics
from seglab.analysis.stats import default_cache_dir
from seglab.concurrency import SharedComputations
from seglab.data.base import SegmentationDataset
from seglab.engine.checkpoint import check_compatible, load_checkpoint
from seglab.engine.predict import DatasetEvaluation, ImageResult
from seglab.errors import SourceError
from seglab.io.atomic_files import load_npz, save_npz_atomic
from seglab.io.cache_write import write_cache
from seglab.metrics.confusion import SegmentationMetrics, per_image_metrics_from_confusion
from seglab.progress import ProgressCallback

if TYPE_CHECKING:
    from seglab.sources.base import PredictionSource
    from seglab.sources.mapping import ClassMapping

PROTOCOL_VERSION = 2  # 2: checkpoints with NaN/inf weights are refused, so older cached scores of them are dropped
_HASH_MEMO: dict[tuple[str, int, int, int], str] = {}
# Sessions asking for the same evaluation at once (a class opening Inspect) share one; later ones read the disk cache.
SHARED_EVALUATIONS: SharedComputations[DatasetEvaluation] = SharedComputations()


class ProbabilityConsumer(TypingProtocol):
    """Work that needs the per-class probabilities an evaluation computes anyway (label quality: one model pass
    serves both). Called only when the evaluation predicts (not on a cache hit), from the evaluating thread."""

    def add_batch(self, indices: list[int], probabilities: list[np.ndarray], masks: list[np.ndarray]) -> None:
        """One batch: dataset indices, (K, H, W) probabilities in the dataset's classes, (H, W) masks."""

    def finish(self) -> None:
        """Every image was added: finish and store the result."""

    def close(self) -> None:
        """Release what it holds (always called, after :meth:`finish` or an error)."""


@dataclass(frozen=True)
class Protocol:
    """How predictions are made; part of the cache key and shown next to leaderboard scores."""

    flip: bool = False
    scales: tuple[float, ...] = (1.0,)
    tile_size: int | None = None

    def __post_init__(self) -> None:
        from seglab.options import check_scales, check_tile_size

        object.__setattr__(self, "scales", check_scales(self.scales))
        check_tile_size(self.tile_size)

    def key(self) -> str:
        return json.dumps(
            {"v": PROTOCOL_VERSION, "flip": self.flip, "scales": list(self.scales), "tile": self.tile_size}
        )

    def describe(self) -> str:
        parts = ["single scale" if self.scales == (1.0,) else "scales " + ",".join(f"{s:g}" for s in self.scales)]
        if self.flip:
            parts.append("+ flip")
        if self.tile_size:
            parts.append(f"sliding window {self.tile_size}px")
        return " ".join(parts)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, memoised on (path, inode, size, mtime) within the process."""
    stat = os.stat(path)
    # The inode too: an atomic re-save (os.replace) can keep size and a coarse-clock mtime.
    memo_key = (str(Path(path).resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if memo_key not in _HASH_MEMO:
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        _HASH_MEMO[memo_key] = digest.hexdigest()
    return _HASH_MEMO[memo_key]


def evaluation_cache_path(
    checkpoint_path: str | os.PathLike, dataset: SegmentationDataset, protocol: Protocol, cache_dir=None
) -> Path:
    """Cache file of a checkpoint's evaluation (the key of :func:`source_cache_path` for its CheckpointSource)."""
    from seglab.sources.checkpoint_source import CheckpointSource

    return source_cache_path(CheckpointSource(checkpoint_path, protocol=protocol), dataset, None, cache_dir)


def source_cache_path(
    source: PredictionSource,
    dataset: SegmentationDataset,
    mapping: ClassMapping | Mapping[str, Any] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Cache file of a source's evaluation: keyed by its content hash and settings, the data and the mapping.

    A checkpoint's key is what it always was (file hash, dataset fingerprint, protocol), so caches
    written before prediction sources existed stay valid.
    """
    parts = f"{source.content_hash()}|{dataset.fingerprint()}|{source.settings_key()}"
    mapping_key = _mapping_key(mapping)
    if mapping_key:
        parts += f"|mapping {mapping_key}"
    key = hashlib.sha256(parts.encode()).hexdigest()[:32]
    return Path(cache_dir or default_cache_dir()) / "evaluations" / f"{key}.npz"


def _mapping_key(mapping: ClassMapping | Mapping[str, Any] | None) -> str:
    """ "" for automatic or identity mappings, else a canonical string of the declared one."""
    if mapping is None:
        return ""
    if hasattr(mapping, "is_identity"):
        declared = cast("ClassMapping", mapping)
        return "" if declared.is_identity else declared.key()
    return json.dumps(dict(mapping), sort_keys=True, default=str)


def evaluate_checkpoint(
    checkpoint_path: str | os.PathLike,
    dataset: SegmentationDataset,
    *,
    protocol: Protocol = Protocol(),
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: ProgressCallback | None = None,
    device: str = "cpu",
    batch_size: int = 8,
    consumer: ProbabilityConsumer | None = None,
) -> DatasetEvaluation:
    """Per-image predictions and split metrics of a checkpoint, from the disk cache when possible.

    A thin wrapper of :func:`evaluate_source`: the checkpoint must predict the data's number of classes.
    ``consumer`` gets the probabilities when the model runs (see :class:`ProbabilityConsumer`).
    """
    from seglab.sources.checkpoint_source import CheckpointSource

    def evaluate() -> DatasetEvaluation:  # loads the checkpoint only on a cache miss
        checkpoint = load_checkpoint(checkpoint_path)
        check_compatible(checkpoint, dataset.label_map)
        source = CheckpointSource(checkpoint.path, protocol=protocol, device=device, checkpoint=checkpoint)
        return _evaluate(source, dataset, None, progress, batch_size, consumer=consumer)

    path = evaluation_cache_path(checkpoint_path, dataset, protocol, cache_dir)
    return _through_cache(path if use_cache else None, dataset, progress, evaluate)


def evaluate_source(
    source: PredictionSource,
    dataset: SegmentationDataset,
    *,
    mapping: ClassMapping | Mapping[str, Any] | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: ProgressCallback | None = None,
    batch_size: int = 8,
    diagnose: bool = True,
    consumer: ProbabilityConsumer | None = None,
) -> DatasetEvaluation:
    """Per-image predictions and split metrics of any prediction source, from the disk cache when possible.

    Args:
        source: a :class:`~seglab.sources.base.PredictionSource` (checkpoint, model file, folder...).
        dataset: the split; every sample is predicted once.
        mapping: source class -> dataset class (a ``ClassMapping`` or ``{name: dataset name/id/None}``);
            ``None`` resolves it automatically (see :func:`seglab.sources.mapping.resolve_mapping`).
        cache_dir: cache root (default ``$SEGLAB_CACHE_DIR`` or ``~/.cache/seglab``).
        use_cache: read and write the disk cache (keyed by source content + settings, data, mapping).
        progress: ``progress(done, total)`` per batch.
        batch_size: images of equal size predicted together by sources that batch (checkpoints).
        diagnose: gather the diagnostics (:mod:`seglab.analysis.diagnostics`) in the same pass; ``False`` only
            to measure their cost (a cache written without them gets them on its next read).
        consumer: gets the probabilities (in the dataset's classes) when the source runs and has them.
    """
    path = source_cache_path(source, dataset, mapping, cache_dir) if use_cache else None
    return _through_cache(
        path,
        dataset,
        progress,
        lambda: _evaluate(source, dataset, mapping, progress, batch_size, diagnose, consumer),
    )


def _through_cache(
    path: Path | None,
    dataset: SegmentationDataset,
    progress: ProgressCallback | None,
    evaluate: Callable[[], DatasetEvaluation],
) -> DatasetEvaluation:
    """The cached evaluation at ``path``, else ``evaluate()`` written there (``path`` None: no cache at all).

    Concurrent callers of one ``path`` share one computation (:data:`SHARED_EVALUATIONS`).
    """
    if path is None:
        return evaluate()

    def cached_or_evaluated() -> DatasetEvaluation:
        cached = load_evaluation(path, dataset)
        if cached is not None:
            if cached.diagnostics is None:
                cached.diagnostics = diagnose_evaluation(cached, dataset, progress)
                write_cache("evaluation", path, lambda: save_evaluation(cached, path))
            if progress:
                progress(len(dataset), len(dataset))
            return cached
        result = evaluate()
        write_cache("evaluation", path, lambda: save_evaluation(result, path))
        return result

    return SHARED_EVALUATIONS.get(str(path), cached_or_evaluated)


def _evaluate(
    source: PredictionSource,
    dataset: SegmentationDataset,
    mapping: ClassMapping | Mapping[str, Any] | None,
    progress: ProgressCallback | None,
    batch_size: int,
    diagnose: bool = True,
    consumer: ProbabilityConsumer | None = None,
) -> DatasetEvaluation:
    """Predict every sample, map it to the dataset's classes and count (one implementation for every source)."""
    consumer = consumer if source.has_probabilities else None
    try:
        evaluation = _predict_and_count(source, dataset, mapping, progress, batch_size, diagnose, consumer)
        if consumer is not None:
            consumer.finish()
        return evaluation
    finally:
        if consumer is not None:
            consumer.close()


def _predict_and_count(
    source: PredictionSource,
    dataset: SegmentationDataset,
    mapping: ClassMapping | Mapping[str, Any] | None,
    progress: ProgressCallback | None,
    batch_size: int,
    diagnose: bool,
    consumer: ProbabilityConsumer | None,
) -> DatasetEvaluation:
    from seglab.engine.predict import _size_batches
    from seglab.metrics.confusion import image_confusions
    from seglab.sources.mapped import MappedSource
    from seglab.sources.mapping import unassigned_label

    num_classes, ignore_index = dataset.num_classes, dataset.ignore_index
    other_label = unassigned_label(num_classes, ignore_index)
    mapped_source = MappedSource(source, dataset.label_map, mapping)
    accumulator = DiagnosticsAccumulator(num_classes, ignore_index, has_probabilities=source.has_probabilities)
    indices, labels, confidences, confusions = [], [], [], []
    # Diagnostics run in a background thread: each batch's overlap the next batch's prediction.
    with BackgroundDiagnostics(accumulator if diagnose else None) as background:
        for chunk in _size_batches(dataset, list(range(len(dataset))), batch_size):
            samples = [dataset.load(index) for index in chunk]
            images = [image for image, _ in samples]
            mapped = mapped_source.predict_batch([dataset.ids[index] for index in chunk], images)
            chunk_labels = [prediction.labels for prediction in mapped]
            masks = [mask for _, mask in samples]
            for prediction, mask, index in zip(mapped, masks, chunk, strict=True):
                if prediction.labels.shape != mask.shape:
                    raise SourceError(
                        f"{source.name}: the prediction of {dataset.ids[index]} is {prediction.labels.shape[1]}x"
                        f"{prediction.labels.shape[0]} but its mask is {mask.shape[1]}x{mask.shape[0]}"
                    )
            stack, targets = np.stack(chunk_labels), np.stack(masks)
            confusions.append(image_confusions(stack, targets, num_classes, ignore_index, unassigned_label=other_label))
            # Diagnostics see the confidence as it is cached (float16), so a re-read cache gives the same numbers.
            chunk_confidences = [prediction.confidence.astype(np.float16) for prediction in mapped]
            background.add_batch(images, chunk_labels, masks, chunk_confidences)
            probabilities = [prediction.probabilities for prediction in mapped]
            if consumer is not None and all(value is not None for value in probabilities):
                consumer.add_batch(chunk, cast("list[np.ndarray]", probabilities), masks)
            indices += chunk
            labels += chunk_labels
            confidences += chunk_confidences
            if progress:
                progress(len(indices), len(dataset))
        diagnostics = background.result()
    stacked = np.concatenate(confusions) if confusions else np.zeros((0, num_classes, num_classes + 1), np.int64)
    resolved = mapped_source.mapping() if indices else None
    has_other = bool(stacked[..., -1].any()) or (resolved is not None and resolved.has_other)
    if not has_other:
        stacked = stacked[..., :num_classes]
    notes = [*(resolved.summary() if resolved is not None else []), *source.notes()]
    if has_other and not (resolved is not None and resolved.has_other):
        notes.append(
            f"{int(stacked[..., -1].sum()):,} predicted pixels hold no class (a void value or an unknown colour): "
            "counted as 'other', a miss of the true class"
        )
    if not source.has_probabilities:
        notes.append(
            f"{source.name} gives labels only: confidence is 1 everywhere and probability views are unavailable"
        )
    return _evaluation_from_arrays(
        dataset,
        indices,
        labels,
        confidences,
        stacked,
        other_label=other_label if has_other else None,
        has_probabilities=source.has_probabilities,
        source=source.describe(),
        notes=notes,
        diagnostics=diagnostics,
    )


def _evaluation_from_arrays(
    dataset: SegmentationDataset,
    indices: list[int],
    labels: list[np.ndarray],
    confidences: list[np.ndarray],
    confusion: np.ndarray,
    **extra: Any,
) -> DatasetEvaluation:
    """Per-image scores and split metrics from per-image confusions (N, K, K[+1]): shared by evaluation and cache."""
    scores = per_image_metrics_from_confusion(confusion)
    results = [
        ImageResult.from_scores(
            scores,
            position,
            index=int(index),
            sample_id=dataset.ids[index],
            labels=labels[position],
            confidence=confidences[position],
        )
        for position, index in enumerate(indices)
    ]
    total = confusion.sum(axis=0) if len(confusion) else np.zeros(confusion.shape[1:], np.int64)
    metrics = SegmentationMetrics.from_confusion(total, background_index=dataset.label_map.background_index)
    return DatasetEvaluation(results=results, metrics=metrics, class_names=list(dataset.class_names), **extra)


def diagnose_evaluation(
    evaluation: DatasetEvaluation, dataset: SegmentationDataset, progress: ProgressCallback | None = None
) -> Diagnostics:
    """The diagnostics of an evaluation from its stored predictions and the data (no model run)."""
    accumulator = DiagnosticsAccumulator(
        dataset.num_classes, dataset.ignore_index, has_probabilities=evaluation.has_probabilities
    )
    for done, result in enumerate(evaluation.results, start=1):
        image, mask = dataset.load(result.index)
        accumulator.add(image, result.labels, mask, result.confidence)
        if progress:
            progress(done, len(evaluation.results))
    return accumulator.result()


def save_evaluation(evaluation: DatasetEvaluation, path: str | os.PathLike) -> None:
    """Write per-image labels/confidence/confusions as one .npz, atomically."""
    results = evaluation.results
    meta = {
        "ids": [r.sample_id for r in results],
        "class_names": evaluation.class_names,
        "other_label": evaluation.other_label,
        "has_probabilities": evaluation.has_probabilities,
        "source": evaluation.source,
        "notes": evaluation.notes,
    }
    arrays: dict[str, Any] = {
        "indices": np.array([r.index for r in results], dtype=np.int64),
        "confusion": np.stack([r.confusion for r in results]) if results else np.zeros((0, 0, 0), np.int64),
    }
    if evaluation.diagnostics is not None:
        arrays.update(evaluation.diagnostics.to_arrays())
    for position, result in enumerate(results):
        arrays[f"labels_{position}"] = result.labels
        arrays[f"confidence_{position}"] = result.confidence
    save_npz_atomic(path, meta, arrays)


def load_evaluation(path: str | os.PathLike, dataset: SegmentationDataset) -> DatasetEvaluation | None:
    """Read a cached evaluation; ``None`` if missing, corrupt or not for this dataset."""

    def read(meta: dict[str, Any], archive: Any) -> tuple:
        indices = archive["indices"]
        labels = [archive[f"labels_{i}"] for i in range(len(indices))]
        confidence = [archive[f"confidence_{i}"] for i in range(len(indices))]
        stored = {name: archive[name] for name in archive.files if name.startswith("diag_")}
        return meta, indices, archive["confusion"], labels, confidence, stored

    loaded = load_npz(path, read)
    if loaded is None:
        return None
    meta, indices, confusion, labels, confidence, stored = loaded
    if (
        meta.get("ids") != [dataset.ids[i] for i in indices if 0 <= i < len(dataset)]
        or meta.get("class_names") != dataset.class_names
    ):
        return None
    return _evaluation_from_arrays(
        dataset,
        [int(i) for i in indices],
        labels,
        confidence,
        confusion,
        other_label=meta.get("other_label"),
        has_probabilities=bool(meta.get("has_probabilities", True)),
        source=str(meta.get("source", "")),
        notes=list(meta.get("notes", [])),
        diagnostics=_stored_diagnostics(stored, len(indices), dataset.num_classes),
    )


def _stored_diagnostics(arrays: dict[str, np.ndarray], num_images: int, num_classes: int) -> Diagnostics | None:
    """The cached diagnostics, or ``None`` (absent, older format, or not for these classes): recomputed then."""
    diagnostics = Diagnostics.from_arrays(arrays, num_images) if arrays else None
    return diagnostics if diagnostics is not None and diagnostics.num_classes == num_classes else None
