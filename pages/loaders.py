"""Cached loaders shared by every page and every browser session.

``st.cache_resource`` / ``st.cache_data`` objects are shared by all sessions, and Streamlit computes
one key once while concurrent callers of the same key wait for it, so a class of 30 browsers
opening the same page evaluates a checkpoint once. Keys are JSON strings, file paths + mtimes and
dataset fingerprints, never arrays. Every model forward pass seglab runs holds one of a few
process-wide inference slots, evaluations and statistics are computed once for concurrent callers
in seglab too (:mod:`seglab.concurrency`; :mod:`pages.warmup` caps torch's threads at start-up).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from pages.state import offered_runs
from seglab.checkpoint import check_compatible, load_checkpoint
from seglab.compare import PixelDiff
from seglab.compare import pixel_diff as compare_pixel_diff
from seglab.concurrency import SharedComputations
from seglab.data.discover import SourceReport, check_source
from seglab.data.io import read_image_bytes
from seglab.data.spec import DataSpec, build_dataset
from seglab.diagnostics.report import DiagnosticOptions, summarise_evaluation
from seglab.diagnostics.slices import read_tags
from seglab.evaluation import evaluate_checkpoint
from seglab.failures import cell_gallery as failures_cell_gallery
from seglab.gallery import downscale_sample, encode_png, thumbnail
from seglab.label_quality import (
    LabelQualityReport,
    ShapesValidation,
    validate_on_shapes,
)
from seglab.label_quality_cache import cached_label_quality
from seglab.predict import DatasetEvaluation, Prediction, predict, predict_logits
from seglab.sources.checkpoint_source import CheckpointSource
from seglab.stats import DatasetStats, compute_stats
from seglab.viz_diagnostics import missed_object_gallery

PathLike = str | os.PathLike[str]
SOURCE_CHECK_TTL_S = 15  # how long a data-source check is reused: files fixed on disk show up after this


def spec_key(spec: DataSpec) -> str:
    """A hashable cache key for a DataSpec."""
    return json.dumps(spec.to_dict(), sort_keys=True)


def _mtime(path: PathLike) -> tuple[str, int]:
    """``(path key, mtime_ns)`` of a file: the key is the path as JSON text, because Streamlit hashes str
    arguments as UTF-8, which a file name that is not UTF-8 (read with surrogates) cannot be encoded in."""
    path = Path(path)
    return json.dumps(str(path)), path.stat().st_mtime_ns


def _path_of(key: str) -> str:
    """The file path a :func:`_mtime` key stands for."""
    return json.loads(key)


# -- data ----------------------------------------------------------------------------------------
@st.cache_resource(max_entries=8, show_spinner="Loading dataset...")
def _dataset(key: str) -> Any:
    return build_dataset(DataSpec.from_dict(json.loads(key)))


def dataset(spec: DataSpec) -> Any:
    """The dataset a spec describes (shared across sessions; raises SeglabError on bad paths)."""
    return _dataset(spec_key(spec))


@st.cache_data(max_entries=16, ttl=SOURCE_CHECK_TTL_S, show_spinner="Checking the data source...")
def _source_report(key: str) -> SourceReport:
    return check_source(DataSpec.from_dict(json.loads(key)))


def source_report(spec: DataSpec) -> SourceReport:
    """``seglab.data.discover.check_source`` of a data source (splits listed, a sample of pairs read), shared by
    every session for a few seconds: Home reruns on each click, and a class opens it at once."""
    return _source_report(spec_key(spec))


@st.cache_data(max_entries=16, show_spinner="Computing class statistics (cached on disk afterwards)...")
def _stats(key: str, fingerprint: str) -> DatasetStats:
    return compute_stats(_dataset(key))


def stats(spec: DataSpec) -> DatasetStats:
    """Dataset statistics, keyed by the dataset fingerprint so edited data is recomputed."""
    return _stats(spec_key(spec), dataset(spec).fingerprint())


@st.cache_data(max_entries=32, show_spinner=False)
def _small_samples(key: str, fingerprint: str, indices: tuple[int, ...], max_side: int) -> list[Any]:
    data = _dataset(key)
    return [downscale_sample(*data.load(index), max_side) for index in indices]


@st.cache_data(max_entries=32, show_spinner=False)
def _thumbnails(key: str, fingerprint: str, indices: tuple[int, ...], opacity: float, outlines: bool, max_side: int) -> list[bytes]:
    label_map = _dataset(key).label_map
    return [
        encode_png(thumbnail(image, mask, label_map, opacity=opacity, outlines=outlines, max_side=max_side))
        for image, mask in _small_samples(key, fingerprint, indices, max_side)
    ]


def thumbnails(spec: DataSpec, indices: Any, *, opacity: float, outlines: bool, max_side: int = 192) -> list[bytes]:
    """PNG overlay thumbnails of samples ``indices`` for ``st.image``. Cached per page and display
    setting; the loaded, downscaled samples are cached apart, so a new opacity only redraws overlays."""
    key = spec_key(spec)
    fingerprint = _dataset(key).fingerprint()
    chosen = tuple(int(index) for index in indices)
    return _thumbnails(key, fingerprint, chosen, float(opacity), bool(outlines), int(max_side))


# -- checkpoints and their predictions -------------------------------------------------------------
@st.cache_resource(max_entries=6, show_spinner="Loading checkpoint...")
def _checkpoint(path: str, mtime_ns: int) -> tuple[Any, Any]:
    checkpoint = load_checkpoint(_path_of(path))
    return checkpoint, checkpoint.build_model("cpu")


def checkpoint_and_model(path: PathLike) -> tuple[Any, Any]:
    """``(Checkpoint, model in eval mode)`` for a file, reloaded when the file changes."""
    return _checkpoint(*_mtime(path))


def checkpoint_options() -> dict[str, str]:
    """``{label: path}`` of every usable run's best (else last) checkpoint inside the allow-list, newest first."""
    options = {}
    for run in offered_runs():
        if run.checkpoint is not None:
            score = f" · mIoU {run.best_metric:.3f}" if run.best_metric is not None else ""
            options[f"{run.name}{score}"] = str(run.checkpoint)
    return options


