"""Inference: one image or a whole split, with optional test-time augmentation.

``predict`` returns the class map, the per-pixel confidence (max softmax) and, on demand, the
per-class probabilities, for any image size (whole image, or a sliding window with overlap for
large images). ``predict_dataset`` runs over a split and also yields per-image metrics, which is
what failure ranking needs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from seglab import concurrency
from seglab.data.base import SegmentationDataset
from seglab.data.label_map import LabelMap
from seglab.data.normalization import IMAGENET_MEAN, IMAGENET_STD, image_to_float, normalize_image
from seglab.errors import DatasetError
from seglab.metrics.confusion import ConfusionMatrix, PerImageMetrics, SegmentationMetrics, per_image_metrics
from seglab.options import check_scales, check_tile_size
from seglab.progress import ProgressCallback
from seglab.ranking import worst_first

if TYPE_CHECKING:
    from seglab.analysis.diagnostics import Diagnostics

TileSize = int | tuple[int, int]  # square side, or (height, width) for models with a fixed input size


@dataclass
class Prediction:
    """The prediction for one image at its original size."""

    labels: np.ndarray  # (H, W) uint8 class ids
    confidence: np.ndarray  # (H, W) float32 max softmax probability
    probabilities: np.ndarray | None = None  # (K, H, W) float32, only when asked for


def image_to_tensor(
    image: np.ndarray, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float32 normalised as the training pipeline's ToTensor + Normalize do."""
    _check_image(image)
    return normalize_image(image_to_float(image), mean, std).unsqueeze(0)


