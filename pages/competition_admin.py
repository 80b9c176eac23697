"""Competition admin: the teacher creates the competition and teams, watches the queue, freezes, reveals, exports."""

import streamlit as st

from pages import competition_ui, ui
from pages.competition_create import create_form, show_new_tokens
from pages.competition_panels import actions_tab, board_table, submissions_tab, teams_tab
from seglab.competition.competitions import hidden_images
from seglab.competition.ranking import private_leaderboard, public_leaderboard

ui.start_page()
st.title("Competition admin")
store = competition_ui.store()
if not competition_ui.is_admin():
    st.caption(f"Data folder: `{store.folder}`. The password is never part of the URL.")
    competition_ui.sign_in(store)
    st.stop()
competition_ui.sign_out_button()
competition_ui.start_worker(store)

show_new_tokens()
competition = competition_ui.choose_competition(store)
if competition is None:
    st.subheader("Create the competition")
    create_form(store)
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
    teams_tab(store, competition)
with submissions_pane:
    submissions_tab(store, competition)
with boards_pane:
    st.markdown("**Public** (what students see)")
    board_table(public_leaderboard(store, competition))
    st.markdown("**Private**" + ("" if competition.is_revealed else " (preview: only you see it before the reveal)"))
    board_table(private_leaderboard(store, competition, before_reveal=True))
with actions_pane:
    actions_tab(store, competition)
with create_pane:
    create_form(store)
