"""Where a competition lives: one folder with a SQLite database and the uploaded files.

The folder (default ``competition/`` beside the runs folder ``checkpoints/``) holds:

- ``competition.db``: competitions, teams, submissions, scores, the queue and the admin log
  (standard-library ``sqlite3`` in WAL mode, so the app's readers never wait for the worker's
  writes; ``busy_timeout`` makes concurrent writers queue instead of failing);
- ``files/``: every accepted upload under its SHA-256 name (two identical uploads share one file);
- ``uploads/``: uploads being validated (a crash leaves only stray temporary files here);
- ``downloads/``: the hidden images as a zip for the students (images only, never labels);
- ``worker.lock``: held by the one scoring worker.

Every call opens its own short-lived connection, so a store object can be shared by threads
(Streamlit sessions) and processes (the worker).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from seglab.competition.errors import CompetitionError, SubmissionRejected
from seglab.competition.migrations import LATEST_VERSION, migrate, schema_version

DATABASE_NAME = "competition.db"
BUSY_TIMEOUT_MS = 15_000


def default_competition_dir(runs_dir: str | os.PathLike | None = None) -> Path:
    """``$SEGLAB_COMPETITION_DIR``, else ``competition/`` beside the runs folder.

    The runs folder is ``runs_dir``, else ``$SEGLAB_RUNS_DIR``, else ``checkpoints`` (relative to the
    working directory, as the CLI uses it).
    """
    configured = os.environ.get("SEGLAB_COMPETITION_DIR")
    if configured:
        return Path(configured).expanduser()
    runs = Path(runs_dir or os.environ.get("SEGLAB_RUNS_DIR") or "checkpoints").expanduser()
    return runs.absolute().parent / "competition"


class CompetitionStore:
    """The competition data folder; opening it creates or migrates the database."""

    def __init__(self, folder: str | os.PathLike, *, migrate_to: int = LATEST_VERSION) -> None:
        self.folder = Path(folder).expanduser().absolute()
        for sub in ("files", "uploads", "downloads"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            migrate(connection, migrate_to)

    @staticmethod
    def exists(folder: str | os.PathLike) -> bool:
        """Whether ``folder`` holds a competition database (checked without opening it)."""
        return (Path(folder).expanduser() / DATABASE_NAME).is_file()

    @classmethod
    def open_existing(cls, folder: str | os.PathLike) -> CompetitionStore | None:
        """The store in ``folder`` if a database exists there, else ``None`` (nothing is created)."""
        return cls(folder) if cls.exists(folder) else None

    @property
    def database_path(self) -> Path:
        return self.folder / DATABASE_NAME

    @property
    def lock_path(self) -> Path:
        return self.folder / "worker.lock"

    def version(self) -> int:
        """The database's schema version."""
        with self.connect() as connection:
            return schema_version(connection)

    def _connect(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(self.database_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as error:
            raise CompetitionError(f"cannot open the competition database {self.database_path}: {error}") from None
        connection.row_factory = sqlite3.Row
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
        return connection

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit mode (reads see the latest committed state), closed afterwards."""
        connection = self._connect()
        try:
            yield connection
        finally:
            connection.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error): one writer at a time, all or nothing."""
        with self.connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    # -- files under content-hash names ------------------------------------------------------------
    def file_path(self, file_name: str) -> Path:
        """Path of a stored upload (``file_name`` as recorded in the submissions table)."""
        if Path(file_name).name != file_name or file_name.startswith("."):
            raise CompetitionError(f"invalid stored file name {file_name!r}")
        return self.folder / "files" / file_name

    @contextmanager
    def staged_upload(self, source: bytes | BinaryIO, suffix: str, max_bytes: int) -> Iterator[tuple[Path, str, int]]:
        """Copy an upload to a temporary file, hashing it and stopping at ``max_bytes``.

        Yields ``(temporary path, sha256, size)``; the temporary file is removed afterwards unless
        :meth:`keep_upload` moved it into ``files/``.
        """
        handle, temporary = tempfile.mkstemp(dir=self.folder / "uploads", prefix=".upload-", suffix=suffix)
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(handle, "wb") as stream:
                chunks = [source] if isinstance(source, bytes) else iter(lambda: source.read(1 << 20), b"")
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise_too_large(size, max_bytes)
                    digest.update(chunk)
                    stream.write(chunk)
            yield Path(temporary), digest.hexdigest(), size
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

    def keep_upload(self, temporary: Path, sha256: str, suffix: str) -> str:
        """Move a validated upload to ``files/<sha256><suffix>``; returns that file name."""
        file_name = f"{sha256}{suffix}"
        target = self.file_path(file_name)
        if target.is_file():
            temporary.unlink()  # the same bytes were uploaded before: keep one copy
        else:
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        return file_name


def raise_too_large(size: int, max_bytes: int) -> None:
    """The one message for an upload over the size limit."""
    raise SubmissionRejected(
        f"the file is larger than the {max_bytes / 2**20:g} MB this competition accepts ({size / 2**20:.1f} MB read "
        "before stopping); submit a smaller model or a zip of masks"
    )
