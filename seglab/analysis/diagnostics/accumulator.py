"""All diagnostics of an evaluation, gathered image by image in the evaluation's own pass.

:class:`DiagnosticsAccumulator` takes each image's prediction, confidence and mask as the evaluation
produces them and keeps only small per-image records (objects, boundary counts, calibration bins),
so nothing is predicted twice and the result fits in the evaluation cache.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from seglab.analysis.diagnostics.boundary import BF_RATIO, BOUNDARY_IOU_RATIO, band_width, boundary_counts, boundary_f1
from seglab.analysis.diagnostics.calibration import (
    CONFIDENCE_BINS,
    WRONG_BINS,
    calibration_counts,
    wrong_confidence_histogram,
)
from seglab.analysis.diagnostics.objects import BlobTable, ObjectTable, find_objects

__all__ = ["FORMAT_VERSION", "BackgroundDiagnostics", "Diagnostics", "DiagnosticsAccumulator"]

FORMAT_VERSION = 1  # of the arrays below; a cache holding another version recomputes them


@dataclass
class Diagnostics:
    """The raw material of every diagnostic of one evaluated split
    (summarised by :mod:`seglab.analysis.diagnostics.report`)."""

    num_classes: int
    objects: ObjectTable
    blobs: BlobTable
    boundary: np.ndarray  # (3, K) summed Boundary IoU counts: intersection, ground-truth band, predicted band
    bf: np.ndarray  # (N, K) BF score per image and class, NaN where the class is in neither
    calibration: np.ndarray  # (K + 1, 16, 3) pixels, summed confidence, correct pixels per predicted class and bin
    wrong: np.ndarray  # (N, 20) wrong pixels per image and confidence bin of 0.05
    brightness: np.ndarray  # (N,) mean image intensity, 0..255
    widths: np.ndarray  # (N, 2) Boundary IoU band and BF tolerance in pixels per image
    has_probabilities: bool = True

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for an ``np.savez`` archive (prefixed ``diag_``), loadable with :meth:`from_arrays`."""
        return {
            "diag_version": np.array([FORMAT_VERSION, self.num_classes, int(self.has_probabilities)], np.int64),
            **self.objects.to_arrays("diag_object_"),
            **self.blobs.to_arrays("diag_blob_"),
            "diag_boundary": self.boundary,
            "diag_bf": self.bf,
            "diag_calibration": self.calibration,
            "diag_wrong": self.wrong,
            "diag_brightness": self.brightness,
            "diag_widths": self.widths,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], num_images: int) -> Diagnostics | None:
        """The diagnostics stored by :meth:`to_arrays`; ``None`` when absent, of another version or inconsistent."""
        try:
            version, num_classes, has_probabilities = (int(v) for v in arrays["diag_version"])
            loaded = cls(
                num_classes=num_classes,
                objects=ObjectTable.from_arrays(arrays, "diag_object_"),
                blobs=BlobTable.from_arrays(arrays, "diag_blob_"),
                boundary=np.asarray(arrays["diag_boundary"], np.int64),
                bf=np.asarray(arrays["diag_bf"], np.float64),
                calibration=np.asarray(arrays["diag_calibration"], np.float64),
                wrong=np.asarray(arrays["diag_wrong"], np.int64),
                brightness=np.asarray(arrays["diag_brightness"], np.float64),
                widths=np.asarray(arrays["diag_widths"], np.int64),
                has_probabilities=bool(has_probabilities),
            )
        except (KeyError, ValueError, TypeError):
            return None
        expected = {
            "boundary": (3, num_classes),
            "bf": (num_images, num_classes),
            "calibration": (num_classes + 1, CONFIDENCE_BINS + 1, 3),
            "wrong": (num_images, WRONG_BINS),
            "brightness": (num_images,),
            "widths": (num_images, 2),
        }
        shapes_ok = all(getattr(loaded, name).shape == shape for name, shape in expected.items())
        return loaded if version == FORMAT_VERSION and shapes_ok else None


