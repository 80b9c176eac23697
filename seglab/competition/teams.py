"""Teams and their join tokens.

A token looks like ``T7-Qm3x9Kd2pLwZ``: the team's number, then 72 random bits
(``secrets.token_urlsafe``). Only a salted scrypt hash is stored, so the token list is shown once,
when the teams are created (or a token is reset), and a copied database gives nobody a way in.
The number lets a login check one hash instead of every team's; a verified (token, stored hash)
pair is remembered in memory so a page rerun does not pay scrypt again.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
import secrets
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from seglab.competition.audit import log_action
from seglab.competition.clock import now
from seglab.competition.competitions import Competition
from seglab.competition.errors import CompetitionError
from seglab.competition.store import CompetitionStore

TEAM_NAME = re.compile(r"^[^\x00-\x1f]{1,60}$")
TOKEN_PATTERN = re.compile(r"^T(\d{1,9})-([A-Za-z0-9_-]{8,64})$")
SECRET_BYTES = 9  # 72 bits, 12 characters
SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # ~16 MB and a few tens of ms per check
_VERIFIED: OrderedDict[tuple[str, str], None] = OrderedDict()
_VERIFIED_LOCK = threading.Lock()
_VERIFIED_MAX = 4096


@dataclass(frozen=True)
class Team:
    """A team of a competition."""

    id: int
    competition_id: int
    name: str
    created_at: float


@dataclass(frozen=True)
class TeamToken:
    """A team with its freshly issued token: exists only until printed."""

    team: Team
    token: str


def hash_token(token: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (hex) of a token."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(token.encode(), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_token(token: str, stored: str) -> bool:
    """Whether ``token`` matches a :func:`hash_token` string (constant-time comparison)."""
    key = (hashlib.sha256(token.encode()).hexdigest(), stored)
    with _VERIFIED_LOCK:
        if key in _VERIFIED:
            _VERIFIED.move_to_end(key)
            return True
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(token.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    matches = hmac.compare_digest(computed.hex(), digest)
    if matches:
        with _VERIFIED_LOCK:
            _VERIFIED[key] = None
            while len(_VERIFIED) > _VERIFIED_MAX:
                _VERIFIED.popitem(last=False)
    return matches


def _new_token(team_id: int) -> str:
    return f"T{team_id}-{secrets.token_urlsafe(SECRET_BYTES)}"


def _team(row: sqlite3.Row) -> Team:
    return Team(id=row["id"], competition_id=row["competition_id"], name=row["name"], created_at=row["created_at"])


def clean_team_names(names: Iterable[str]) -> list[str]:
    """Stripped names, blank ones dropped; raises CompetitionError on invalid or repeated names."""
    cleaned = [name.strip() for name in names if name and name.strip()]
    for name in cleaned:
        if not TEAM_NAME.match(name):
            raise CompetitionError(f"team name {name[:80]!r} must be 1-60 printable characters")
    repeated = sorted({name for name in cleaned if cleaned.count(name) > 1})
    if repeated:
        raise CompetitionError(f"team name(s) given twice: {', '.join(repeated)}")
    return cleaned


def read_team_csv(text: str) -> list[str]:
    """Team names from CSV text: the ``team`` (or ``name``) column when there is a header, else the first column."""
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if not rows:
        raise CompetitionError("the team CSV is empty; put one team name per line (optionally under a 'team' header)")
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((header.index(key) for key in ("team", "team_name", "name") if key in header), None)
    if column is None:
        column, body = 0, rows
    else:
        body = rows[1:]
    return clean_team_names(row[column] if column < len(row) else "" for row in body)


def team_names(text: str, csv_text: str | None = None) -> list[str]:
    """Team names typed one per line in ``text``, then those of an uploaded CSV (:func:`read_team_csv`), if any."""
    names = [line for line in text.splitlines() if line.strip()]
    if csv_text is not None:
        names += read_team_csv(csv_text)
    return names


def add_teams(store: CompetitionStore, competition: Competition, names: Sequence[str]) -> list[TeamToken]:
    """Create teams and issue their tokens (returned once; only hashes are stored)."""
    names = clean_team_names(names)
    if not names:
        raise CompetitionError("give at least one team name")
    issued = []
    try:
        with store.transaction() as connection:
            for name in names:
                cursor = connection.execute(
                    "INSERT INTO teams (competition_id, name, token_hash, created_at) VALUES (?, ?, '', ?)",
                    (competition.id, name, now()),
                )
                team_id = int(cursor.lastrowid or 0)
                token = _new_token(team_id)
                connection.execute("UPDATE teams SET token_hash = ? WHERE id = ?", (hash_token(token), team_id))
                row = connection.execute("SELECT * FROM teams WHERE id = ?", (team_id,)).fetchone()
                issued.append(TeamToken(_team(row), token))
            log_action(connection, competition.id, "add teams", ", ".join(names), f"{len(names)} team(s)")
    except sqlite3.IntegrityError:
        existing = {team.name for team in list_teams(store, competition)}
        taken = [name for name in names if name in existing]
        raise CompetitionError(f"team name(s) already taken in {competition.name}: {', '.join(taken)}") from None
    return issued


def reset_token(store: CompetitionStore, competition: Competition, team_name: str) -> TeamToken:
    """Issue a new token for a team (the old one stops working at once)."""
    team = team_by_name(store, competition, team_name)
    token = _new_token(team.id)
    with store.transaction() as connection:
        connection.execute("UPDATE teams SET token_hash = ? WHERE id = ?", (hash_token(token), team.id))
        log_action(connection, competition.id, "reset token", team.name)
    return TeamToken(team, token)


def list_teams(store: CompetitionStore, competition: Competition) -> list[Team]:
    """The competition's teams in creation order."""
    with store.connect() as connection:
        rows = connection.execute(
            "SELECT * FROM teams WHERE competition_id = ? ORDER BY id", (competition.id,)
        ).fetchall()
    return [_team(row) for row in rows]


