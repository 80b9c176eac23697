"""Dataset statistics: class imbalance, class weights, object sizes, and the trivial baseline.

Everything is computed in one pass over the masks (one ``np.bincount`` per mask, connected
components per class present) and cached on disk keyed by the dataset's fingerprint, so the second
call for the same data is a file read.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seglab.analysis.components import label_components
from seglab.concurrency import SharedComputations
from seglab.data.base import SegmentationDataset
from seglab.io.atomic_files import load_npz, save_npz_atomic
from seglab.io.cache_write import write_cache
from seglab.progress import ProgressCallback

if TYPE_CHECKING:  # seglab.metrics.confusion is imported where the baseline is computed (it pulls in torch)
    from seglab.metrics.confusion import SegmentationMetrics


CACHE_VERSION = 2  # 2: unknown_colour_pixels
SHARED_STATS: SharedComputations[DatasetStats] = SharedComputations()  # concurrent callers of one dataset scan once


def default_cache_dir() -> Path:
    """``$SEGLAB_CACHE_DIR`` or ``~/.cache/seglab``."""
    return Path(os.environ.get("SEGLAB_CACHE_DIR", Path.home() / ".cache" / "seglab"))


@dataclass
class DatasetStats:
    """Per-class and per-image label statistics of one dataset split.

    Pixel shares are over *labelled* pixels: void pixels are counted separately, never as a class.
    Objects are the connected components (8-connectivity) of each class in each mask.
    """

    class_names: list[str]
    ids: list[str]
    ignore_index: int
    background_index: int | None
    per_image_counts: np.ndarray  # (N, K) int64 labelled pixels of each class in each image
    ignore_pixels: np.ndarray  # (N,) int64 void pixels per image
    image_sizes: np.ndarray  # (N, 2) int64 (height, width)
    object_class: np.ndarray  # (M,) int64 class of each object
    object_area: np.ndarray  # (M,) int64 pixels of each object
    object_image: np.ndarray  # (M,) int64 image index of each object
    # (N,) int64 pixels of each colour-coded mask whose colour is not in the label map (counted in ignore_pixels)
    unknown_colour_pixels: np.ndarray = None  # type: ignore[assignment]  # None: zeros, set in __post_init__
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if self.unknown_colour_pixels is None:
            self.unknown_colour_pixels = np.zeros(len(self.ids), dtype=np.int64)

    # -- per class -----------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_images(self) -> int:
        return len(self.ids)

    @property
    def pixel_counts(self) -> np.ndarray:
        """(K,) labelled pixels per class over the split."""
        return self.per_image_counts.sum(axis=0)

    @property
    def pixel_fraction(self) -> np.ndarray:
        """(K,) share of labelled pixels per class (sums to 1)."""
        counts = self.pixel_counts
        return counts / max(int(counts.sum()), 1)

    @property
    def image_counts(self) -> np.ndarray:
        """(K,) number of images containing each class."""
        return (self.per_image_counts > 0).sum(axis=0)

    @property
    def labelled_pixels(self) -> int:
        return int(self.per_image_counts.sum())

    @property
    def void_fraction(self) -> float:
        """Share of all pixels that are void."""
        total = self.labelled_pixels + int(self.ignore_pixels.sum())
        return float(self.ignore_pixels.sum()) / max(total, 1)

    def unknown_colour_report(self, limit: int = 5) -> str:
        """One line on masks with colours missing from the label map, worst first ("" when none)."""
        counts = self.unknown_colour_pixels
        affected = np.flatnonzero(counts)
        if not affected.size:
            return ""
        worst = affected[np.argsort(-counts[affected], kind="stable")][:limit]
        listed = ", ".join(f"{self.ids[i]} ({int(counts[i]):,} px)" for i in worst)
        return (
            f"{affected.size} mask(s) hold {int(counts.sum()):,} pixels in colours that are not in the label map; "
            f"they were read as void ({self.ignore_index}): {listed}. "
            "Add those colours to the label map if they are classes."
        )

    @property
    def imbalance_ratio(self) -> float:
        """Pixels of the most frequent class / pixels of the least frequent class present."""
        present = self.pixel_counts[self.pixel_counts > 0]
        return float(present.max() / present.min()) if present.size else float("nan")

    def inverse_frequency_weights(self) -> np.ndarray:
        """(K,) weights proportional to 1 / pixel frequency, normalised to mean 1 over present classes.

        Classes absent from the split get weight 0 (they never appear in a target anyway).
        """
        counts = self.pixel_counts.astype(np.float64)
        weights = np.zeros_like(counts)
        present = counts > 0
        weights[present] = counts[present].sum() / counts[present]
        return _normalise_mean(weights, present)

    def median_frequency_weights(self) -> np.ndarray:
        """(K,) median-frequency balancing (Eigen & Fergus 2015): ``median(freq) / freq(c)``.

        ``freq(c)`` is the pixels of class c divided by the labelled pixels of the images that
        contain c, so a class that is rare *within the images it appears in* weighs more.
        """
        counts = self.pixel_counts.astype(np.float64)
        pixels_per_image = self.per_image_counts.sum(axis=1).astype(np.float64)
        contains = self.per_image_counts > 0
        area_of_images_with_class = (contains * pixels_per_image[:, None]).sum(axis=0)
        present = counts > 0
        frequency = np.zeros_like(counts)
        frequency[present] = counts[present] / area_of_images_with_class[present]
        weights = np.zeros_like(counts)
        if present.any():
            weights[present] = np.median(frequency[present]) / frequency[present]
        return weights

    def class_weights(self, method: str) -> np.ndarray:
        """Weights by name: ``"inverse"``, ``"median"``, ``"sqrt_median"`` or ``"none"`` (all ones).

        ``sqrt_median`` is the square root of the median-frequency weights: the same order, half the spread
        on a log scale. Full median weights make a short run predict rare classes several times more often
        than they occur (high recall, low precision: a poor IoU); the root keeps them found without that.
        """
        if method == "inverse":
            return self.inverse_frequency_weights()
        if method == "median":
            return self.median_frequency_weights()
        if method == "sqrt_median":
            return np.sqrt(self.median_frequency_weights())
        if method == "none":
            return np.ones(self.num_classes)
        raise ValueError(f"unknown class-weight method {method!r}; choose inverse, median, sqrt_median or none")

    def object_sizes(self, class_id: int) -> np.ndarray:
        """Areas (pixels) of every object of one class."""
        return self.object_area[self.object_class == class_id]

    # -- per image -----------------------------------------------------------------------------
    def images_containing(self, class_id: int) -> np.ndarray:
        """Indices of the images where ``class_id`` has at least one labelled pixel."""
        return np.flatnonzero(self.per_image_counts[:, class_id] > 0)

    def class_share_per_image(self, class_id: int) -> np.ndarray:
        """(N,) share of each image's labelled pixels that belong to ``class_id``."""
        totals = self.per_image_counts.sum(axis=1)
        return self.per_image_counts[:, class_id] / np.maximum(totals, 1)

    def rarity_order(self) -> np.ndarray:
        """Class ids sorted from rarest to most frequent (by pixel count, absent classes first)."""
        return np.argsort(self.pixel_counts, kind="stable")

    def table(self) -> list[dict]:
        """One row per class: name, pixels, pixel share, image count, weights, objects, median size."""
        rows = []
        inverse = self.inverse_frequency_weights()
        median = self.median_frequency_weights()
        for class_id, name in enumerate(self.class_names):
            sizes = self.object_sizes(class_id)
            rows.append(
                {
                    "id": class_id,
                    "class": name,
                    "pixels": int(self.pixel_counts[class_id]),
                    "pixel_fraction": float(self.pixel_fraction[class_id]),
                    "images": int(self.image_counts[class_id]),
                    "inverse_weight": float(inverse[class_id]),
                    "median_freq_weight": float(median[class_id]),
                    "objects": int(sizes.size),
                    "median_object_px": float(np.median(sizes)) if sizes.size else 0.0,
                }
            )
        return rows


