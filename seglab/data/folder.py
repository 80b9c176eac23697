"""Datasets stored as an image folder plus a mask folder, and CamVid (SegNet layout) on top of it.

Pairing is by file name: image ``x.jpg`` goes with mask ``x.png`` (or ``x_L.png``, ``x_mask.png``,
``x_label.png``...). A list file fixes the order and the membership instead: each line is
``IMAGE [MASK]``, and because such lists are often written on another machine
(``/SegNet/CamVid/train/x.png``), paths are matched by file name inside the given folders.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path, PurePosixPath

import numpy as np

from seglab.data.base import SegmentationDataset
from seglab.data.io import (
    MASK_FORMATS,
    list_folder,
    read_image,
    read_image_size,
    read_mask,
    stat_files,
    validate_labels,
    validate_sample,
)
from seglab.data.label_map import (
    DEFAULT_IGNORE_INDEX,
    LABEL_MAP_HINT,
    LabelMap,
    camvid_label_map,
    generic_label_map,
)
from seglab.errors import DatasetError
from seglab.io.names import display_name

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff", ".gif")  # lossless only: JPEG smears label ids
MASK_SUFFIXES = ("_L", "_mask", "_masks", "_label", "_labels", "_labelIds", "_gt", "_seg", "_annot")
INFERENCE_MASKS = 8  # masks read to infer a generic label map when none is given
MAX_LISTED_FILES = 5


class PairedFileDataset(SegmentationDataset):
    """Samples stored as one image file and one mask file each: loading, checks and fingerprint.

    Subclasses find the files (:class:`FolderDataset`, :class:`CamVidDataset`,
    :class:`~seglab.data.voc.VOCDataset`) and call :meth:`_set_samples`. Colours missing from the
    label map become void and are counted per sample id in ``unknown_colour_pixels`` as samples
    load (in this process: DataLoader workers keep their own counts).
    """

    root: Path
    list_file: Path | None = None
    mask_format: str = "auto"

    def _set_samples(self, image_paths: list[Path], mask_paths: list[Path]) -> None:
        ids = [display_name(path.stem) for path in image_paths]  # ids reach browsers, URLs and JSON
        repeated = sorted(sample_id for sample_id, count in Counter(ids).items() if count > 1)
        if repeated:
            raise DatasetError(
                f"several images are named {', '.join(repeated[:MAX_LISTED_FILES])} (in {image_paths[0].parent}): "
                "sample ids are file names without extension, so rename or remove the duplicates"
            )
        self.image_paths, self.mask_paths, self.ids = image_paths, mask_paths, ids
        self.unknown_colour_pixels: dict[str, int] = {}

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(image (H, W, 3) uint8 RGB, mask (H, W) uint8)`` for sample ``index``."""
        image_path, mask_path = self.image_paths[index], self.mask_paths[index]
        image = read_image(image_path)
        mask, unknown = read_mask(mask_path, self.label_map, self.mask_format)
        validate_sample(image, mask, self.label_map, image_path, mask_path)
        self._record_unknown_colours(index, unknown)
        return image, mask

    def load_mask(self, index: int) -> np.ndarray:
        """Only the mask of sample ``index`` (labels checked, image not read): the statistics fast path."""
        mask_path = self.mask_paths[index]
        mask, unknown = read_mask(mask_path, self.label_map, self.mask_format)
        validate_labels(mask, self.label_map, mask_path)
        self._record_unknown_colours(index, unknown)
        return mask

    def _record_unknown_colours(self, index: int, pixels: int) -> None:
        if pixels:
            self.unknown_colour_pixels[self.ids[index]] = pixels
        else:
            self.unknown_colour_pixels.pop(self.ids[index], None)

    def image_size(self, index: int) -> tuple[int, int]:
        """``(height, width)`` of sample ``index`` from the image header (no decoding)."""
        return read_image_size(self.image_paths[index])

    def missing_files(self) -> list[Path]:
        """Image and mask files of the samples that are absent from disk (stat only, nothing is read)."""
        return [path for pair in zip(self.image_paths, self.mask_paths) for path in pair if not path.is_file()]

    def check(self) -> None:
        """Raise :class:`DatasetError` listing the first missing files, if any."""
        missing = self.missing_files()
        if missing:
            listed = ", ".join(os.path.relpath(path, self.root) for path in missing[:MAX_LISTED_FILES])
            more = f" and {len(missing) - MAX_LISTED_FILES} more" if len(missing) > MAX_LISTED_FILES else ""
            source = f"listed in {self.list_file}" if self.list_file else "of this dataset"
            raise DatasetError(
                f"{len(missing)} file(s) {source} are missing under {self.root}: {listed}{more}; "
                "restore them or remove those samples from the list"
            )

    def unknown_colour_report(self) -> str:
        """One line on the loaded masks whose colours were not in the label map ("" when none)."""
        if not self.unknown_colour_pixels:
            return ""
        worst = sorted(self.unknown_colour_pixels.items(), key=lambda item: -item[1])[:MAX_LISTED_FILES]
        total = sum(self.unknown_colour_pixels.values())
        listed = ", ".join(f"{sample_id} ({count})" for sample_id, count in worst)
        return (
            f"{len(self.unknown_colour_pixels)} mask(s) had {total} pixels in colours not in label map "
            f"{self.label_map.name!r}, read as void ({self.ignore_index}): {listed}"
        )

    def fingerprint_parts(self) -> list[tuple[str, int, int]]:
        """Sorted ``(relative path, size, mtime_ns)`` of the list file, images and masks (stat only)."""
        listed = [self.list_file] if self.list_file else []
        return stat_files(self.root, [*listed, *self.image_paths, *self.mask_paths])

    def describe(self) -> str:
        return display_name("; ".join([f"{super().describe()} from {self.root}", *self.notes()]))

    def notes(self) -> list[str]:
        """Layout remarks (e.g. images without a mask skipped) and masks with colours outside the label map
        (counted as masks load: call it after reading the split for the full count)."""
        return [note for note in [*self._notes(), self.unknown_colour_report()] if note]

    def _notes(self) -> list[str]:
        """Layout-specific remarks for :meth:`describe`."""
        return []