@dataclass
class DiagnosticsAccumulator:
    """Collects :class:`Diagnostics` one image at a time (call :meth:`add` in the evaluation's order)."""

    num_classes: int
    ignore_index: int
    has_probabilities: bool = True
    boundary_ratio: float = BOUNDARY_IOU_RATIO
    bf_ratio: float = BF_RATIO
    _objects: list[ObjectTable] = field(default_factory=list)
    _blobs: list[BlobTable] = field(default_factory=list)
    _bf: list[np.ndarray] = field(default_factory=list)
    _wrong: list[np.ndarray] = field(default_factory=list)
    _brightness: list[float] = field(default_factory=list)
    _widths: list[tuple[int, int]] = field(default_factory=list)
    _boundary: np.ndarray = field(init=False)
    _calibration: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self._boundary = np.zeros((3, self.num_classes), np.int64)
        self._calibration = np.zeros((self.num_classes + 1, CONFIDENCE_BINS + 1, 3), np.float64)

    def add(self, image: np.ndarray | None, pred: np.ndarray, target: np.ndarray, confidence: np.ndarray) -> None:
        """Record one image: its (H, W[, 3]) pixels (for brightness; None: unknown), labels, mask and confidence."""
        position = len(self._bf)
        k, ignore = self.num_classes, self.ignore_index
        band, tolerance = band_width(target.shape, self.boundary_ratio), band_width(target.shape, self.bf_ratio)
        objects, blobs = find_objects(pred, target, k, ignore, image=position)
        self._objects.append(objects)
        self._blobs.append(blobs)
        self._boundary += boundary_counts(pred, target, k, ignore, band)
        self._bf.append(boundary_f1(pred, target, k, ignore, tolerance))
        if self.has_probabilities:
            self._calibration += calibration_counts(pred, target, confidence, k, ignore)
            self._wrong.append(wrong_confidence_histogram(pred, target, confidence, ignore))
        else:
            self._wrong.append(np.zeros(WRONG_BINS, np.int64))
        self._brightness.append(float(np.mean(image)) if image is not None else float("nan"))
        self._widths.append((band, tolerance))

    def result(self) -> Diagnostics:
        """Everything recorded so far."""
        n = len(self._bf)
        return Diagnostics(
            num_classes=self.num_classes,
            objects=ObjectTable.concatenate(self._objects),
            blobs=BlobTable.concatenate(self._blobs),
            boundary=self._boundary.copy(),
            bf=np.stack(self._bf) if n else np.zeros((0, self.num_classes)),
            calibration=self._calibration.copy(),
            wrong=np.stack(self._wrong) if n else np.zeros((0, WRONG_BINS), np.int64),
            brightness=np.array(self._brightness, np.float64),
            widths=np.array(self._widths, np.int64).reshape(n, 2),
            has_probabilities=self.has_probabilities,
        )


class BackgroundDiagnostics:
    """Feeds a :class:`DiagnosticsAccumulator` from one background thread, in order, so the diagnostics of a
    batch overlap the prediction of the next (OpenCV and numpy release the GIL). At most ``max_pending``
    batches wait, which bounds the memory held. Use as a context manager; errors surface at :meth:`result`."""

    def __init__(self, accumulator: DiagnosticsAccumulator | None, max_pending: int = 2) -> None:
        self.accumulator = accumulator
        self._max_pending = max_pending
        self._pending: deque[Future] = deque()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seglab-diagnostics")

    def __enter__(self) -> BackgroundDiagnostics:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for future in self._pending:
            future.cancel()
        self._executor.shutdown(wait=True)

    def add_batch(self, images: list, preds: list, masks: list, confidences: list) -> None:
        """Queue one batch of images (or ``None`` each), labels, masks and confidences."""
        if self.accumulator is None:
            return
        add = self.accumulator.add

        def run() -> None:
            for image, pred, mask, confidence in zip(images, preds, masks, confidences, strict=True):
                add(image, pred, mask, confidence)

        self._pending.append(self._executor.submit(run))
        while len(self._pending) > self._max_pending:
            self._pending.popleft().result()

    def result(self) -> Diagnostics | None:
        """Everything queued, once processed (``None`` without an accumulator)."""
        while self._pending:
            self._pending.popleft().result()
        return self.accumulator.result() if self.accumulator is not None else None
