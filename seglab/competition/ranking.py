"""Leaderboards: deterministic team rankings on the public images, and on the private ones after the reveal.

- A team enters with its best *scored*, not disqualified submission; failed and pending ones never
  rank. Ties (equal scores) go to the earlier submission, then the lower submission number, so the
  same data always gives the same order. An undefined score (NaN: nothing to measure) ranks last.
- **Public**: every submission's public score; after a freeze, only submissions made before it
  (the teacher's "frozen" board for the last hour, as on Kaggle).
- **Private**: each team's final choices (up to ``max_finals``; none chosen = its best public
  submission, as Kaggle does) scored on the private images; the team's best of those counts.
  Visible to students only after the reveal (:func:`private_leaderboard` refuses before).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from seglab.competition.clock import format_timestamp
from seglab.competition.competitions import Competition
from seglab.competition.errors import CompetitionError
from seglab.competition.store import CompetitionStore
from seglab.competition.submissions import Submission, all_submissions
from seglab.competition.teams import list_teams


@dataclass(frozen=True)
class BoardRow:
    """One ranked team."""

    rank: int
    team: str
    score: float | None  # None: undefined (nothing to measure), ranked last
    submission_id: int  # the submission that gives the score
    submitted_at: float  # when that submission was made: the team's last improvement
    submissions: int  # the team's submissions that count (not failed), up to the freeze on the public board
    public_score: float | None = None  # on the private board: the same submission's public score


@dataclass(frozen=True)
class Board:
    """A ranking and what it is computed on."""

    kind: str  # "public" or "private"
    metric: str
    rows: list[BoardRow]
    unranked_teams: list[str]  # teams without a scored submission (yet)
    frozen_at: float | None = None

    def table(self) -> list[dict[str, Any]]:
        """One row per ranked team for display; the public board leaves out the (identical) public score."""
        return [
            {
                "rank": row.rank,
                "team": row.team,
                "score": row.score,
                **({} if self.kind == "public" else {"public": row.public_score}),
                "submissions": row.submissions,
                "best at": format_timestamp(row.submitted_at),
                "#": row.submission_id,
            }
            for row in self.rows
        ]

    def caption(self) -> str:
        what = "public images" if self.kind == "public" else "private images (final ranking)"
        frozen = f"; frozen at {format_timestamp(self.frozen_at)}" if self.frozen_at is not None else ""
        return f"{self.metric} on the {what}{frozen}"


def _sort_key(score: float | None, submitted_at: float, submission_id: int) -> tuple:
    if score is None or math.isnan(score):
        return (True, 0.0, submitted_at, submission_id)
    return (False, -score, submitted_at, submission_id)


def rank_entries(
    entries: Iterable[tuple[str, float | None, float, int]],
) -> list[tuple[int, str, float | None, float, int]]:
    """``(team, score, submitted_at, submission_id)`` -> ranked ``(rank, ...)``: higher score first, then
    earlier submission, then lower id. Ranks are 1, 2, 3... (a tie is broken, never shared)."""
    ordered = sorted(entries, key=lambda entry: _sort_key(entry[1], entry[2], entry[3]))
    return [(rank, *entry) for rank, entry in enumerate(ordered, start=1)]


def _best(submissions: list[Submission], score_of) -> Submission | None:
    candidates = [s for s in submissions if s.rankable]
    if not candidates:
        return None
    return min(candidates, key=lambda s: _sort_key(score_of(s), s.submitted_at, s.id))


def _by_team(submissions: list[Submission]) -> dict[int, list[Submission]]:
    teams: dict[int, list[Submission]] = {}
    for submission in submissions:
        teams.setdefault(submission.team_id, []).append(submission)
    return teams


def public_leaderboard(store: CompetitionStore, competition: Competition) -> Board:
    """Teams ranked by their best public score (only submissions before the freeze, if frozen)."""
    submissions = all_submissions(store, competition)
    if competition.frozen_at is not None:
        submissions = [s for s in submissions if s.submitted_at <= competition.frozen_at]
    return _board(
        "public",
        competition,
        store,
        submissions,
        lambda s: s.public_score,
        lambda team: _best(team, lambda s: s.public_score),
    )


def final_submissions(team_submissions: list[Submission]) -> list[Submission]:
    """The submissions that compete privately for one team: its chosen finals that are still rankable,
    else its best public one."""
    chosen = [s for s in team_submissions if s.is_final and s.rankable]
    if chosen:
        return chosen
    best = _best(team_submissions, lambda s: s.public_score)
    return [best] if best is not None else []


def private_leaderboard(store: CompetitionStore, competition: Competition, *, before_reveal: bool = False) -> Board:
    """Teams ranked by the best private score among their final submissions.

    Refused before the reveal unless ``before_reveal`` (the teacher's preview on the admin page).
    """
    if not competition.is_revealed and not before_reveal:
        raise CompetitionError("the private ranking is hidden until the teacher reveals it")
    submissions = all_submissions(store, competition)
    return _board(
        "private",
        competition,
        store,
        submissions,
        lambda s: s.private_score,
        lambda team: _best(final_submissions(team), lambda s: s.private_score),
    )


def _board(
    kind: str, competition: Competition, store: CompetitionStore, submissions: list[Submission], score_of, choose
) -> Board:
    grouped = _by_team(submissions)
    chosen: dict[int, Submission] = {}
    for team_id, team_submissions in grouped.items():
        best = choose(team_submissions)
        if best is not None:
            chosen[team_id] = best
    ranked = rank_entries((best.team_name, score_of(best), best.submitted_at, best.id) for best in chosen.values())
    by_id = {best.id: best for best in chosen.values()}
    rows = [
        BoardRow(
            rank=rank,
            team=team,
            score=score,
            submission_id=submission_id,
            submitted_at=submitted_at,
            submissions=sum(1 for s in grouped[by_id[submission_id].team_id] if s.status != "failed"),
            public_score=by_id[submission_id].public_score if kind == "private" else None,
        )
        for rank, team, score, submitted_at, submission_id in ranked
    ]
    ranked_names = {row.team for row in rows}
    unranked = [team.name for team in list_teams(store, competition) if team.name not in ranked_names]
    return Board(
        kind=kind,
        metric=competition.metric,
        rows=rows,
        unranked_teams=unranked,
        frozen_at=competition.frozen_at if kind == "public" else None,
    )
