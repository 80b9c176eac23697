"""Competition: a team joins with its token, downloads the hidden images, submits, follows its scores."""

import math

import pandas as pd
import streamlit as st

from pages import competition_ui, ui
from seglab.competition import SubmissionRejected, choose_finals, quota_for, submit, team_submissions
from seglab.competition.clock import format_timestamp
from seglab.competition.downloads import hidden_images_zip, submission_format
from seglab.competition.errors import CompetitionError
from seglab.competition.scoring import KIND_LABELS
from seglab.competition.submissions import final_choices, team_class_iou, team_table

AUTO = "decided by the file name (.pt: checkpoint, .zip: masks)"
RECEIPT_KEY = "competition_receipt"

ui.start_page()
st.title("Competition")
store, competition = competition_ui.require_competition(
    "No competition on this server yet: the teacher creates one on the Competition admin page."
)
competition_ui.start_worker(store)

deadline = f" · closes {format_timestamp(competition.deadline)}" if competition.deadline else ""
st.markdown(f"**{competition.name}** ({competition.phase()}{deadline}) · ranked by {competition.metric_description}.")
st.caption(
    f"Before the reveal the leaderboard uses {competition.public_share:.0%} of the hidden images (public); "
    "the final ranking uses the others (private), with your chosen final submissions."
)
st.page_link("pages/competition_board.py", label="Public leaderboard", icon=":material/leaderboard:")

team = competition_ui.current_team(store, competition)
if team is None:
    competition_ui.join_form(store, competition)
    st.stop()
st.subheader(f"Team {team.name}", divider="gray")
competition_ui.leave_button()


@st.fragment
def downloads() -> None:
    """The hidden images (no labels) and the expected mask format."""
    with st.expander("The hidden images and the submission format", icon=":material/download:"):
        st.code(submission_format(competition), language=None)
        st.download_button(
            "Download the hidden images (zip, no labels)",
            lambda: hidden_images_zip(store, competition).read_bytes(),
            file_name=f"{competition.name}-hidden-images.zip",
            mime="application/zip",
        )


@st.fragment
def upload() -> None:
    """Validated at once; accepted uploads enter the scoring queue."""
    if RECEIPT_KEY in st.session_state:
        st.success(st.session_state.pop(RECEIPT_KEY), icon=":material/check_circle:")
    quota = quota_for(store, competition, team)
    st.metric("Submissions left", f"{quota.left} of {quota.limit}", help="Failed submissions do not count")
    st.caption(quota.describe())
    if not competition.accepts_submissions():
        st.info("Submissions are closed.")
        return
    with st.form("competition_upload", clear_on_submit=True):
        kind = st.selectbox("What you submit", [AUTO, *competition.kinds], format_func=lambda k: KIND_LABELS.get(k, k))
        uploaded = st.file_uploader(
            "File",
            type=["pt", "pth", "zip", "onnx", "ts"],
            max_upload_size=max(1, math.ceil(competition.max_upload_mb)),
        )
        note = st.text_input("Note (for your own list)", max_chars=200)
        if st.form_submit_button("Submit", type="primary", disabled=quota.left == 0):
            if uploaded is None:
                st.error("Choose a file first.")
                return
            try:
                receipt = submit(
                    store,
                    competition,
                    team,
                    uploaded.getvalue(),
                    uploaded.name,
                    kind=None if kind == AUTO else kind,
                    note=note,
                )
            except SubmissionRejected as error:
                st.error(f"**Not accepted** (this does not count against your quota): {error}", icon=":material/block:")
            except CompetitionError as error:
                st.error(str(error))
            else:  # rerun the page: the quota and the list of submissions show the new one at once
                st.session_state[RECEIPT_KEY] = (
                    f"Submission #{receipt.submission_id} accepted and queued: {receipt.description}."
                )
                st.rerun()


@st.fragment(run_every="3s")
def own_submissions() -> None:
    """Your submissions, refreshed every few seconds while they are scored: public scores only."""
    views = team_submissions(store, competition, team)
    if not views:
        st.caption("No submission yet.")
        return
    st.dataframe(
        pd.DataFrame(team_table(views)),
        hide_index=True,
        column_config={"public score": st.column_config.NumberColumn(format="%.4f")},
    )
    if class_iou := team_class_iou(views):
        per_class = pd.DataFrame(class_iou)
        st.caption("Per-class IoU on the public images (empty: class absent)")
        st.dataframe(
            per_class, column_config={c: st.column_config.NumberColumn(format="%.3f") for c in per_class.columns}
        )


def finals() -> None:
    """Up to N final submissions for the private ranking (none chosen: your best public one)."""
    views = team_submissions(store, competition, team)
    labels = final_choices(views)
    if not labels or competition.is_revealed:
        return
    with st.form("competition_finals"):
        chosen = st.multiselect(
            f"Final submissions (up to {competition.max_finals}; none: your best public one counts)",
            list(labels),
            default=[v.id for v in views if v.is_final and v.id in labels],
            format_func=labels.get,
            max_selections=competition.max_finals,
        )
        if st.form_submit_button("Save final choice"):
            try:
                choose_finals(store, competition, team, chosen)
                st.success("Final choice saved.")
            except CompetitionError as error:
                st.error(str(error))


downloads()
upload()
st.subheader("Your submissions", divider="gray")
own_submissions()
finals()
