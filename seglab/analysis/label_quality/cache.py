"""Label-quality reports on disk, keyed like evaluations: a split is scored once per model, data and band.

The first render of the Label quality page on a real split predicts and scores every image; with
this cache a restart of the app, another browser tab or ``seglab`` on the same machine reads the
report back instead (a few ms of JSON instead of seconds of inference).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from seglab.analysis.label_quality import (
    DEFAULT_BAND,
    DEFAULT_MIN_PIXELS,
    ImageLabelQuality,
    LabelQualityReport,
    LabelScorer,
    ObjectQuality,
    score_dataset,
)
from seglab.analysis.stats import default_cache_dir
from seglab.data.base import SegmentationDataset
from seglab.engine.evaluation import Protocol
from seglab.io.atomic_files import write_json_atomic
from seglab.io.cache_write import write_cache
from seglab.io.json_values import sanitize_for_json
from seglab.progress import ProgressCallback
from seglab.sources.base import PredictionSource
from seglab.sources.checkpoint_source import CheckpointSource

FORMAT = 2  # bump when the scores or the file layout change: older files are then recomputed (2: float32 maps)
_OBJECT_FIELDS = [field.name for field in fields(ObjectQuality)]


def label_quality_cache_path(
    source: PredictionSource,
    dataset: SegmentationDataset,
    band: int,
    min_pixels: int,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Cache file of a source's label-quality report: its content and settings, the data, band and object size."""
    parts = f"{FORMAT}|{source.content_hash()}|{source.settings_key()}|{dataset.fingerprint()}|{band}|{min_pixels}"
    key = hashlib.sha256(parts.encode()).hexdigest()[:32]
    return Path(cache_dir or default_cache_dir()) / "label_quality" / f"{key}.json"


def report_to_dict(report: LabelQualityReport) -> dict[str, Any]:
    """JSON-ready form of a report (NaN -> None; objects as rows of :data:`_OBJECT_FIELDS`)."""

    return {
        "format": FORMAT,
        "class_names": report.class_names,
        "band": report.band,
        "min_pixels": report.min_pixels,
        "skip_classes": list(report.skip_classes),
        "thresholds": [float(value) for value in report.thresholds],
        "object_fields": _OBJECT_FIELDS,
        "images": [
            {
                "index": image.index,
                "sample_id": image.sample_id,
                "score": image.score,
                "objects": [[sanitize_for_json(value) for value in asdict(item).values()] for item in image.objects],
            }
            for image in report.images
        ],
    }


def report_from_dict(data: dict[str, Any]) -> LabelQualityReport:
    """Inverse of :func:`report_to_dict` (KeyError/TypeError/ValueError on a malformed dict)."""
    if data["format"] != FORMAT or data["object_fields"] != _OBJECT_FIELDS:
        raise ValueError("label-quality cache of another format")

    def item(row: list[Any]) -> ObjectQuality:
        values = dict(zip(_OBJECT_FIELDS, row, strict=True))
        values["bbox"] = tuple(values["bbox"])
        if values["suggested_confidence"] is None:
            values["suggested_confidence"] = float("nan")
        return ObjectQuality(**values)

    images = [
        ImageLabelQuality(
            int(image["index"]), str(image["sample_id"]), float(image["score"]), [item(row) for row in image["objects"]]
        )
        for image in data["images"]
    ]
    return LabelQualityReport(
        images,
        np.asarray(data["thresholds"], dtype=np.float64),
        list(data["class_names"]),
        int(data["band"]),
        int(data["min_pixels"]),
        tuple(data["skip_classes"]),
    )


def cached_label_quality(
    source: PredictionSource,
    dataset: SegmentationDataset,
    *,
    band: int = DEFAULT_BAND,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    cache_dir: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    watch: Callable[[LabelScorer], None] | None = None,
) -> LabelQualityReport:
    """:func:`~seglab.analysis.label_quality.score_dataset` of ``source`` on ``dataset``, read from the disk cache
    when present (``progress`` and ``watch`` as there, called only when scoring).

    A missing, corrupt or foreign cache file is recomputed; a cache folder that cannot be written
    costs a warning, never the result.
    """
    path = label_quality_cache_path(source, dataset, band, min_pixels, cache_dir)
    report = read_label_quality(path, dataset)
    if report is None:
        report = score_dataset(source, dataset, band=band, min_pixels=min_pixels, progress=progress, watch=watch)
        store_label_quality(path, report)
    return report


def read_label_quality(path: Path, dataset: SegmentationDataset) -> LabelQualityReport | None:
    """The report cached at ``path`` for ``dataset``; None when missing, corrupt, foreign or of another split."""
    try:
        report = report_from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    same = report.class_names == list(dataset.class_names)
    return report if same and [image.sample_id for image in report.images] == list(dataset.ids) else None


