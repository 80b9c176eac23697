"""Rankings: deterministic ties, failed never ranked, freeze, finals, private only after the reveal."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from seglab.competition import admin
from seglab.competition.audit import action_log, action_table
from seglab.competition.clock import format_timestamp
from seglab.competition.competitions import get_competition
from seglab.competition.errors import CompetitionError
from seglab.competition.ranking import private_leaderboard, public_leaderboard, rank_entries
from seglab.competition.scores import encode_confusions
from seglab.competition.submissions import (
    TeamSubmission,
    all_submissions,
    choose_finals,
    final_choices,
    submission_table,
    team_class_iou,
    team_submissions,
    team_table,
)
from tests.helpers.competition import make_competition


def test_ties_go_to_the_earlier_submission_then_the_lower_number() -> None:
    ranked = rank_entries(
        [
            ("late", 0.8, 20.0, 3),
            ("early", 0.8, 10.0, 5),
            ("best", 0.9, 30.0, 9),
            ("same time", 0.8, 10.0, 4),
            ("undefined", math.nan, 1.0, 1),
            ("none", None, 1.0, 2),
        ]
    )
    assert [(rank, team) for rank, team, *_ in ranked] == [
        (1, "best"),
        (2, "same time"),
        (3, "early"),
        (4, "late"),
        (5, "undefined"),
        (6, "none"),
    ]


@pytest.fixture
def board(tmp_path: Path):
    """Three teams with hand-written scores (what the worker would store), submitted at known times."""
    store, competition, issued = make_competition(tmp_path / "c", teams=("Alpha", "Beta", "Gamma", "Delta"))
    teams = {item.team.name: item.team for item in issued}
    rows = [  # team, submitted_at, status, public, private
        ("Alpha", 100.0, "scored", 0.70, 0.60),
        ("Alpha", 200.0, "scored", 0.80, 0.55),  # best public, worse private
        ("Beta", 150.0, "scored", 0.80, 0.75),  # ties Alpha's best public but earlier: Beta first
        ("Beta", 300.0, "failed", None, None),
        ("Gamma", 120.0, "failed", None, None),  # failed only: never ranked
        ("Delta", 50.0, "queued", None, None),  # pending only: not ranked yet
    ]
    ids = []
    with store.transaction() as connection:
        for team, at, status, public, private in rows:
            cursor = connection.execute(
                """INSERT INTO submissions (competition_id, team_id, kind, file_name, original_name, size_bytes,
                   submitted_at, status) VALUES (?, ?, 'masks_zip', 'f.zip', 'f.zip', 1, ?, ?)""",
                (competition.id, teams[team].id, at, status),
            )
            ids.append(cursor.lastrowid)
            if status == "scored":
                connection.execute(
                    """INSERT INTO scores (submission_id, public_score, private_score, public_class_iou_json,
                       private_class_iou_json, confusions, scored_at, seconds) VALUES (?, ?, ?, '{}', '{}', ?, 0, 0)""",
                    (cursor.lastrowid, public, private, encode_confusions(np.zeros((1, 1, 1)))),
                )
    return store, competition, teams, ids


def test_public_board_ranks_each_team_by_its_best_public_score(board) -> None:
    store, competition, _, ids = board
    result = public_leaderboard(store, competition)
    assert [(row.rank, row.team, row.score, row.submission_id) for row in result.rows] == [
        (1, "Beta", 0.80, ids[2]),
        (2, "Alpha", 0.80, ids[1]),
    ]
    assert [row.submissions for row in result.rows] == [1, 2]  # failed ones do not count
    assert result.rows[1].submitted_at == 200.0  # Alpha's last improvement
    assert result.unranked_teams == ["Gamma", "Delta"]
    assert public_leaderboard(store, competition) == result  # same data, same order


def test_disqualified_submissions_leave_the_board(board) -> None:
    store, competition, _, ids = board
    admin.disqualify(store, competition, ids[1], "used the test labels")
    rows = public_leaderboard(store, competition).rows
    assert [(row.team, row.score) for row in rows] == [("Beta", 0.80), ("Alpha", 0.70)]
    with pytest.raises(CompetitionError, match="reason"):
        admin.disqualify(store, competition, ids[0], "  ")
    admin.reinstate(store, competition, ids[1])
    assert public_leaderboard(store, competition).rows[1].score == 0.80


def test_a_frozen_board_ignores_later_submissions(board) -> None:
    store, competition, _, _ = board
    admin.freeze(store, competition)
    with store.connect() as connection:
        connection.execute("UPDATE competitions SET frozen_at = 160.0")
    frozen = public_leaderboard(store, get_competition(store))
    assert [(row.team, row.score) for row in frozen.rows] == [("Beta", 0.80), ("Alpha", 0.70)]
    assert frozen.frozen_at == 160.0 and "frozen at" in frozen.caption()
    admin.unfreeze(store, get_competition(store))
    assert public_leaderboard(store, get_competition(store)).rows[1].score == 0.80


def test_private_board_is_refused_until_the_reveal(board) -> None:
    store, competition, _, _ = board
    with pytest.raises(CompetitionError, match="hidden until the teacher reveals"):
        private_leaderboard(store, competition)
    admin.reveal(store, competition)
    assert private_leaderboard(store, get_competition(store)).kind == "private"


def test_private_board_uses_the_chosen_finals_else_the_best_public(board) -> None:
    store, competition, teams, ids = board
    preview = private_leaderboard(store, competition, before_reveal=True)
    # No finals chosen: each team's best public submission competes (Alpha's #2: private 0.55).
    assert [(row.team, row.score, row.public_score) for row in preview.rows] == [
        ("Beta", 0.75, 0.80),
        ("Alpha", 0.55, 0.80),
    ]
    choose_finals(store, competition, teams["Alpha"], [ids[0], ids[1]])
    rows = private_leaderboard(store, competition, before_reveal=True).rows
    assert [(row.team, row.score, row.submission_id) for row in rows] == [
        ("Beta", 0.75, ids[2]),
        ("Alpha", 0.60, ids[0]),
    ]


def test_final_choices_are_checked(board) -> None:
    store, competition, teams, ids = board
    with pytest.raises(CompetitionError, match="at most 2"):
        choose_finals(store, competition, teams["Alpha"], [ids[0], ids[1], ids[2]])
    with pytest.raises(CompetitionError, match="not one of your team's"):
        choose_finals(store, competition, teams["Alpha"], [ids[2]])
    with pytest.raises(CompetitionError, match="not scored"):
        choose_finals(store, competition, teams["Beta"], [ids[3]])
    choose_finals(store, competition, teams["Alpha"], [ids[1]])
    assert [s.is_final for s in team_submissions(store, competition, teams["Alpha"])] == [True, False]
    admin.reveal(store, competition)
    with pytest.raises(CompetitionError, match="revealed"):
        choose_finals(store, get_competition(store), teams["Alpha"], [ids[0]])


def test_teams_see_public_scores_only(board) -> None:
    store, competition, teams, _ = board
    views = team_submissions(store, competition, teams["Alpha"])
    assert [view.public_score for view in views] == [0.80, 0.70]
    assert all(not hasattr(view, "private_score") for view in views)
    assert all(view.public_class_iou is None for view in views)  # the teacher did not allow per-class IoU


def test_per_class_public_iou_only_when_allowed(tmp_path: Path) -> None:
    store, competition, issued = make_competition(tmp_path / "c", teams=("Alpha",), show_class_iou=True)
    with store.transaction() as connection:
        cursor = connection.execute(
            """INSERT INTO submissions (competition_id, team_id, kind, file_name, original_name, size_bytes,
               submitted_at, status) VALUES (?, ?, 'masks_zip', 'f', 'f', 1, 1, 'scored')""",
            (competition.id, issued[0].team.id),
        )
        connection.execute(
            """INSERT INTO scores VALUES (?, 0.5, 0.4, ?, ?, ?, 0, 0)""",
            (
                cursor.lastrowid,
                json.dumps({"circle": 0.5}),
                json.dumps({"circle": 0.4}),
                encode_confusions(np.zeros((1, 1, 1))),
            ),
        )
    (view,) = team_submissions(store, competition, issued[0].team)
    assert view.public_class_iou == {"circle": 0.5}  # the public one, never the private one


def test_display_tables_of_boards_submissions_and_the_action_log(board) -> None:
    store, competition, _, ids = board
    public = public_leaderboard(store, competition).table()
    assert public[0] == {
        "rank": 1,
        "team": "Beta",
        "score": 0.80,
        "submissions": 1,
        "best at": format_timestamp(150.0),
        "#": ids[2],
    }  # the public board has no separate public column
    private = private_leaderboard(store, competition, before_reveal=True).table()
    assert list(private[0]) == ["rank", "team", "score", "public", "submissions", "best at", "#"]
    assert (private[1]["team"], private[1]["score"], private[1]["public"]) == ("Alpha", 0.55, 0.80)
    admin.disqualify(store, competition, ids[0], "copied")
    rows = submission_table(all_submissions(store, competition))
    assert [row["#"] for row in rows] == [ids[3], ids[1], ids[2], ids[4], ids[0], ids[5]]  # newest first
    first = next(row for row in rows if row["#"] == ids[0])
    assert (first["team"], first["status"], first["public"], first["reason / disqualified"]) == (
        "Alpha",
        "scored",
        0.70,
        "copied",
    )
    assert next(row for row in rows if row["#"] == ids[1])["reason / disqualified"] == ""
    log = action_table(action_log(store, competition.id))
    assert log[0]["action"] == "disqualify" and log[0]["detail"] == "copied"  # newest first
    assert set(log[0]) == {"at", "action", "target", "detail"} and len(log) == len(action_log(store, competition.id))


def _team_view(number: int, status: str = "scored", score: float | None = 0.5, **fields) -> TeamSubmission:
    values = {
        "submitted_at": 1_700_000_000.0 + number,
        "kind": "masks_zip",
        "original_name": f"sub{number}.zip",
        "note": "",
        "reason": None,
        "public_class_iou": None,
        "is_final": False,
        "disqualified_reason": None,
    }
    return TeamSubmission(id=number, status=status, public_score=score, **(values | fields))


def test_a_teams_own_table_classes_and_final_choices() -> None:
    views = [
        _team_view(1, score=0.61234, is_final=True, public_class_iou={"bg": 0.9, "car": None}),
        _team_view(2, status="failed", score=None, reason="bad zip"),
        _team_view(3, disqualified_reason="copied", note="mine"),
        _team_view(4, status="queued", score=None),
        _team_view(5, score=None),
    ]
    rows = team_table(views)
    assert [row["#"] for row in rows] == [1, 2, 3, 4, 5]  # as listed
    assert [row["status"] for row in rows] == ["✅ scored", "❌ failed", "✅ scored", "⏳ queued", "✅ scored"]
    assert (rows[1]["reason"], rows[2]["reason"], rows[0]["reason"]) == ("bad zip", "disqualified: copied", "")
    assert rows[0]["submitted"] == format_timestamp(1_700_000_001.0) and rows[2]["note"] == "mine"
    assert rows[0]["public score"] == 0.61234 and rows[0]["final"] is True
    assert team_class_iou(views) == {"#1": {"bg": 0.9, "car": None}}
    assert final_choices(views) == {1: "#1 · public 0.6123 · sub1.zip", 5: "#5"}  # scored and not disqualified
    assert final_choices([]) == {}
