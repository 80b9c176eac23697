"""The Competition admin page's tabs for a running competition: teams, submissions, leaderboards, actions."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages import competition_ui, ui
from pages.competition_create import remember_tokens, uploaded_text
from seglab.competition import CompetitionStore, admin
from seglab.competition.audit import action_log, action_table
from seglab.competition.clock import format_timestamp
from seglab.competition.competitions import Competition
from seglab.competition.export import export_zip
from seglab.competition.jobs import queue_counts, queue_summary
from seglab.competition.ranking import Board
from seglab.competition.submissions import all_submissions, submission_table
from seglab.competition.teams import add_teams, list_teams, reset_token, team_names
from seglab.competition.worker import worker_status


def teams_tab(store: CompetitionStore, competition: Competition) -> None:
    """The teams, a form to add more, and a new token for one team."""
    teams = list_teams(store, competition)
    st.markdown(f"**{len(teams)} team(s)**: " + (", ".join(team.name for team in teams) or "none yet"))
    with st.form("competition_add_teams", clear_on_submit=True):
        text = st.text_area("New teams, one per line")
        uploaded = st.file_uploader("...or a CSV with a 'team' column", type=["csv"])
        if st.form_submit_button("Add teams"):
            with ui.guard("Adding teams"):
                remember_tokens(competition, add_teams(store, competition, team_names(text, uploaded_text(uploaded))))
                st.rerun()
    if teams:
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        name = left.selectbox("Team", [team.name for team in teams], key="competition_reset_team")
        if right.button("Issue a new token", help="The old token stops working at once"):
            with ui.guard("Resetting the token"):
                remember_tokens(competition, [reset_token(store, competition, name)])
                st.rerun()


def submissions_tab(store: CompetitionStore, competition: Competition) -> None:
    """The queue line, every submission, and forms to rescore, disqualify or reinstate."""
    submissions = all_submissions(store, competition)
    counts = queue_counts(store, competition)
    worker = worker_status(store)
    st.caption(queue_summary(counts, worker_running=bool(worker and worker.running)))
    if not submissions:
        st.info("No submission yet.")
        return
    table = pd.DataFrame(submission_table(submissions))
    scores = {column: st.column_config.NumberColumn(format="%.4f") for column in ("public", "private")}
    st.dataframe(table, hide_index=True, column_config=scores)
    ids = [s.id for s in submissions]
    left, right = st.columns(2)
    with left.form("competition_rescore"):
        chosen = st.multiselect("Rescore submissions", ids, format_func=lambda i: f"#{i}")
        rescore_all = st.toggle("Rescore every scored or failed submission")
        if st.form_submit_button("Queue again"):
            with ui.guard("Rescoring"):
                count = admin.rescore(store, competition, None if rescore_all else chosen)
                st.toast(f"{count} submission(s) queued again")
    with right.form("competition_disqualify"):
        target = st.selectbox("Submission", ids, format_func=lambda i: f"#{i}")
        reason = st.text_input("Reason (the team sees it)")
        undo = st.toggle("Reinstate instead")
        if st.form_submit_button("Disqualify" if not undo else "Reinstate"):
            with ui.guard("Disqualifying"):
                if undo:
                    admin.reinstate(store, competition, target)
                else:
                    admin.disqualify(store, competition, target, reason)
                st.rerun()


def board_table(board: Board) -> None:
    """A leaderboard's rows (or why there are none)."""
    if not board.rows:
        st.info("No scored submission yet.")
        return
    score = st.column_config.NumberColumn(format="%.4f")
    st.dataframe(pd.DataFrame(board.table()), hide_index=True, column_config={"score": score})


def actions_tab(store: CompetitionStore, competition: Competition) -> None:
    """Freeze, reveal, export, the scoring worker's state and the action log."""
    left, middle, right = st.columns(3)
    if competition.is_frozen:
        if left.button("Unfreeze the public leaderboard", icon=":material/lock_open:"):
            admin.unfreeze(store, competition)
            st.rerun()
    elif left.button("Freeze the public leaderboard", icon=":material/ac_unit:"):
        admin.freeze(store, competition)
        st.rerun()
    if not competition.is_revealed:
        confirm = middle.checkbox("Submissions close and the private ranking is published")
        if middle.button(
            "Reveal the private ranking", type="primary", disabled=not confirm, icon=":material/visibility:"
        ):
            admin.reveal(store, competition)
            st.rerun()
    right.download_button(
        "Export everything (CSV zip)",
        lambda: export_zip(store, competition),
        file_name=f"{competition.name}-export.zip",
        mime="application/zip",
        icon=":material/download:",
    )
    worker = worker_status(store)
    if worker is None or not worker.running:
        st.warning(
            "The scoring worker is not running: start it here, or with `seglab competition worker` in a "
            f"terminal (log: `{store.folder / 'worker.log'}`).",
            icon=":material/warning:",
        )
        if competition_ui.worker_managed_by_app() and st.button("Start the scoring worker"):
            competition_ui.start_worker(store)
            st.rerun()
    else:
        st.caption(f"Scoring worker pid {worker.pid}, last seen {format_timestamp(worker.last_seen)}.")
    st.markdown("**Action log**")
    st.dataframe(pd.DataFrame(action_table(action_log(store, competition.id))), hide_index=True)
