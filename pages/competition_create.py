"""The Competition admin page's creation form and the token sheet of teams just created (shown once)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from pages import ui
from seglab.competition import CompetitionStore
from seglab.competition.competitions import (
    METRICS,
    Competition,
    CompetitionSettings,
    create_competition,
    default_hidden_split,
)
from seglab.competition.scoring import KIND_LABELS, scorer_available
from seglab.competition.teams import add_teams, team_names, token_csv, token_sheet
from seglab.data.discover import check_source

TOKENS_KEY = "competition_new_tokens"


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


def remember_tokens(competition: Competition, issued: list) -> None:
    """Keep the tokens just issued for :func:`show_new_tokens` (this browser session only)."""
    st.session_state[TOKENS_KEY] = (competition.name, token_sheet(competition, issued), token_csv(issued))


def uploaded_text(uploaded: Any) -> str | None:
    """An uploaded file's text (None when there is none)."""
    return uploaded.getvalue().decode("utf-8", errors="replace") if uploaded is not None else None


def create_form(store: CompetitionStore) -> None:
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
