"""File-system faults for tests: a read-only folder (even for root) and a disk that fills up.

``chmod 0o555`` does not stop root, and these tests run as root in some sandboxes, so a folder is
made read-only by refusing, with ``EACCES`` as the kernel would, every call that writes inside it
(``os.open`` for writing, ``open``, ``os.mkdir``, ``os.replace``, ``os.rename``), for any user.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from pathlib import Path

import pytest

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _inside(path: object, folder: Path) -> bool:
    if isinstance(path, int):
        return False
    try:
        return Path(os.path.abspath(os.fsdecode(path))).is_relative_to(folder)
    except (TypeError, ValueError):
        return False


def make_read_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``folder`` (created if needed) refuse every write, as a read-only mount or folder would."""
    folder = Path(os.path.abspath(folder))
    folder.mkdir(parents=True, exist_ok=True)

    def refuse(path: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))

    real_os_open, real_open, real_mkdir = os.open, builtins.open, os.mkdir
    real_replace, real_rename = os.replace, os.rename

    def os_open(path, flags, *args, **kwargs):
        if flags & _WRITE_FLAGS and _inside(path, folder):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def open_(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax+") and _inside(file, folder):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        if _inside(path, folder) and os.path.exists(path):  # the kernel says EEXIST first
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(path))
        if _inside(path, folder):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def replace(source, target, *args, **kwargs):
        if _inside(target, folder):
            refuse(target)
        return real_replace(source, target, *args, **kwargs)

    def rename(source, target, *args, **kwargs):
        if _inside(target, folder) or _inside(source, folder):
            refuse(target)
        return real_rename(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "rename", rename)


def enospc(*args, **kwargs):
    """A write that fails because the disk is full."""
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def torch_zip_writer_failure(*args, **kwargs):
    """What torch.save raises when the disk fills up mid-write (its zip writer's own message)."""
    raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1920 vs 1856")
