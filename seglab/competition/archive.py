"""Zip files from strangers: every entry is checked from the central directory before any byte is
extracted, then read into memory through a streaming hard cap (nothing is written to disk).

Refused, with the entry named: not a zip, encrypted entries, unusual compression methods, absolute
paths (``/x``, ``C:\\x``, ``\\\\server\\x``), ``..`` components, symlinks and other special files,
nested archives (by name and by the first bytes), duplicate names, too many entries, and
decompression bombs: an entry or the total declaring more bytes than the limits, a suspicious
compression ratio, or an entry that yields more bytes than it declared.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from seglab.competition.errors import SubmissionRejected

# Files that zip tools add on their own; skipped rather than refused (a student did nothing wrong).
TOOL_CLUTTER_DIRS = ("__MACOSX/",)
TOOL_CLUTTER_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst", ".lz", ".lzma", ".jar", ".whl")
# First bytes of archive formats (tar's "ustar" sits at offset 257).
ARCHIVE_MAGIC = (
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"\x1f\x8b",
    b"BZh",
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!",
    b"\xfd7zXZ",
    b"\x28\xb5\x2f\xfd",
)
ALLOWED_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
CHUNK = 1 << 16


@dataclass(frozen=True)
class ZipLimits:
    """Bounds for one uploaded zip (defaults fit a few thousand masks of a few megapixels)."""

    max_entries: int = 5000
    max_entry_bytes: int = 64 * 2**20  # declared uncompressed size of one entry
    max_total_bytes: int = 2 * 2**30  # declared uncompressed size of all entries
    max_ratio: float = 200.0  # uncompressed / compressed, checked for entries above ratio_floor_bytes
    ratio_floor_bytes: int = 2**20  # small entries cannot be bombs within the byte limits


@dataclass(frozen=True)
class ZipEntry:
    """A checked regular file inside the zip."""

    name: str  # as stored, with '/' separators
    size: int  # declared uncompressed size
    info: zipfile.ZipInfo


def _reject(message: str) -> None:
    raise SubmissionRejected(message)


def _is_clutter(name: str) -> bool:
    return name.startswith(TOOL_CLUTTER_DIRS) or PurePosixPath(name).name in TOOL_CLUTTER_NAMES


def _check_name(name: str) -> None:
    if "\x00" in name:
        _reject(f"zip entry {name!r} has a NUL byte in its name")
    if "\\" in name:
        _reject(f"zip entry {name!r} uses backslashes in its path; create the zip with a standard zip tool")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        _reject(f"zip entry {name!r} has an absolute path; zip the files with relative names")
    if ".." in PurePosixPath(name).parts:
        _reject(f"zip entry {name!r} climbs out of the archive ('..'): path traversal is refused")


def check_zip(path: str | os.PathLike, limits: ZipLimits = ZipLimits()) -> list[ZipEntry]:
    """Check every entry of a zip from its central directory, extracting nothing.

    Returns the regular files (directories and tool clutter such as ``__MACOSX/`` skipped).
    Raises :class:`SubmissionRejected` naming the first problem.
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        _reject(f"{path.name} is not a zip file (or it is damaged); zip your mask PNGs and upload the .zip")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as error:
        _reject(f"{path.name} is a damaged zip file ({error})")
    if len(infos) > limits.max_entries:
        _reject(f"the zip has {len(infos)} entries, more than the {limits.max_entries} allowed")
    entries: list[ZipEntry] = []
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        _check_name(name)
        normalised = str(PurePosixPath(name))
        if normalised.lower() in seen:
            _reject(f"zip entry {name!r} appears twice in the archive")
        seen.add(normalised.lower())
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            _reject(f"zip entry {name!r} is a symbolic link; links are refused, zip the files themselves")
        if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # no type bits: a plain file
            _reject(f"zip entry {name!r} is not a regular file (device, pipe or socket)")
        if info.is_dir() or _is_clutter(name):
            continue
        if info.flag_bits & 0x1:
            _reject(f"zip entry {name!r} is encrypted; upload a zip without a password")
        if info.compress_type not in ALLOWED_METHODS:
            _reject(
                f"zip entry {name!r} uses compression method {info.compress_type}; "
                "only stored or deflated zips are accepted"
            )
        if name.lower().endswith(ARCHIVE_SUFFIXES):
            _reject(f"zip entry {name!r} is itself an archive; nested archives are refused: put the files in one zip")
        if info.file_size > limits.max_entry_bytes:
            _reject(
                f"zip entry {name!r} declares {info.file_size / 2**20:.1f} MB, "
                f"more than {limits.max_entry_bytes / 2**20:.0f} MB per file"
            )
        if info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            _reject(
                f"zip entry {name!r} would expand {info.file_size / max(info.compress_size, 1):.0f}-fold "
                f"(limit {limits.max_ratio:.0f}x): refused as a possible decompression bomb"
            )
        total += info.file_size
        if total > limits.max_total_bytes:
            _reject(
                f"the zip declares more than {limits.max_total_bytes / 2**30:.1f} GB uncompressed: "
                "refused as a possible decompression bomb"
            )
        entries.append(ZipEntry(name=name, size=info.file_size, info=info))
    return entries


def read_entries(
    path: str | os.PathLike, entries: list[ZipEntry], limits: ZipLimits = ZipLimits()
) -> Iterator[tuple[ZipEntry, bytes]]:
    """Yield ``(entry, its bytes)`` for entries checked by :func:`check_zip`, streaming each one
    with a hard cap: an entry yielding more bytes than it declared (or than the limits) is refused
    before the excess is held in memory, as is content that starts like another archive."""
    budget = limits.max_total_bytes
    try:
        with zipfile.ZipFile(path) as archive:
            for entry in entries:
                cap = min(entry.size, limits.max_entry_bytes, budget)
                chunks, read = [], 0
                with archive.open(entry.info) as stream:
                    while chunk := stream.read(CHUNK):
                        read += len(chunk)
                        if read > cap:
                            _reject(
                                f"zip entry {entry.name!r} expands beyond its declared {entry.size} bytes: "
                                "refused as a decompression bomb"
                            )
                        chunks.append(chunk)
                data = b"".join(chunks)
                budget -= read
                if data.startswith(ARCHIVE_MAGIC) or data[257:262] == b"ustar":
                    _reject(f"zip entry {entry.name!r} is itself an archive; nested archives are refused")
                yield entry, data
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
        _reject(f"the zip is damaged: {error}")
