"""Submission quotas: at most N submissions per team within any rolling window (e.g. 5 per hour).

A rolling window rather than a fixed one (midnight resets) so no team gains by submitting just
before a reset. Failed submissions never count: a model that crashed, timed out or could not be
read gives its slot back. Submissions still queued or scoring do count, so a team cannot flood the
queue while waiting.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from seglab.competition.clock import format_duration, format_timestamp


@dataclass(frozen=True)
class QuotaState:
    """A team's quota at one moment."""

    limit: int
    window_s: int
    used: int  # submissions counted within the window
    next_slot_at: float | None  # when the oldest counted submission leaves the window (None: none counted)
    at: float

    @property
    def left(self) -> int:
        return max(self.limit - self.used, 0)

    def describe(self) -> str:
        """E.g. ``3 of 5 left (per 1 h); next slot frees at 14:32:10 (in 12 min)``."""
        text = f"{self.left} of {self.limit} submission(s) left (rolling window of {format_duration(self.window_s)})"
        if self.next_slot_at is not None and self.left < self.limit:
            wait = format_duration(self.next_slot_at - self.at)
            text += f"; the next slot frees at {format_timestamp(self.next_slot_at, with_date=False)} (in {wait})"
        return text


def quota_state(counted_times: Sequence[float], limit: int, window_s: int, at: float) -> QuotaState:
    """The quota given the submission times that count (any order; those outside the window are ignored)."""
    inside = sorted(moment for moment in counted_times if at - window_s < moment <= at)
    return QuotaState(
        limit=limit, window_s=window_s, used=len(inside), next_slot_at=inside[0] + window_s if inside else None, at=at
    )


def team_quota(connection: sqlite3.Connection, team_id: int, limit: int, window_s: int, at: float) -> QuotaState:
    """A team's quota from the database (inside the caller's transaction when checking a submission)."""
    rows = connection.execute(
        "SELECT submitted_at FROM submissions WHERE team_id = ? AND status != 'failed' AND submitted_at > ?",
        (team_id, at - window_s),
    ).fetchall()
    return quota_state([row[0] for row in rows], limit, window_s, at)
