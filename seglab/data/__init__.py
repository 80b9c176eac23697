"""Datasets, label maps and joint transforms."""

from seglab.data.base import SegmentationDataset
from seglab.data.label_map import ClassInfo, LabelMap, camvid_label_map, shapes_label_map, voc_label_map
from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DATA_KINDS, DataSpec, build_dataset

__all__ = [
    "DATA_KINDS",
    "ClassInfo",
    "DataSpec",
    "LabelMap",
    "SegmentationDataset",
    "ShapesConfig",
    "build_dataset",
    "camvid_label_map",
    "shapes_label_map",
    "voc_label_map",
]