@st.cache_resource(max_entries=8, show_spinner="Evaluating checkpoint on the split (cached on disk afterwards)...")
def _evaluation(path: str, mtime_ns: int, key: str) -> DatasetEvaluation:
    return evaluate_checkpoint(_path_of(path), _dataset(key))


def evaluation(path: PathLike, spec: DataSpec) -> DatasetEvaluation:
    """Per-image predictions and metrics of a checkpoint on a split (memory, then disk cache)."""
    return _evaluation(*_mtime(path), spec_key(spec))


@st.cache_data(max_entries=32, show_spinner=False)
def _diagnostics(path: str, mtime_ns: int, key: str, cover: float, confident: float, tags_text: str) -> dict | None:
    tags = read_tags(tags_text) if tags_text else None
    background = _dataset(key).label_map.background_index
    options = DiagnosticOptions(cover=cover, confident=confident)
    evaluation = _evaluation(path, mtime_ns, key)
    return summarise_evaluation(evaluation, options=options, tags=tags, background_index=background)


def diagnostics(path: PathLike, spec: DataSpec, cover: float, confident: float, tags_text: str = "") -> dict | None:
    """The JSON summary of a checkpoint's diagnostics on a split (``seglab eval --json``'s ``diagnostics``)."""
    return _diagnostics(*_mtime(path), spec_key(spec), float(cover), float(confident), tags_text)


@st.cache_data(max_entries=16, show_spinner="Cropping the missed objects...")
def _missed_objects(
    path: str, mtime_ns: int, key: str, class_id: int | None, cover: float, largest_first: bool, limit: int
) -> Any:
    evaluation = _evaluation(path, mtime_ns, key)
    return missed_object_gallery(
        evaluation, _dataset(key), class_id=class_id, cover=cover, largest_first=largest_first, limit=limit
    )


def missed_objects(
    path: PathLike, spec: DataSpec, class_id: int | None, cover: float, largest_first: bool, limit: int = 12
) -> Any:
    """``(count, [(MissedObject, crop)])`` of a checkpoint's missed objects (seglab.viz_diagnostics)."""
    return _missed_objects(*_mtime(path), spec_key(spec), class_id, float(cover), bool(largest_first), int(limit))


@st.cache_data(max_entries=16, show_spinner="Finding the images holding these pixels...")
def _cell_gallery(path: str, mtime_ns: int, key: str, gt_class: int, pred_class: int, region: str, width: int) -> Any:
    return failures_cell_gallery(_evaluation(path, mtime_ns, key), _dataset(key), gt_class, pred_class, region=region, width=width)


def cell_gallery(path: PathLike, spec: DataSpec, gt_class: int, pred_class: int, region: str, width: int) -> Any:
    """``(CellRanking, thumbnails)`` of one confusion-matrix cell on a split (see seglab.failures.cell_gallery)."""
    return _cell_gallery(*_mtime(path), spec_key(spec), int(gt_class), int(pred_class), region, int(width))


