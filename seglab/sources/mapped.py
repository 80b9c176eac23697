"""A prediction source seen in a dataset's classes: the one object analyses and pages consume.

:class:`MappedSource` pairs a :class:`~seglab.sources.base.PredictionSource` with a dataset's label
map and an optional declared mapping, resolves the class mapping once (on the first prediction
when the source's class count is only known then) and returns every prediction already mapped:
labels with "other", confidence, per-dataset-class probabilities. Evaluation, label quality
(probabilities), the loss inspector (log-probabilities as logits) and Inspect's uploads all go
through it, so a mapping is applied the same way everywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from seglab.concurrency import inference_slot
from seglab.data.label_map import LabelMap
from seglab.errors import SourceError
from seglab.sources.base import PredictionSource, SourcePrediction
from seglab.sources.mapping import ClassMapping, DeclaredMapping, MappedPrediction, resolve_mapping


class MappedSource:
    """``source`` in ``label_map``'s classes (see the module docstring)."""

    def __init__(
        self, source: PredictionSource, label_map: LabelMap, mapping: ClassMapping | DeclaredMapping | None = None
    ) -> None:
        self.source, self.label_map, self.declared = source, label_map, mapping
        self._mapping: ClassMapping | None = None
        self._lock = threading.Lock()

    @property
    def has_probabilities(self) -> bool:
        return self.source.has_probabilities

    def describe(self) -> str:
        """The source's one-line description (mapped sources stand in for sources in reports and errors)."""
        return self.source.describe()

    def mapping(self, first: SourcePrediction | None = None) -> ClassMapping:
        """The resolved mapping; ``first`` tells the class count of sources that only know it after predicting."""
        with self._lock:
            if self._mapping is None:
                count = self.source.num_classes
                if count is None and first is not None and first.probabilities is not None:
                    count = first.probabilities.shape[0]
                self._mapping = resolve_mapping(
                    self.source.class_names, count, self.label_map, self.declared, source=self.source.name
                )
            return self._mapping

    def map(self, prediction: SourcePrediction, what: str = "prediction") -> MappedPrediction:
        """One source prediction in the dataset's classes."""
        return self.mapping(prediction).apply(
            prediction.labels, prediction.probabilities, what=f"{self.source.name}: {what}"
        )

    def predict(self, sample_id: str | None, image: np.ndarray) -> MappedPrediction:
        """Predict one image (``sample_id`` None for an upload: model sources only)."""
        with inference_slot():  # sessions of one app server take turns (seglab.concurrency), worker models too
            prediction = self.source.predict(sample_id, image)
        return self.map(prediction, sample_id or "uploaded image")

    def predict_batch(self, sample_ids: Sequence[str | None], images: Sequence[np.ndarray]) -> list[MappedPrediction]:
        with inference_slot():
            predictions = self.source.predict_batch(sample_ids, images)
        return [
            self.map(prediction, sample_id or "image")
            for sample_id, prediction in zip(sample_ids, predictions, strict=True)
        ]

    def log_probabilities(self, sample_id: str | None, image: np.ndarray) -> np.ndarray:
        """(K, H, W) float32 log-probabilities of the dataset classes: logits for the loss views.

        A softmax of them renormalises over the dataset's classes (any "other" mass is left out).
        """
        mapped = self.predict(sample_id, image)
        if mapped.probabilities is None:
            raise SourceError(
                f"{self.source.name} gives labels only: loss and label-quality views need probabilities "
                "(a model file, or .npy/.npz files of probabilities or logits)"
            )
        return np.log(np.clip(mapped.probabilities, 1e-12, None)).astype(np.float32)
