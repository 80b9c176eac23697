"""Find datasets under a folder and check a data source before anyone trains on it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seglab.data.base import SegmentationDataset
from seglab.data.spec import DataSpec, build_dataset
from seglab.errors import SeglabError
from seglab.io.names import display_name

MASK_SAMPLE = 8  # samples per split whose image and mask are read by check_source
SPLITS_BY_KIND = {
    "shapes": ("train", "val", "test"),
    "camvid": ("train", "val", "test"),
    "voc": ("train", "val", "trainval"),
}


def split_names(spec: DataSpec) -> tuple[str, ...]:
    """The splits a data source of this kind offers (a folder source has its one named split)."""
    if spec.kind == "folder":
        return (spec.split or "custom",)
    return SPLITS_BY_KIND.get(spec.kind, (spec.split,))


@dataclass
class SourceReport:
    """What a data source holds: images per split, classes, and the problems found."""

    spec: DataSpec
    splits: dict[str, int] = field(default_factory=dict)  # split -> number of images
    problems: dict[str, str] = field(default_factory=dict)  # split -> what is wrong / missing
    class_names: list[str] = field(default_factory=list)
    ignore_index: int | None = None
    notes: list[str] = field(default_factory=list)
    sampled: dict[str, int] = field(default_factory=dict)  # split -> image/mask pairs read and checked
    sample_problems: dict[str, list[str]] = field(default_factory=dict)  # split -> what was wrong with them

    @property
    def ok(self) -> bool:
        """At least one split loads."""
        return bool(self.splits)

    def summary(self) -> str:
        """Classes and images per split in one line, e.g. ``"3 classes · train: 8 images · val: 2 images"``."""
        splits = " · ".join(f"{split}: {count} images" for split, count in self.splits.items())
        return f"{len(self.class_names)} classes · {splits}"

    def classes_line(self) -> str:
        """The class names and the void value."""
        return "Classes: " + ", ".join(self.class_names) + f" · void/ignore index: {self.ignore_index}"

    def sample_warnings(self, max_shown: int = 3) -> list[str]:
        """One Markdown warning per split whose sampled image/mask pairs cannot be used, listing ``max_shown``."""
        warnings = []
        for split, problems in self.sample_problems.items():
            listed = "\n".join(f"- {problem}" for problem in problems[:max_shown])
            warnings.append(
                f"**{split}**: {len(problems)} of {self.sampled[split]} sampled image/mask pairs cannot be used "
                f"(training and the Dataset page would stop at them):\n\n{listed}"
            )
        return warnings

    def checked_note(self) -> str | None:
        """How many sampled pairs were read and found fine; None when none were sampled or some failed."""
        if not self.sampled or self.sample_problems:
            return None
        return f"{sum(self.sampled.values())} sampled image/mask pairs read and checked: sizes and label values fit."

    def failure(self) -> str:
        """Why the source cannot be loaded, one Markdown item per split."""
        return "This source cannot be loaded yet:\n\n" + "\n\n".join(
            f"- **{split}**: {problem}" for split, problem in self.problems.items()
        )


def form_spec(
    kind: str, *, root: str = "", images: str = "", masks: str = "", list_file: str = "", label_map: str = ""
) -> DataSpec:
    """The DataSpec of a data-source form's text fields as typed: stripped, blank meaning unset; a folder source
    reads its one split, "custom"."""

    def typed(text: str) -> str | None:
        return text.strip() or None

    return DataSpec(
        kind=kind,
        split="custom" if kind == "folder" else "train",
        root=typed(root),
        images=typed(images),
        masks=typed(masks),
        list_file=typed(list_file),
        label_map=typed(label_map),
    )


def default_root(current: DataSpec, kind: str, found: list[str]) -> str:
    """Where a form for a ``kind`` source starts: the current source's folder if it is of that kind, else the
    first ``found`` folder, else blank."""
    if current.kind == kind and current.root:
        return current.root
    return found[0] if found else ""


def check_source(spec: DataSpec, splits: tuple[str, ...] | None = None, mask_sample: int = MASK_SAMPLE) -> SourceReport:
    """Try every split of ``spec`` and report sizes or problems.

    Each split is listed (no image read), then ``mask_sample`` of its samples, spread over the split,
    are read and checked as training would read them (mask size against the image, label values
    against the label map): a folder of wrong-size masks or out-of-range labels is named here, not
    later on the Dataset page. ``mask_sample=0`` only lists.
    """
    report = SourceReport(spec=spec)
    wanted = splits or split_names(spec)
    for split in wanted:
        try:
            dataset = build_dataset(spec.with_split(split))
        except SeglabError as error:
            report.problems[split] = str(error)
            continue
        report.splits[split] = len(dataset)
        if not report.class_names:
            report.class_names = list(dataset.class_names)
            report.ignore_index = dataset.ignore_index
            description = dataset.describe()
            if ";" in description or "(" in description:
                report.notes.append(description)
        missing = getattr(dataset, "missing_files", None)
        if callable(missing):
            absent = missing()
            if absent:
                report.notes.append(f"{split}: {len(absent)} listed files are missing, e.g. {absent[0]}")
        if mask_sample > 0 and spec.kind != "shapes":  # Shapes masks are drawn with their images: nothing to check
            indices = sample_indices(len(dataset), mask_sample)
            report.sampled[split] = len(indices)
            found = sample_problems(dataset, indices)
            if found:
                report.sample_problems[split] = found
    return report


def sample_indices(size: int, count: int = MASK_SAMPLE) -> list[int]:
    """Up to ``count`` indices spread evenly over ``range(size)``, first and last included."""
    if size <= 0 or count <= 0:
        return []
    return [int(i) for i in np.unique(np.linspace(0, size - 1, min(count, size)).round().astype(int))]


def sample_problems(dataset: SegmentationDataset, indices: list[int]) -> list[str]:
    """What is wrong with samples ``indices`` of ``dataset``, one message per unusable sample.

    Each sample is loaded as training loads it, so a mask of the wrong size, label values outside the
    label map or an unreadable file is reported with the dataset's own message.
    """
    problems = []
    for index in indices:
        try:
            dataset.load(index)
        except SeglabError as error:
            problems.append(display_name(str(error)))  # messages name files; a browser shows them
    return problems


def discover_datasets(root: str | os.PathLike, max_depth: int = 3) -> list[DataSpec]:
    """VOC and CamVid layouts found in ``root`` and its sub-folders (a few levels down)."""
    root = Path(root)
    found: list[DataSpec] = []
    if not root.is_dir():
        return found
    for folder, _depth in _walk(root, max_depth):
        names = {entry.name for entry in os.scandir(folder)} if folder.is_dir() else set()
        if {"train", "trainannot"} <= names:
            found.append(DataSpec(kind="camvid", root=str(folder), split="train"))
        elif {"JPEGImages", "ImageSets"} <= names and ({"SegmentationClass", "SegmentationClassAug"} & names):
            found.append(DataSpec(kind="voc", root=str(folder), split="train"))
    return found


def _walk(root: Path, max_depth: int):
    pending = [(root, 0)]
    while pending:
        folder, depth = pending.pop(0)
        yield folder, depth
        if depth < max_depth:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue
            # Image folders can hold thousands of files: only descend into folders that look like containers.
            pending.extend((child, depth + 1) for child in children if not _is_image_folder(child))


def _is_image_folder(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if entry.name.lower().endswith((".png", ".jpg", ".jpeg")):
                    return True
                if count > 50:
                    return False
    except OSError:
        return True
    return False
