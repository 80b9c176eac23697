"""Evaluate a checkpoint on a split once, then reuse the result from disk.

Results are keyed by the checkpoint file's SHA-256, the dataset fingerprint and the evaluation
protocol, so a retrained checkpoint or edited data is re-evaluated while everything else is a file
read. The cache holds per-image predictions (labels + confidence) so the app can rank failures
and draw error maps without running the model again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seglab.cache_write import write_cache
from seglab.checkpoint import check_compatible, load_checkpoint
from seglab.data.base import SegmentationDataset
from seglab.metrics import ConfusionMatrix
from seglab.predict import DatasetEvaluation, ImageResult, ProgressCallback, evaluate_dataset
from seglab.stats import default_cache_dir

PROTOCOL_VERSION = 2  # 2: checkpoints with NaN/inf weights are refused, so older cached scores of them are dropped
_HASH_MEMO: dict[tuple[str, int, int, int], str] = {}


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
        return json.dumps({"v": PROTOCOL_VERSION, "flip": self.flip, "scales": list(self.scales), "tile": self.tile_size})

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


def evaluation_cache_path(checkpoint_path: str | os.PathLike, dataset: SegmentationDataset, protocol: Protocol, cache_dir=None) -> Path:
    key = hashlib.sha256(f"{file_sha256(checkpoint_path)}|{dataset.fingerprint()}|{protocol.key()}".encode()).hexdigest()[:32]
    return Path(cache_dir or default_cache_dir()) / "evaluations" / f"{key}.npz"


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
) -> DatasetEvaluation:
    """Per-image predictions and split metrics of a checkpoint, from the disk cache when possible."""
    path = evaluation_cache_path(checkpoint_path, dataset, protocol, cache_dir)
    if use_cache:
        cached = load_evaluation(path, dataset)
        if cached is not None:
            if progress:
                progress(len(dataset), len(dataset))
            return cached
    checkpoint = load_checkpoint(checkpoint_path)
    check_compatible(checkpoint, dataset.label_map)
    model = checkpoint.build_model(device)
    result = evaluate_dataset(
        model, dataset, flip=protocol.flip, scales=protocol.scales, tile_size=protocol.tile_size,
        batch_size=batch_size, progress=progress,
    )  # fmt: skip
    if use_cache:
        write_cache("evaluation", path, lambda: save_evaluation(result, path))
    return result


def save_evaluation(evaluation: DatasetEvaluation, path: str | os.PathLike) -> None:
    """Write per-image labels/confidence/confusions as one .npz, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    results = evaluation.results
    arrays = {
        "indices": np.array([r.index for r in results], dtype=np.int64),
        "confusion": np.stack([r.confusion for r in results]) if results else np.zeros((0, 0, 0), np.int64),
        "meta": np.array(json.dumps({"ids": [r.sample_id for r in results], "class_names": evaluation.class_names})),
    }
    for position, result in enumerate(results):
        arrays[f"labels_{position}"] = result.labels
        arrays[f"confidence_{position}"] = result.confidence
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **arrays)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def load_evaluation(path: str | os.PathLike, dataset: SegmentationDataset) -> DatasetEvaluation | None:
    """Read a cached evaluation; ``None`` if missing, corrupt or not for this dataset."""
    from seglab.metrics import per_image_metrics_from_confusion

    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            indices = archive["indices"]
            confusion = archive["confusion"]
            labels = [archive[f"labels_{i}"] for i in range(len(indices))]
            confidence = [archive[f"confidence_{i}"] for i in range(len(indices))]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, EOFError):
        return None
    if meta.get("ids") != [dataset.ids[i] for i in indices if 0 <= i < len(dataset)] or meta.get("class_names") != dataset.class_names:
        return None
    scores = per_image_metrics_from_confusion(confusion)
    results = [
        ImageResult(
            index=int(index), sample_id=meta["ids"][position], labels=labels[position], confidence=confidence[position],
            pixel_acc=float(scores.pixel_acc[position]), miou=float(scores.miou[position]), iou=scores.iou[position],
            confusion=confusion[position],
        )
        for position, index in enumerate(indices)
    ]  # fmt: skip
    total = ConfusionMatrix.from_matrix(confusion.sum(axis=0), ignore_index=dataset.ignore_index)
    metrics = total.compute(background_index=dataset.label_map.background_index)
    return DatasetEvaluation(results=results, metrics=metrics, class_names=list(dataset.class_names))
