"""One check for every page that shows a split's masks or per-image results: a competition's hidden split
is refused unless the teacher is signed in on the Competition admin page."""

from __future__ import annotations

import streamlit as st

from pages import competition_ui, ui
from seglab.competition import hidden_split_competition
from seglab.data.spec import DataSpec
from seglab.errors import SeglabError


def refuse_hidden_split(spec: DataSpec) -> None:
    """Stop the page (with an explanation) when ``spec`` names the hidden split of a competition in progress."""
    if competition_ui.is_admin():
        return
    competition_store = competition_ui.existing_store()
    if competition_store is None:
        return
    try:
        dataset = None if spec.kind == "shapes" else ui.dataset(spec)
        competition = hidden_split_competition(competition_store, spec, dataset)
    except SeglabError:
        return  # the page itself reports data it cannot load
    if competition is not None:
        st.warning(
            f"The **{spec.split}** split of this data is the hidden test set of the competition "
            f"**{competition.name}**: "
            "its labels and per-image results stay hidden until the teacher reveals the ranking. Pick another split "
            "in the sidebar (the teacher can see it after signing in on the Competition admin page).",
            icon=":material/visibility_off:",
        )
        st.stop()
