"""The sources catalog: model files and predictions folders registered once, then picked like checkpoints.

The catalog is a folder of description files (:mod:`seglab.sources.description`), one per source,
``<runs dir>/sources/<slug>.seglab.json``, so it lives beside the run folders and travels with them.
A *model choice* (what the app's sidebar stores, what its loaders take) is one path string: a seglab
checkpoint (``.pt``) or one of these description files; :func:`choice_description` reads either.

Registered paths come from strangers (a form in a class's shared app), so:

- every path (the model file or folder, a predictions label map) must resolve, symlinks followed,
  inside the *allowed roots* (the app passes its allow-list's roots, :mod:`seglab.io.allowed_paths`;
  :func:`allowed_roots` gives the runs folder, a data folder and ``$SEGLAB_DATA_ROOTS`` for the
  command line), checked when registering and again each time an entry is read;
- entries are small JSON files (at most :data:`MAX_ENTRY_BYTES`), never pickles; nothing is run to
  list them; a broken entry is listed with its problem instead of breaking the list;
- names are slugs, so an entry file can never land outside the catalog folder.

Registering and removing entries: :mod:`seglab.sources.registration`; model choices (a checkpoint or an
entry, as the app's sidebar stores them): :mod:`seglab.sources.choices`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from seglab.errors import SeglabError, SourceError
from seglab.sources.description import (
    DESCRIPTION_SUFFIX,
    KINDS,
    SourceDescription,
    load_description,
)

CATALOG_FOLDER = "sources"
MAX_ENTRY_BYTES = 64 * 1024
MAX_ENTRIES = 200
REGISTERED_KINDS = tuple(kind for kind in KINDS if kind != "checkpoint")  # checkpoints are listed from run folders
ROOTS_VARIABLE = "SEGLAB_DATA_ROOTS"  # the app's allow-list variable (seglab.io.allowed_paths): one setting for both
_SLUG = re.compile(r"[^a-z0-9._-]+")


def catalog_dir(runs_dir: str | os.PathLike) -> Path:
    """The catalog folder of a runs folder."""
    return Path(runs_dir) / CATALOG_FOLDER


def allowed_roots(runs_dir: str | os.PathLike, data_root: str | os.PathLike | None = None) -> list[Path]:
    """Folders registered sources may live in: the runs folder, the data folder and ``$SEGLAB_DATA_ROOTS``
    (``os.pathsep``-separated), resolved (the command line's roots; the app uses its allow-list's)."""
    roots = [Path(runs_dir), *([Path(data_root)] if data_root else [])]
    roots += [Path(part) for part in os.environ.get(ROOTS_VARIABLE, "").split(os.pathsep) if part.strip()]
    unique: list[Path] = []
    for root in roots:
        resolved = root.expanduser().resolve()
        if resolved not in unique:
            unique.append(resolved)
    return unique


def within_roots(path: str | os.PathLike, roots: Sequence[Path], what: str = "path") -> Path:
    """``path`` resolved (symlinks followed); :class:`SourceError` unless it lies inside one of ``roots``."""
    resolved = Path(path).expanduser().resolve()
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        listed = ", ".join(str(root) for root in roots)
        raise SourceError(f"{what} {resolved} is outside the folders sources may come from ({listed})")
    return resolved


def slug(name: str) -> str:
    """The catalog file stem of a source name ("My ONNX model" -> "my-onnx-model")."""
    return _SLUG.sub("-", name.strip().casefold()).strip("-.")[:64]


@dataclass(frozen=True)
class CatalogEntry:
    """One registered source: its description, or the problem that makes it unusable."""

    file: Path
    name: str
    description: SourceDescription | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and self.description is not None

    @property
    def kind(self) -> str:
        return self.description.kind if self.description is not None else "?"

    @property
    def where(self) -> str:
        """Where it lives, for a listing: its model file or folder, else (unreadable) its catalog file's name."""
        return str(self.description.path) if self.description is not None else self.file.name


def read_entry(file: str | os.PathLike, roots: Sequence[Path]) -> CatalogEntry:
    """A catalog entry, checked (size, format, paths inside ``roots``); never raises for a faulty file."""
    file = Path(file)
    name = file.name.removesuffix(DESCRIPTION_SUFFIX)
    try:
        if file.is_symlink() or not file.is_file():
            raise SourceError(f"{file.name} is not a plain file")
        if file.stat().st_size > MAX_ENTRY_BYTES:
            raise SourceError(f"{file.name} is larger than {MAX_ENTRY_BYTES // 1024} KiB: not a description")
        description = load_description(file)
        within_roots(description.path, roots, "the source")
        if description.label_map is not None:
            within_roots(description.label_map, roots, "the predictions' label map")
        if description.kind not in REGISTERED_KINDS:
            raise SourceError(f"kind {description.kind!r} cannot be registered (one of {', '.join(REGISTERED_KINDS)})")
    except SeglabError as error:
        return CatalogEntry(file, name, None, str(error))
    return CatalogEntry(file, description.name or name, description)


def list_sources(runs_dir: str | os.PathLike, roots: Sequence[Path]) -> list[CatalogEntry]:
    """Every registered source by name, broken ones with their problem (at most :data:`MAX_ENTRIES`)."""
    folder = catalog_dir(runs_dir)
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*" + DESCRIPTION_SUFFIX))[:MAX_ENTRIES]
    return [read_entry(file, roots) for file in files]
