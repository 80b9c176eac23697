"""Everything about a competition as CSV files: teams, submissions with both scores, both rankings,
per-class IoU, the hidden images' public/private assignment and the admin log (for the teacher only)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

from seglab.competition.audit import action_log, log_action
from seglab.competition.clock import format_timestamp
from seglab.competition.competitions import Competition, hidden_images
from seglab.competition.ranking import private_leaderboard, public_leaderboard
from seglab.competition.store import CompetitionStore
from seglab.competition.submissions import all_submissions
from seglab.competition.teams import list_teams


def _text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(row.get(key)) for key in columns})
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6f}" if isinstance(value, float) else value


def export_tables(store: CompetitionStore, competition: Competition) -> dict[str, str]:
    """``{file name: CSV text}`` for every table of the competition."""
    submissions = all_submissions(store, competition)
    tables: dict[str, str] = {}
    tables["teams.csv"] = _text(
        [{"team": t.name, "created": format_timestamp(t.created_at)} for t in list_teams(store, competition)],
        ["team", "created"],
    )
    columns = [
        "id",
        "team",
        "kind",
        "original_name",
        "stored_file",
        "size_bytes",
        "note",
        "submitted",
        "status",
        "reason",
        "attempts",
        "public_score",
        "private_score",
        "final",
        "disqualified",
    ]
    tables["submissions.csv"] = _text(
        [
            {
                "id": s.id,
                "team": s.team_name,
                "kind": s.kind,
                "original_name": s.original_name,
                "stored_file": s.file_name,
                "size_bytes": s.size_bytes,
                "note": s.note,
                "submitted": format_timestamp(s.submitted_at),
                "status": s.status,
                "reason": s.reason,
                "attempts": s.attempts,
                "public_score": s.public_score,
                "private_score": s.private_score,
                "final": int(s.is_final),
                "disqualified": s.disqualified_reason,
            }
            for s in submissions
        ],
        columns,
    )
    board_columns = ["rank", "team", "score", "public_score", "submission_id", "submitted", "submissions"]
    for name, board in (
        ("leaderboard_public.csv", public_leaderboard(store, competition)),
        ("leaderboard_private.csv", private_leaderboard(store, competition, before_reveal=True)),
    ):
        tables[name] = _text(
            [
                {
                    "rank": r.rank,
                    "team": r.team,
                    "score": r.score,
                    "public_score": r.public_score,
                    "submission_id": r.submission_id,
                    "submitted": format_timestamp(r.submitted_at),
                    "submissions": r.submissions,
                }
                for r in board.rows
            ],
            board_columns,
        )
    tables["class_iou.csv"] = _class_iou_table(store, competition)
    tables["hidden_images.csv"] = _text(
        [
            {
                "position": i.position,
                "sample_id": i.sample_id,
                "height": i.height,
                "width": i.width,
                "public": int(i.is_public),
            }
            for i in hidden_images(store, competition)
        ],
        ["position", "sample_id", "height", "width", "public"],
    )
    tables["admin_actions.csv"] = _text(
        [
            {"at": format_timestamp(a.at), "action": a.action, "target": a.target, "detail": a.detail}
            for a in action_log(store, competition.id)
        ],
        ["at", "action", "target", "detail"],
    )
    return tables


def _class_iou_table(store: CompetitionStore, competition: Competition) -> str:
    with store.connect() as connection:
        rows = connection.execute(
            """SELECT sc.submission_id, sc.public_class_iou_json, sc.private_class_iou_json FROM scores sc
               JOIN submissions s ON s.id = sc.submission_id WHERE s.competition_id = ? ORDER BY sc.submission_id""",
            (competition.id,),
        ).fetchall()
    records = []
    for row in rows:
        for subset, column in (("public", "public_class_iou_json"), ("private", "private_class_iou_json")):
            for name, iou in json.loads(row[column]).items():
                records.append({"submission_id": row["submission_id"], "images": subset, "class": name, "iou": iou})
    return _text(records, ["submission_id", "images", "class", "iou"])


def export_zip(store: CompetitionStore, competition: Competition) -> bytes:
    """All tables in one zip (what the admin page downloads); logged as an admin action."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in export_tables(store, competition).items():
            archive.writestr(f"{competition.name}/{name}", text)
    with store.transaction() as connection:
        log_action(connection, competition.id, "export", "zip")
    return buffer.getvalue()


def export_folder(store: CompetitionStore, competition: Competition, out: str | os.PathLike) -> list[Path]:
    """Write every table as a CSV file under ``out``; returns the paths (logged as an admin action)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in export_tables(store, competition).items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    with store.transaction() as connection:
        log_action(connection, competition.id, "export", str(out))
    return written
