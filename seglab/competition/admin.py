"""The teacher's actions, each logged: freeze, reveal, rescore, disqualify; and the admin password.

The password comes from ``$SEGLAB_ADMIN_PASSWORD`` or, when that is unset, from an
``admin_password`` line in ``seglab-competition.toml`` in the data folder (keep that file private:
``chmod 600``). It is compared with ``hmac.compare_digest`` and never travels in a URL.
"""

from __future__ import annotations

import hmac
import os
import re
import sys
from pathlib import Path

from seglab.competition.audit import log_action
from seglab.competition.clock import now
from seglab.competition.competitions import Competition
from seglab.competition.errors import CompetitionError
from seglab.competition.store import CompetitionStore

PASSWORD_ENV = "SEGLAB_ADMIN_PASSWORD"
CONFIG_NAME = "seglab-competition.toml"


def configured_password(store_folder: str | os.PathLike) -> str | None:
    """The admin password: the environment variable, else the config file; ``None`` if neither sets one."""
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    config = Path(store_folder) / CONFIG_NAME
    if not config.is_file():
        return None
    try:
        value = _read_toml(config.read_text(encoding="utf-8")).get("admin_password")
    except (OSError, ValueError) as error:
        raise CompetitionError(f"cannot read {config}: {error}") from None
    return str(value) if value else None


def _read_toml(text: str) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads(text)
    # Python 3.10 has no tomllib: read only the one line this file needs.
    match = re.search(r'^\s*admin_password\s*=\s*"([^"]*)"\s*$', text, re.MULTILINE)
    return {"admin_password": match.group(1)} if match else {}


def check_admin_password(store_folder: str | os.PathLike, given: str) -> bool:
    """Whether ``given`` is the admin password (constant-time); False when none is configured."""
    expected = configured_password(store_folder)
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _set_competition(
    store: CompetitionStore, competition: Competition, column: str, value: float | None, action: str, detail: str = ""
) -> None:
    with store.transaction() as connection:
        connection.execute(f"UPDATE competitions SET {column} = ? WHERE id = ?", (value, competition.id))
        log_action(connection, competition.id, action, competition.name, detail)


def freeze(store: CompetitionStore, competition: Competition) -> None:
    """Freeze the public leaderboard: later submissions are still scored (teams see their own scores)
    but the board shows the state at this moment."""
    if competition.is_frozen:
        raise CompetitionError(f"{competition.name} is already frozen")
    _set_competition(store, competition, "frozen_at", now(), "freeze")


def unfreeze(store: CompetitionStore, competition: Competition) -> None:
    """Show every submission on the public leaderboard again."""
    if not competition.is_frozen:
        raise CompetitionError(f"{competition.name} is not frozen")
    _set_competition(store, competition, "frozen_at", None, "unfreeze")


def reveal(store: CompetitionStore, competition: Competition) -> None:
    """Publish the private ranking and close the competition to new submissions (cannot be undone)."""
    if competition.is_revealed:
        raise CompetitionError(f"{competition.name} is already revealed")
    with store.connect() as connection:
        pending = connection.execute(
            "SELECT COUNT(*) FROM submissions WHERE competition_id = ? AND status IN ('queued', 'scoring')",
            (competition.id,),
        ).fetchone()[0]
    _set_competition(
        store, competition, "revealed_at", now(), "reveal", f"{pending} submission(s) still pending" if pending else ""
    )


def rescore(store: CompetitionStore, competition: Competition, submission_ids: list[int] | None = None) -> int:
    """Queue submissions again (all scored and failed ones when ``submission_ids`` is None); returns how many.

    The old score is removed in the same transaction, so a submission is never listed with two scores.
    """
    with store.transaction() as connection:
        if submission_ids is None:
            rows = connection.execute(
                "SELECT id FROM submissions WHERE competition_id = ? AND status IN ('scored', 'failed')",
                (competition.id,),
            ).fetchall()
            ids = [row[0] for row in rows]
        else:
            ids = []
            for submission_id in submission_ids:
                row = connection.execute(
                    "SELECT status FROM submissions WHERE id = ? AND competition_id = ?",
                    (submission_id, competition.id),
                ).fetchone()
                if row is None:
                    raise CompetitionError(f"no submission #{submission_id} in {competition.name}")
                if row["status"] in ("queued", "scoring"):
                    raise CompetitionError(
                        f"submission #{submission_id} is {row['status']} already; wait for its result"
                    )
                ids.append(submission_id)
        for submission_id in ids:
            connection.execute("DELETE FROM scores WHERE submission_id = ?", (submission_id,))
            connection.execute(
                "UPDATE submissions SET status = 'queued', reason = NULL, attempts = 0, finished_at = NULL "
                "WHERE id = ?",
                (submission_id,),
            )
        target = "all" if submission_ids is None else ", ".join(f"#{i}" for i in ids)
        log_action(connection, competition.id, "rescore", target, f"{len(ids)} submission(s) queued again")
    return len(ids)


def disqualify(store: CompetitionStore, competition: Competition, submission_id: int, reason: str) -> None:
    """Take a submission out of every ranking, with a reason its team sees."""
    reason = reason.strip()
    if not reason:
        raise CompetitionError("give a reason for the disqualification (the team will see it)")
    with store.transaction() as connection:
        cursor = connection.execute(
            "UPDATE submissions SET disqualified_reason = ?, is_final = 0 WHERE id = ? AND competition_id = ?",
            (reason[:500], submission_id, competition.id),
        )
        if cursor.rowcount != 1:
            raise CompetitionError(f"no submission #{submission_id} in {competition.name}")
        log_action(connection, competition.id, "disqualify", f"#{submission_id}", reason[:500])


def reinstate(store: CompetitionStore, competition: Competition, submission_id: int) -> None:
    """Undo a disqualification."""
    with store.transaction() as connection:
        cursor = connection.execute(
            "UPDATE submissions SET disqualified_reason = NULL "
            "WHERE id = ? AND competition_id = ? AND disqualified_reason IS NOT NULL",
            (submission_id, competition.id),
        )
        if cursor.rowcount != 1:
            raise CompetitionError(f"submission #{submission_id} is not disqualified")
        log_action(connection, competition.id, "reinstate", f"#{submission_id}")
