"""Competition admin: the teacher creates the competition and teams, watches the queue, freezes, reveals, exports."""

import datetime as dt

import pandas as pd
import streamlit as st

from pages import competition_ui, ui
from seglab.competition import admin
from seglab.competition.audit import action_log, action_table
from seglab.competition.clock import format_timestamp
from seglab.competition.competitions import (
    METRICS,
    CompetitionSettings,
    create_competition,
    default_hidden_split,
    hidden_images,
)
from seglab.competition.export import export_zip
from seglab.competition.jobs import queue_counts, queue_summary
from seglab.competition.ranking import private_leaderboard, public_leaderboard
from seglab.competition.scoring import KIND_LABELS, scorer_available
from seglab.competition.submissions import all_submissions, submission_table
from seglab.competition.teams import add_teams, list_teams, reset_token, team_names, token_csv, token_sheet
from seglab.competition.worker import worker_status
from seglab.data.discover import check_source

TOKENS_KEY = "competition_new_tokens"

ui.start_page()
st.title("Competition admin")
store = competition_ui.store()
if not competition_ui.is_admin():
    st.caption(f"Data folder: `{store.folder}`. The password is never part of the URL.")
    competition_ui.sign_in(store)
    st.stop()
competition_ui.sign_out_button()
competition_ui.start_worker(store)


def show_new_tokens() -> None:
    """The token sheet of teams just created: shown once, then forgotten."""
    issued = st.session_state.get(TOKENS_KEY)
    if not issued:
        return
    competition_name, sheet, csv_text = issued
    st.success(f"Team tokens for **{competition_name}**: print or save them now, they are shown only once.")
    st.code(sheet, language=None)
    left, right = st.columns(2)
    left.download_button("Download tokens (CSV)", csv_text, file_name=f"{competition_name}-tokens.csv", mime="text/csv")
    if right.button("I have saved the tokens", type="primary"):
        st.session_state.pop(TOKENS_KEY)
        st.rerun()


def remember_tokens(competition, issued) -> None:
    st.session_state[TOKENS_KEY] = (competition.name, token_sheet(competition, issued), token_csv(issued))


def uploaded_text(uploaded) -> str | None:
    """An uploaded file's text (None when there is none)."""
    return uploaded.getvalue().decode("utf-8", errors="replace") if uploaded is not None else None


def create_form() -> None:
    """Name, hidden split of the current data source, metric, public share, quota, deadline, kinds, teams."""
    spec = ui.current_spec()
    report = check_source(spec)
    splits = list(report.splits)
    st.caption(f"Data: **{spec.describe().split(' [')[0]}** (the data source chosen on Home; Shapes sizes on Dataset).")
    if not splits:
        st.error("This data source has no readable split: choose another one on Home.")
        return
    with st.form("competition_create"):
        left, middle, right = st.columns(3)
        name = left.text_input("Name", "class-cup")
        split = left.selectbox(
            "Hidden split (labels stay on the server)",
            splits,
            index=splits.index(default_hidden_split(splits)),
            format_func=lambda s: f"{s} ({report.splits[s]} images)",
        )
        metric = left.selectbox("Metric", list(METRICS), help=METRICS["miou"])
        share = middle.slider("Public share of the hidden images", 0.05, 0.95, 0.3, 0.05)
        seed = middle.number_input("Seed of the public/private assignment", 0, 2**31 - 1, 0)
        quota = middle.number_input("Submissions per team per window", 1, 1000, 5)
        window = middle.number_input("Quota window (minutes, rolling)", 1, 7 * 24 * 60, 60)
        kinds = right.multiselect(
            "Allowed submissions",
            [k for k in KIND_LABELS if scorer_available(k)],
            default=["checkpoint", "masks_zip"],
            format_func=KIND_LABELS.get,
        )
        finals = right.number_input("Final submissions a team may choose", 1, 10, 2)
        upload_mb = right.number_input("Upload limit (MB)", 1, 2000, 100)
        class_iou = right.toggle("Teams see per-class public IoU", value=False)
        with st.expander("Deadline and scoring limits"):
            has_deadline = st.toggle("Deadline", value=False)
            day = st.date_input("Deadline day", dt.date.today())
            hour = st.time_input("Deadline time", dt.time(17, 0))
            time_limit = st.number_input("Time limit per scoring (s)", 10, 3600, 300)
            memory = st.number_input("Memory a scoring may add (MB)", 256, 65536, 2048)
        teams_text = st.text_area("Teams, one per line", "Team A\nTeam B")
        teams_csv = st.file_uploader("...or a CSV with a 'team' column", type=["csv"])
        if st.form_submit_button("Create competition", type="primary"):
            with ui.guard("Creating the competition"):
                settings = CompetitionSettings(
                    name=name.strip(),
                    spec=spec.with_split(split),
                    metric=metric,
                    public_share=float(share),
                    split_seed=int(seed),
                    quota_count=int(quota),
                    quota_window_s=int(window) * 60,
                    deadline=dt.datetime.combine(day, hour).timestamp() if has_deadline else None,
                    kinds=tuple(kinds),
                    max_finals=int(finals),
                    max_upload_mb=float(upload_mb),
                    show_class_iou=class_iou,
                    time_limit_s=float(time_limit),
                    memory_limit_mb=int(memory),
                )
                names = team_names(teams_text, uploaded_text(teams_csv))
                competition = create_competition(store, settings)
                if names:
                    remember_tokens(competition, add_teams(store, competition, names))
                st.rerun()


def teams_tab(competition) -> None:
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


def submissions_tab(competition) -> None:
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


def board_table(board) -> None:
    if not board.rows:
        st.info("No scored submission yet.")
        return
    score = st.column_config.NumberColumn(format="%.4f")
    st.dataframe(pd.DataFrame(board.table()), hide_index=True, column_config={"score": score})


def actions_tab(competition) -> None:
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


show_new_tokens()
competition = competition_ui.choose_competition(store)
if competition is None:
    st.subheader("Create the competition")
    create_form()
    st.stop()

images = hidden_images(store, competition)
public = sum(image.is_public for image in images)
st.markdown(
    f"**{competition.name}** ({competition.state}) · {competition.spec.describe()} · {len(images)} hidden images "
    f"({public} public) · {competition.metric_description}"
)
teams_pane, submissions_pane, boards_pane, actions_pane, create_pane = st.tabs(
    ["Teams", "Submissions", "Leaderboards", "Freeze · reveal · export · log", "New competition"]
)
with teams_pane:
    teams_tab(competition)
with submissions_pane:
    submissions_tab(competition)
with boards_pane:
    st.markdown("**Public** (what students see)")
    board_table(public_leaderboard(store, competition))
    st.markdown("**Private**" + ("" if competition.is_revealed else " (preview: only you see it before the reveal)"))
    board_table(private_leaderboard(store, competition, before_reveal=True))
with actions_pane:
    actions_tab(competition)
with create_pane:
    create_form()
