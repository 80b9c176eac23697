"""Where results are written: folders checked before any work, and write failures told in words.

A full disk, a read-only folder or an ``--out`` that names a file used to surface as raw
tracebacks (``RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos``) after
the work was done. :func:`prepare_output_folder` checks a folder up front; :func:`write_failure`
turns the errors a failed write raises (``OSError`` with an errno, or PyTorch's zip writer's
``RuntimeError``) into one sentence.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from seglab.errors import ConfigError

# PyTorch's zip writer reports a failed write as a RuntimeError whose text names its own source.
_TORCH_WRITE_FAILURES = ("inline_container", "PytorchStreamWriter", "file write failed", "unexpected pos")
_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "the name is too long",
    errno.ENOENT: "a part of the path does not exist",
}


def free_space(path: str | os.PathLike) -> str:
    """Free space on the device holding ``path`` (or its nearest existing parent), e.g. ``"12.3 MB free"``."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "free space unknown"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if free >= size:
            return f"{free / size:.1f} {unit} free"
    return f"{free} bytes free"


def os_error_reason(error: OSError) -> str:
    """The cause of an OSError in words ("permission denied", "no space left on the device", ...)."""
    return _REASONS.get(error.errno or -1) or (error.strerror or str(error) or type(error).__name__).lower()


def write_failure(error: BaseException, path: str | os.PathLike) -> str | None:
    """Why writing ``path`` failed, in words, when ``error`` is a write failure; else None.

    Disk-full messages name the free space left, so the user sees it is the disk, not seglab.
    """
    if isinstance(error, OSError):
        reason = os_error_reason(error)
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            reason += f" ({free_space(path)})"
        return reason
    if isinstance(error, RuntimeError) and any(marker in str(error) for marker in _TORCH_WRITE_FAILURES):
        first_line = str(error).strip().splitlines()[0][:120]
        space = free_space(path)
        return f"the write stopped halfway, which usually means the disk is full ({space}; PyTorch said: {first_line})"
    return None


def prepare_output_folder(path: str | os.PathLike, what: str = "the --out folder") -> Path:
    """Create ``path`` if needed and check that files can be written in it; return it.

    Raises ConfigError when ``path`` is a file, cannot be created or is not writable (read-only,
    no permission, full), before any work is done.
    """
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{what} {folder} is a file, not a folder; give the path of a folder to write into")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"cannot create {what} {folder}: {write_failure(error, folder)}; pick a folder you can write to"
        ) from None
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".seglab-write-test-")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise ConfigError(
            f"cannot write into {what} {folder}: {write_failure(error, folder)}; pick a folder you can write to"
        ) from None
    return folder
