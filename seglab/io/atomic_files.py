"""Atomic file writes and the .npz+JSON cache format: the one place seglab replaces a file on disk.

Every writer goes through :func:`atomic_path`: a temporary file ``.<name>.<random>.tmp`` in the
target's folder (so :func:`seglab.engine.run_folder.clean_temporary_files` recognises leftovers of a killed
process), flushed and fsynced when ``durable``, given ``permissions`` (mkstemp creates 0600), then
``os.replace``-d over the target. A failure or an exception inside the block removes the temporary
file and leaves the previous target untouched.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np

T = TypeVar("T")

SHARED = 0o644  # like any file written with the default umask: readable by everyone, writable by the owner
PRIVATE = 0o600  # secrets (team tokens): the owner only

# What np.load raises on a missing, truncated or foreign archive, and json on a bad "meta" entry.
NPZ_READ_ERRORS = (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, EOFError)


@contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = True, permissions: int = SHARED) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it replaces ``path`` atomically.

    For writers that want a file name (exporters, PIL). ``durable`` fsyncs the bytes before the
    rename (checkpoints, run records); caches recomputed when unreadable may pass False.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        if durable:
            with open(temporary, "rb+") as stream:
                os.fsync(stream.fileno())
        os.chmod(temporary, permissions)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", *, durable: bool = True, permissions: int = SHARED
) -> Iterator[IO[Any]]:
    """Yield an open stream (``"wb"`` or ``"w"``, UTF-8) whose content replaces ``path`` atomically on a clean exit.

    For writers that take a stream: ``np.savez``, ``torch.save``, ``zipfile.ZipFile``, ``json.dump``.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write writes a whole new file: mode must be 'wb' or 'w', got {mode!r}")
    with atomic_path(path, durable=False, permissions=permissions) as temporary:
        with open(temporary, mode, encoding=None if "b" in mode else "utf-8") as stream:
            yield stream
            stream.flush()
            if durable:
                os.fsync(stream.fileno())


def write_bytes_atomic(
    path: str | os.PathLike, data: bytes, *, durable: bool = True, permissions: int = SHARED
) -> None:
    """Replace ``path`` with ``data`` atomically."""
    with atomic_write(path, "wb", durable=durable, permissions=permissions) as stream:
        stream.write(data)


def write_text_atomic(path: str | os.PathLike, text: str, *, durable: bool = True, permissions: int = SHARED) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    write_bytes_atomic(path, text.encode("utf-8"), durable=durable, permissions=permissions)


def write_json_atomic(path: str | os.PathLike, data: Any, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` as indented JSON (and a final newline) atomically."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n", durable=durable)


def save_npz_atomic(
    path: str | os.PathLike, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], *, durable: bool = False
) -> None:
    """Write ``arrays`` and ``meta`` (as a JSON string under ``"meta"``) as one .npz, atomically.

    Not durable by default: these are caches, and :func:`load_npz` treats a damaged file as missing.
    """
    entries: dict[str, Any] = {"meta": np.array(json.dumps(meta)), **arrays}
    with atomic_write(path, "wb", durable=durable) as stream:
        np.savez(stream, **entries)


def load_npz(path: str | os.PathLike, read: Callable[[dict[str, Any], Any], T]) -> T | None:
    """``read(meta, archive)`` on the .npz written by :func:`save_npz_atomic`; ``None`` when missing or unreadable.

    ``read`` runs while the archive is open (``archive[name]`` loads an array); a missing entry,
    truncated file or bad JSON inside it also gives ``None``, so the caller recomputes.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            return read(json.loads(str(archive["meta"])), archive)
    except NPZ_READ_ERRORS:
        return None
