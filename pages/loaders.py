"""Cached loaders shared by every page and every browser session.

``st.cache_resource`` / ``st.cache_data`` objects are shared by all sessions, and Streamlit computes
one key once while concurrent callers of the same key wait for it, so a class of 30 browsers
opening the same page evaluates a checkpoint once. Keys are JSON strings, file paths + mtimes and
dataset fingerprints, never arrays (:mod:`pages.shared`'s: digests of their arrays' bytes). Every model
forward pass seglab runs holds one of a few process-wide inference slots, evaluations and statistics
are computed once for concurrent callers in seglab too (:mod:`seglab.concurrency`; :mod:`pages.warmup`
caps torch's threads at start-up).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import streamlit as st

from pages.state import offered_runs, runs_dir, source_roots
from seglab.analysis.compare import PixelDiff
from seglab.analysis.compare import pixel_diff as compare_pixel_diff
from seglab.analysis.diagnostics.report import DiagnosticOptions, summarise_evaluation
from seglab.analysis.diagnostics.slices import read_tags
from seglab.analysis.failures import cell_gallery as failures_cell_gallery
from seglab.analysis.gallery import downscale_sample, encode_png, thumbnail
from seglab.analysis.label_quality import (
    LabelQualityReport,
    LabelScorer,
    ShapesValidation,
    score_dataset,
    validate_on_shapes,
)
from seglab.analysis.label_quality.cache import cached_label_quality, checkpoint_gatherer
from seglab.analysis.stats import DatasetStats, compute_stats
from seglab.concurrency import BackgroundComputations, BackgroundJob
from seglab.data.discover import SourceReport, check_source
from seglab.data.io import read_image_bytes
from seglab.data.spec import DataSpec, build_dataset
from seglab.engine.checkpoint import check_compatible, load_checkpoint
from seglab.engine.evaluation import evaluate_checkpoint, evaluate_source
from seglab.engine.predict import DatasetEvaluation, predict, predict_logits
from seglab.errors import SeglabError, SourceError
from seglab.sources.catalog import list_sources
from seglab.sources.checkpoint_source import CheckpointSource
from seglab.sources.choices import choice_description, choice_version, description_fit, is_registered, open_choice
from seglab.sources.mapped import MappedSource
from seglab.viz.diagnostics import missed_object_gallery

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
    """The file path a :func:`_mtime` or :func:`_version` key stands for."""
    return json.loads(key)


def _version(choice: PathLike) -> tuple[str, str]:
    """``(choice key, version)``: the cache key of a model choice (a checkpoint or a registered source's entry;
    the path as JSON text, see :func:`_mtime`), its version changing whenever its files do."""
    return json.dumps(str(choice)), choice_version(choice, source_roots())


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
def _thumbnails(
    key: str, fingerprint: str, indices: tuple[int, ...], opacity: float, outlines: bool, max_side: int
) -> list[bytes]:
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
def _checkpoint(path: str, mtime_ns: int) -> tuple[Any, Any]:  # mtime_ns: the version of _version(path)
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


def registered_sources() -> list[Any]:
    """Every entry of the sources catalog (``seglab.sources.catalog.CatalogEntry``), broken ones included."""
    return list_sources(runs_dir(), source_roots())


def model_options() -> dict[str, str]:
    """``{label: model choice}``: the checkpoints (newest first), then the usable registered sources."""
    options = checkpoint_options()
    for entry in registered_sources():
        if entry.ok:
            options[f"{entry.name} · {entry.kind}"] = str(entry.file)
    return options


@st.cache_data(max_entries=64, show_spinner=False)
def _checkpoint_classes(path: str, mtime_ns: int) -> list[str] | None:
    try:
        return list(load_checkpoint(_path_of(path)).label_map.names)
    except Exception:  # an unreadable checkpoint fits nothing; the pages say why when it is chosen
        return None


def fit(choice: PathLike, spec: DataSpec) -> int | None:
    """How well a model choice fits the data, judged without predicting: 2 same classes, 1 mappable, 0 no fit,
    -1 unreadable; ``None`` when the data cannot be loaded (the pages say why)."""
    try:
        data = dataset(spec)
    except SeglabError:
        return None
    try:
        if is_registered(choice):
            return description_fit(choice_description(choice, source_roots()), data.label_map, data.ids)
        names = _checkpoint_classes(*_mtime(choice))
    except (OSError, SourceError):
        return -1
    return 2 if names == list(data.label_map.names) else -1 if names is None else 0


def best_fitting(options: dict[str, str], spec: DataSpec) -> str | None:
    """The label of the option whose classes fit the data best (the first such, so the newest checkpoint);
    the first option when the data cannot be loaded (the pages say why)."""
    labels = list(options)
    scores = {label: fit(options[label], spec) for label in labels}
    return max(labels, key=lambda label: (scores[label] or 0, -labels.index(label)), default=None)


class Abilities(NamedTuple):
    """What a model choice can do: give probabilities (confidence maps, label quality, losses), predict new images."""

    probabilities: bool
    images: bool
    registered: bool


def abilities(choice: PathLike, spec: DataSpec) -> Abilities:
    """What ``choice`` can do (a registered source is opened to tell; checkpoints can do everything)."""
    if not is_registered(choice):
        return Abilities(True, True, False)
    source = _source(*_version(choice), spec_key(spec)).source
    return Abilities(source.has_probabilities, source.can_predict_images, True)


@st.cache_resource(max_entries=6, show_spinner="Opening the model or predictions...")
def _source(choice: str, version: str, key: str) -> MappedSource:
    return open_choice(_path_of(choice), source_roots(), _dataset(key).label_map)


@st.cache_resource(max_entries=8, show_spinner="Evaluating on the split (cached on disk afterwards)...")
def _evaluation(choice: str, version: str, key: str) -> DatasetEvaluation:
    if is_registered(_path_of(choice)):
        mapped = _source(choice, version, key)
        return evaluate_source(mapped.source, _dataset(key), mapping=mapped.declared)
    data = _dataset(key)
    # The Label quality page's default report is scored in the evaluation's own model pass.
    return evaluate_checkpoint(_path_of(choice), data, consumer=checkpoint_gatherer(_path_of(choice), data))


def evaluation(choice: PathLike, spec: DataSpec) -> DatasetEvaluation:
    """Per-image predictions and metrics of a checkpoint or registered source on a split (memory, then disk cache)."""
    return _evaluation(*_version(choice), spec_key(spec))


@st.cache_data(max_entries=32, show_spinner=False)
def _diagnostics(choice: str, version: str, key: str, cover: float, confident: float, tags_text: str) -> dict | None:
    tags = read_tags(tags_text) if tags_text else None
    background = _dataset(key).label_map.background_index
    options = DiagnosticOptions(cover=cover, confident=confident)
    evaluation = _evaluation(choice, version, key)
    return summarise_evaluation(evaluation, options=options, tags=tags, background_index=background)


def diagnostics(choice: PathLike, spec: DataSpec, cover: float, confident: float, tags_text: str = "") -> dict | None:
    """The JSON summary of a model's diagnostics on a split (``seglab eval --json``'s ``diagnostics``)."""
    return _diagnostics(*_version(choice), spec_key(spec), float(cover), float(confident), tags_text)


@st.cache_data(max_entries=16, show_spinner="Cropping the missed objects...")
def _missed_objects(
    choice: str, version: str, key: str, class_id: int | None, cover: float, largest_first: bool, limit: int
) -> Any:
    evaluation = _evaluation(choice, version, key)
    count, gallery = missed_object_gallery(
        evaluation, _dataset(key), class_id=class_id, cover=cover, largest_first=largest_first, limit=limit
    )
    return count, [(info, encode_png(crop)) for info, crop in gallery]  # encoded once, not once per session


def missed_objects(
    choice: PathLike, spec: DataSpec, class_id: int | None, cover: float, largest_first: bool, limit: int = 12
) -> Any:
    """``(count, [(MissedObject, PNG bytes of its crop)])`` of a model's missed objects (seglab.viz.diagnostics)."""
    return _missed_objects(*_version(choice), spec_key(spec), class_id, float(cover), bool(largest_first), int(limit))


