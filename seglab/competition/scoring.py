"""Scoring one submission: per-image confusion matrices on the hidden split.

:func:`score_submission` is the one entry point, ``(kind, path, dataset) -> (N, K, K)`` counts in the
dataset's image order. Each kind has its scorer:

- ``checkpoint``: a seglab ``.pt`` loaded with ``weights_only=True`` (:mod:`seglab.engine.checkpoint`),
  run whole-image, single scale (the Leaderboard page's protocol);
- ``masks_zip``: predicted masks read from a checked zip (:mod:`seglab.competition.mask_zip`);
- ``onnx`` / ``torchscript``: a model file run through :mod:`seglab.sources` with seglab's own
  preprocessing (what ``seglab export`` writes: ImageNet mean/std, RGB, any size, logits), its
  outputs read as the hidden dataset's classes in order.

The worker runs this in a child process with time and memory limits; nothing here touches the
database.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from seglab.competition.errors import ScoringError, ScoringUnavailable
from seglab.data.base import SegmentationDataset

KIND_LABELS = {
    "checkpoint": "seglab checkpoint (.pt)",
    "masks_zip": "zip of predicted masks (.zip of PNGs)",
    "onnx": "ONNX model (.onnx)",
    "torchscript": "TorchScript model (.pt / .ts)",
}
KIND_SUFFIXES = {"checkpoint": ".pt", "masks_zip": ".zip", "onnx": ".onnx", "torchscript": ".ts"}
MODEL_FILE_KINDS = ("onnx", "torchscript")


# (model file, hidden dataset) -> (N, K, K) int64 per-image confusion matrices in dataset order.
ModelFileScorer = Callable[[Path, SegmentationDataset], np.ndarray]
_MODEL_FILE_SCORERS: dict[str, ModelFileScorer] = {}


def register_model_file_scorer(kind: str, scorer: ModelFileScorer) -> None:
    """Replace the scorer of ``onnx`` or ``torchscript`` submissions (default: :func:`score_with_sources`)."""
    if kind not in MODEL_FILE_KINDS:
        raise ValueError(f"model-file scorers exist for {', '.join(MODEL_FILE_KINDS)}, not {kind!r}")
    _MODEL_FILE_SCORERS[kind] = scorer


def scorer_available(kind: str) -> bool:
    """Whether submissions of ``kind`` can be scored by this installation (ONNX needs onnxruntime)."""
    if kind == "onnx" and kind not in _MODEL_FILE_SCORERS:
        import importlib.util

        return importlib.util.find_spec("onnxruntime") is not None
    return kind in KIND_LABELS


def score_submission(kind: str, path: str | os.PathLike, dataset: SegmentationDataset) -> np.ndarray:
    """Per-image confusion matrices (N, K, K) int64 of a submission on the hidden ``dataset``.

    Raises :class:`ScoringError` (a fault of the submission, shown to its team) or
    :class:`ScoringUnavailable` (this kind cannot be scored here).
    """
    path = Path(path)
    if kind == "checkpoint":
        confusions = score_checkpoint(path, dataset)
    elif kind == "masks_zip":
        confusions = score_mask_zip(path, dataset)
    elif kind in MODEL_FILE_KINDS:
        confusions = score_model_file(kind, path, dataset)
    else:
        raise ScoringError(f"unknown submission kind {kind!r}")
    expected = (len(dataset), dataset.num_classes, dataset.num_classes)
    if confusions.shape != expected:
        raise ScoringError(f"the {kind} scorer returned counts of shape {confusions.shape}, expected {expected}")
    return confusions.astype(np.int64, copy=False)


def score_checkpoint(path: Path, dataset: SegmentationDataset, batch_size: int = 8) -> np.ndarray:
    """Run a seglab checkpoint over the hidden images (whole image, single scale)."""
    from seglab.engine.checkpoint import check_compatible, load_checkpoint
    from seglab.engine.predict import predict_dataset
    from seglab.errors import CheckpointError, ConfigError

    try:
        checkpoint = load_checkpoint(path)
        check_compatible(checkpoint, dataset.label_map)
        model = checkpoint.build_model("cpu")
    except (CheckpointError, ConfigError) as error:
        raise ScoringError(str(error).replace(str(path), "the checkpoint")) from None
    confusions = np.zeros((len(dataset), dataset.num_classes, dataset.num_classes), dtype=np.int64)
    for result in predict_dataset(model, dataset, batch_size=batch_size):
        confusions[result.index] = result.confusion
    return confusions


def score_mask_zip(path: Path, dataset: SegmentationDataset) -> np.ndarray:
    """Compare each predicted mask in the zip with its hidden ground truth."""
    from seglab.competition.mask_zip import iter_mask_zip
    from seglab.metrics.confusion import image_confusions

    sizes = image_sizes(dataset)
    confusions = np.zeros((len(dataset), dataset.num_classes, dataset.num_classes), dtype=np.int64)
    for position, prediction in iter_mask_zip(path, dataset.ids, sizes, dataset.num_classes):
        _, target = dataset.load(position)
        confusions[position] = image_confusions(
            prediction[None], target[None], dataset.num_classes, dataset.ignore_index
        )[0]
    return confusions


def image_sizes(dataset: SegmentationDataset) -> list[tuple[int, int]]:
    """``(height, width)`` of every image, from file headers when the dataset can tell them."""
    size_of = getattr(dataset, "image_size", None)
    if callable(size_of):
        return [tuple(size_of(index)) for index in range(len(dataset))]
    return [tuple(dataset.load(index)[0].shape[:2]) for index in range(len(dataset))]


def score_model_file(kind: str, path: Path, dataset: SegmentationDataset) -> np.ndarray:
    """An ONNX or TorchScript submission's counts: the registered scorer, else :func:`score_with_sources`."""
    if not scorer_available(kind):
        raise ScoringUnavailable(f"{KIND_LABELS[kind]} submissions cannot be scored here: onnxruntime is not installed")
    scorer = _MODEL_FILE_SCORERS.get(kind)
    return np.asarray(scorer(path, dataset)) if scorer else score_with_sources(kind, path, dataset)


def score_with_sources(kind: str, path: Path, dataset: SegmentationDataset) -> np.ndarray:
    """Run an ONNX or TorchScript submission over the hidden images through :mod:`seglab.sources`.

    In process: the scoring worker already runs each submission in a child with time and memory limits.
    """
    from seglab.engine.evaluation import evaluate_source
    from seglab.errors import SourceError
    from seglab.sources.description import SourceDescription

    description = SourceDescription(kind=kind, path=Path(path).resolve())
    try:
        with description.open(isolated=False) as source:
            # Only the score counts here (and the hidden labels stay hidden): no diagnostics.
            evaluation = evaluate_source(source, dataset, use_cache=False, diagnose=False)
    except SourceError as error:
        raise ScoringError(str(error).replace(str(Path(path).resolve()), "the model file")) from None
    confusions = np.stack([result.confusion for result in evaluation.results])
    extra = confusions[:, :, dataset.num_classes :]
    if extra.size and extra.any():  # predictions outside the competition's classes
        raise ScoringError(
            f"the model predicts classes beyond the competition's {dataset.num_classes} "
            f"({', '.join(dataset.class_names)}); export a model with exactly these outputs, in this order"
        )
    return confusions[:, :, : dataset.num_classes]
