"""Leaderboard for the projector: large type, refreshed every few seconds without rerunning the page."""

import html

import streamlit as st

from pages import competition_ui, ui
from seglab.competition import private_leaderboard, public_leaderboard
from seglab.competition.clock import format_timestamp
from seglab.competition.competitions import competition_by_id

REFRESH = "5s"
STYLE = """<style>
.seglab-board {width: 100%; border-collapse: collapse; font-size: 2.1rem; line-height: 1.35;}
.seglab-board th {font-size: 1.2rem; text-align: left; color: #666; border-bottom: 2px solid #999;
                  padding: .2rem .8rem;}
.seglab-board td {padding: .25rem .8rem; border-bottom: 1px solid #ddd;}
.seglab-board td.num {text-align: right; font-variant-numeric: tabular-nums;}
.seglab-board tr.top td {font-weight: 700;}
</style>"""

ui.start_page()
st.title("Standings")
store, competition = competition_ui.require_competition("No competition on this server yet.")


def score_text(score: float | None) -> str:
    return "-" if score is None else f"{score:.4f}"


def board_html(board, score_label: str) -> str:
    """One HTML table: rank, team, score, submissions, last improvement (team names escaped)."""
    private = board.kind == "private"
    head = f"<tr><th>#</th><th>Team</th><th>{score_label}</th>" + ("<th>public</th>" if private else "")
    head += "<th>submissions</th><th>last improvement</th></tr>"
    rows = []
    for row in board.rows:
        public = f"<td class='num'>{score_text(row.public_score)}</td>" if private else ""
        rows.append(
            f"<tr class='{'top' if row.rank <= 3 else ''}'><td class='num'>{row.rank}</td>"
            f"<td>{html.escape(row.team)}</td>"
            f"<td class='num'>{score_text(row.score)}</td>{public}<td class='num'>{row.submissions}</td>"
            f"<td>{format_timestamp(row.submitted_at, with_date=False)}</td></tr>"
        )
    return f"{STYLE}<table class='seglab-board'>{head}{''.join(rows)}</table>"


@st.fragment(run_every=REFRESH)
def live_board() -> None:
    """The current ranking: public until the teacher reveals, then the final (private) one."""
    current = competition_by_id(store, competition.id)  # frozen/revealed may change while the page stays open
    board = private_leaderboard(store, current) if current.is_revealed else public_leaderboard(store, current)
    title = "Final ranking (private images)" if current.is_revealed else "Public leaderboard"
    frozen = f" · frozen at {format_timestamp(current.frozen_at, with_date=False)}" if board.frozen_at else ""
    st.markdown(f"## {html.escape(current.name)}: {title}{frozen}")
    if board.rows:
        st.html(board_html(board, current.metric_label))
    else:
        st.info("No scored submission yet.")
    if board.unranked_teams:
        st.caption(f"Not ranked yet: {', '.join(board.unranked_teams)}")
    st.caption(f"{current.metric_description}. Refreshed every {REFRESH}.")


live_board()