def _normalise_mean(weights: np.ndarray, present: np.ndarray) -> np.ndarray:
    if present.any():
        weights[present] /= weights[present].mean()
    return weights


# -- computing -------------------------------------------------------------------------------------
def compute_stats(
    dataset: SegmentationDataset,
    *,
    progress: ProgressCallback | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
) -> DatasetStats:
    """Statistics of ``dataset``, from the on-disk cache when its fingerprint matches.

    ``progress(done, total)`` is called as masks are read. A corrupt or stale cache file is
    ignored and rewritten; a cache folder that cannot be written only warns (CacheWriteWarning).
    """
    fingerprint = dataset.fingerprint()
    if not use_cache:
        stats = _scan(dataset, progress)
        stats.fingerprint = fingerprint
        return stats
    cache_path = Path(cache_dir or default_cache_dir()) / "stats" / f"{fingerprint}-v{CACHE_VERSION}.npz"

    def cached_or_scanned() -> DatasetStats:
        cached = load_stats(cache_path)
        if cached is not None and cached.fingerprint == fingerprint:
            if progress:
                progress(len(dataset), len(dataset))
            return cached
        stats = _scan(dataset, progress)
        stats.fingerprint = fingerprint
        write_cache("statistics", cache_path, lambda: save_stats(stats, cache_path))
        return stats

    return SHARED_STATS.get(str(cache_path), cached_or_scanned)


