"""PASCAL VOC-2012 segmentation in its original folder layout.

::

    VOC2012/
      JPEGImages/<id>.jpg
      SegmentationClass/<id>.png       palette PNGs: the pixel value is the class id, 255 = void
      SegmentationClassAug/<id>.png    (optional, SBD "aug" masks) grayscale class ids
      ImageSets/Segmentation/{train,val,trainval}.txt   one id per line
      ImageSets/SegmentationAug/<split>.txt             (optional) e.g. train_aug.txt

``root`` may be the ``VOC2012`` folder itself or a folder holding ``VOCdevkit/VOC2012``.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path, PurePosixPath

from seglab.data.folder import PairedFileDataset
from seglab.data.io import list_folder
from seglab.data.label_map import LabelMap, voc_label_map
from seglab.errors import DatasetError

MASK_FOLDERS = ("SegmentationClass", "SegmentationClassAug")  # preferred first
SPLIT_FOLDERS = ("ImageSets/Segmentation", "ImageSets/SegmentationAug")


class VOCDataset(PairedFileDataset):
    """One split of PASCAL VOC-2012 (or the SBD-augmented masks) as ``(image, mask)`` pairs.

    Masks come from ``SegmentationClass`` when the id has one there, else ``SegmentationClassAug``.
    Files listed in the split but absent on disk are reported by :meth:`missing_files` /
    :meth:`check` and raise :class:`DatasetError` when loaded, so one missing file does not hide the
    rest of the split. Masks are read with mask format "auto": palette and grayscale PNGs as raw
    class ids, RGB colour PNGs through the VOC palette.
    """

    kind = "voc"

    def __init__(self, root: str | os.PathLike, split: str = "train", label_map: LabelMap | None = None) -> None:
        self.root = find_voc_root(root)
        self.split = split
        self.label_map = label_map or voc_label_map()
        self.list_file = self._find_split_file(split)
        ids = read_split_ids(self.list_file)

        image_folder = self.root / "JPEGImages"
        image_names = list_folder(image_folder)
        mask_names = {folder: list_folder(self.root / folder) for folder in MASK_FOLDERS}
        if not any(mask_names.values()):
            raise DatasetError(
                f"no masks under {self.root}: expected SegmentationClass/ or SegmentationClassAug/ "
                "with one <id>.png per image"
            )
        if not any(f"{sample_id}.jpg" in image_names for sample_id in ids):
            raise DatasetError(
                f"none of the {len(ids)} images listed in {self.list_file} is in {image_folder} "
                f"(first: {ids[0]}.jpg); point --root at the VOC2012 folder that holds them"
            )
        self._set_samples(
            [image_folder / f"{sample_id}.jpg" for sample_id in ids],
            [self._mask_path(sample_id, mask_names) for sample_id in ids],
        )

    # -- layout ------------------------------------------------------------------------------
    def _find_split_file(self, split: str) -> Path:
        for folder in SPLIT_FOLDERS:
            candidate = self.root / folder / f"{split}.txt"
            if candidate.is_file():
                return candidate
        found = available_splits(self.root)
        hint = f"found splits: {', '.join(found)}" if found else "found no split files (ImageSets/Segmentation/*.txt)"
        raise DatasetError(f"no ImageSets/Segmentation/{split}.txt under {self.root}; {hint}")

    def _mask_path(self, sample_id: str, mask_names: dict[str, set[str]]) -> Path:
        """SegmentationClass/<id>.png when present, else SegmentationClassAug/<id>.png."""
        name = f"{sample_id}.png"
        for folder in MASK_FOLDERS:
            if name in mask_names[folder]:
                return self.root / folder / name
        # Neither has it: point at a folder that exists so the load-time error names a real place.
        folder = next(f for f in MASK_FOLDERS if mask_names[f])
        return self.root / folder / name

    def _notes(self) -> list[str]:
        return [f"masks from {', '.join(sorted({path.parent.name for path in self.mask_paths}))}"]


def find_voc_root(root: str | os.PathLike) -> Path:
    """The VOC2012 folder: ``root`` itself, or ``root/VOCdevkit/VOC2012``, or ``root/VOC2012``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"VOC root {root} does not exist; point --root at the VOC2012 folder")
    markers = ("JPEGImages", "ImageSets", *MASK_FOLDERS)
    for candidate in (root, root / "VOCdevkit" / "VOC2012", root / "VOC2012"):
        if any((candidate / marker).is_dir() for marker in markers):
            if not (candidate / "JPEGImages").is_dir():
                raise DatasetError(f"JPEGImages/ missing under {candidate} — point --root at the VOC2012 folder")
            return candidate
    raise DatasetError(
        f"no PASCAL VOC-2012 layout under {root}: expected JPEGImages/, SegmentationClass/ and "
        "ImageSets/Segmentation/ there or in VOCdevkit/VOC2012/ — point --root at the VOC2012 folder"
    )


def available_splits(root: Path) -> list[str]:
    """Names of the split files under ``ImageSets/Segmentation`` and ``ImageSets/SegmentationAug``."""
    names: set[str] = set()
    for folder in SPLIT_FOLDERS:
        if (root / folder).is_dir():
            names.update(path.stem for path in (root / folder).glob("*.txt"))
    return sorted(names)


def read_split_ids(split_file: Path) -> list[str]:
    """Ids from a split file: one id per line, or ``/JPEGImages/<id>.jpg [mask]`` lines (SBD aug lists)."""
    try:
        lines = split_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read split file {split_file}: {error}") from None
    ids = []
    for line in lines:
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        listed = fields[0].replace("\\", "/")
        ids.append(PurePosixPath(listed).stem if "/" in listed or "." in listed else listed)
    if not ids:
        raise DatasetError(f"split file {split_file} lists no image ids; it should hold one id per line")
    repeated = sorted(sample_id for sample_id, count in Counter(ids).items() if count > 1)
    if repeated:
        raise DatasetError(f"split file {split_file} lists these ids more than once: {', '.join(repeated[:5])}")
    return ids
