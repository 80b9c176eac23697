"""Model choices: what the app's sidebar stores, a checkpoint path or a catalog entry, described, versioned
(for cache keys), scored for fit with the data's classes and opened as a prediction source."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seglab.data.label_map import LabelMap
from seglab.errors import SourceError
from seglab.sources.description import (
    DESCRIPTION_SUFFIX,
    SourceDescription,
    describe_target,
)
from seglab.sources.mapping import OTHER, normalize_name

if TYPE_CHECKING:
    from seglab.sources.mapped import MappedSource
from seglab.sources.catalog import (
    read_entry,
)


def is_registered(choice: str | os.PathLike) -> bool:
    """Whether a model choice names a catalog entry (else a seglab checkpoint)."""
    return str(choice).endswith(DESCRIPTION_SUFFIX)


def choice_description(choice: str | os.PathLike, roots: Sequence[Path]) -> SourceDescription:
    """The description of a model choice: a checkpoint's is inferred; an entry's is read and checked."""
    if not is_registered(choice):
        return describe_target(choice)
    entry = read_entry(choice, roots)
    if not entry.ok:
        raise SourceError(f"registered source {entry.name}: {entry.problem}")
    assert entry.description is not None
    return entry.description


def mapping_rows(source_names: Sequence[str], label_map: LabelMap) -> dict[str, str]:
    """``{source class: dataset class or "other"}`` pre-filled by matching names case-insensitively
    (also ignoring spaces, '_' and '-'): the editable table of the registration form."""
    by_name = {normalize_name(name): name for name in label_map.names}
    return {name: by_name.get(normalize_name(name), OTHER) for name in source_names}


def needs_mapping(source_names: Sequence[str] | None, label_map: LabelMap) -> bool:
    """Whether a source's declared classes differ from the dataset's (case aside), so the registration form
    asks how they map; False when it declares none (it then uses the dataset's)."""
    return bool(source_names) and [name.casefold() for name in source_names or []] != [
        name.casefold() for name in label_map.names
    ]


def fit_score(class_names: Sequence[str] | None, mapping: Mapping[str, Any] | None, label_map: LabelMap) -> int:
    """How well a source's classes fit a dataset, judged without predicting: 2 the same classes (or
    undeclared), 1 some classes map (by name or by a declared mapping), 0 none."""
    if class_names is None:
        return 2
    dataset = [normalize_name(name) for name in label_map.names]
    if [normalize_name(name) for name in class_names] == dataset:
        return 2
    mapped = any(target not in (None, OTHER) for target in (mapping or {}).values())
    return 1 if mapped or {normalize_name(name) for name in class_names} & set(dataset) else 0


def choice_version(choice: str | os.PathLike, roots: Sequence[Path]) -> str:
    """A token that changes when a model choice's files change (memory-cache keys; the disk caches hash content):
    a checkpoint's mtime; an entry's mtime with its target's (a folder's: every prediction file's size and mtime)."""
    from seglab.data.io import stat_files

    path = Path(choice)
    if not is_registered(choice):
        return str(path.stat().st_mtime_ns)
    description = choice_description(choice, roots)
    target = description.path
    if target.is_dir():
        files = sorted(child for child in target.iterdir() if child.is_file())
        listing = json.dumps(stat_files(target, files))
    else:
        stat = target.stat()
        listing = f"{stat.st_size}:{stat.st_mtime_ns}"
    return hashlib.sha256(f"{path.stat().st_mtime_ns}|{listing}".encode()).hexdigest()[:16]


def open_choice(
    choice: str | os.PathLike, roots: Sequence[Path], label_map: LabelMap, device: str = "cpu"
) -> MappedSource:
    """A model choice as a :class:`~seglab.sources.mapped.MappedSource` in ``label_map``'s classes
    (a registered source under its declared mapping; model files in their worker process)."""
    from seglab.sources.mapped import MappedSource

    description = choice_description(choice, roots)
    source = description.open(device=device, label_map=label_map)
    return MappedSource(source, label_map, description.mapping)


def description_fit(description: SourceDescription, label_map: LabelMap, sample_ids: Sequence[str]) -> int:
    """:func:`fit_score` of a registered source on a dataset, and 0 for a predictions folder holding a file
    for none of ``sample_ids`` (judged from file names only)."""
    score = fit_score(description.class_names, description.mapping, label_map)
    if score and description.kind == "predictions" and sample_ids:
        from seglab.data.folder import MASK_SUFFIXES
        from seglab.sources.folder_source import PREDICTION_EXTENSIONS

        try:
            stems = {path.stem for path in description.path.iterdir() if path.suffix.lower() in PREDICTION_EXTENSIONS}
        except OSError:
            return 0
        wanted = {sample_id + suffix for sample_id in sample_ids for suffix in ("", *MASK_SUFFIXES)}
        return score if stems & wanted else 0
    return score
