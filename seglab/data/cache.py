"""Keep decoded samples of a small dataset in memory, so epochs after the first skip decoding."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from seglab.data.base import SegmentationDataset

DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB: CamVid train (367 x 480x360) needs ~250 MB


class MemoryCachedDataset(Dataset):
    """Wraps a dataset; caches ``load(i)`` results while the total stays under ``max_bytes``.

    Attributes of the wrapped dataset (``label_map``, ``ids``, ``ignore_index``...) pass through.
    Each DataLoader worker process holds its own cache, so this pays off with ``num_workers=0``
    or persistent workers.
    """

    def __init__(self, dataset: SegmentationDataset, max_bytes: int = DEFAULT_MAX_BYTES):
        self.dataset = dataset
        self.max_bytes = max_bytes
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str):
        if name == "dataset":  # not yet set (e.g. during unpickling): avoid infinite recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        sample = self._cache.get(index)
        if sample is None:
            sample = self.dataset.load(index)
            size = sample[0].nbytes + sample[1].nbytes
            if self._bytes + size <= self.max_bytes:
                self._cache[index] = sample
                self._bytes += size
        return sample

    def load_mask(self, index: int) -> np.ndarray:
        sample = self._cache.get(index)
        return sample[1] if sample is not None else self.dataset.load_mask(index)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.load(index)