@st.cache_data(max_entries=4, show_spinner="Predicting the uploaded image...")
def _upload_prediction(path: str, mtime_ns: int, data: bytes, max_pixels: int) -> tuple[Any, Prediction]:
    image = read_image_bytes(data, max_pixels=max_pixels)
    model = _checkpoint(path, mtime_ns)[1]
    return image, predict(model, image)


def upload_prediction(path: PathLike, data: bytes, max_pixels: int) -> tuple[Any, Prediction]:
    """``(image, Prediction)`` for an uploaded PNG/JPEG (validated; DatasetError on a bad file)."""
    return _upload_prediction(*_mtime(path), data, int(max_pixels))


@st.cache_data(max_entries=8, show_spinner="Counting the pixels B fixed and broke...")
def _pixel_diff(path_a: str, mtime_a: int, path_b: str, mtime_b: int, key: str) -> PixelDiff:
    data = _dataset(key)
    evaluation_a, evaluation_b = _evaluation(path_a, mtime_a, key), _evaluation(path_b, mtime_b, key)
    targets = (data.load(result.index)[1] for result in evaluation_a.results)
    return compare_pixel_diff(evaluation_a, evaluation_b, targets, data.ignore_index)


def pixel_diff(path_a: PathLike, path_b: PathLike, spec: DataSpec) -> PixelDiff:
    """``seglab.compare.PixelDiff`` of checkpoint B vs A on a split (cached per file versions and data)."""
    return _pixel_diff(*_mtime(path_a), *_mtime(path_b), spec_key(spec))


@st.cache_data(max_entries=4, show_spinner="Running the checkpoint on the chosen images...")
def _loss_inputs(path: str, mtime_ns: int, key: str, sample_ids: tuple[str, ...]) -> tuple[list, list, list]:
    data = _dataset(key)
    checkpoint, model = _checkpoint(path, mtime_ns)
    check_compatible(checkpoint, data.label_map)
    samples = [data.load(data.index_of(sample_id)) for sample_id in sample_ids]
    logits = [predict_logits(model, image).numpy() for image, _ in samples]
    return [image for image, _ in samples], [mask for _, mask in samples], logits


def loss_inputs(path: PathLike, spec: DataSpec, sample_ids: Any) -> tuple[list, list, list]:
    """``(images, masks, logits)`` of samples ``sample_ids``: logits (K, H, W) float32, the model run once per file version."""
    return _loss_inputs(*_mtime(path), spec_key(spec), tuple(str(sample_id) for sample_id in sample_ids))


@st.cache_data(max_entries=8, show_spinner="Predicting this image...")
def _image_probabilities(path: str, mtime_ns: int, key: str, index: int) -> Prediction:
    model = _checkpoint(path, mtime_ns)[1]
    image = _dataset(key).load(index)[0]
    return predict(model, image, return_probabilities=True)


def image_probabilities(path: PathLike, spec: DataSpec, index: int) -> Prediction:
    """``seglab.predict.Prediction`` with (K, H, W) probabilities of sample ``index`` (cached per file version)."""
    return _image_probabilities(*_mtime(path), spec_key(spec), int(index))


# -- label quality: with a progress bar, so not st.cache_*; one computation per key across sessions ---------
@st.cache_resource(show_spinner=False)
def _label_quality_store() -> SharedComputations[LabelQualityReport]:
    return SharedComputations(capacity=4)


def label_quality(path: PathLike, spec: DataSpec, band: int, progress: Callable[[int, int], None] | None = None) -> LabelQualityReport:
    """``seglab.label_quality.LabelQualityReport`` of a checkpoint on a split, computed once (the 4 latest
    are kept); ``progress(done, total)`` is called only while computing."""
    path_key, mtime_ns = _mtime(path)
    key = spec_key(spec)
    data = _dataset(key)

    def compute() -> LabelQualityReport:
        checkpoint, _ = _checkpoint(path_key, mtime_ns)
        check_compatible(checkpoint, data.label_map)
        return cached_label_quality(CheckpointSource(_path_of(path_key), checkpoint=checkpoint), data, band=int(band), progress=progress)

    return _label_quality_store().get((path_key, mtime_ns, key, data.fingerprint(), int(band)), compute)


@st.cache_data(max_entries=4, show_spinner="Checking the ranking against the labels Shapes corrupted...")
def _shapes_validation(path: str, mtime_ns: int, key: str, band: int) -> ShapesValidation:
    return validate_on_shapes(label_quality(_path_of(path), DataSpec.from_dict(json.loads(key)), band), _dataset(key))


def shapes_validation(path: PathLike, spec: DataSpec, band: int) -> ShapesValidation:
    """``seglab.label_quality.ShapesValidation`` of the label-quality ranking on a noisy Shapes split."""
    return _shapes_validation(*_mtime(path), spec_key(spec), int(band))
