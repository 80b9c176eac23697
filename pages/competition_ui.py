"""Streamlit glue for the Competition pages: the store, the teacher's sign-in, a team's token, the worker.

The admin flag and the team token live in ``st.session_state`` (this browser session only), never
in the URL. Everything else is a call into :mod:`seglab.competition`.
"""

from __future__ import annotations

import os
import time

import streamlit as st

from pages import ui
from seglab.competition import CompetitionError, CompetitionStore, default_competition_dir
from seglab.competition.admin import CONFIG_NAME, PASSWORD_ENV, check_admin_password, configured_password
from seglab.competition.competitions import Competition, list_competitions
from seglab.competition.teams import Team, authenticate
from seglab.competition.worker import ensure_worker

ADMIN_KEY = "competition_admin"
TOKEN_KEY = "competition_token"
COMPETITION_KEY = "competition_name"
WORKER_ENV = "SEGLAB_COMPETITION_WORKER"  # "off": do not start a worker from the app (the teacher runs one)


def folder():
    """The competition data folder: ``$SEGLAB_COMPETITION_DIR`` or ``competition/`` beside the runs folder."""
    return default_competition_dir(ui.runs_dir())


@st.cache_resource(max_entries=4, show_spinner=False)
def _store(path: str) -> CompetitionStore:
    return CompetitionStore(path)  # opens (and migrates) once per server process


def store() -> CompetitionStore:
    """The store, created if needed (the admin page)."""
    return _store(str(folder()))


def existing_store() -> CompetitionStore | None:
    """The store if a competition database exists; ``None`` without creating anything (other pages)."""
    path = folder()
    return _store(str(path)) if CompetitionStore.exists(path) else None


def worker_managed_by_app() -> bool:
    """False when the teacher runs the worker separately (``SEGLAB_COMPETITION_WORKER=off``)."""
    return os.environ.get(WORKER_ENV, "auto").lower() != "off"


def start_worker(competition_store: CompetitionStore) -> None:
    """Start the one scoring worker in the background unless it runs (or the app does not manage it)."""
    if worker_managed_by_app():
        ensure_worker(competition_store)


def choose_competition(competition_store: CompetitionStore) -> Competition | None:
    """The competition this session looks at: the newest, or the one picked when there are several."""
    competitions = list_competitions(competition_store)
    if not competitions:
        return None
    names = [c.name for c in competitions]
    if len(names) > 1:
        chosen = st.session_state.get(COMPETITION_KEY)
        name = st.selectbox("Competition", names, index=names.index(chosen) if chosen in names else 0)
        st.session_state[COMPETITION_KEY] = name
    else:
        name = names[0]
    return next(c for c in competitions if c.name == name)


def require_competition(missing: str) -> tuple[CompetitionStore, Competition]:
    """The store and the competition this session looks at; without one, shows ``missing`` and stops the page."""
    competition_store = existing_store()
    competition = choose_competition(competition_store) if competition_store is not None else None
    if competition_store is None or competition is None:
        st.info(missing)
        st.stop()
    return competition_store, competition


# -- the teacher ------------------------------------------------------------------------------------------
def is_admin() -> bool:
    return bool(st.session_state.get(ADMIN_KEY))


def sign_in(competition_store: CompetitionStore) -> None:
    """The password form; sets the admin flag for this browser session on success."""
    if configured_password(competition_store.folder) is None:
        st.error(
            f"No admin password is set. Start the app with `{PASSWORD_ENV}=...` in its environment, or write "
            f'`admin_password = "..."` in `{competition_store.folder / CONFIG_NAME}` (then `chmod 600` it).',
            icon=":material/lock:",
        )
        return
    with st.form("competition_sign_in"):
        password = st.text_input("Admin password", type="password")
        if st.form_submit_button("Sign in", type="primary"):
            if check_admin_password(competition_store.folder, password):
                st.session_state[ADMIN_KEY] = True
                st.rerun()
            time.sleep(1.0)  # slows down guessing
            st.error("Wrong password.", icon=":material/lock:")


def sign_out_button() -> None:
    if st.sidebar.button("Sign out (admin)", icon=":material/logout:"):
        st.session_state.pop(ADMIN_KEY, None)
        st.rerun()


# -- a team -------------------------------------------------------------------------------------------------
def current_team(competition_store: CompetitionStore, competition: Competition) -> Team | None:
    """The team whose token this session holds (checked on every run: a reset token stops working)."""
    token = st.session_state.get(TOKEN_KEY)
    if not token:
        return None
    try:
        return authenticate(competition_store, competition, token)
    except CompetitionError:
        st.session_state.pop(TOKEN_KEY, None)
        return None


def join_form(competition_store: CompetitionStore, competition: Competition) -> None:
    """Ask for the team token once; it stays in this browser session only."""
    with st.form("competition_join"):
        token = st.text_input("Team token", type="password", help="From the teacher's sheet, e.g. T7-Qm3x9Kd2pLwZ")
        if st.form_submit_button("Join", type="primary"):
            try:
                authenticate(competition_store, competition, token)
            except CompetitionError as error:
                time.sleep(1.0)  # slows down guessing
                st.error(str(error), icon=":material/key_off:")
            else:
                st.session_state[TOKEN_KEY] = token.strip()
                st.rerun()


def leave_button() -> None:
    if st.button("Leave team (forget the token in this browser)", icon=":material/logout:"):
        st.session_state.pop(TOKEN_KEY, None)
        st.rerun()