def _scan(dataset: SegmentationDataset, progress: ProgressCallback | None) -> DatasetStats:
    num_classes = dataset.num_classes
    ignore_index = dataset.ignore_index
    total = len(dataset)
    per_image = np.zeros((total, num_classes), dtype=np.int64)
    ignored = np.zeros(total, dtype=np.int64)
    unknown = np.zeros(total, dtype=np.int64)
    unknown_counts = getattr(dataset, "unknown_colour_pixels", None)  # folder layouts count them as masks load
    sizes = np.zeros((total, 2), dtype=np.int64)
    object_class, object_area, object_image = [], [], []

    def scan_one(index: int) -> tuple[np.ndarray, int, tuple[int, int], list[np.ndarray], int]:
        mask = dataset.load_mask(index)
        colours = unknown_counts.get(dataset.ids[index], 0) if unknown_counts is not None else 0
        histogram = np.bincount(mask.ravel(), minlength=256)
        counts = histogram[:num_classes]
        areas = _component_areas(mask, np.flatnonzero(counts))
        void = int(histogram[ignore_index]) if ignore_index < histogram.size else 0
        return counts, void, mask.shape[:2], areas, colours

    # Decoding PNGs and labelling components release the GIL, so threads use every core.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for index, (counts, void, size, areas, colours) in enumerate(pool.map(scan_one, range(total))):
            per_image[index], ignored[index], sizes[index], unknown[index] = counts, void, size, colours
            for class_id, class_areas in zip(np.flatnonzero(counts), areas):
                object_class.append(np.full(class_areas.size, class_id, dtype=np.int64))
                object_area.append(class_areas)
                object_image.append(np.full(class_areas.size, index, dtype=np.int64))
            if progress:
                progress(index + 1, total)
    empty = np.zeros(0, dtype=np.int64)
    return DatasetStats(
        class_names=list(dataset.class_names),
        ids=list(dataset.ids),
        ignore_index=ignore_index,
        background_index=dataset.label_map.background_index,
        per_image_counts=per_image,
        ignore_pixels=ignored,
        image_sizes=sizes,
        object_class=np.concatenate(object_class) if object_class else empty,
        object_area=np.concatenate(object_area) if object_area else empty,
        object_image=np.concatenate(object_image) if object_image else empty,
        unknown_colour_pixels=unknown,
    )


def _component_areas(mask: np.ndarray, classes: np.ndarray) -> list[np.ndarray]:
    """Per class of ``classes`` (each present in ``mask``), the pixel areas of its connected components."""
    ids, owner = label_components(mask, classes.tolist())
    areas = np.bincount(ids.ravel(), minlength=len(owner)).astype(np.int64)
    return [areas[owner == class_id] for class_id in classes]


# -- cache -------------------------------------------------------------------------------------------
_ARRAY_FIELDS = (
    "per_image_counts",
    "ignore_pixels",
    "image_sizes",
    "object_class",
    "object_area",
    "object_image",
    "unknown_colour_pixels",
)


def save_stats(stats: DatasetStats, path: str | os.PathLike) -> None:
    """Write stats to ``path`` (.npz) atomically."""
    meta = {
        "version": CACHE_VERSION,
        "class_names": stats.class_names,
        "ids": stats.ids,
        "ignore_index": stats.ignore_index,
        "background_index": stats.background_index,
        "fingerprint": stats.fingerprint,
    }
    save_npz_atomic(path, meta, {name: getattr(stats, name) for name in _ARRAY_FIELDS})


def load_stats(path: str | os.PathLike) -> DatasetStats | None:
    """Read cached stats; ``None`` when the file is missing, corrupt or inconsistent."""
    loaded = load_npz(path, lambda meta, archive: (meta, {name: archive[name] for name in _ARRAY_FIELDS}))
    if loaded is None:
        return None
    meta, arrays = loaded
    if meta.get("version") != CACHE_VERSION:
        return None
    stats = DatasetStats(
        class_names=list(meta["class_names"]),
        ids=list(meta["ids"]),
        ignore_index=int(meta["ignore_index"]),
        background_index=meta["background_index"],
        fingerprint=str(meta["fingerprint"]),
        **arrays,
    )
    return stats if _consistent(stats) else None