def team_by_name(store: CompetitionStore, competition: Competition, name: str) -> Team:
    """The team called ``name`` (CompetitionError listing the teams when unknown)."""
    with store.connect() as connection:
        row = connection.execute(
            "SELECT * FROM teams WHERE competition_id = ? AND name = ?", (competition.id, name)
        ).fetchone()
    if row is None:
        names = ", ".join(team.name for team in list_teams(store, competition)) or "none yet"
        raise CompetitionError(f"no team {name!r} in {competition.name} (teams: {names})")
    return _team(row)


def authenticate(store: CompetitionStore, competition: Competition, token: str) -> Team:
    """The team a token belongs to; CompetitionError (the same message for every failure) otherwise."""
    refused = CompetitionError(
        f"this token does not open a team of {competition.name}; check it on your sheet (it looks like T7-Qm3x9Kd2pLwZ)"
    )
    match = TOKEN_PATTERN.match((token or "").strip())
    if not match:
        raise refused
    with store.connect() as connection:
        row = connection.execute(
            "SELECT * FROM teams WHERE id = ? AND competition_id = ?", (int(match.group(1)), competition.id)
        ).fetchone()
    if row is None or not verify_token(token.strip(), row["token_hash"]):
        raise refused
    return _team(row)


def token_sheet(competition: Competition, issued: Sequence[TeamToken]) -> str:
    """A printable list: one team and its token per line, to cut into slips."""
    width = max([len(item.team.name) for item in issued] + [4])
    lines = [f"{competition.name}: team tokens (shown once; keep them private)", ""]
    lines += [f"{item.team.name:<{width}}   {item.token}" for item in issued]
    return "\n".join(lines) + "\n"


def token_csv(issued: Sequence[TeamToken]) -> str:
    """``team,token`` CSV of freshly issued tokens."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["team", "token"])
    writer.writerows([item.team.name, item.token] for item in issued)
    return buffer.getvalue()
