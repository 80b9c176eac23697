"""A serialisable description of which data to load: what ``config.json``, the CLI and the app share."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from seglab.data.base import SegmentationDataset
from seglab.data.label_map import LabelMap
from seglab.data.shapes import ShapesConfig
from seglab.errors import DatasetError
from seglab.io.names import display_name

DATA_KINDS = ("shapes", "voc", "camvid", "folder")


@dataclass
class DataSpec:
    """Which dataset and split to load.

    ``kind`` picks the layout: ``shapes`` (built-in, no files), ``voc`` (PASCAL VOC-2012 under
    ``root``), ``camvid`` (SegNet CamVid under ``root``) or ``folder`` (``images`` + ``masks``
    folders, optional ``list_file``). ``label_map`` is an optional JSON path overriding the
    layout's built-in classes.
    """

    kind: str = "shapes"
    split: str = "train"
    root: str | None = None
    images: str | None = None
    masks: str | None = None
    list_file: str | None = None
    label_map: str | None = None
    mask_format: str = "auto"  # folder layout: "index", "rgb" or "auto" (decided per file)
    shapes: ShapesConfig = field(default_factory=ShapesConfig)

    def with_split(self, split: str) -> DataSpec:
        """The same data, another split."""
        return replace(self, split=split)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["shapes"] = self.shapes.to_dict()
        if self.kind != "shapes":
            data.pop("shapes")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataSpec:
        data = dict(data)
        unknown = sorted(set(data) - {f for f in cls.__dataclass_fields__})
        if unknown:
            raise DatasetError(f"unknown data option(s): {', '.join(unknown)}")
        shapes = data.pop("shapes", None)
        spec = cls(**data)
        if shapes is not None:
            spec.shapes = shapes if isinstance(shapes, ShapesConfig) else ShapesConfig.from_dict(shapes)
        return spec

    def describe(self) -> str:
        """Short human label, e.g. ``camvid:/data/camvid [val]``."""
        where = self.root or self.images or ""
        return display_name(f"{self.kind}{':' + where if where else ''} [{self.split}]")


def build_dataset(spec: DataSpec) -> SegmentationDataset:
    """Instantiate the dataset a spec describes; raises DatasetError with what is missing."""
    if spec.split and ("/" in spec.split or os.sep in spec.split or spec.split in (".", "..")):
        # VOC and CamVid build file paths from the split name: it must not lead out of the dataset folder
        raise DatasetError(f"split {spec.split!r} is not a split name (one word such as train, val or test)")
    label_map = LabelMap.load(spec.label_map) if spec.label_map else None
    if spec.kind == "shapes":
        from seglab.data.shapes import ShapesDataset

        return ShapesDataset(split=spec.split, config=spec.shapes)
    if spec.kind == "voc":
        from seglab.data.voc import VOCDataset

        return VOCDataset(_required(spec.root, "--root", "the VOC-2012 folder"), split=spec.split, label_map=label_map)
    if spec.kind == "camvid":
        from seglab.data.folder import CamVidDataset

        return CamVidDataset(_required(spec.root, "--root", "the CamVid folder"), split=spec.split, label_map=label_map)
    if spec.kind == "folder":
        from seglab.data.folder import FolderDataset

        return FolderDataset(
            images=_required(spec.images, "--images", "the image folder"),
            masks=_required(spec.masks, "--masks", "the mask folder"),
            list_file=spec.list_file,
            label_map=label_map,
            mask_format=spec.mask_format,
            split=spec.split,
        )
    raise DatasetError(f"unknown dataset kind {spec.kind!r}; choose one of {', '.join(DATA_KINDS)}")


def _required(value: str | None, flag: str, what: str) -> Path:
    if not value:
        raise DatasetError(f"{flag} is required: give the path to {what}")
    return Path(value).expanduser()