def _consistent(stats: DatasetStats) -> bool:
    count, classes = len(stats.ids), len(stats.class_names)
    objects = stats.object_class.shape
    return (
        stats.per_image_counts.shape == (count, classes)
        and stats.ignore_pixels.shape == (count,)
        and stats.unknown_colour_pixels.shape == (count,)
        and bool(np.all(stats.unknown_colour_pixels <= stats.ignore_pixels))
        and stats.image_sizes.shape == (count, 2)
        and stats.object_area.shape == objects
        and stats.object_image.shape == objects
        and bool((stats.per_image_counts >= 0).all())
        and bool(np.all(stats.per_image_counts.sum(axis=1) + stats.ignore_pixels <= stats.image_sizes.prod(axis=1)))
    )


# -- the trivial baseline ----------------------------------------------------------------------------
@dataclass
class TrivialBaseline:
    """Scores of a model that predicts one class everywhere (background, else the most frequent)."""

    predicted_class: int
    predicted_name: str
    metrics: SegmentationMetrics
    has_background: bool = True  # the data has a background class ("without background" scores exist)

    def cards(self) -> list[dict[str, Any]]:
        """Its headline scores as display cards: ``label``, ``value`` (text), ``delta`` vs pixel accuracy and
        ``help`` (None where there is nothing to add)."""
        scores, background = self.metrics, self.has_background
        return [
            {
                "label": "Pixel accuracy",
                "value": f"{scores.pixel_acc:.1%}",
                "delta": None,
                "help": "Share of labelled pixels predicted right",
            },
            {
                "label": "mIoU with background" if background else "mIoU",
                "value": f"{scores.miou:.1%}",
                "delta": f"{100 * (scores.miou - scores.pixel_acc):+.0f} pts vs pixel accuracy",
                "help": None,
            },
            {
                "label": "mIoU without background",
                "value": f"{scores.miou_no_background:.1%}" if background else "n/a",
                "delta": f"{100 * (scores.miou_no_background - scores.pixel_acc):+.0f} pts vs pixel accuracy"
                if background
                else None,
                "help": None if background else "This dataset has no background class",
            },
            {
                "label": "fwIoU",
                "value": f"{scores.fwiou:.1%}",
                "delta": None,
                "help": "IoU per class weighted by its pixel share",
            },
        ]

    def verdict(self) -> str:
        """The lesson in one paragraph: which scores flatter a model that learned nothing, which to judge by."""
        scores, background = self.metrics, self.has_background
        useless_miou = scores.miou_no_background if background else scores.miou
        flattering = (
            "pixel accuracy and background-inclusive scores flatter" if background else "pixel accuracy flatters"
        )
        judged = f"mIoU{' without background' if background else ''}"
        return (
            f"A model that learned nothing reaches **{scores.pixel_acc:.0%} pixel accuracy** "
            f"and {scores.fwiou:.0%} fwIoU but **{useless_miou:.0%} {judged}**: {flattering} a useless model, "
            f"so judge models by {judged} and per-class IoU."
            + ("" if background else " (No background class here: the baseline predicts the most frequent class.)")
        )


def trivial_baseline(stats: DatasetStats) -> TrivialBaseline:
    """Metrics of predicting the background (or most frequent) class for every pixel.

    Its confusion matrix follows from the pixel counts alone: every labelled pixel of class c
    lands in cell (c, predicted). On imbalanced data pixel accuracy (that class's share) and
    frequency-weighted IoU look respectable, while mIoU without background is 0: the seed's warning
    that pixel accuracy flatters a useless model.
    """
    from seglab.metrics.confusion import ConfusionMatrix

    predicted = stats.background_index
    if predicted is None:
        predicted = int(np.argmax(stats.pixel_counts))
    matrix = np.zeros((stats.num_classes, stats.num_classes), dtype=np.int64)
    matrix[:, predicted] = stats.pixel_counts
    metrics = ConfusionMatrix.from_matrix(matrix, ignore_index=stats.ignore_index).compute(
        background_index=stats.background_index
    )
    return TrivialBaseline(
        predicted, stats.class_names[predicted], metrics, has_background=stats.background_index is not None
    )
