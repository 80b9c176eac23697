"""Submissions: accept an upload (validated, under quota), list them, choose the final ones.

An accepted upload is stored under its SHA-256 name and enters the queue as ``queued``; the worker
moves it to ``scoring`` and then ``scored`` or ``failed`` (with the reason). What a team sees of its
own submissions (:class:`TeamSubmission`) carries the *public* score only; private scores exist only
in :class:`Submission`, the admin's view.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from seglab.competition.clock import format_timestamp, now
from seglab.competition.competitions import Competition, competition_by_id, hidden_images
from seglab.competition.errors import CompetitionError, SubmissionRejected
from seglab.competition.quota import QuotaState, team_quota
from seglab.competition.scoring import KIND_SUFFIXES
from seglab.competition.store import CompetitionStore
from seglab.competition.teams import Team
from seglab.competition.validation import check_kind, guess_kind, validate_upload

STATUSES = ("queued", "scoring", "scored", "failed")
STATUS_LABELS = {"queued": "⏳ queued", "scoring": "⚙️ scoring", "scored": "✅ scored", "failed": "❌ failed"}


@dataclass(frozen=True)
class Submission:
    """A submission as the teacher sees it (private score included)."""

    id: int
    competition_id: int
    team_id: int
    team_name: str
    kind: str
    file_name: str
    original_name: str
    size_bytes: int
    note: str
    submitted_at: float
    status: str
    reason: str | None
    attempts: int
    finished_at: float | None
    is_final: bool
    disqualified_reason: str | None
    public_score: float | None
    private_score: float | None

    @property
    def rankable(self) -> bool:
        """Scored and not disqualified."""
        return self.status == "scored" and self.disqualified_reason is None


@dataclass(frozen=True)
class TeamSubmission:
    """A submission as its own team sees it: public score only."""

    id: int
    submitted_at: float
    kind: str
    original_name: str
    note: str
    status: str
    reason: str | None
    public_score: float | None
    public_class_iou: dict[str, float | None] | None  # only when the teacher allows it
    is_final: bool
    disqualified_reason: str | None


@dataclass(frozen=True)
class Receipt:
    """What an accepted upload returns at once."""

    submission_id: int
    description: str
    quota: QuotaState


_SELECT = """
    SELECT s.*, t.name AS team_name, sc.public_score, sc.private_score, sc.public_class_iou_json
    FROM submissions s JOIN teams t ON t.id = s.team_id LEFT JOIN scores sc ON sc.submission_id = s.id
"""


def _submission(row: sqlite3.Row) -> Submission:
    return Submission(
        id=row["id"],
        competition_id=row["competition_id"],
        team_id=row["team_id"],
        team_name=row["team_name"],
        kind=row["kind"],
        file_name=row["file_name"],
        original_name=row["original_name"],
        size_bytes=row["size_bytes"],
        note=row["note"],
        submitted_at=row["submitted_at"],
        status=row["status"],
        reason=row["reason"],
        attempts=row["attempts"],
        finished_at=row["finished_at"],
        is_final=bool(row["is_final"]),
        disqualified_reason=row["disqualified_reason"],
        public_score=row["public_score"],
        private_score=row["private_score"],
    )


def _check_open(competition: Competition, at: float) -> None:
    if competition.is_revealed:
        raise SubmissionRejected(f"{competition.name} is over: the final ranking has been revealed")
    if competition.deadline is not None and at > competition.deadline:
        raise SubmissionRejected(f"{competition.name} closed at {format_timestamp(competition.deadline)}")


def submit(
    store: CompetitionStore,
    competition: Competition,
    team: Team,
    source: bytes | BinaryIO,
    original_name: str,
    *,
    kind: str | None = None,
    note: str = "",
) -> Receipt:
    """Validate an upload and queue it; raises :class:`SubmissionRejected` with the reason.

    The quota is checked before the (possibly slow) validation and again, atomically with the
    insert, inside one write transaction: two uploads of one team at the same moment cannot both
    take the last slot.
    """
    if team.competition_id != competition.id:
        raise CompetitionError(f"team {team.name} is not part of {competition.name}")
    kind = kind or guess_kind(original_name)
    check_kind(competition, kind)
    _check_open(competition, now())
    with store.connect() as connection:
        quota = team_quota(connection, team.id, competition.quota_count, competition.quota_window_s, now())
    if quota.left == 0:
        raise SubmissionRejected(f"quota used up: {quota.describe()}")
    suffix = KIND_SUFFIXES[kind]
    images = hidden_images(store, competition)
    max_bytes = int(competition.max_upload_mb * 2**20)
    with store.staged_upload(source, suffix, max_bytes) as (staged, sha256, size):
        description = validate_upload(competition, images, kind, staged)
        with store.transaction() as connection:
            at = now()
            _check_open(competition_by_id(store, competition.id), at)
            quota = team_quota(connection, team.id, competition.quota_count, competition.quota_window_s, at)
            if quota.left == 0:
                raise SubmissionRejected(f"quota used up: {quota.describe()}")
            file_name = store.keep_upload(staged, sha256, suffix)
            cursor = connection.execute(
                """INSERT INTO submissions (competition_id, team_id, kind, file_name, original_name, size_bytes, note,
                   submitted_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued')""",
                (competition.id, team.id, kind, file_name, original_name[:200], size, note[:500], at),
            )
            submission_id = int(cursor.lastrowid or 0)
            quota = team_quota(connection, team.id, competition.quota_count, competition.quota_window_s, at)
    return Receipt(submission_id=submission_id, description=description, quota=quota)