class FolderDataset(PairedFileDataset):
    """``(image, mask)`` pairs from an image folder and a mask folder.

    Without ``list_file`` every image with a matching mask is a sample (sorted by name) and images
    without one are skipped and listed in ``unpaired``; with ``list_file`` its lines are the
    samples, in order, and a line whose mask cannot be found is an error.

    Masks are class-index PNGs or RGB colour-coded PNGs (``mask_format`` "index", "rgb" or "auto",
    see :func:`seglab.data.io.read_mask`). Without ``label_map`` the masks must be index masks and
    a generic map ``class_0..class_N`` is built from the largest value in a few of them;
    :meth:`describe` says so.
    """

    kind = "folder"

    def __init__(
        self,
        images: str | os.PathLike,
        masks: str | os.PathLike,
        list_file: str | os.PathLike | None = None,
        label_map: LabelMap | None = None,
        mask_format: str = "auto",
        split: str = "custom",
    ) -> None:
        if mask_format not in MASK_FORMATS:
            raise DatasetError(f"mask format {mask_format!r} is not one of {', '.join(MASK_FORMATS)}")
        self.image_folder = _existing_folder(images, "image folder", "--images")
        self.mask_folder = _existing_folder(masks, "mask folder", "--masks")
        self.root = Path(os.path.commonpath([os.path.abspath(self.image_folder), os.path.abspath(self.mask_folder)]))
        self.list_file = Path(list_file).expanduser() if list_file else None
        self.mask_format = mask_format
        self.split = split
        self.unpaired: list[str] = []
        if self.list_file is None:
            self._set_samples(*self._pairs_from_folders())
        else:
            self._set_samples(*self._pairs_from_list(self.list_file))
        self.label_map_note = ""
        self.label_map = label_map or self._infer_label_map()

    # -- pairing -----------------------------------------------------------------------------
    def _pairs_from_folders(self) -> tuple[list[Path], list[Path]]:
        image_names = sorted(n for n in list_folder(self.image_folder) if _has_extension(n, IMAGE_EXTENSIONS))
        mask_names = list_folder(self.mask_folder)
        same_folder = self.image_folder.resolve() == self.mask_folder.resolve()
        masks_by_stem = match_mask_names(mask_names, suffixed_only=same_folder)
        if same_folder:  # masks next to their images: a mask file is not also an image
            mask_files = set(masks_by_stem.values())
            image_names = [n for n in image_names if n not in mask_files]
        if not image_names:
            raise DatasetError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {self.image_folder}; check --images")
        image_paths, mask_paths = [], []
        for name in image_names:
            mask_name = masks_by_stem.get(Path(name).stem)
            if mask_name is None:
                self.unpaired.append(name)
            else:
                image_paths.append(self.image_folder / name)
                mask_paths.append(self.mask_folder / mask_name)
        if not image_paths:
            examples = sorted(n for n in mask_names if _has_extension(n, MASK_EXTENSIONS))[:MAX_LISTED_FILES]
            raise DatasetError(
                f"no image in {self.image_folder} has a mask in {self.mask_folder}: masks pair with images by "
                f"name (x.jpg <-> x.png or x{MASK_SUFFIXES[0]}.png, x_mask.png, ...); images: "
                f"{', '.join(image_names[:MAX_LISTED_FILES])}; masks: {', '.join(examples) or 'none (.png/.bmp/.tif)'}"
            )
        return image_paths, mask_paths

    def _pairs_from_list(self, list_file: Path) -> tuple[list[Path], list[Path]]:
        image_names = list_folder(self.image_folder)
        mask_names = list_folder(self.mask_folder)
        masks_by_stem = match_mask_names(mask_names)
        image_paths, mask_paths, no_mask = [], [], []
        for line_number, fields in _list_lines(list_file):
            image_path = _resolve_listed(self.image_folder, fields[0], image_names)
            if len(fields) == 2:
                mask_path = _resolve_listed(self.mask_folder, fields[1], mask_names)
                if not _listed_exists(mask_path, self.mask_folder, mask_names):
                    no_mask.append(f"line {line_number}: {mask_path.name}")
                    continue
            else:
                mask_name = masks_by_stem.get(image_path.stem)
                if mask_name is None:
                    no_mask.append(f"line {line_number}: {image_path.name}")
                    continue
                mask_path = self.mask_folder / mask_name
            image_paths.append(image_path)
            mask_paths.append(mask_path)
        if no_mask:
            more = f" and {len(no_mask) - MAX_LISTED_FILES} more" if len(no_mask) > MAX_LISTED_FILES else ""
            raise DatasetError(
                f"{len(no_mask)} sample(s) in {list_file} have no mask in {self.mask_folder} "
                f"({'; '.join(no_mask[:MAX_LISTED_FILES])}{more}); check --masks and the list file"
            )
        if not image_paths:
            raise DatasetError(f"list file {list_file} names no samples; each line should be IMAGE [MASK]")
        if not any(_listed_exists(path, self.image_folder, image_names) for path in image_paths):
            raise DatasetError(
                f"none of the {len(image_paths)} images named in {list_file} is in {self.image_folder} "
                f"(first: {image_paths[0].name}); check --images"
            )
        return image_paths, mask_paths

    def _infer_label_map(self) -> LabelMap:
        """A generic label map covering the largest class id seen in a few masks."""
        if self.mask_format == "rgb":
            raise DatasetError(
                f"the masks in {self.mask_folder} are colour-coded (mask format 'rgb'), so a label map giving "
                f"each class colour is required: give {LABEL_MAP_HINT}"
            )
        positions = np.linspace(0, len(self.mask_paths) - 1, min(INFERENCE_MASKS, len(self.mask_paths)))
        sampled = [self.mask_paths[int(round(position))] for position in positions]
        values: set[int] = set()
        for path in sampled:
            mask, _ = read_mask(path, None, self.mask_format)
            values.update(int(v) for v in np.flatnonzero(np.bincount(mask.ravel(), minlength=256)))
        class_values = values - {DEFAULT_IGNORE_INDEX}
        num_classes = max(class_values, default=0) + 1
        self.label_map_note = (
            f"no label map given: using generic classes class_0..class_{num_classes - 1} from the largest value "
            f"in {len(sampled)} masks, {DEFAULT_IGNORE_INDEX} = void; give {LABEL_MAP_HINT} to name them"
        )
        if values == {0, DEFAULT_IGNORE_INDEX}:
            self.label_map_note += " (masks hold only 0 and 255: if 255 means foreground, the label map must say so)"
        return generic_label_map(num_classes, name="inferred")

    def _notes(self) -> list[str]:
        notes = [self.label_map_note]
        if self.unpaired:
            examples = ", ".join(self.unpaired[:3])
            notes.append(f"{len(self.unpaired)} image(s) without a mask skipped (e.g. {examples}; see .unpaired)")
        return notes


