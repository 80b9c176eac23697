"""The scoring queue, kept in the submissions table so it survives any crash.

Every state change is one SQLite write transaction:

- :func:`claim_next` turns the oldest ``queued`` submission (or a ``scoring`` one whose lease
  expired: its worker died or hung) into ``scoring`` with a lease (owner, expiry) and a new
  attempt number;
- the owner extends the lease while it works (:func:`renew_lease`);
- :func:`complete` / :func:`fail` record the outcome *only if the lease is still the owner's*
  (same owner, same attempt, still ``scoring``), together with the score row, so a result that
  arrives after another worker took the job over is dropped instead of scoring twice.

A submission that has been claimed :data:`MAX_ATTEMPTS` times without an outcome (its scoring
keeps being interrupted) is failed with that reason rather than retried for ever.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from seglab.competition.clock import now
from seglab.competition.competitions import Competition, HiddenImage
from seglab.competition.scores import encode_confusions, split_scores
from seglab.competition.store import CompetitionStore
from seglab.io.json_values import json_number

LEASE_S = 60.0
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Job:
    """A claimed submission: what the worker needs to score it, and the lease it holds."""

    submission_id: int
    competition_id: int
    kind: str
    file_name: str
    attempt: int
    owner: str


def claim_next(store: CompetitionStore, owner: str, lease_s: float = LEASE_S) -> Job | None:
    """Lease the next submission to score (oldest first), or ``None`` when the queue is empty."""
    with store.transaction() as connection:
        while True:
            at = now()
            row = connection.execute(
                """SELECT id, competition_id, kind, file_name, attempts FROM submissions
                   WHERE status = 'queued' OR (status = 'scoring' AND lease_until < ?)
                   ORDER BY submitted_at, id LIMIT 1""",
                (at,),
            ).fetchone()
            if row is None:
                return None
            if row["attempts"] >= MAX_ATTEMPTS:
                connection.execute(
                    """UPDATE submissions SET status = 'failed', reason = ?, lease_owner = NULL, lease_until = NULL,
                       finished_at = ? WHERE id = ?""",
                    (
                        f"scoring was interrupted {row['attempts']} times (worker stopped or crashed); "
                        "ask the teacher to rescore it",
                        at,
                        row["id"],
                    ),
                )
                continue
            connection.execute(
                """UPDATE submissions SET status = 'scoring', lease_owner = ?, lease_until = ?, attempts = attempts + 1,
                   started_at = ?, reason = NULL WHERE id = ?""",
                (owner, at + lease_s, at, row["id"]),
            )
            return Job(row["id"], row["competition_id"], row["kind"], row["file_name"], row["attempts"] + 1, owner)


_OWNED = "id = ? AND status = 'scoring' AND lease_owner = ? AND attempts = ?"


def renew_lease(store: CompetitionStore, job: Job, lease_s: float = LEASE_S) -> bool:
    """Extend the lease; ``False`` when the job is no longer this worker's (then stop working on it)."""
    with store.transaction() as connection:
        cursor = connection.execute(
            f"UPDATE submissions SET lease_until = ? WHERE {_OWNED}",
            (now() + lease_s, job.submission_id, job.owner, job.attempt),
        )
        return cursor.rowcount == 1


def complete(
    store: CompetitionStore,
    job: Job,
    competition: Competition,
    images: list[HiddenImage],
    confusions: np.ndarray,
    seconds: float,
) -> bool:
    """Record a scoring: status ``scored`` and the score row in one transaction, if the lease still holds."""
    is_public = np.array([image.is_public for image in images], dtype=bool)
    scores = split_scores(
        confusions, is_public, competition.metric, competition.background_index, competition.class_names
    )
    blob = encode_confusions(confusions)
    with store.transaction() as connection:
        at = now()
        cursor = connection.execute(
            f"""UPDATE submissions SET status = 'scored', reason = NULL, lease_owner = NULL, lease_until = NULL,
                finished_at = ? WHERE {_OWNED}""",
            (at, job.submission_id, job.owner, job.attempt),
        )
        if cursor.rowcount != 1:
            return False
        connection.execute(
            """INSERT OR REPLACE INTO scores (submission_id, public_score, private_score, public_class_iou_json,
               private_class_iou_json, confusions, scored_at, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                job.submission_id,
                json_number(scores.public),
                json_number(scores.private),
                json.dumps({k: json_number(v) for k, v in scores.public_class_iou.items()}),
                json.dumps({k: json_number(v) for k, v in scores.private_class_iou.items()}),
                blob,
                at,
                seconds,
            ),
        )
        return True


def fail(store: CompetitionStore, job: Job, reason: str) -> bool:
    """Mark the job failed with ``reason`` (its slot goes back to the team's quota), if the lease still holds."""
    with store.transaction() as connection:
        cursor = connection.execute(
            f"""UPDATE submissions SET status = 'failed', reason = ?, lease_owner = NULL, lease_until = NULL,
                finished_at = ? WHERE {_OWNED}""",
            (reason[:1000], now(), job.submission_id, job.owner, job.attempt),
        )
        return cursor.rowcount == 1


def release(store: CompetitionStore, job: Job) -> bool:
    """Put the job back in the queue (the worker is stopping); the interrupted attempt is not held against it."""
    with store.transaction() as connection:
        cursor = connection.execute(
            f"""UPDATE submissions SET status = 'queued', lease_owner = NULL, lease_until = NULL,
                attempts = attempts - 1 WHERE {_OWNED}""",
            (job.submission_id, job.owner, job.attempt),
        )
        return cursor.rowcount == 1


def requeue_orphans(store: CompetitionStore) -> int:
    """Queue again every ``scoring`` submission. Only the holder of the worker lock may call this:
    with the lock held, no other worker is alive, so any lease is a dead worker's."""
    with store.transaction() as connection:
        cursor = connection.execute(
            "UPDATE submissions SET status = 'queued', lease_owner = NULL, lease_until = NULL WHERE status = 'scoring'"
        )
        return cursor.rowcount


def queue_summary(counts: dict[str, int], worker_running: bool) -> str:
    """One status line: submissions per status (:func:`queue_counts`) and whether the scoring worker runs."""
    worker = "running" if worker_running else "not running"
    return " · ".join(f"{count} {status}" for status, count in counts.items()) + f" · worker {worker}"


def queue_counts(store: CompetitionStore, competition: Competition | None = None) -> dict[str, int]:
    """Number of submissions per status (all four statuses present)."""
    query = "SELECT status, COUNT(*) FROM submissions"
    arguments: tuple = ()
    if competition is not None:
        query, arguments = query + " WHERE competition_id = ?", (competition.id,)
    with store.connect() as connection:
        counts = dict(connection.execute(query + " GROUP BY status", arguments).fetchall())
    return {status: int(counts.get(status, 0)) for status in ("queued", "scoring", "scored", "failed")}
