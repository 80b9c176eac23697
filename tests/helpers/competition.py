"""Small builders shared by the competition tests: a tiny Shapes competition, mask zips, checkpoints."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from seglab.competition.competitions import Competition, CompetitionSettings, create_competition
from seglab.competition.store import CompetitionStore
from seglab.competition.teams import TeamToken, add_teams
from seglab.data.label_map import ClassInfo, LabelMap
from seglab.data.shapes import ShapesConfig, ShapesDataset
from seglab.data.spec import DataSpec
from seglab.engine.checkpoint import checkpoint_payload
from seglab.models import build_model
from tests.helpers.paths import ROOT

DEMO_CHECKPOINT = ROOT / "checkpoints" / "shapes-ce" / "best.pt"
SMALL_SHAPES = ShapesConfig(image_size=64, test_size=12, seed=0)
SMALL_SPEC = DataSpec(kind="shapes", split="test", shapes=SMALL_SHAPES)


def make_competition(
    folder: Path, teams: Sequence[str] = ("Alpha", "Beta"), **settings
) -> tuple[CompetitionStore, Competition, list[TeamToken]]:
    """A store in ``folder`` with a competition on 12 Shapes test images at 64 px and the given teams."""
    store = CompetitionStore(folder)
    options = {"name": "cup", "spec": SMALL_SPEC, **settings}
    competition = create_competition(store, CompetitionSettings(**options))
    issued = add_teams(store, competition, list(teams)) if teams else []
    return store, competition, issued


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_bytes(files: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def ground_truth_masks(config: ShapesConfig = SMALL_SHAPES, split: str = "test") -> dict[str, np.ndarray]:
    """The hidden masks by id, void pixels replaced by background (predictions hold classes only)."""
    dataset = ShapesDataset(split, config)
    masks = {}
    for index, sample_id in enumerate(dataset.ids):
        mask = dataset.load(index)[1].copy()
        mask[mask == dataset.ignore_index] = 0
        masks[sample_id] = mask
    return masks


def mask_zip(masks: dict[str, np.ndarray], edit: Callable[[dict[str, bytes]], None] | None = None) -> bytes:
    """A submission zip of ``<id>.png`` masks; ``edit`` may change the file dict before zipping."""
    files = {f"{sample_id}.png": png_bytes(mask) for sample_id, mask in masks.items()}
    if edit is not None:
        edit(files)
    return zip_bytes(files)


def constant_masks(value: int = 0, config: ShapesConfig = SMALL_SHAPES) -> dict[str, np.ndarray]:
    size = config.image_size
    return {f"test-{i:06d}": np.full((size, size), value, np.uint8) for i in range(config.test_size)}


def checkpoint_bytes(names: list[str], model_name: str = "tiny_unet_small") -> bytes:
    """An untrained tiny_unet_small checkpoint for classes ``names``, as uploaded bytes; it claims ``model_name``."""
    label_map = LabelMap(classes=tuple(ClassInfo(i, name, (i * 30, 0, 0)) for i, name in enumerate(names)))
    model = build_model("tiny_unet_small", len(names))
    payload = checkpoint_payload(model=model, config={}, label_map=label_map, step=1, epoch=0)
    payload["model_name"] = model_name
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()
