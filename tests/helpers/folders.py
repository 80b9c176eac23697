"""Builders of image+mask folders on disk: a small pets folder with index/colour masks, a mini CamVid, photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from seglab.data.label_map import ClassInfo, LabelMap
from seglab.data.spec import DataSpec

HEIGHT, WIDTH = 6, 8
PETS = LabelMap(
    classes=(ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "cat", (255, 0, 0)), ClassInfo(2, "dog", (0, 0, 255))),
    ignore_index=255,
    ignore_color=(255, 255, 255),
    name="pets",
)


def mask_values(seed: int) -> np.ndarray:
    """A small index mask with background, cat, dog and one void pixel; ``seed`` shifts the cat."""
    values = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    values[1:3, seed % 4 : 6] = 1
    values[4:, :3] = 2
    values[0, 0] = 255
    return values


def write_image(path: Path, seed: int = 0) -> None:
    """A flat grey HEIGHT x WIDTH RGB image whose shade follows ``seed``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((HEIGHT, WIDTH, 3), 30 * seed % 256, dtype=np.uint8)).save(path)


def write_index_mask(path: Path, values: np.ndarray) -> None:
    """``values`` as a single-channel (index) PNG mask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values, mode="L").save(path)


def write_colour_mask(path: Path, values: np.ndarray) -> None:
    """``values`` as an RGB mask in the PETS palette."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(PETS.palette()[values]).save(path)


def write_mini_camvid(root: Path, splits: tuple[str, ...] = ("train", "val")) -> Path:
    """A three-frame SegNet-layout CamVid folder per split (images, ``<split>annot`` masks, list files)."""
    for split in splits:
        names = [f"0001TP_00{index}.png" for index in range(3)]
        for seed, name in enumerate(names):
            write_image(root / split / name, seed)
            values = mask_values(seed)
            values[values == 255] = 11  # CamVid's void
            write_index_mask(root / f"{split}annot" / name, values)
        lines = [f"/SegNet/CamVid/{split}/{name} /SegNet/CamVid/{split}annot/{name}\n" for name in reversed(names)]
        (root / f"{split}.txt").write_text("".join(lines))
    return root


def write_photo_folder(root: Path) -> DataSpec:
    """Three 480x360 noise 'photos' (``root/images``) with two classes, one thin and rare (``root/masks``).

    Photo-sized data is what makes seglab choose its photo recipe (crop size, class weights, rare-class crops).
    """
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        Image.fromarray(rng.integers(0, 255, (360, 480, 3), dtype=np.uint8)).save(images / f"{index}.png")
        mask = np.zeros((360, 480), np.uint8)
        mask[100:110, 200:400] = 1  # a thin, rare class
        Image.fromarray(mask).save(masks / f"{index}.png")
    return DataSpec(kind="folder", images=str(images), masks=str(masks))


def custom_folder_spec(root: Path) -> DataSpec:
    """The folder dataset at ``root`` (``images/``, ``masks/``, ``labels.json``), every image in one custom split."""
    return DataSpec(
        kind="folder",
        split="custom",
        images=str(root / "images"),
        masks=str(root / "masks"),
        label_map=str(root / "labels.json"),
    )
