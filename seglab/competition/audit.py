"""The admin action log: who changed what in a competition, and when (append-only)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from seglab.competition.clock import format_timestamp, now
from seglab.competition.store import CompetitionStore


@dataclass(frozen=True)
class AdminAction:
    """One logged action (create, add teams, freeze, reveal, rescore, disqualify, export...)."""

    id: int
    at: float
    action: str
    target: str
    detail: str


def log_action(
    connection: sqlite3.Connection, competition_id: int | None, action: str, target: str = "", detail: str = ""
) -> None:
    """Append an entry, inside the caller's transaction (the action and its log entry commit together)."""
    connection.execute(
        "INSERT INTO admin_actions (competition_id, at, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (competition_id, now(), action, target, detail),
    )


def action_table(actions: Sequence[AdminAction]) -> list[dict[str, str]]:
    """``actions`` (as :func:`action_log` lists them) newest first, for display: time, action, target, detail."""
    return [
        {"at": format_timestamp(a.at), "action": a.action, "target": a.target, "detail": a.detail}
        for a in reversed(actions)
    ]


def action_log(store: CompetitionStore, competition_id: int) -> list[AdminAction]:
    """Every logged action of a competition, oldest first."""
    with store.connect() as connection:
        rows = connection.execute(
            "SELECT id, at, action, target, detail FROM admin_actions WHERE competition_id = ? ORDER BY at, id",
            (competition_id,),
        ).fetchall()
    return [AdminAction(row["id"], row["at"], row["action"], row["target"], row["detail"]) for row in rows]
