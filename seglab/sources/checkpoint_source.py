"""A seglab checkpoint as a prediction source: the existing predict path, batched, with its TTA options.

Loading is safe (``torch.load(weights_only=True)``) and in-process: a checkpoint holds only tensors
and plain values, and the architecture is seglab's own code. The cache identity is exactly the one
:func:`seglab.engine.evaluation.evaluate_checkpoint` always used (file SHA-256 + protocol), so existing
evaluation caches stay valid.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seglab.engine.checkpoint import Checkpoint, load_checkpoint
from seglab.engine.evaluation import Protocol, file_sha256
from seglab.engine.predict import images_to_batch, predict_probabilities
from seglab.sources.base import PredictionSource, SourcePrediction

DEFAULT_PROTOCOL = Protocol()


class CheckpointSource(PredictionSource):
    """Predictions of a seglab ``.pt`` checkpoint (or run folder) under an evaluation
    :class:`~seglab.engine.evaluation.Protocol`."""

    kind = "checkpoint"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        protocol: Protocol = DEFAULT_PROTOCOL,
        device: str = "cpu",
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self._checkpoint = checkpoint
        path = Path(path)
        if path.is_dir():
            path = next((c for c in (path / "best.pt", path / "last.pt") if c.is_file()), path / "best.pt")
        self.path = path
        self.name = f"{path.parent.name}/{path.name}"
        self.protocol, self.device = protocol, device
        self._model: torch.nn.Module | None = None

    @property
    def checkpoint(self) -> Checkpoint:
        """The loaded checkpoint (read on first use)."""
        if self._checkpoint is None:
            self._checkpoint = load_checkpoint(self.path)
        return self._checkpoint

    @property
    def model(self) -> torch.nn.Module:
        if self._model is None:  # channels_last: the trainer's layout, convolutions about 1.3-2.5x faster on CPU
            self._model = self.checkpoint.build_model(self.device).to(memory_format=torch.channels_last)
        return self._model

    @property
    def class_names(self) -> list[str]:
        return list(self.checkpoint.label_map.names)

    def content_hash(self) -> str:
        return file_sha256(self.path)

    def settings(self) -> dict[str, Any]:
        return {"kind": self.kind, "protocol": self.protocol.key()}

    def settings_key(self) -> str:
        return self.protocol.key()  # what the evaluation cache was always keyed by

    def describe(self) -> str:
        return f"checkpoint {self.name}: {self.checkpoint.describe()}, {self.protocol.describe()}"

    def predict(self, sample_id: str | None, image: np.ndarray) -> SourcePrediction:
        return self.predict_batch([sample_id], [image])[0]

    def predict_batch(self, sample_ids: Sequence[str | None], images: Sequence[np.ndarray]) -> list[SourcePrediction]:
        device = next(self.model.parameters()).device
        batch = images_to_batch(images).to(device)
        probabilities = predict_probabilities(
            self.model, batch, flip=self.protocol.flip, scales=self.protocol.scales, tile_size=self.protocol.tile_size
        )
        _, labels = probabilities.max(dim=1)
        labels_np = labels.to(torch.uint8).cpu().numpy()
        probabilities_np = probabilities.contiguous().cpu().numpy()  # (K, H, W) planes for the scorers
        return [SourcePrediction(labels_np[i], probabilities_np[i]) for i in range(len(images))]

    def close(self) -> None:
        self._model = None