def store_label_quality(path: Path, report: LabelQualityReport) -> None:
    """Write a report to the cache (a folder that cannot be written costs a warning, never the result)."""
    write_cache("label-quality", path, lambda: write_json_atomic(path, report_to_dict(report)))


class LabelQualityGatherer:
    """Scores a split's labels from an evaluation's own pass (``evaluate_checkpoint(..., consumer=...)``) and
    stores the report where :func:`cached_label_quality` reads it: the Label quality page then costs no model run
    after any page that evaluated the split. The scoring runs in one worker thread beside the model; at most
    ``max_parts_bytes`` of per-image parts are held (a larger split is left to the page's own pass).
    ``path`` may be a function, asked at :meth:`finish`: a checkpoint written after the pass keys the report;
    ``on_stored(path)`` is called once it is stored.
    """

    def __init__(
        self,
        path: Path | Callable[[], Path],
        dataset: SegmentationDataset,
        *,
        band: int = DEFAULT_BAND,
        min_pixels: int = DEFAULT_MIN_PIXELS,
        max_parts_bytes: int = 256 * 2**20,
        on_stored: Callable[[Path], None] | None = None,
    ) -> None:
        self.path, self.max_parts_bytes, self.on_stored = path, max_parts_bytes, on_stored
        self.scorer: LabelScorer | None = LabelScorer(dataset, band=band, min_pixels=min_pixels)
        self._pending: deque[Future[Any]] = deque()
        self._held = 0
        self._worker: ThreadPoolExecutor | None = None

    def add_batch(self, indices: list[int], probabilities: list[np.ndarray], masks: list[np.ndarray]) -> None:
        """Queue one batch's parts (computed in the worker while the next batch is predicted)."""
        if self.scorer is None:
            return
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seglab-label-quality")
        scorer = self.scorer
        for index, probability, mask in zip(indices, probabilities, masks, strict=True):
            self._pending.append(self._worker.submit(scorer.parts, index, probability, mask))
        while len(self._pending) > 2 * len(indices):
            self._collect(self._pending.popleft().result())

    def _collect(self, parts: Any) -> None:
        if self.scorer is None:
            return
        self.scorer.add(parts)
        self._held += sum(value.nbytes for value in vars(parts).values() if isinstance(value, np.ndarray))
        if self._held > self.max_parts_bytes:
            self.scorer = None  # too large a split to hold: the page scores it in its own pass

    def finish(self) -> None:
        """Score and store the report (nothing when the split was too large to hold)."""
        while self._pending:
            self._collect(self._pending.popleft().result())
        if self.scorer is not None and len(self.scorer):
            path = self.path() if callable(self.path) else self.path
            store_label_quality(path, self.scorer.report())
            if self.on_stored is not None:
                self.on_stored(path)

    def close(self) -> None:
        """Stop the worker; parts not yet taken are dropped."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None


def checkpoint_gatherer(
    checkpoint: str | os.PathLike,
    dataset: SegmentationDataset,
    *,
    protocol: Protocol | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> LabelQualityGatherer | None:
    """A gatherer of the Label quality page's default report of ``checkpoint`` for an evaluation of it
    (``evaluate_checkpoint(..., consumer=...)``: the app's, ``seglab eval``'s); None when it is on disk already."""
    source = CheckpointSource(checkpoint, protocol=protocol or Protocol())
    path = label_quality_cache_path(source, dataset, DEFAULT_BAND, DEFAULT_MIN_PIXELS, cache_dir)
    return None if path.is_file() else LabelQualityGatherer(path, dataset)


def best_checkpoint_gatherers(
    checkpoint: str | os.PathLike, cache_dir: str | os.PathLike | None = None
) -> Callable[[SegmentationDataset], LabelQualityGatherer]:
    """For ``Trainer(eval_consumer=...)``: each evaluation scores the labels in its own model pass, and the
    report is stored (keyed by ``checkpoint`` as saved after that pass) only when the Trainer finishes the
    gatherer, i.e. when the evaluation's weights became ``checkpoint`` (best.pt). The report of the best.pt it
    replaced is deleted: one report per run on disk, however often it improves."""
    stored: list[Path] = []

    def replace(path: Path) -> None:
        for old in stored:
            if old != path:
                old.unlink(missing_ok=True)
        stored[:] = [path]

    def gatherer(dataset: SegmentationDataset) -> LabelQualityGatherer:
        def path() -> Path:
            return label_quality_cache_path(
                CheckpointSource(checkpoint), dataset, DEFAULT_BAND, DEFAULT_MIN_PIXELS, cache_dir
            )

        return LabelQualityGatherer(path, dataset, on_stored=replace)

    return gatherer