def quota_for(store: CompetitionStore, competition: Competition, team: Team) -> QuotaState:
    """A team's quota now."""
    with store.connect() as connection:
        return team_quota(connection, team.id, competition.quota_count, competition.quota_window_s, now())


def all_submissions(store: CompetitionStore, competition: Competition) -> list[Submission]:
    """Every submission of a competition, oldest first (the admin's view)."""
    with store.connect() as connection:
        rows = connection.execute(
            _SELECT + " WHERE s.competition_id = ? ORDER BY s.submitted_at, s.id", (competition.id,)
        ).fetchall()
    return [_submission(row) for row in rows]


def submission_table(submissions: Sequence[Submission]) -> list[dict[str, Any]]:
    """The teacher's table of ``submissions`` (as :func:`all_submissions` lists them), newest first: team, time,
    kind, file, status, both scores, final choice and why it failed or was disqualified."""
    return [
        {
            "#": s.id,
            "team": s.team_name,
            "submitted": format_timestamp(s.submitted_at),
            "kind": s.kind,
            "file": s.original_name,
            "status": s.status,
            "public": s.public_score,
            "private": s.private_score,
            "final": s.is_final,
            "reason / disqualified": s.disqualified_reason or s.reason or "",
        }
        for s in reversed(submissions)
    ]


def get_submission(store: CompetitionStore, submission_id: int) -> Submission:
    """One submission by id."""
    with store.connect() as connection:
        row = connection.execute(_SELECT + " WHERE s.id = ?", (submission_id,)).fetchone()
    if row is None:
        raise CompetitionError(f"no submission #{submission_id}")
    return _submission(row)


def team_submissions(store: CompetitionStore, competition: Competition, team: Team) -> list[TeamSubmission]:
    """A team's own submissions, newest first, with public scores only."""
    with store.connect() as connection:
        rows = connection.execute(
            _SELECT + " WHERE s.team_id = ? AND s.competition_id = ? ORDER BY s.submitted_at DESC, s.id DESC",
            (team.id, competition.id),
        ).fetchall()
    views = []
    for row in rows:
        class_iou = None
        if competition.show_class_iou and row["public_class_iou_json"]:
            class_iou = json.loads(row["public_class_iou_json"])
        views.append(
            TeamSubmission(
                id=row["id"],
                submitted_at=row["submitted_at"],
                kind=row["kind"],
                original_name=row["original_name"],
                note=row["note"],
                status=row["status"],
                reason=row["reason"],
                public_score=row["public_score"],
                public_class_iou=class_iou,
                is_final=bool(row["is_final"]),
                disqualified_reason=row["disqualified_reason"],
            )
        )
    return views


def team_table(views: Sequence[TeamSubmission]) -> list[dict[str, Any]]:
    """A team's table of its own submissions (as :func:`team_submissions` lists them): time, kind, file, status
    with its icon, public score, final choice, why it failed or was disqualified, and the team's note."""
    return [
        {
            "#": v.id,
            "submitted": format_timestamp(v.submitted_at),
            "kind": v.kind,
            "file": v.original_name,
            "status": STATUS_LABELS.get(v.status, v.status),
            "public score": v.public_score,
            "final": v.is_final,
            "reason": (f"disqualified: {v.disqualified_reason}" if v.disqualified_reason else v.reason) or "",
            "note": v.note,
        }
        for v in views
    ]


def team_class_iou(views: Sequence[TeamSubmission]) -> dict[str, dict[str, float | None]]:
    """``"#<id>"`` -> public per-class IoU of the submissions that have one (the teacher allows it)."""
    return {f"#{v.id}": v.public_class_iou for v in views if v.public_class_iou}


def final_choices(views: Sequence[TeamSubmission]) -> dict[int, str]:
    """The submissions a team may choose as final (scored, not disqualified): id -> menu label with the public
    score and the file name."""
    return {
        v.id: f"#{v.id} · public {v.public_score:.4f} · {v.original_name}" if v.public_score is not None else f"#{v.id}"
        for v in views
        if v.status == "scored" and not v.disqualified_reason
    }


def choose_finals(store: CompetitionStore, competition: Competition, team: Team, submission_ids: list[int]) -> None:
    """Mark up to ``max_finals`` of a team's scored submissions as final (an empty list: the best public one counts)."""
    if competition.is_revealed:
        raise CompetitionError("the final ranking is revealed: final choices can no longer change")
    chosen = sorted(set(int(i) for i in submission_ids))
    if len(chosen) > competition.max_finals:
        raise CompetitionError(f"choose at most {competition.max_finals} final submission(s); you chose {len(chosen)}")
    with store.transaction() as connection:
        for submission_id in chosen:
            row = connection.execute(
                "SELECT team_id, status, disqualified_reason FROM submissions WHERE id = ? AND competition_id = ?",
                (submission_id, competition.id),
            ).fetchone()
            if row is None or row["team_id"] != team.id:
                raise CompetitionError(f"submission #{submission_id} is not one of your team's")
            if row["status"] != "scored" or row["disqualified_reason"]:
                raise CompetitionError(
                    f"submission #{submission_id} is not scored (or was disqualified): it cannot be final"
                )
        connection.execute("UPDATE submissions SET is_final = 0 WHERE team_id = ?", (team.id,))
        connection.executemany("UPDATE submissions SET is_final = 1 WHERE id = ?", [(i,) for i in chosen])
