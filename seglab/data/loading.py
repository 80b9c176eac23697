"""Feeding a DataLoader: :class:`AugmentedDataset` (a joint transform per sample, reproducible per
(seed, epoch, index)) and :func:`pad_collate` (batches of different sizes, padding that never counts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from torch.utils.data import Dataset, default_collate

from seglab.data.transforms import TransformFunction
from seglab.errors import ConfigError

__all__ = ["AugmentedDataset", "pad_collate"]


class AugmentedDataset(Dataset):
    """Apply a joint transform to every sample of a :class:`~seglab.data.base.SegmentationDataset`.

    Sample ``i`` of epoch ``e`` is transformed with ``np.random.default_rng([seed, e, i])``, so an
    augmentation depends only on (seed, epoch, index), never on DataLoader workers or their order.
    Call :meth:`set_epoch` before iterating each epoch. Trap: with ``persistent_workers=True`` the
    workers keep their own copy and never see the new epoch; leave it off (the default) or build a
    fresh loader per epoch.

    ``dataset[i]`` returns ``(image, mask)``, or ``(image, mask, i)`` with ``return_index=True`` (to
    attribute per-image metrics back to ``ids[i]``).
    """

    def __init__(
        self, dataset: Any, transform: TransformFunction, *, seed: int = 0, return_index: bool = False
    ) -> None:
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"augmentation seed must be a non-negative integer, got {seed!r}")
        self.dataset = dataset
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0
        self.return_index = return_index

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch`` (a non-negative integer)."""
        if not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ConfigError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        index = range(len(self))[index]  # IndexError when out of range; negative indices wrap
        image, mask = self.dataset[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        image, mask = self.transform(image, mask, rng)
        return (image, mask, index) if self.return_index else (image, mask)

    # pass-through of the wrapped dataset's description
    @property
    def label_map(self) -> Any:
        return self.dataset.label_map

    @property
    def ignore_index(self) -> int:
        return self.dataset.ignore_index

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    @property
    def ids(self) -> list[str]:
        return self.dataset.ids

    def __repr__(self) -> str:
        return (
            f"AugmentedDataset({self.dataset!r}, seed={self.seed}, epoch={self.epoch}, "
            f"return_index={self.return_index},\n transform={self.transform!r})"
        )


def pad_collate(ignore_index: int) -> Callable[[list[tuple]], tuple]:
    """A DataLoader ``collate_fn`` that stacks samples of different sizes.

    Images are padded bottom/right with 0 (the normalised mean) and masks with ``ignore_index``, so
    the padding never counts in a loss or a metric. Extra items (e.g. the index from
    ``return_index=True``) are collated with torch's default rules.
    """

    def collate(samples: list[tuple]) -> tuple:
        images = [sample[0] for sample in samples]
        masks = [sample[1] for sample in samples]
        height = max(image.shape[-2] for image in images)
        width = max(image.shape[-1] for image in images)
        image_batch = images[0].new_zeros((len(images), images[0].shape[0], height, width))
        mask_batch = masks[0].new_full((len(masks), height, width), ignore_index)
        for position, (image, mask) in enumerate(zip(images, masks)):
            image_batch[position, :, : image.shape[-2], : image.shape[-1]] = image
            mask_batch[position, : mask.shape[-2], : mask.shape[-1]] = mask
        rest = [default_collate([sample[i] for sample in samples]) for i in range(2, len(samples[0]))]
        return (image_batch, mask_batch, *rest)

    return collate
