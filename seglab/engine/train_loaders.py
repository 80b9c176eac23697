"""The DataLoaders a training run reads: the augmented, shuffled training split and the validation split.

Both wrap the dataset in :class:`~seglab.data.cache.MemoryCachedDataset` and
:class:`~seglab.data.loading.AugmentedDataset` (one augmentation per (seed, epoch, index)); under torchrun each
process reads its own shard (:mod:`seglab.engine.distributed`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from seglab.data.base import SegmentationDataset
from seglab.data.cache import MemoryCachedDataset
from seglab.data.loading import AugmentedDataset, pad_collate
from seglab.data.presets import eval_transform, train_transform
from seglab.engine import distributed
from seglab.engine.config import TrainConfig
from seglab.engine.recipe import drops_last_batch


class TrainLoader(NamedTuple):
    """The training DataLoader with what must hear of each new epoch: the augmentation and, under DDP, the sampler."""

    loader: DataLoader
    augmented: AugmentedDataset
    sampler: DistributedSampler | None


def train_loader(
    config: TrainConfig,
    dataset: SegmentationDataset,
    world: distributed.World,
    device: torch.device,
    class_focus: np.ndarray | None,
) -> TrainLoader:
    """Random scale, crop (centred on rare classes by ``class_focus``), flips and colour; shuffled each epoch."""
    ignore_index = dataset.label_map.ignore_index
    transform = train_transform(
        crop_size=config.crop_size or None,
        scale_range=(config.scale_min, config.scale_max),
        hflip=config.hflip,
        vflip=config.vflip,
        color_jitter=config.color_jitter,
        class_focus=class_focus,
        focus_probability=config.rare_class_crops,
        ignore_index=ignore_index,
    )
    data = AugmentedDataset(MemoryCachedDataset(dataset), transform, seed=config.seed)
    sampler = distributed.train_sampler(data, world, config.seed) if world.distributed else None
    images_per_process = len(sampler) if sampler is not None else len(data)
    loader = DataLoader(
        data,
        batch_size=config.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        drop_last=drops_last_batch(images_per_process, config.batch_size),
        num_workers=config.num_workers,
        generator=torch.Generator().manual_seed(config.seed),
        collate_fn=pad_collate(ignore_index),
        pin_memory=device.type == "cuda",
        persistent_workers=False,  # workers must see set_epoch() every epoch
    )
    return TrainLoader(loader, data, sampler)


def eval_loader(config: TrainConfig, dataset: SegmentationDataset, world: distributed.World) -> DataLoader:
    """The validation split as it is, in order; under DDP this process's shard."""
    # No padding to a multiple of the stride: every model takes any size, and seglab.engine.predict (eval,
    # Inspect, Leaderboard) feeds images as they are, so the validation mIoU logged here is the same number.
    transform = eval_transform(pad_multiple=1, ignore_index=dataset.ignore_index)
    data = AugmentedDataset(MemoryCachedDataset(dataset), transform, seed=0)
    shard = distributed.ShardSampler(len(data), world.rank, world.size) if world.distributed else None
    return DataLoader(
        data,
        batch_size=config.batch_size,
        shuffle=False,
        sampler=shard,
        num_workers=config.num_workers,
        collate_fn=pad_collate(dataset.ignore_index),
    )
