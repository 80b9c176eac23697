"""The competition database schema, as an ordered list of migrations.

``schema_version`` holds one row: the number of the last migration applied. Opening a store runs
every newer migration in order, each in its own transaction together with the version bump, so a
crash halfway leaves the database at the previous version, never in between. A database written
by a newer seglab (a higher version than :data:`MIGRATIONS` knows) is refused, not downgraded.

History:

- v1: competitions, their hidden images with the fixed public/private assignment, teams (hashed
  tokens), submissions (the queue: status, lease, attempts) and scores (per-image confusion
  matrices plus the public/private scores derived from them).
- v2: final-submission choices, disqualification with a reason, the admin action log and the
  scoring worker's heartbeat.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from seglab.competition.errors import CompetitionError

Migration = Callable[[sqlite3.Connection], None]


def _execute_script(connection: sqlite3.Connection, script: str) -> None:
    """Run the statements of ``script`` one by one inside the caller's transaction.

    Not ``executescript``: it COMMITs a pending transaction first, which would split a migration
    from its version bump.
    """
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            connection.execute(statement)
            statement = ""
    if statement.strip():
        raise CompetitionError(f"incomplete SQL statement in a migration: {statement.strip()[:80]}")


def _v1_initial(connection: sqlite3.Connection) -> None:
    _execute_script(
        connection,
        """
        CREATE TABLE competitions (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            spec_json TEXT NOT NULL,          -- seglab.data.spec.DataSpec, split = the hidden split
            fingerprint TEXT NOT NULL,        -- dataset fingerprint at creation
            class_names_json TEXT NOT NULL,
            background_index INTEGER,
            metric TEXT NOT NULL,
            public_share REAL NOT NULL,
            split_seed INTEGER NOT NULL,
            quota_count INTEGER NOT NULL,
            quota_window_s INTEGER NOT NULL,
            deadline REAL,
            kinds_json TEXT NOT NULL,
            max_finals INTEGER NOT NULL,
            max_upload_mb REAL NOT NULL,
            show_class_iou INTEGER NOT NULL,
            time_limit_s REAL NOT NULL,
            memory_limit_mb INTEGER NOT NULL,
            frozen_at REAL,
            revealed_at REAL
        );
        CREATE TABLE hidden_images (
            competition_id INTEGER NOT NULL REFERENCES competitions(id),
            position INTEGER NOT NULL,
            sample_id TEXT NOT NULL,
            height INTEGER NOT NULL,
            width INTEGER NOT NULL,
            is_public INTEGER NOT NULL,
            mask_path TEXT,                   -- resolved ground-truth file (file datasets), to refuse it anywhere
            PRIMARY KEY (competition_id, position),
            UNIQUE (competition_id, sample_id)
        );
        CREATE TABLE teams (
            id INTEGER PRIMARY KEY,
            competition_id INTEGER NOT NULL REFERENCES competitions(id),
            name TEXT NOT NULL,
            token_hash TEXT NOT NULL,
            created_at REAL NOT NULL,
            UNIQUE (competition_id, name)
        );
        CREATE TABLE submissions (
            id INTEGER PRIMARY KEY,
            competition_id INTEGER NOT NULL REFERENCES competitions(id),
            team_id INTEGER NOT NULL REFERENCES teams(id),
            kind TEXT NOT NULL,
            file_name TEXT NOT NULL,          -- content-hash name under files/
            original_name TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            submitted_at REAL NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'scoring', 'scored', 'failed')),
            reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT,
            lease_until REAL,
            started_at REAL,
            finished_at REAL
        );
        CREATE INDEX submissions_queue ON submissions (status, submitted_at, id);
        CREATE INDEX submissions_team ON submissions (team_id, submitted_at);
        CREATE TABLE scores (
            submission_id INTEGER PRIMARY KEY REFERENCES submissions(id),
            public_score REAL,
            private_score REAL,
            public_class_iou_json TEXT NOT NULL,
            private_class_iou_json TEXT NOT NULL,
            confusions BLOB NOT NULL,         -- zlib(np.save((N, K, K) int64)), hidden-image order
            scored_at REAL NOT NULL,
            seconds REAL NOT NULL
        );
        """,
    )


def _v2_finals_disqualification_log(connection: sqlite3.Connection) -> None:
    _execute_script(
        connection,
        """
        ALTER TABLE submissions ADD COLUMN is_final INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE submissions ADD COLUMN disqualified_reason TEXT;
        CREATE TABLE admin_actions (
            id INTEGER PRIMARY KEY,
            competition_id INTEGER REFERENCES competitions(id),
            at REAL NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE worker_heartbeat (
            worker_id TEXT PRIMARY KEY,
            pid INTEGER NOT NULL,
            started_at REAL NOT NULL,
            last_seen REAL NOT NULL,
            current_submission INTEGER
        );
        """,
    )


# Ordered: position i holds migration i + 1. Append new ones; never edit or reorder applied ones.
MIGRATIONS: list[Migration] = [_v1_initial, _v2_finals_disqualification_log]
LATEST_VERSION = len(MIGRATIONS)


def schema_version(connection: sqlite3.Connection) -> int:
    """The version a database is at: 0 for a new, empty one."""
    connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = connection.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(connection: sqlite3.Connection, target: int = LATEST_VERSION) -> int:
    """Apply every migration above the database's version up to ``target``; returns the new version.

    ``connection`` must be in autocommit mode (``isolation_level=None``): each step runs in its own
    ``BEGIN IMMEDIATE`` transaction, so two processes opening the store together migrate once.
    """
    if not 0 <= target <= LATEST_VERSION:
        raise CompetitionError(f"schema version {target} does not exist (latest is {LATEST_VERSION})")
    while True:
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(connection)
            if version > LATEST_VERSION:
                raise CompetitionError(
                    f"the competition database is at schema version {version}, newer than this seglab knows "
                    f"({LATEST_VERSION}); upgrade seglab"
                )
            if version >= target:
                connection.execute("COMMIT")
                return version
            MIGRATIONS[version](connection)
            if version == 0:
                connection.execute("INSERT INTO schema_version (version) VALUES (1)")
            else:
                connection.execute("UPDATE schema_version SET version = ?", (version + 1,))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
