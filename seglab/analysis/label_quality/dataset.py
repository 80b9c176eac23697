"""Label quality of a whole split: every image predicted once, scored with the split's confident thresholds."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from seglab.analysis.label_quality.scores import (
    DEFAULT_BAND,
    DEFAULT_MIN_PIXELS,
    ImageLabelQuality,
    ImageParts,
    ObjectQuality,
    check_sizes,
    class_thresholds,
    finish_image,
    image_parts,
)
from seglab.data.base import SegmentationDataset
from seglab.errors import ConfigError
from seglab.progress import ProgressCallback
from seglab.ranking import worst_first

if TYPE_CHECKING:
    import torch

    from seglab.sources.base import PredictionSource


# -- a whole split --------------------------------------------------------------------------------------
@dataclass
class LabelQualityReport:
    """Label-quality scores of every image and object of a split."""

    images: list[ImageLabelQuality]  # in dataset order
    thresholds: np.ndarray  # (K,) confident thresholds used
    class_names: list[str]
    band: int
    min_pixels: int
    skip_classes: tuple[int, ...] = ()

    def image_of(self, sample_id: str) -> ImageLabelQuality:
        """The scores of sample ``sample_id`` (ConfigError when it was not scored)."""
        for image in self.images:
            if image.sample_id == sample_id:
                return image
        raise ConfigError(f"sample {sample_id!r} is not in this label-quality report; pick one of its ranked images")

    def ranked_images(self) -> list[ImageLabelQuality]:
        """Images worst first (lowest score; ties in dataset order)."""
        order = worst_first([image.score for image in self.images], [image.index for image in self.images])
        return [self.images[i] for i in order]

    def ranked_objects(self) -> list[ObjectQuality]:
        """Objects of at least ``min_pixels`` pixels, worst first."""
        objects = [item for image in self.images for item in image.ranked_objects]
        return sorted(objects, key=lambda item: (item.score, item.image_index, item.object_id))

    def image_rows(self) -> list[dict[str, Any]]:
        """Rows of the ranked-images table: rank, sample, score, objects, suspicious objects, worst object."""
        rows = []
        for rank, image in enumerate(self.ranked_images(), start=1):
            worst = image.worst
            rows.append(
                {
                    "rank": rank,
                    "sample": image.sample_id,
                    "score": image.score,
                    "objects": len(image.ranked_objects),
                    "below 0.5": sum(item.score < 0.5 for item in image.ranked_objects),
                    "worst object": worst.sentence(self.class_names) if worst else "no object",
                }
            )
        return rows

    def object_row(self, item: ObjectQuality) -> dict[str, Any]:
        """One row of an objects table: number, label, score, mean p(label), what the model says instead."""
        names = self.class_names
        return {
            "object": f"#{item.object_id}",
            "label": names[item.class_id],
            "score": item.score,
            "mean p(label)": item.self_confidence,
            "model says": names[item.suggested_class] if item.suggested_class is not None else "",
            "over": item.disagreement,
            "outline band disagrees": item.boundary_disagreement,
            "pixels": item.pixels,
        }

    def ranked_object_rows(self, limit: int) -> list[dict[str, Any]]:
        """Rows of the split's worst-objects table: rank, sample and ``object_row``, for the ``limit`` worst."""
        return [
            {"rank": rank, "sample": item.sample_id, **self.object_row(item)}
            for rank, item in enumerate(self.ranked_objects()[:limit], start=1)
        ]

    def object_rows(self, image: ImageLabelQuality) -> list[dict[str, Any]]:
        """Rows of one image's objects table (its ranked objects), worst first."""
        return [
            self.object_row(item)
            for item in sorted(image.ranked_objects, key=lambda item: (item.score, item.object_id))
        ]

    def outlined(self, image: ImageLabelQuality, cutoff: float, limit: int) -> tuple[list[ObjectQuality], int]:
        """The ranked objects scoring below ``cutoff`` (the worst always), worst first.

        Returns up to ``limit`` of them, and how many more there are.
        """
        below = sorted(
            (item for item in image.ranked_objects if item.score < cutoff or item is image.worst),
            key=lambda item: (item.score, item.object_id),
        )
        return below[:limit], max(0, len(below) - limit)