def images_to_batch(
    images: Sequence[np.ndarray], mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """Equal-size (H, W, 3) uint8 RGB images -> one (N, 3, H, W) float32 batch in channels_last memory, the values
    of :func:`image_to_tensor`'s (the same operations, in place): one conversion instead of a copy per step, and
    the layout channels_last models convolve fastest."""
    for image in images:
        _check_image(image)
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()  # NHWC memory: channels_last
    mean_tensor = torch.tensor(tuple(mean), dtype=batch.dtype).view(3, 1, 1)
    std_tensor = torch.tensor(tuple(std), dtype=batch.dtype).view(3, 1, 1)
    return batch.div_(255).sub_(mean_tensor).div_(std_tensor)


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise DatasetError(
            f"the image is empty ({image.shape[1]}x{image.shape[0]} pixels): there is nothing to predict"
        )


def _model_device(model: torch.nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@torch.inference_mode()
def predict_probabilities(
    model: torch.nn.Module,
    batch: torch.Tensor,
    *,
    flip: bool = False,
    scales: Sequence[float] = (1.0,),
    tile_size: TileSize | None = None,
    overlap: float = 1 / 3,
) -> torch.Tensor:
    """Softmax probabilities (N, K, H, W) for a normalised batch, averaged over the TTA views.

    The one forward pass of seglab: ``seglab eval``, the app's pages and the trainer's validation
    (:meth:`seglab.engine.trainer.Trainer.evaluate`) all label pixels with its argmax, so they score alike.

    Each scale resizes the input (bilinear), predicts, and resizes the probabilities back; with
    ``flip`` every view is also predicted mirrored and un-mirrored before averaging.
    """
    scales = check_scales(scales)  # a scale of 0 would shrink every image to one pixel: one class everywhere
    check_tile_size(tile_size)
    model.eval()
    with concurrency.inference_slot():  # sessions of one app server take turns (seglab.concurrency)
        return _averaged_views(model, batch, flip, scales, tile_size, overlap)


def _averaged_views(
    model: torch.nn.Module,
    batch: torch.Tensor,
    flip: bool,
    scales: Sequence[float],
    tile_size: TileSize | None,
    overlap: float,
) -> torch.Tensor:
    height, width = batch.shape[-2:]
    total: torch.Tensor | None = None
    views = 0
    for scale in scales:
        scaled = (
            batch
            if scale == 1.0
            else F.interpolate(
                batch,
                size=(max(1, round(height * scale)), max(1, round(width * scale))),
                mode="bilinear",
                align_corners=False,
            )
        )
        for mirrored in (False, True) if flip else (False,):
            view = scaled.flip(-1) if mirrored else scaled
            probabilities = _forward_probabilities(model, view, tile_size, overlap)
            if mirrored:
                probabilities = probabilities.flip(-1)
            if probabilities.shape[-2:] != (height, width):
                probabilities = F.interpolate(probabilities, size=(height, width), mode="bilinear", align_corners=False)
            total = probabilities if total is None else total + probabilities
            views += 1
    assert total is not None  # at least one scale and view
    return total / views


def _forward_probabilities(
    model: torch.nn.Module, batch: torch.Tensor, tile_size: TileSize | None, overlap: float
) -> torch.Tensor:
    height, width = batch.shape[-2:]
    tile_height, tile_width = (tile_size, tile_size) if isinstance(tile_size, int) else (tile_size or (height, width))
    if tile_size is None or (height <= tile_height and width <= tile_width):
        return model(batch)["out"].float().softmax(dim=1)
    return _sliding_window(model, batch, tile_size, overlap)


def _sliding_window(model: torch.nn.Module, batch: torch.Tensor, tile: TileSize, overlap: float) -> torch.Tensor:
    """Average softmax over overlapping tiles covering the image (tiles clipped at the border)."""
    height, width = batch.shape[-2:]
    tile_height, tile_width = (tile, tile) if isinstance(tile, int) else tile
    tops = _tile_starts(height, tile_height, max(1, int(tile_height * (1 - overlap))))
    lefts = _tile_starts(width, tile_width, max(1, int(tile_width * (1 - overlap))))
    summed: torch.Tensor | None = None
    counts = torch.zeros((1, 1, height, width), device=batch.device)
    for top in tops:
        for left in lefts:
            window = batch[..., top : top + tile_height, left : left + tile_width]
            probabilities = model(window)["out"].float().softmax(dim=1)
            if summed is None:
                summed = torch.zeros((batch.shape[0], probabilities.shape[1], height, width), device=batch.device)
            summed[..., top : top + tile_height, left : left + tile_width] += probabilities
            counts[..., top : top + tile_height, left : left + tile_width] += 1
    assert summed is not None  # at least one tile
    return summed / counts


def _tile_starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def predict(
    model: torch.nn.Module,
    image: np.ndarray,
    *,
    flip: bool = False,
    scales: Sequence[float] = (1.0,),
    tile_size: int | None = None,
    overlap: float = 1 / 3,
    return_probabilities: bool = False,
    device: str | torch.device | None = None,
) -> Prediction:
    """Predict one (H, W, 3) uint8 RGB image of any size."""
    device = torch.device(device) if device is not None else _model_device(model)
    batch = image_to_tensor(image).to(device)
    probabilities = predict_probabilities(model, batch, flip=flip, scales=scales, tile_size=tile_size, overlap=overlap)[
        0
    ]
    confidence, labels = probabilities.max(dim=0)
    return Prediction(
        labels=labels.to(torch.uint8).cpu().numpy(),
        confidence=confidence.cpu().numpy().astype(np.float32),
        probabilities=probabilities.cpu().numpy().astype(np.float32) if return_probabilities else None,
    )


# -- whole splits ------------------------------------------------------------------------------------
@dataclass
class ImageResult:
    """Prediction and scores of one dataset image."""

    index: int
    sample_id: str
    labels: np.ndarray  # (H, W) uint8
    confidence: np.ndarray  # (H, W) float16
    pixel_acc: float
    miou: float
    iou: np.ndarray  # (K,) NaN where the class is absent from GT and prediction
    confusion: np.ndarray  # (K, K) int64 of this image; (K, K + 1) with an "other" column

    @classmethod
    def from_scores(
        cls,
        scores: PerImageMetrics,
        position: int,
        *,
        index: int,
        sample_id: str,
        labels: np.ndarray,
        confidence: np.ndarray,
    ) -> ImageResult:
        """The result of the image at ``position`` of a batch's per-image ``scores``."""
        return cls(
            index=index,
            sample_id=sample_id,
            labels=labels,
            confidence=confidence,
            pixel_acc=float(scores.pixel_acc[position]),
            miou=float(scores.miou[position]),
            iou=scores.iou[position],
            confusion=scores.confusion[position],
        )


@dataclass
class DatasetEvaluation:
    """Every image's result plus the split's metrics (one confusion matrix over the split).

    Evaluations of a prediction source whose classes were mapped may hold "other" pixels
    (``other_label`` in ``labels``, an extra last column in the confusion matrices, see
    :func:`seglab.metrics.confusion.image_confusions`); ``notes`` says what was mapped, resized or assumed.
    """

    results: list[ImageResult]
    metrics: SegmentationMetrics
    class_names: list[str]
    other_label: int | None = None  # label value of "other" predictions when the confusions have that column
    has_probabilities: bool = True  # False: ``confidence`` is 1 everywhere (a source that gives labels only)
    source: str = ""  # one line naming what made the predictions
    notes: list[str] = field(default_factory=list)
    diagnostics: Diagnostics | None = (
        None  # objects, boundaries, calibration, slices (seglab.engine.evaluation fills it)
    )

    @property
    def prediction_names(self) -> list[str]:
        """Names of the confusion matrices' columns: the classes, plus "other" when present."""
        return [*self.class_names, "other"] if self.other_label is not None else list(self.class_names)

    def ranking(self, class_id: int | None = None) -> list[ImageResult]:
        """Results worst first: by image mIoU, or by one class's IoU (images without it last)."""
        scores = [r.miou if class_id is None else r.iou[class_id] for r in self.results]
        return [self.results[i] for i in worst_first(scores, [r.index for r in self.results])]


def predict_dataset(
    model: torch.nn.Module,
    dataset: SegmentationDataset,
    *,
    indices: Iterable[int] | None = None,
    flip: bool = False,
    scales: Sequence[float] = (1.0,),
    tile_size: int | None = None,
    batch_size: int = 8,
    progress: ProgressCallback | None = None,
) -> Iterator[ImageResult]:
    """Yield an :class:`ImageResult` per image (in order), batching images of equal size."""
    indices = list(range(len(dataset))) if indices is None else list(indices)
    device = _model_device(model)
    num_classes, ignore_index = dataset.num_classes, dataset.ignore_index
    done = 0
    for chunk in _size_batches(dataset, indices, batch_size):
        samples = [dataset.load(i) for i in chunk]
        batch = images_to_batch([image for image, _ in samples]).to(device)
        probabilities = predict_probabilities(model, batch, flip=flip, scales=scales, tile_size=tile_size)
        confidence, labels = probabilities.max(dim=1)
        labels_np = labels.to(torch.uint8).cpu().numpy()
        targets = np.stack([mask for _, mask in samples])
        scores = per_image_metrics(labels_np, targets, num_classes, ignore_index)
        confidence_np = confidence.cpu().numpy().astype(np.float16)
        for position, index in enumerate(chunk):
            yield ImageResult.from_scores(
                scores,
                position,
                index=index,
                sample_id=dataset.ids[index],
                labels=labels_np[position],
                confidence=confidence_np[position],
            )
        done += len(chunk)
        if progress:
            progress(done, len(indices))


def _size_batches(dataset: SegmentationDataset, indices: list[int], batch_size: int) -> Iterator[list[int]]:
    """Consecutive runs of up to batch_size indices whose images share a size (sizes read lazily)."""
    chunk: list[int] = []
    chunk_size = None
    for index in indices:
        size = _sample_size(dataset, index)
        if chunk and (size != chunk_size or len(chunk) == batch_size):
            yield chunk
            chunk = []
        chunk.append(index)
        chunk_size = size
    if chunk:
        yield chunk


def _sample_size(dataset: SegmentationDataset, index: int) -> tuple[int, int] | None:
    size_of = getattr(dataset, "image_size", None)
    if callable(size_of):
        return tuple(size_of(index))
    return None  # unknown: every image is its own batch unless the dataset tells sizes cheaply


def evaluate_dataset(
    model: torch.nn.Module,
    dataset: SegmentationDataset,
    *,
    flip: bool = False,
    scales: Sequence[float] = (1.0,),
    tile_size: int | None = None,
    batch_size: int = 8,
    progress: ProgressCallback | None = None,
    keep_results: bool = True,
) -> DatasetEvaluation:
    """Predict a whole split: per-image results (for failure ranking) and split-level metrics."""
    matrix = ConfusionMatrix(dataset.num_classes, ignore_index=dataset.ignore_index)
    results = []
    for result in predict_dataset(
        model, dataset, flip=flip, scales=scales, tile_size=tile_size, batch_size=batch_size, progress=progress
    ):
        matrix.merge(ConfusionMatrix.from_matrix(result.confusion, ignore_index=dataset.ignore_index))
        if keep_results:
            results.append(result)
    metrics = matrix.compute(background_index=dataset.label_map.background_index)
    return DatasetEvaluation(results=results, metrics=metrics, class_names=list(dataset.class_names))


# -- pictures ------------------------------------------------------------------------------------------
def preview_strip(
    model: torch.nn.Module, dataset: SegmentationDataset, indices: Iterable[int], device=None
) -> np.ndarray:
    """A grid with one row per image: image | ground truth | prediction (for the live training view)."""
    from seglab.viz import colorize_mask, make_grid

    was_training = model.training
    tiles = []
    for index in indices:
        image, mask = dataset.load(index)
        prediction = predict(model, image, device=device)
        tiles += [image, colorize_mask(mask, dataset.label_map), colorize_mask(prediction.labels, dataset.label_map)]
    model.train(was_training)
    return make_grid(tiles, columns=3)


def save_prediction(
    image: np.ndarray,
    prediction: Prediction,
    label_map: LabelMap,
    out_dir: str | os.PathLike,
    stem: str,
    alpha: float = 0.5,
) -> list[Path]:
    """Write ``<stem>_mask.png`` (colours), ``<stem>_overlay.png`` and ``<stem>_labels.png`` (class ids)."""
    from PIL import Image

    from seglab.viz import colorize_mask, overlay

    out_dir = Path(out_dir)
    colour = colorize_mask(prediction.labels, label_map)
    paths = [out_dir / f"{stem}_mask.png", out_dir / f"{stem}_overlay.png", out_dir / f"{stem}_labels.png"]
    Image.fromarray(colour).save(paths[0])
    Image.fromarray(overlay(image, prediction.labels, label_map, alpha=alpha)).save(paths[1])
    Image.fromarray(prediction.labels.astype(np.uint8), mode="L").save(paths[2])
    return paths


def unique_output_stems(paths: Sequence[Path]) -> list[str]:
    """One output name per input image, distinct even when names repeat across folders.

    ``a/ok.png`` and ``b/ok.jpg`` become ``ok_png`` and ``ok_jpg``; ``a/ok.png`` and ``b/ok.png``
    become ``a_ok_png`` and ``b_ok_png``; a stem used once stays as it is. The same path given
    twice gets ``-2``.
    """

    def candidates(path: Path) -> list[str]:
        folders = [part for part in path.resolve().parent.parts if part not in ("/", "")]
        with_suffix = f"{path.stem}_{path.suffix.lstrip('.')}" if path.suffix else path.stem
        return [path.stem, with_suffix] + [
            "_".join([*folders[-depth:], with_suffix]) for depth in range(1, len(folders) + 1)
        ]

    options = [candidates(Path(path)) for path in paths]
    chosen: list[str] = []
    taken: set[str] = set()
    for position, names in enumerate(options):
        others = [other for index, other in enumerate(options) if index != position]
        name = next(
            (n for level, n in enumerate(names) if all(o[min(level, len(o) - 1)] != n for o in others)), names[-1]
        )
        base, counter = name, 1
        while name in taken:
            counter += 1
            name = f"{base}-{counter}"
        taken.add(name)
        chosen.append(name)
    return chosen


def probability_entropy(probabilities: np.ndarray) -> np.ndarray:
    """(K, H, W) -> (H, W) entropy in nats, a second uncertainty view beside max-softmax."""
    clipped = np.clip(probabilities, 1e-12, 1.0)
    return -(clipped * np.log(clipped)).sum(axis=0) / math.log(max(probabilities.shape[0], 2))


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module, image: np.ndarray, *, device: str | torch.device | None = None
) -> torch.Tensor:
    """Raw logits ``(K, H, W)`` float32 on the CPU for one (H, W, 3) uint8 RGB image (whole image, no TTA).

    What a loss sees in training, so the loss inspector can recompute any loss per pixel.
    """
    model.eval()
    device = torch.device(device) if device is not None else _model_device(model)
    with concurrency.inference_slot():
        return model(image_to_tensor(image).to(device))["out"][0].float().cpu()
