"""Tiny untrained seglab checkpoints on disk, for tests that need a model but not a trained one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from seglab.data.label_map import LabelMap, shapes_label_map
from seglab.engine.checkpoint import checkpoint_payload, save_checkpoint
from seglab.engine.config import TrainConfig


def write_tiny_checkpoint(
    path: str | os.PathLike,
    *,
    name: str = "tiny_unet_small",
    options: dict[str, Any] | None = None,
    label_map: LabelMap | None = None,
    config: dict[str, Any] | None = None,
    seed: int = 0,
) -> Path:
    """An untrained seglab checkpoint (random weights from ``seed``) for ``label_map`` (default: Shapes)."""
    from seglab.models import build_model

    label_map = label_map or shapes_label_map()
    torch.manual_seed(seed)
    model = build_model(name, label_map.num_classes, **(options or {})).eval()
    payload = checkpoint_payload(
        model=model, config=config or TrainConfig().to_dict(), label_map=label_map, step=0, epoch=0
    )
    return save_checkpoint(payload, path)