@st.cache_data(max_entries=16, show_spinner="Finding the images holding these pixels...")
def _cell_gallery(choice: str, version: str, key: str, gt_class: int, pred_class: int, region: str, width: int) -> Any:
    data = _dataset(key)
    evaluated = _evaluation(choice, version, key)
    return failures_cell_gallery(evaluated, data, gt_class, pred_class, region=region, width=width)


def cell_gallery(choice: PathLike, spec: DataSpec, gt_class: int, pred_class: int, region: str, width: int) -> Any:
    """``(CellRanking, thumbnails)`` of one confusion-matrix cell on a split
    (see seglab.analysis.failures.cell_gallery)."""
    return _cell_gallery(*_version(choice), spec_key(spec), int(gt_class), int(pred_class), region, int(width))


@st.cache_data(max_entries=4, show_spinner="Predicting the uploaded image...")
def _upload_prediction(choice: str, version: str, key: str, data: bytes, max_pixels: int) -> tuple[Any, Any, Any]:
    image = read_image_bytes(data, max_pixels=max_pixels)
    if is_registered(_path_of(choice)):
        mapped = _source(choice, version, key)
        if not mapped.source.can_predict_images:
            raise SourceError(f"{mapped.source.name} is a folder of predictions: it cannot predict a new image")
        return image, mapped.predict(None, image), _dataset(key).label_map
    checkpoint, model = _checkpoint(choice, int(version))
    return image, predict(model, image), checkpoint.label_map


