"""The contract every seglab dataset follows."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from seglab.data.label_map import LabelMap


class SegmentationDataset(Dataset):
    """A split of images and masks, before any transform.

    ``dataset[i]`` and ``dataset.load(i)`` return ``(image, mask)``: ``image`` is (H, W, 3) uint8
    RGB, ``mask`` is (H, W) uint8 class indices where ``label_map.ignore_index`` marks void pixels.
    Subclasses set ``label_map`` and ``ids`` (stable, human-readable sample ids) and implement
    :meth:`load` and :meth:`fingerprint_parts`.
    """

    label_map: LabelMap
    ids: list[str]
    split: str = "train"
    kind: str = "custom"

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.load(index)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(image, mask)`` for sample ``index``; raise DatasetError naming the file on bad data."""
        raise NotImplementedError

    def load_mask(self, index: int) -> np.ndarray:
        """Only the mask of sample ``index`` (statistics, Failures); layouts that can skip the image override this."""
        return self.load(index)[1]

    @property
    def num_classes(self) -> int:
        return self.label_map.num_classes

    @property
    def ignore_index(self) -> int:
        return self.label_map.ignore_index

    @property
    def class_names(self) -> list[str]:
        return self.label_map.names

    def index_of(self, sample_id: str) -> int:
        """Position of a sample id (raises KeyError with the id when unknown)."""
        try:
            return self.ids.index(sample_id)
        except ValueError:
            raise KeyError(f"no sample {sample_id!r} in {self.kind}/{self.split}") from None

    def fingerprint_parts(self) -> Any:
        """JSON-serialisable description that changes whenever the data would change."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """Hash of :meth:`fingerprint_parts` and the label map; keys on-disk caches."""
        payload = json.dumps(
            {
                "kind": self.kind,
                "split": self.split,
                "parts": self.fingerprint_parts(),
                "labels": self.label_map.to_dict(),
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:24]

    def describe(self) -> str:
        """One line for logs and the app: kind, split, size and classes."""
        return f"{self.kind}/{self.split}: {len(self)} images, {self.num_classes} classes"

    def notes(self) -> list[str]:
        """What a user should know about how the files were read: images without masks skipped, mask
        colours not in the label map read as void, a guessed label map. What ``seglab stats``,
        ``seglab eval`` and the app report; empty for data that needs no remark."""
        return []
