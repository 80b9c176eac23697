"""Label maps: class ids, names, colours and the ignore index.

A label map is the seed's ``label_map.json``. It is loaded and validated with clear errors, written
next to every run, and used to colourise masks and to decode RGB colour-coded masks.

JSON format (``background_index`` and ``ignore_color`` are optional)::

    {
      "name": "camvid",
      "ignore_index": 11,
      "ignore_color": [0, 0, 0],
      "background_index": null,
      "classes": [{"id": 0, "name": "Sky", "color": [128, 128, 128]}, ...]
    }
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seglab.errors import LabelMapError
from seglab.io.atomic_files import write_json_atomic

DEFAULT_IGNORE_INDEX = 255
DEFAULT_IGNORE_COLOR = (255, 255, 255)
#: How every message names the place to give a label map, in words for both the app and the CLI.
LABEL_MAP_HINT = "a label map JSON file ('Label map JSON' on the app's Home page, --label-map on the command line)"

Color = tuple[int, int, int]


@dataclass(frozen=True)
class ClassInfo:
    """One class: its id (the value stored in masks), display name and RGB colour."""

    id: int
    name: str
    color: Color


@dataclass(frozen=True)
class LabelMap:
    """Classes ``0..K-1`` plus the ignore (void) index, which is never a class.

    ``background_index`` names the class that "without background" metrics drop and that the error
    map uses to tell a *missed* object from a *false alarm*; ``None`` when the dataset has no
    background class (CamVid).
    """

    classes: tuple[ClassInfo, ...]
    ignore_index: int = DEFAULT_IGNORE_INDEX
    ignore_color: Color = DEFAULT_IGNORE_COLOR
    background_index: int | None = 0
    name: str = "custom"

    def __post_init__(self) -> None:
        _validate(self)

    # -- views -------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def colors(self) -> np.ndarray:
        """(K, 3) uint8 class colours."""
        return np.array([c.color for c in self.classes], dtype=np.uint8).reshape(-1, 3)

    def palette(self) -> np.ndarray:
        """(256, 3) uint8 lookup table: ``palette()[mask]`` colourises a uint8 mask.

        Class ids get their colour, the ignore index its own colour, any other value black.
        """
        table = np.zeros((256, 3), dtype=np.uint8)
        table[: self.num_classes] = self.colors
        if 0 <= self.ignore_index < 256:
            table[self.ignore_index] = self.ignore_color
        return table

    def class_name(self, class_id: int) -> str:
        """Name of a class id, ``"void"`` for the ignore index."""
        if class_id == self.ignore_index:
            return "void"
        if 0 <= class_id < self.num_classes:
            return self.classes[class_id].name
        return f"unknown({class_id})"

    def foreground_ids(self) -> list[int]:
        """Class ids without the background class."""
        return [c.id for c in self.classes if c.id != self.background_index]

    # -- decoding ----------------------------------------------------------------------------
    def encode_rgb(self, rgb: np.ndarray) -> tuple[np.ndarray, int]:
        """Map an (H, W, 3) colour-coded mask to class indices.

        Returns ``(mask, unknown_pixels)``: colours not in the map (and the ignore colour) become
        the ignore index; ``unknown_pixels`` counts the pixels whose colour was not in the map at
        all, so callers can report them.
        """
        if rgb.ndim != 3 or rgb.shape[2] < 3:
            raise ValueError(f"expected an (H, W, 3) colour mask, got shape {rgb.shape}")
        rgb = rgb[..., :3].astype(np.int64)
        keys = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        lookup_keys = self.colors.astype(np.int64)
        lookup_keys = (lookup_keys[:, 0] << 16) | (lookup_keys[:, 1] << 8) | lookup_keys[:, 2]
        order = np.argsort(lookup_keys)
        sorted_keys = lookup_keys[order]
        position = np.clip(np.searchsorted(sorted_keys, keys), 0, len(sorted_keys) - 1)
        known = sorted_keys[position] == keys
        mask = np.full(keys.shape, self.ignore_index, dtype=np.uint8)
        mask[known] = order[position[known]]
        ignore_key = (self.ignore_color[0] << 16) | (self.ignore_color[1] << 8) | self.ignore_color[2]
        unknown = int(np.count_nonzero(~known & (keys != ignore_key)))
        return mask, unknown

    def invalid_values(self, mask: np.ndarray) -> list[int]:
        """Sorted label values in ``mask`` that are neither a class id nor the ignore index."""
        values = np.unique(mask)
        bad = values[(values >= self.num_classes) & (values != self.ignore_index)]
        bad = np.concatenate([values[values < 0], bad])
        return [int(v) for v in bad]

    # -- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ignore_index": self.ignore_index,
            "ignore_color": list(self.ignore_color),
            "background_index": self.background_index,
            "classes": [{"id": c.id, "name": c.name, "color": list(c.color)} for c in self.classes],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "label map") -> LabelMap:
        """Build from the JSON structure; raises :class:`LabelMapError` naming ``source``."""
        if isinstance(data, list):
            data = {"classes": data}
        if not isinstance(data, dict) or "classes" not in data:
            raise LabelMapError(f"{source}: expected an object with a 'classes' list")
        raw_classes = data["classes"]
        if not isinstance(raw_classes, list) or not raw_classes:
            raise LabelMapError(f"{source}: 'classes' must be a non-empty list")
        classes = []
        for position, entry in enumerate(raw_classes):
            if not isinstance(entry, dict):
                raise LabelMapError(f"{source}: class #{position} must be an object with id, name, color")
            missing = [key for key in ("id", "name", "color") if key not in entry]
            if missing:
                raise LabelMapError(f"{source}: class #{position} is missing {', '.join(missing)}")
            classes.append(
                ClassInfo(
                    id=_as_int(entry["id"], f"{source}: class #{position} id"),
                    name=str(entry["name"]),
                    color=_as_color(entry["color"], f"{source}: class {entry['name']!r} color"),
                )
            )
        classes.sort(key=lambda c: c.id)
        ignore_index = _as_int(data.get("ignore_index", DEFAULT_IGNORE_INDEX), f"{source}: ignore_index")
        ignore_color = _as_color(data.get("ignore_color", DEFAULT_IGNORE_COLOR), f"{source}: ignore_color")
        background = data.get("background_index", 0 if classes[0].name.lower() in {"background", "bg"} else None)
        if background is not None:
            background = _as_int(background, f"{source}: background_index")
        try:
            return cls(
                classes=tuple(classes),
                ignore_index=ignore_index,
                ignore_color=ignore_color,
                background_index=background,
                name=str(data.get("name", "custom")),
            )
        except LabelMapError as error:
            raise LabelMapError(f"{source}: {error}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> LabelMap:
        """Read and validate a label map JSON file."""
        path = Path(path)
        if not path.is_file():
            raise LabelMapError(f"label map {path} does not exist (pass --label-map with a JSON file)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise LabelMapError(f"label map {path} is not valid JSON: {error}") from None
        return cls.from_dict(data, source=str(path))

    def save(self, path: str | os.PathLike) -> None:
        """Write the label map as JSON atomically."""
        write_json_atomic(path, self.to_dict())


def label_map_example() -> str:
    """A short, valid label-map JSON text to show people who have to write one."""
    example = LabelMap(
        classes=(
            ClassInfo(0, "background", (0, 0, 0)),
            ClassInfo(1, "road", (128, 64, 128)),
            ClassInfo(2, "car", (64, 0, 128)),
        ),
        ignore_index=DEFAULT_IGNORE_INDEX,
        name="my-data",
        background_index=0,
    )
    data = example.to_dict()
    classes = data.pop("classes")
    head = [f'  "{key}": {json.dumps(value)},' for key, value in data.items()]
    rows = ",\n".join(f"    {json.dumps(item)}" for item in classes)
    return "{\n" + "\n".join(head) + '\n  "classes": [\n' + rows + "\n  ]\n}"


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise LabelMapError(f"{what} must be an integer, got {value!r}")
    return int(value)


def _as_color(value: Any, what: str) -> Color:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 3
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)
    ):
        raise LabelMapError(f"{what} must be three integers 0-255, got {value!r}")
    return (int(value[0]), int(value[1]), int(value[2]))


def _validate(label_map: LabelMap) -> None:
    ids = [c.id for c in label_map.classes]
    if not ids:
        raise LabelMapError("a label map needs at least one class")
    if ids != list(range(len(ids))):
        raise LabelMapError(f"class ids must be 0..{len(ids) - 1} without gaps or repeats, got {ids}")
    if len(ids) > 255:
        raise LabelMapError(f"at most 255 classes are supported, got {len(ids)}")
    names = [c.name for c in label_map.classes]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise LabelMapError(f"class names must be unique, repeated: {', '.join(repeated)}")
    for info in label_map.classes:
        _as_color(info.color, f"class {info.name!r} color")
    _as_color(label_map.ignore_color, "ignore_color")
    colors = [tuple(c.color) for c in label_map.classes]
    repeated_colors = sorted({c for c in colors if colors.count(c) > 1})
    if repeated_colors:
        raise LabelMapError(
            f"class colours must be unique (RGB masks are decoded by colour), repeated: {repeated_colors}"
        )
    if not 0 <= label_map.ignore_index <= 255:
        raise LabelMapError(f"ignore_index must be 0-255, got {label_map.ignore_index}")
    if label_map.ignore_index in ids:
        raise LabelMapError(
            f"ignore_index {label_map.ignore_index} is also a class id; void is never a class "
            "(use 255, or a value above the last class id)"
        )
    if tuple(label_map.ignore_color) in colors:
        owner = label_map.classes[colors.index(tuple(label_map.ignore_color))].name
        raise LabelMapError(
            f"ignore_color {tuple(label_map.ignore_color)} is also the colour of class {owner!r}, so void could not "
            "be told apart from it in RGB masks or pictures; set ignore_color to a colour no class uses"
        )
    if label_map.background_index is not None and label_map.background_index not in ids:
        raise LabelMapError(f"background_index {label_map.background_index} is not a class id")


def _voc_palette(count: int) -> list[Color]:
    """The official PASCAL VOC colour map (bit-interleaved class ids)."""
    colors = []
    for class_id in range(count):
        red = green = blue = 0
        value = class_id
        for shift in range(7, -1, -1):
            red |= ((value >> 0) & 1) << shift
            green |= ((value >> 1) & 1) << shift
            blue |= ((value >> 2) & 1) << shift
            value >>= 3
        colors.append((red, green, blue))
    return colors


VOC_CLASS_NAMES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)

CAMVID_CLASSES = (
    ("Sky", (128, 128, 128)),
    ("Building", (128, 0, 0)),
    ("Pole", (192, 192, 128)),
    ("Road", (128, 64, 128)),
    ("Pavement", (60, 40, 222)),
    ("Tree", (128, 128, 0)),
    ("SignSymbol", (192, 128, 128)),
    ("Fence", (64, 64, 128)),
    ("Car", (64, 0, 128)),
    ("Pedestrian", (64, 64, 0)),
    ("Bicyclist", (0, 128, 192)),
)

SHAPES_CLASSES = (
    ("background", (20, 20, 20)),
    ("circle", (230, 25, 75)),
    ("square", (60, 180, 75)),
    ("triangle", (255, 225, 25)),
    ("star", (0, 130, 200)),
    ("ring", (245, 130, 48)),
    ("stripe", (145, 30, 180)),
)


def voc_label_map() -> LabelMap:
    """The 21 PASCAL VOC classes with the official palette; void = 255 drawn in (224, 224, 192)."""
    palette = _voc_palette(len(VOC_CLASS_NAMES))
    return LabelMap(
        classes=tuple(ClassInfo(i, name, palette[i]) for i, name in enumerate(VOC_CLASS_NAMES)),
        ignore_index=255,
        ignore_color=(224, 224, 192),
        background_index=0,
        name="voc",
    )


def camvid_label_map() -> LabelMap:
    """CamVid's 11 classes (SegNet version); mask value 11 is void and is ignored."""
    return LabelMap(
        classes=tuple(ClassInfo(i, name, color) for i, (name, color) in enumerate(CAMVID_CLASSES)),
        ignore_index=11,
        ignore_color=(0, 0, 0),
        background_index=None,
        name="camvid",
    )


def generic_label_map(num_classes: int, ignore_index: int = DEFAULT_IGNORE_INDEX, name: str = "generic") -> LabelMap:
    """``class_0 .. class_{K-1}`` in distinct VOC-palette colours: for index masks that came without a label map."""
    palette = _voc_palette(num_classes)
    return LabelMap(
        classes=tuple(ClassInfo(i, f"class_{i}", palette[i]) for i in range(num_classes)),
        ignore_index=ignore_index,
        background_index=None,
        name=name,
    )


def shapes_label_map() -> LabelMap:
    """The built-in Shapes dataset: background plus six shape classes."""
    return LabelMap(
        classes=tuple(ClassInfo(i, name, color) for i, (name, color) in enumerate(SHAPES_CLASSES)),
        ignore_index=255,
        ignore_color=(255, 255, 255),
        background_index=0,
        name="shapes",
    )