class CamVidDataset(FolderDataset):
    """CamVid in the SegNet layout: ``{split}/`` images, ``{split}annot/`` index masks, ``{split}.txt`` lists.

    Mask value 11 is void (``camvid_label_map().ignore_index``). ``root`` may also be a folder
    holding ``CamVid/``.
    """

    kind = "camvid"

    def __init__(self, root: str | os.PathLike, split: str = "train", label_map: LabelMap | None = None) -> None:
        root = find_camvid_root(root)
        images, masks = root / split, root / f"{split}annot"
        if not images.is_dir() or not masks.is_dir():
            found = camvid_splits(root)
            raise DatasetError(
                f"no CamVid split {split!r} under {root}: expected {split}/ and {split}annot/; "
                f"found splits: {', '.join(found) or 'none'}"
            )
        list_file = root / f"{split}.txt"
        super().__init__(
            images,
            masks,
            list_file=list_file if list_file.is_file() else None,
            label_map=label_map or camvid_label_map(),
            split=split,
        )
        self.root = root


def find_camvid_root(root: str | os.PathLike) -> Path:
    """The CamVid folder: ``root`` itself or ``root/CamVid``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(
            f"CamVid root {root} does not exist; point --root at the folder holding train/ and trainannot/"
        )
    for candidate in (root, root / "CamVid"):
        if camvid_splits(candidate):
            return candidate
    raise DatasetError(
        f"no CamVid layout under {root}: expected train/ + trainannot/ (and val/, test/ with their annot/ "
        "folders) — point --root at the CamVid folder"
    )


def camvid_splits(root: Path) -> list[str]:
    """Splits present under ``root``: names ``s`` with both ``s/`` and ``sannot/`` folders."""
    return [name for name in ("train", "val", "test") if (root / name).is_dir() and (root / f"{name}annot").is_dir()]


def match_mask_names(mask_names: set[str], suffixed_only: bool = False) -> dict[str, str]:
    """Image stem -> mask file name: ``x.png`` for ``x``, else ``x_L.png`` / ``x_mask.png`` / ...

    An exact stem beats a suffixed one, and ``.png`` beats other extensions.
    """
    exact: dict[str, str] = {}
    suffixed: dict[str, str] = {}
    rank = {extension: position for position, extension in enumerate(MASK_EXTENSIONS)}
    for name in sorted(mask_names, key=lambda n: (rank.get(Path(n).suffix.lower(), len(rank)), n)):
        if not _has_extension(name, MASK_EXTENSIONS):
            continue
        stem = Path(name).stem
        exact.setdefault(stem, name)
        for suffix in MASK_SUFFIXES:
            if len(stem) > len(suffix) and stem.lower().endswith(suffix.lower()):
                suffixed.setdefault(stem[: -len(suffix)], name)
                break
    return suffixed if suffixed_only else {**suffixed, **exact}


def _list_lines(list_file: Path) -> list[tuple[int, list[str]]]:
    """``(line number, [IMAGE] or [IMAGE, MASK])`` for each non-blank, non-comment line."""
    if not list_file.is_file():
        raise DatasetError(f"list file {list_file} does not exist; check --list-file")
    try:
        text = list_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read list file {list_file}: {error}") from None
    lines = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) > 2:
            raise DatasetError(
                f"{list_file} line {line_number} has {len(fields)} fields; expected IMAGE [MASK] "
                "(paths with spaces are not supported)"
            )
        lines.append((line_number, fields))
    return lines


def _resolve_listed(folder: Path, listed: str, names_in_folder: set[str]) -> Path:
    """Where a listed path lives inside ``folder``: as a relative path if that exists, else by file name.

    Lists are often written elsewhere (``/SegNet/CamVid/train/x.png``, ``C:\\data\\x.png``), so the
    file name is what identifies the file.
    """
    listed = listed.replace("\\", "/")
    name = PurePosixPath(listed).name
    if not listed.startswith("/") and "/" in listed and name not in names_in_folder:
        nested = folder / listed
        if nested.is_file():
            return nested
    return folder / name


def _listed_exists(path: Path, folder: Path, names_in_folder: set[str]) -> bool:
    return path.name in names_in_folder if path.parent == folder else path.is_file()


def _existing_folder(path: str | os.PathLike, what: str, flag: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        where = "is a file, not a folder" if folder.exists() else "does not exist"
        raise DatasetError(f"{what} {folder} {where}; check {flag}")
    return folder


def _has_extension(name: str, extensions: tuple[str, ...]) -> bool:
    return not name.startswith(".") and Path(name).suffix.lower() in extensions