def upload_prediction(choice: PathLike, spec: DataSpec, data: bytes, max_pixels: int) -> tuple[Any, Any, Any]:
    """``(image, prediction with .labels and .confidence, its label map)`` for an uploaded PNG/JPEG (validated;
    DatasetError on a bad file, SourceError for a predictions folder)."""
    return _upload_prediction(*_version(choice), spec_key(spec), data, int(max_pixels))


@st.cache_data(max_entries=8, show_spinner="Counting the pixels B fixed and broke...")
def _pixel_diff(choice_a: str, version_a: str, choice_b: str, version_b: str, key: str) -> PixelDiff:
    data = _dataset(key)
    evaluation_a, evaluation_b = _evaluation(choice_a, version_a, key), _evaluation(choice_b, version_b, key)
    targets = (data.load(result.index)[1] for result in evaluation_a.results)
    return compare_pixel_diff(evaluation_a, evaluation_b, targets, data.ignore_index)


def pixel_diff(choice_a: PathLike, choice_b: PathLike, spec: DataSpec) -> PixelDiff:
    """``seglab.analysis.compare.PixelDiff`` of B vs A (checkpoints or registered sources) on a split
    (cached per version)."""
    return _pixel_diff(*_version(choice_a), *_version(choice_b), spec_key(spec))


@st.cache_data(max_entries=4, show_spinner="Running the model on the chosen images...")
def _loss_inputs(choice: str, version: str, key: str, sample_ids: tuple[str, ...]) -> tuple[list, list, list]:
    data = _dataset(key)
    samples = [data.load(data.index_of(sample_id)) for sample_id in sample_ids]
    if is_registered(_path_of(choice)):
        mapped = _source(choice, version, key)
        pairs = zip(sample_ids, samples, strict=True)
        logits = [mapped.log_probabilities(sample_id, image) for sample_id, (image, _) in pairs]
    else:
        checkpoint, model = _checkpoint(choice, int(version))
        check_compatible(checkpoint, data.label_map)
        logits = [predict_logits(model, image).numpy() for image, _ in samples]
    return [image for image, _ in samples], [mask for _, mask in samples], logits


