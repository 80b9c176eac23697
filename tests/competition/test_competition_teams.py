"""Teams: tokens issued once, stored hashed, checked in constant time; CSV import."""

from __future__ import annotations

from pathlib import Path

import pytest

from seglab.competition.errors import CompetitionError
from seglab.competition.teams import (
    TOKEN_PATTERN,
    add_teams,
    authenticate,
    hash_token,
    list_teams,
    read_team_csv,
    reset_token,
    team_names,
    token_csv,
    token_sheet,
    verify_token,
)
from tests.helpers.competition import make_competition


def test_tokens_are_random_and_only_their_hash_is_stored(tmp_path: Path) -> None:
    store, competition, issued = make_competition(tmp_path / "c", teams=("Alpha", "Beta"))
    tokens = [item.token for item in issued]
    assert len(set(tokens)) == 2 and all(TOKEN_PATTERN.match(token) for token in tokens)
    with store.connect() as connection:
        stored = [row[0] for row in connection.execute("SELECT token_hash FROM teams ORDER BY id")]
    database = b"".join(path.read_bytes() for path in store.folder.glob("competition.db*"))
    for token, hashed in zip(tokens, stored, strict=True):
        assert hashed.startswith("scrypt$") and token not in hashed
        assert token.encode() not in database and token.split("-", 1)[1].encode() not in database
    assert verify_token(tokens[0], stored[0]) and not verify_token(tokens[0], stored[1])


def test_authenticate_finds_the_team_and_refuses_everything_else(tmp_path: Path) -> None:
    store, competition, issued = make_competition(tmp_path / "c", teams=("Alpha", "Beta"))
    alpha, beta = issued
    assert authenticate(store, competition, alpha.token).name == "Alpha"
    assert authenticate(store, competition, f"  {beta.token}\n").name == "Beta"  # pasted with whitespace
    forged = f"T{alpha.team.id}-{beta.token.split('-', 1)[1]}"  # Beta's secret with Alpha's number
    for bad in (
        "",
        "nonsense",
        alpha.token[:-1] + ("A" if alpha.token[-1] != "A" else "B"),
        forged,
        "T999-abcdefghijk",
    ):
        with pytest.raises(CompetitionError, match="does not open a team"):
            authenticate(store, competition, bad)


def test_a_token_does_not_open_another_competition(tmp_path: Path) -> None:
    from seglab.competition.competitions import CompetitionSettings, create_competition
    from tests.helpers.competition import SMALL_SPEC

    store, competition, issued = make_competition(tmp_path / "c", teams=("Alpha",))
    other = create_competition(store, CompetitionSettings(name="other", spec=SMALL_SPEC))
    with pytest.raises(CompetitionError):
        authenticate(store, other, issued[0].token)


def test_reset_token_stops_the_old_one_at_once(tmp_path: Path) -> None:
    store, competition, issued = make_competition(tmp_path / "c", teams=("Alpha",))
    old = issued[0].token
    assert authenticate(store, competition, old).name == "Alpha"  # now remembered as verified
    new = reset_token(store, competition, "Alpha").token
    assert new != old and authenticate(store, competition, new).name == "Alpha"
    with pytest.raises(CompetitionError):
        authenticate(store, competition, old)


def test_team_names_are_checked_and_unique(tmp_path: Path) -> None:
    store, competition, _ = make_competition(tmp_path / "c", teams=("Alpha",))
    with pytest.raises(CompetitionError, match="already taken"):
        add_teams(store, competition, ["Beta", "Alpha"])
    assert [team.name for team in list_teams(store, competition)] == ["Alpha"]  # all or nothing
    with pytest.raises(CompetitionError, match="given twice"):
        add_teams(store, competition, ["Gamma", "Gamma"])
    with pytest.raises(CompetitionError, match="printable"):
        add_teams(store, competition, ["bad\x07name"])
    with pytest.raises(CompetitionError, match="at least one"):
        add_teams(store, competition, ["  ", ""])


def test_team_csv_with_or_without_a_header() -> None:
    assert read_team_csv("team,members\nRed,ann;bob\nBlue,cy\n\n") == ["Red", "Blue"]
    assert read_team_csv("email,Name\na@x,Red\nb@x,Blue\n") == ["Red", "Blue"]
    assert read_team_csv("Red\nBlue\n") == ["Red", "Blue"]
    with pytest.raises(CompetitionError, match="empty"):
        read_team_csv("\n\n")
    with pytest.raises(CompetitionError, match="twice"):
        read_team_csv("team\nRed\nRed\n")


def test_printable_sheet_and_csv_list_every_token(tmp_path: Path) -> None:
    _, competition, issued = make_competition(tmp_path / "c", teams=("Alpha", "Beta"))
    sheet, csv_text = token_sheet(competition, issued), token_csv(issued)
    for item in issued:
        assert f"{item.team.name}" in sheet and item.token in sheet
        assert f"{item.team.name},{item.token}" in csv_text
    assert csv_text.startswith("team,token\n")


def test_a_damaged_stored_hash_never_verifies() -> None:
    token = "T1-abcdefghijkl"
    assert verify_token(token, hash_token(token))
    for stored in ("", "plain", "scrypt$1$2$3", "md5$x$y$z$00$00", hash_token(token)[:-2] + "zz"):
        assert not verify_token(token, stored)


def test_team_names_come_from_the_typed_lines_then_the_csv() -> None:
    assert team_names("Red\n\n  \nBlue\n") == ["Red", "Blue"]
    assert team_names("Red\n", "team\nGreen\nGold\n") == ["Red", "Green", "Gold"]
    assert team_names("", None) == []
    with pytest.raises(CompetitionError, match="empty"):
        team_names("Red", "\n")  # an uploaded CSV without names is an error, not silently nothing
