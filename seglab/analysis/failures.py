"""Failure analysis on a cached evaluation: which images fail, which classes are confused, and where.

Everything here works on :class:`~seglab.engine.predict.DatasetEvaluation` results (per-image predictions
and confusion matrices) plus ground-truth masks loaded on demand, so the app can answer "which
images fail on class X", "what did this image confuse with what" and "where do the pixels of one
confusion-matrix cell lie: along object boundaries or inside objects" without running the model.

The boundary/interior split separates two kinds of error that need different fixes: pixels
within a few pixels of a ground-truth edge are mostly localisation errors (blurry decoder, low
output stride, label noise at edges), while errors deep inside objects are recognition errors
(whole objects missed or called the wrong class: data, context, class imbalance).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from seglab.data.base import SegmentationDataset
from seglab.engine.predict import DatasetEvaluation, ImageResult
from seglab.errors import ConfigError
from seglab.ranking import worst_first
from seglab.viz import boundary_mask, error_map

__all__ = [
    "REGIONS",
    "CellHit",
    "CellRanking",
    "ClassConfusion",
    "boundary_band",
    "cell_gallery",
    "cell_mask",
    "cell_picture",
    "cell_ranking",
    "class_failure_ranking",
    "failure_ranking",
    "image_class_table",
    "image_miou",
    "image_ranking",
    "label_shares",
    "predicted_shares_line",
    "ranking_label",
    "ranking_rows",
    "region_mask",
    "split_headline",
    "top_confusions",
]

REGIONS = ("all", "boundary", "interior")
# Okabe-Ito yellow: not used by the error map, so the chosen cell's pixels stand out on it.
HIGHLIGHT_COLOR = (240, 228, 66)
TargetsLoader = Callable[[int], np.ndarray]


# -- which classes are confused ------------------------------------------------------------------
@dataclass(frozen=True)
class ClassConfusion:
    """One off-diagonal cell of a confusion matrix: ``pixels`` of ``gt_name`` predicted as ``pred_name``."""

    gt_class: int
    pred_class: int
    gt_name: str
    pred_name: str
    pixels: int
    share_of_gt: float  # pixels / all ground-truth pixels of gt_class

    def sentence(self) -> str:
        """E.g. ``"312 px of car predicted as road (14% of car)"``."""
        share = f"{self.share_of_gt:.0%} of {self.gt_name}"
        return f"{self.pixels:,} px of {self.gt_name} predicted as {self.pred_name} ({share})"


def top_confusions(confusion: np.ndarray, class_names: Sequence[str], k: int = 5) -> list[ClassConfusion]:
    """The ``k`` largest off-diagonal cells of a (K, K) confusion matrix (rows = ground truth), largest first.

    Empty cells are never listed; ties keep row-major order. A (K, K + 1) matrix (a mapped prediction
    source's "other" column, see :func:`seglab.metrics.confusion.image_confusions`) lists those cells as "other".
    """
    counts = np.asarray(confusion, dtype=np.int64)
    classes = len(class_names)
    if counts.ndim != 2 or counts.shape[0] != classes or counts.shape[1] not in (classes, classes + 1):
        raise ConfigError(f"expected a ({classes}, {classes}) confusion matrix, got shape {counts.shape}")
    column_names = [*class_names, "other"]
    off_diagonal = counts.copy()
    np.fill_diagonal(off_diagonal, 0)
    order = np.argsort(-off_diagonal.ravel(), kind="stable")[: max(k, 0)]
    support = counts.sum(axis=1)
    confusions = []
    for flat in order:
        gt_class, pred_class = divmod(int(flat), counts.shape[1])
        pixels = int(off_diagonal[gt_class, pred_class])
        if pixels == 0:
            break
        confusions.append(
            ClassConfusion(
                gt_class,
                pred_class,
                str(class_names[gt_class]),
                str(column_names[pred_class]),
                pixels,
                pixels / support[gt_class],
            )
        )
    return confusions


# -- which images fail ---------------------------------------------------------------------------
def _check_class(class_id: int, num_classes: int) -> None:
    if not 0 <= class_id < num_classes:
        raise ConfigError(f"class id {class_id} is not a class of this dataset (ids 0-{num_classes - 1})")


def image_miou(result: ImageResult, exclude_class: int | None = None) -> float:
    """Mean IoU of one image over the classes present in it (GT or prediction), optionally without one class.

    NaN when no class is left (e.g. an image holding only background, without background).
    """
    iou = np.array(result.iou, dtype=np.float64)
    if exclude_class is not None:
        iou[exclude_class] = np.nan
    present = ~np.isnan(iou)
    return float(iou[present].mean()) if present.any() else float("nan")


def image_ranking(evaluation: DatasetEvaluation, exclude_class: int | None = None) -> list[ImageResult]:
    """Every image, worst per-image mIoU first (optionally computed without ``exclude_class``); NaN last."""
    if exclude_class is None:
        return evaluation.ranking()
    scores = [image_miou(result, exclude_class) for result in evaluation.results]
    return [evaluation.results[i] for i in worst_first(scores, [result.index for result in evaluation.results])]


def class_failure_ranking(evaluation: DatasetEvaluation, class_id: int) -> list[ImageResult]:
    """Images where ``class_id`` occurs in the ground truth or the prediction, worst IoU of that class first.

    An image where the class is only predicted (a false alarm) has IoU 0 and ranks first with the
    images where it is entirely missed.
    """
    _check_class(class_id, len(evaluation.class_names))
    return [result for result in evaluation.ranking(class_id) if not np.isnan(result.iou[class_id])]


def failure_ranking(
    evaluation: DatasetEvaluation, class_id: int | None = None, exclude_class: int | None = None
) -> list[ImageResult]:
    """Worst images first: by the IoU of ``class_id`` among the images holding it when a class is given
    (:func:`class_failure_ranking`), else by image mIoU, optionally without ``exclude_class``
    (:func:`image_ranking`)."""
    if class_id is not None:
        return class_failure_ranking(evaluation, class_id)
    return image_ranking(evaluation, exclude_class=exclude_class)


def ranking_label(class_id: int | None, class_names: Sequence[str]) -> str:
    """What :func:`failure_ranking` ranks for ``class_id`` (None: all images), as a menu entry."""
    if class_id is None:
        return "all images, ranked by image mIoU"
    return f"images with {class_names[class_id]} (GT or prediction), ranked by its IoU"


def split_headline(evaluation: DatasetEvaluation, background_index: int | None = None) -> str:
    """An evaluation's split scores in one line: images, mIoU (also without background, if any), pixel accuracy."""
    metrics, names = evaluation.metrics, evaluation.class_names
    without = (
        f" · without {names[background_index]} {metrics.miou_no_background:.3f}" if background_index is not None else ""
    )
    return (
        f"{len(evaluation.results)} images · split mIoU **{metrics.miou:.3f}**{without} · "
        f"pixel accuracy {metrics.pixel_acc:.3f}"
    )


def ranking_rows(
    results: Sequence[ImageResult],
    class_names: Sequence[str],
    class_id: int | None = None,
    background_index: int | None = None,
) -> list[dict]:
    """Table rows (in the given order) for ranked images: id, pixel accuracy, mIoU, the class's IoU and pixels."""
    rows = []
    for rank, result in enumerate(results, start=1):
        row = {"rank": rank, "sample": result.sample_id, "pixel acc": result.pixel_acc, "mIoU": result.miou}
        if background_index is not None:
            row["mIoU w/o background"] = image_miou(result, background_index)
        if class_id is not None:
            name = class_names[class_id]
            row[f"IoU {name}"] = float(result.iou[class_id])
            row[f"{name} px (GT)"] = int(result.confusion[class_id].sum())
            row[f"{name} px (pred)"] = int(result.confusion[:, class_id].sum())
        rows.append(row)
    return rows


def image_class_table(result: ImageResult, class_names: Sequence[str]) -> list[dict]:
    """Per-class rows for one image (classes in its GT or prediction only), worst IoU first.

    Each row: class, IoU, GT pixels, predicted pixels, correct pixels and where most of the
    class's missed pixels went.
    """
    confusion = np.asarray(result.confusion, dtype=np.int64)
    off_diagonal = confusion.copy()
    np.fill_diagonal(off_diagonal, 0)
    rows = []
    for class_id in np.flatnonzero(~np.isnan(result.iou)).tolist():
        lost_to = int(off_diagonal[class_id].argmax())
        lost = int(off_diagonal[class_id, lost_to])
        rows.append(
            {
                "class": class_names[class_id],
                "IoU": float(result.iou[class_id]),
                "GT px": int(confusion[class_id].sum()),
                "predicted px": int(confusion[:, class_id].sum()),
                "correct px": int(confusion[class_id, class_id]),
                "mostly confused with": f"{class_names[lost_to]} ({lost:,} px)" if lost else "",
            }
        )
    return sorted(rows, key=lambda row: row["IoU"])


def label_shares(labels: np.ndarray, class_names: Sequence[str]) -> list[tuple[str, float]]:
    """``[(class name, share of pixels)]`` of a predicted label map, largest first, absent classes left out."""
    counts = np.bincount(np.asarray(labels).ravel(), minlength=len(class_names))[: len(class_names)]
    total = max(int(counts.sum()), 1)
    order = np.argsort(-counts, kind="stable")
    return [(str(class_names[i]), counts[i] / total) for i in order if counts[i] > 0]


def predicted_shares_line(labels: np.ndarray, class_names: Sequence[str], limit: int = 8) -> str:
    """The ``limit`` largest predicted classes of a label map with their shares, e.g. "Predicted: sky 60.0%, ..."."""
    return "Predicted: " + ", ".join(f"{name} {share:.1%}" for name, share in label_shares(labels, class_names)[:limit])


# -- where a confusion-matrix cell's pixels lie -------------------------------------------------
def boundary_band(target: np.ndarray, width: int, ignore_index: int) -> np.ndarray:
    """(H, W) bool: scored pixels within ``width`` px (chessboard distance) of a ground-truth label change.

    Void counts as a region when finding edges (a void band usually traces an object's outline,
    as in VOC), but void pixels themselves are never in the band: they are not scored.
    """
    if width < 1:
        raise ConfigError(f"the boundary band width must be at least 1 pixel, got {width}")
    return boundary_mask(target, width) & (target != ignore_index)


def region_mask(target: np.ndarray, region: str, width: int, ignore_index: int) -> np.ndarray:
    """(H, W) bool: the scored pixels of ``region`` ("all", "boundary" band of ``width`` px, or "interior")."""
    if region not in REGIONS:
        raise ConfigError(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
    scored = target != ignore_index
    if region == "all":
        return scored
    band = boundary_band(target, width, ignore_index)
    return band if region == "boundary" else scored & ~band


def cell_mask(pred: np.ndarray, target: np.ndarray, gt_class: int, pred_class: int) -> np.ndarray:
    """(H, W) bool: pixels of ground-truth class ``gt_class`` predicted as ``pred_class``."""
    if pred.shape != target.shape:
        raise ConfigError(f"prediction {pred.shape} and ground truth {target.shape} differ in size")
    return (target == gt_class) & (pred == pred_class)


@dataclass(frozen=True)
class CellHit:
    """How many pixels of one confusion cell an image holds, split by boundary band and interior."""

    index: int
    sample_id: str
    pixels: int  # in the ranking's region
    boundary_pixels: int
    interior_pixels: int
    gt_pixels: int  # all ground-truth pixels of the cell's GT class in this image


@dataclass(frozen=True)
class CellRanking:
    """Images ranked by their pixels in cell (``gt_class``, ``pred_class``) within ``region``."""

    gt_class: int
    pred_class: int
    region: str
    width: int
    hits: list[CellHit]  # images with at least one pixel in the region, most pixels first
    boundary_pixels: int  # over the whole split
    interior_pixels: int

    @property
    def total_pixels(self) -> int:
        return self.boundary_pixels + self.interior_pixels

    @property
    def boundary_share(self) -> float:
        return self.boundary_pixels / self.total_pixels if self.total_pixels else float("nan")


def cell_ranking(
    results: Sequence[ImageResult],
    targets_loader: TargetsLoader,
    gt_class: int,
    pred_class: int,
    region: str = "all",
    width: int = 2,
    ignore_index: int = 255,
) -> CellRanking:
    """Rank images by how many pixels of ground truth ``gt_class`` were predicted as ``pred_class``.

    Only images whose cached confusion matrix has pixels in the cell are loaded
    (``targets_loader(result.index)`` -> (H, W) ground truth), so a rare confusion costs a few reads.
    Boundary = within ``width`` px of a ground-truth edge (:func:`boundary_band`), interior = the rest.
    """
    if region not in REGIONS:
        raise ConfigError(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
    if results:
        num_classes = results[0].confusion.shape[0]
        _check_class(gt_class, num_classes)
        _check_class(pred_class, num_classes)
    hits = []
    boundary_total = interior_total = 0
    for result in results:
        if result.confusion[gt_class, pred_class] == 0:
            continue
        target = np.asarray(targets_loader(result.index))
        cell = cell_mask(result.labels, target, gt_class, pred_class)
        on_boundary = int(np.count_nonzero(cell & boundary_band(target, width, ignore_index)))
        inside = int(np.count_nonzero(cell)) - on_boundary
        boundary_total += on_boundary
        interior_total += inside
        pixels = {"all": on_boundary + inside, "boundary": on_boundary, "interior": inside}[region]
        if pixels:
            hits.append(
                CellHit(
                    result.index, result.sample_id, pixels, on_boundary, inside, int(result.confusion[gt_class].sum())
                )
            )
    hits.sort(key=lambda hit: (-hit.pixels, hit.index))
    return CellRanking(gt_class, pred_class, region, width, hits, boundary_total, interior_total)


def cell_picture(
    image: np.ndarray,
    pred: np.ndarray,
    target: np.ndarray,
    gt_class: int,
    pred_class: int,
    ignore_index: int,
    background_index: int | None = None,
    region: str = "all",
    width: int = 2,
    max_side: int | None = None,
) -> np.ndarray:
    """The error map of one image with the cell's pixels (within ``region``) painted in :data:`HIGHLIGHT_COLOR`.

    Returns (H, W, 3) uint8 RGB: correct pixels dimmed grey, other errors faint, the cell bright
    inside a one-pixel black ring;
    shrunk (area averaging, so thin highlighted edges stay visible) to ``max_side`` px if given.
    """
    # Other errors stay faint (alpha 0.25) so the cell's pixels are what catches the eye.
    picture = error_map(pred, target, ignore_index, background_index, image=image, alpha=0.25, dim=0.6)
    chosen = cell_mask(pred, target, gt_class, pred_class) & region_mask(target, region, width, ignore_index)
    # A black ring around the cell's pixels makes a cluster of a few pixels findable at a glance.
    ring = cv2.dilate(chosen.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool) & ~chosen
    picture[ring] = 0
    picture[chosen] = HIGHLIGHT_COLOR
    scale = max_side / max(picture.shape[:2]) if max_side else 1.0
    if scale < 1.0:
        size = (max(1, round(picture.shape[1] * scale)), max(1, round(picture.shape[0] * scale)))
        picture = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
    return picture


def cell_gallery(
    evaluation: DatasetEvaluation,
    dataset: SegmentationDataset,
    gt_class: int,
    pred_class: int,
    region: str = "all",
    width: int = 2,
    limit: int = 12,
    max_side: int | None = 240,
) -> tuple[CellRanking, list[np.ndarray]]:
    """:func:`cell_ranking` over a split plus :func:`cell_picture` thumbnails of its first ``limit`` images."""
    ranking = cell_ranking(
        evaluation.results,
        dataset.load_mask,
        gt_class,
        pred_class,
        region=region,
        width=width,
        ignore_index=dataset.ignore_index,
    )
    results = {result.index: result for result in evaluation.results}
    pictures = []
    for hit in ranking.hits[:limit]:
        image, target = dataset.load(hit.index)
        pictures.append(
            cell_picture(
                image,
                results[hit.index].labels,
                target,
                gt_class,
                pred_class,
                dataset.ignore_index,
                dataset.label_map.background_index,
                region=region,
                width=width,
                max_side=max_side,
            )
        )
    return ranking, pictures