def loss_inputs(choice: PathLike, spec: DataSpec, sample_ids: Any) -> tuple[list, list, list]:
    """``(images, masks, logits)`` of samples ``sample_ids``: logits (K, H, W) float32 (a registered source's
    log-probabilities in the dataset's classes), the model run once per file version."""
    return _loss_inputs(*_version(choice), spec_key(spec), tuple(str(sample_id) for sample_id in sample_ids))


@st.cache_data(max_entries=8, show_spinner="Predicting this image...")
def _image_probabilities(choice: str, version: str, key: str, index: int) -> Any:
    data = _dataset(key)
    image = data.load(index)[0]
    if is_registered(_path_of(choice)):
        mapped = _source(choice, version, key)
        return mapped.predict(data.ids[index], image)
    model = _checkpoint(choice, int(version))[1]
    return predict(model, image, return_probabilities=True)


def image_probabilities(choice: PathLike, spec: DataSpec, index: int) -> Any:
    """A prediction with ``.labels`` and (K, H, W) ``.probabilities`` of sample ``index`` (cached per version)."""
    return _image_probabilities(*_version(choice), spec_key(spec), int(index))


# -- label quality: scored in a background job the page watches; one job per key across sessions -------------
@st.cache_resource(show_spinner=False)
def _label_quality_store() -> BackgroundComputations[LabelQualityReport]:
    return BackgroundComputations(capacity=4)


def label_quality_job(choice: PathLike, spec: DataSpec, band: int, retry: bool = False) -> BackgroundJob:
    """The job scoring a checkpoint's or registered source's (with probabilities) labels on a split: running or
    done, shared by every session asking for the same key (the 4 latest are kept; ``retry`` restarts a failed
    one). A report on disk finishes it at once; else ``job.partial()`` gives the images scored so far."""
    choice_str, version = _version(choice)
    key = spec_key(spec)
    data = _dataset(key)
    # Streamlit's caches are called here, in the script's thread; the job's thread gets plain objects.
    if is_registered(_path_of(choice_str)):  # no disk cache: its key would miss the class mapping
        mapped = _source(choice_str, version, key)

        def compute(job: BackgroundJob) -> LabelQualityReport:
            return score_dataset(mapped, data, band=int(band), progress=job.progress, watch=_peek_into(job))

    else:
        checkpoint, _ = _checkpoint(choice_str, int(version))
        check_compatible(checkpoint, data.label_map)
        source = CheckpointSource(_path_of(choice_str), checkpoint=checkpoint)

        def compute(job: BackgroundJob) -> LabelQualityReport:
            return cached_label_quality(source, data, band=int(band), progress=job.progress, watch=_peek_into(job))

    job_key = (choice_str, version, key, data.fingerprint(), int(band))
    return _label_quality_store().start(job_key, compute, retry=retry)


def _peek_into(job: BackgroundJob) -> Callable[[LabelScorer], None]:
    """``score_dataset``'s ``watch``: the job's partial result is the report of the images scored so far."""
    return lambda scorer: job.set_peek(lambda: scorer.report() if len(scorer) else None)


def label_quality(choice: PathLike, spec: DataSpec, band: int) -> LabelQualityReport:
    """``seglab.analysis.label_quality.LabelQualityReport`` of a checkpoint or registered source on a split,
    waited for (see :func:`label_quality_job`)."""
    job = label_quality_job(choice, spec, band)
    job.wait()
    return job.result()


@st.cache_data(max_entries=4, show_spinner="Checking the ranking against the labels Shapes corrupted...")
def _shapes_validation(choice: str, version: str, key: str, band: int) -> ShapesValidation:
    return validate_on_shapes(label_quality(_path_of(choice), DataSpec.from_dict(json.loads(key)), band), _dataset(key))


def shapes_validation(choice: PathLike, spec: DataSpec, band: int) -> ShapesValidation:
    """``seglab.analysis.label_quality.ShapesValidation`` of the label-quality ranking on a noisy Shapes split."""
    return _shapes_validation(*_version(choice), spec_key(spec), int(band))
