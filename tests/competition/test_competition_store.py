"""The competition data folder: SQLite in WAL mode, versioned schema with migrations, uploads by content hash."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from seglab.competition.errors import CompetitionError, SubmissionRejected
from seglab.competition.migrations import LATEST_VERSION, migrate, schema_version
from seglab.competition.store import DATABASE_NAME, CompetitionStore, default_competition_dir


def test_a_new_store_is_at_the_latest_version_in_wal_mode(tmp_path: Path) -> None:
    store = CompetitionStore(tmp_path / "competition")
    assert store.version() == LATEST_VERSION == 2
    with store.connect() as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert {p.name for p in store.folder.iterdir()} >= {DATABASE_NAME, "files", "uploads", "downloads"}


def _v1_database(folder: Path) -> CompetitionStore:
    """A store created by a seglab that knew only schema version 1, holding one competition, team and submission."""
    store = CompetitionStore(folder, migrate_to=1)
    with store.transaction() as connection:
        connection.execute(
            """INSERT INTO competitions (id, name, created_at, spec_json, fingerprint, class_names_json,
               background_index, metric, public_share, split_seed, quota_count, quota_window_s, kinds_json, max_finals,
               max_upload_mb, show_class_iou, time_limit_s, memory_limit_mb)
               VALUES (1, 'old', 0, '{"kind": "shapes", "split": "test"}', 'f', '["a", "b"]', 0, 'miou', 0.3, 0, 5,
               3600, '["checkpoint"]', 2, 100, 0, 300, 2048)"""
        )
        connection.execute(
            "INSERT INTO teams (id, competition_id, name, token_hash, created_at) VALUES (1, 1, 'A', 'h', 0)"
        )
        connection.execute(
            """INSERT INTO submissions (competition_id, team_id, kind, file_name, original_name, size_bytes,
               submitted_at, status) VALUES (1, 1, 'checkpoint', 'x.pt', 'best.pt', 10, 5, 'queued')"""
        )
    return store


def test_migration_from_v1_to_v2_keeps_the_data_and_adds_the_new_columns_and_tables(tmp_path: Path) -> None:
    store = _v1_database(tmp_path / "c")
    assert store.version() == 1
    with store.connect() as connection:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(submissions)")}
        assert "is_final" not in columns and "disqualified_reason" not in columns
    migrated = CompetitionStore(tmp_path / "c")  # opening with this seglab migrates
    assert migrated.version() == 2
    with migrated.connect() as connection:
        row = connection.execute(
            "SELECT original_name, status, is_final, disqualified_reason FROM submissions"
        ).fetchone()
        assert tuple(row) == ("best.pt", "queued", 0, None)
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"admin_actions", "worker_heartbeat", "competitions", "teams", "scores"} <= tables


def test_a_failing_migration_leaves_the_previous_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from seglab.competition import migrations

    store = _v1_database(tmp_path / "c")

    def broken(connection: sqlite3.Connection) -> None:
        connection.execute("ALTER TABLE submissions ADD COLUMN is_final INTEGER NOT NULL DEFAULT 0")
        raise RuntimeError("power cut halfway")

    monkeypatch.setattr(migrations, "MIGRATIONS", [migrations.MIGRATIONS[0], broken])
    connection = sqlite3.connect(store.database_path, isolation_level=None)
    with pytest.raises(RuntimeError, match="power cut"):
        migrate(connection, 2)
    assert schema_version(connection) == 1
    assert "is_final" not in {row[1] for row in connection.execute("PRAGMA table_info(submissions)")}
    connection.close()


def test_a_database_from_a_newer_seglab_is_refused(tmp_path: Path) -> None:
    store = CompetitionStore(tmp_path / "c")
    with store.connect() as connection:
        connection.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(CompetitionError, match="newer than this seglab"):
        CompetitionStore(tmp_path / "c")


def test_uploads_are_stored_under_their_content_hash_once(tmp_path: Path) -> None:
    import hashlib

    store = CompetitionStore(tmp_path / "c")
    data = b"model bytes" * 100
    names = []
    for _ in range(2):
        with store.staged_upload(io.BytesIO(data), ".pt", max_bytes=10_000) as (staged, sha256, size):
            assert size == len(data) and sha256 == hashlib.sha256(data).hexdigest()
            names.append(store.keep_upload(staged, sha256, ".pt"))
    assert names[0] == names[1] == f"{hashlib.sha256(data).hexdigest()}.pt"
    assert store.file_path(names[0]).read_bytes() == data
    assert list((store.folder / "files").iterdir()) == [store.file_path(names[0])]
    assert not list((store.folder / "uploads").iterdir())  # no staged leftovers


def test_an_upload_over_the_limit_stops_while_streaming_and_leaves_nothing(tmp_path: Path) -> None:
    store = CompetitionStore(tmp_path / "c")
    with pytest.raises(SubmissionRejected, match="larger than"):
        with store.staged_upload(io.BytesIO(b"x" * 5_000_000), ".pt", max_bytes=1_000_000):
            pass
    assert not list((store.folder / "uploads").iterdir())


def test_stored_file_names_cannot_leave_the_files_folder(tmp_path: Path) -> None:
    store = CompetitionStore(tmp_path / "c")
    for bad in ("../competition.db", "/etc/passwd", ".hidden"):
        with pytest.raises(CompetitionError):
            store.file_path(bad)


def test_default_folder_is_beside_the_runs_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEGLAB_COMPETITION_DIR", raising=False)
    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(tmp_path / "runs"))
    assert default_competition_dir() == tmp_path / "competition"
    monkeypatch.setenv("SEGLAB_COMPETITION_DIR", str(tmp_path / "elsewhere"))
    assert default_competition_dir() == tmp_path / "elsewhere"


def test_open_existing_creates_nothing(tmp_path: Path) -> None:
    assert CompetitionStore.open_existing(tmp_path / "none") is None
    assert not (tmp_path / "none").exists()