def _probability_batches(
    predictor: Any, dataset: SegmentationDataset, indices: list[int], batch_size: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(index, (H, W) mask, (K, H, W) float32 probabilities)`` per image, predicted in batches of equal-size
    images; each sample is read once.

    ``predictor`` is a torch model or a :class:`~seglab.sources.PredictionSource` with probabilities.
    """
    from seglab.engine.predict import _size_batches

    for chunk in _size_batches(dataset, indices, batch_size):
        samples = [dataset.load(index) for index in chunk]
        images = [image for image, _ in samples]
        if hasattr(predictor, "predict_batch"):
            predictions = predictor.predict_batch([dataset.ids[index] for index in chunk], images)
            if any(prediction.probabilities is None for prediction in predictions):
                raise ConfigError(
                    f"{predictor.describe()} gives class labels only: label quality needs per-class "
                    "probabilities (a model, or a predictions folder of .npy/.npz probabilities)"
                )
            probabilities = [np.asarray(prediction.probabilities, dtype=np.float32) for prediction in predictions]
        else:
            import torch

            from seglab.engine.predict import images_to_batch, predict_probabilities

            device = next(predictor.parameters()).device
            with torch.inference_mode():
                batch = images_to_batch(images).to(device)
                probabilities = list(predict_probabilities(predictor, batch).float().cpu().numpy())
        for index, (_, mask), probability in zip(chunk, samples, probabilities, strict=True):
            yield index, mask, probability


class LabelScorer:
    """Label-quality scores of a split from probabilities handed over image by image, wherever they were
    predicted: :func:`score_dataset`'s own pass, or an evaluation's (``label_quality.cache.LabelQualityGatherer``).

    :meth:`parts` is pure (call it from any thread); :meth:`add` the parts in any order; :meth:`report` once all
    images are in, or meanwhile from another thread (a partial report: the images so far, their thresholds).
    Only each image's threshold-free parts are kept (:class:`ImageParts`), never its maps.
    """

    def __init__(
        self, dataset: SegmentationDataset, *, band: int = DEFAULT_BAND, min_pixels: int = DEFAULT_MIN_PIXELS
    ) -> None:
        check_sizes(band, min_pixels)
        self.dataset, self.band, self.min_pixels = dataset, band, min_pixels
        background = dataset.label_map.background_index
        self.skip_classes: tuple[int, ...] = (background,) if background is not None else ()
        self._parts: list[ImageParts] = []
        self._sums = np.zeros(dataset.num_classes)
        self._counts = np.zeros(dataset.num_classes, dtype=np.int64)
        self._lock = threading.Lock()

    def parts(self, index: int, probabilities: np.ndarray, labels: np.ndarray) -> ImageParts:
        """The threshold-free parts of image ``index`` from its (K, H, W) probabilities and (H, W) mask."""
        dataset = self.dataset
        if probabilities.shape[0] != dataset.num_classes:
            raise ConfigError(
                f"the predictions have {probabilities.shape[0]} classes but {dataset.describe()} has "
                f"{dataset.num_classes}: label quality needs predictions in the dataset's classes"
            )
        return image_parts(
            probabilities, labels, dataset.ignore_index, self.band, self.skip_classes, index, dataset.ids[index]
        )

    def add(self, parts: ImageParts) -> None:
        """Count one image's parts (from :meth:`parts`)."""
        with self._lock:
            self._sums = self._sums + parts.class_sums
            self._counts = self._counts + parts.class_counts
            self._parts.append(parts)

    def __len__(self) -> int:
        return len(self._parts)

    def report(self, thresholds: np.ndarray | None = None) -> LabelQualityReport:
        """The report of the images added, in dataset order (``thresholds`` None: the split's confident ones)."""
        with self._lock:
            sums, counts, parts = self._sums, self._counts, list(self._parts)
        thresholds = class_thresholds(sums, counts) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
        parts.sort(key=lambda item: item.index)
        images = [finish_image(item, thresholds, self.min_pixels) for item in parts]
        return LabelQualityReport(
            images, thresholds, list(self.dataset.class_names), self.band, self.min_pixels, self.skip_classes
        )


def score_dataset(
    predictor: torch.nn.Module | PredictionSource,
    dataset: SegmentationDataset,
    *,
    indices: Sequence[int] | None = None,
    band: int = DEFAULT_BAND,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    thresholds: np.ndarray | None = None,
    batch_size: int = 8,
    progress: ProgressCallback | None = None,
    watch: Callable[[LabelScorer], None] | None = None,
) -> LabelQualityReport:
    """Score a split: thresholds over all its pixels, then every object.

    ``predictor`` is a torch model or a prediction source with probabilities (in the dataset's
    classes). Images are predicted once, in batches of ``batch_size``, and each image's
    threshold-free parts are taken while its probabilities are at hand (:class:`LabelScorer`);
    the split's thresholds then finish every image without a second prediction. The background
    class (when the label map has one) is not an object. ``progress(done, total)`` is called once
    per image, from the scoring thread. ``watch(scorer)`` is called before the first image:
    ``scorer.report()`` then gives the images scored so far, from any thread (a page shows them meanwhile).
    """
    scorer = LabelScorer(dataset, band=band, min_pixels=min_pixels)
    if watch is not None:
        watch(scorer)
    indices = list(range(len(dataset))) if indices is None else [int(i) for i in indices]

    def score(index: int, probabilities: np.ndarray, labels: np.ndarray) -> None:
        scorer.add(scorer.parts(index, probabilities, labels))
        if progress:
            progress(len(scorer), len(indices))

    # One worker scores each image (OpenCV and numpy release the GIL) while the next batch is predicted, and
    # counts it at once (progress and partial reports as images are scored); at most ``2 * batch_size`` images
    # wait, which bounds the probabilities held.
    pending: deque[Future[None]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seglab-label-quality") as worker:
        for index, labels, probabilities in _probability_batches(predictor, dataset, indices, batch_size):
            pending.append(worker.submit(score, index, probabilities, labels))
            while len(pending) > 2 * batch_size or (pending and pending[0].done()):
                pending.popleft().result()  # raises the worker's error
        while pending:
            pending.popleft().result()
    return scorer.report(thresholds)
