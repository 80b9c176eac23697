"""Cross-page state: the data source, split, model (a checkpoint or a registered source) and sample a session chose.

Choices live in ``st.session_state`` and are mirrored in the URL query parameters, so a view can be
shared and reloaded. Paths that come from a URL or a form are checked against the data-root
allow-list (:mod:`seglab.io.allowed_paths`) before anything reads them. A link whose data source is
refused falls back to Shapes and :data:`REFUSED_KEY` holds the reason, shown above every page until a
data source is chosen; a refused ``run=`` is said once (:data:`RUN_REFUSED_KEY`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import streamlit as st

from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec
from seglab.engine.runs import RunInfo, list_runs
from seglab.errors import ConfigError, PathNotAllowedError, SeglabError
from seglab.io.allowed_paths import AllowList, allow_list, check_spec_paths, spec_paths
from seglab.io.allowed_paths import data_root as configured_data_root
from seglab.io.names import display_name
from seglab.sources.catalog import catalog_dir, slug
from seglab.sources.choices import is_registered
from seglab.sources.description import DESCRIPTION_SUFFIX

PROJECT_ROOT = Path(__file__).resolve().parents[1]

SPEC_KEY = "seglab_data_spec"
SPLIT_KEY = "seglab_split"
CHECKPOINT_KEY = "seglab_checkpoint"
SAMPLE_KEY = "seglab_sample"
REFUSED_KEY = "seglab_refused_link"  # why the data source of the link this session opened was not followed
RUN_REFUSED_KEY = "seglab_refused_run"  # why the link's run= was not followed
QUERY_PATH_FIELDS = ("root", "images", "masks", "list_file", "label_map")


def runs_dir() -> Path:
    """Where run folders live: ``$SEGLAB_RUNS_DIR`` or ``checkpoints/`` next to app.py (read on every call)."""
    return Path(os.environ.get("SEGLAB_RUNS_DIR", PROJECT_ROOT / "checkpoints"))


def data_root() -> Path:
    """The data folder searched for datasets: ``$SEGLAB_DATA_ROOT`` or ``../shared/data`` (read on every call)."""
    return configured_data_root(PROJECT_ROOT)


class _ChosenOnServer:
    """Paths a user on the server machine itself chose on Home while this server runs (shared by sessions)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.paths: list[str] = []

    def add(self, paths: list[str]) -> None:
        with self.lock:
            self.paths += [path for path in paths if path not in self.paths]

    def snapshot(self) -> list[str]:
        with self.lock:
            return list(self.paths)


@st.cache_resource(show_spinner=False)
def _chosen_on_server() -> _ChosenOnServer:
    return _ChosenOnServer()


def allowed() -> AllowList:
    """The allow-list every path from a link or a form is checked against (see seglab.io.allowed_paths)."""
    return allow_list(PROJECT_ROOT, runs_dir(), extra=_chosen_on_server().snapshot())


def client_is_local() -> bool:
    """Whether this browser runs on the server machine (Streamlit gives no address for localhost).

    Behind a reverse proxy on the same machine every client looks local: see README.
    """
    return st.context.ip_address is None


def check_form_spec(spec: DataSpec) -> DataSpec:
    """``spec`` typed on a form, if this session may read its paths: a user on the server machine may read
    what they type; anyone else only paths inside the allow-list or already in the session's data source
    (PathNotAllowedError otherwise)."""
    if client_is_local():
        return spec
    return check_spec_paths(spec, allowed().with_roots(spec_paths(current_spec())))


def keep_allowed(paths: list[Path]) -> list[Path]:
    """The paths inside the allow-list (e.g. checkpoints under the runs folder, not through a symlink out of it)."""
    allow = allowed()
    return [path for path in paths if allow.allows(path)]


def offered_runs() -> list[RunInfo]:
    """Usable runs whose checkpoint lies inside the allow-list: what the sidebar offers and a link may name."""
    allow = allowed()
    return [run for run in list_runs(runs_dir()) if run.checkpoint is not None and allow.allows(run.checkpoint)]


def source_roots() -> list[Path]:
    """Folders registered model files and predictions folders may live in: the allow-list's roots (data folder,
    runs folder, ``$SEGLAB_DATA_ROOTS``, ``seglab.toml``, folders chosen on the server machine)."""
    return list(allowed().roots)


def current_spec() -> DataSpec:
    """The data source chosen on Home (or in the URL), defaulting to built-in Shapes."""
    if SPEC_KEY not in st.session_state:
        st.session_state[SPEC_KEY] = _spec_from_query().to_dict()
    return DataSpec.from_dict(st.session_state[SPEC_KEY])


def set_spec(spec: DataSpec) -> None:
    """Make ``spec`` the data source of every page (and of the URL).

    Chosen by a user on the server machine, its paths join the allow-list for this server's life, so a
    link to this view works for the class too.
    """
    if client_is_local():
        _chosen_on_server().add(spec_paths(spec))
    st.session_state[SPEC_KEY] = spec.to_dict()
    st.session_state.pop(REFUSED_KEY, None)
    write_query()


def current_split() -> str:
    return str(st.session_state.get(SPLIT_KEY) or st.query_params.get("split") or "val")


def current_checkpoint() -> str | None:
    """The model chosen in the sidebar: a checkpoint under the runs folder or a sources-catalog entry file."""
    return st.session_state.get(CHECKPOINT_KEY) or _checkpoint_from_query()


def current_sample() -> str | None:
    """Sample id chosen on the Inspect or Dataset page (or from the URL's ``sample``)."""
    return st.session_state.get(SAMPLE_KEY) or st.query_params.get("sample")


def set_sample(sample_id: str) -> None:
    st.session_state[SAMPLE_KEY] = sample_id
    if "data" not in st.query_params:  # a page switch clears the URL: put the data source and split back
        write_query()
    st.query_params["sample"] = sample_id


def _spec_from_query() -> DataSpec:
    """The data source a shared link names; a link that no longer fits falls back to Shapes."""
    params = st.query_params
    kind = params.get("data", "shapes")
    try:
        if kind == "shapes":
            return DataSpec(shapes=ShapesConfig.from_query(params.get("shapes")))
        paths = {name: params.get(name) for name in QUERY_PATH_FIELDS}
        spec = DataSpec(kind=kind, mask_format=params.get("mask_format", "auto"), **paths)
        return check_spec_paths(spec, allowed())  # before anything reads a path the link names
    except (PathNotAllowedError, ConfigError) as error:
        st.session_state[REFUSED_KEY] = f"This link's data source was not opened: {error}. Showing Shapes instead."
        return DataSpec()
    except (SeglabError, ValueError, TypeError):
        return DataSpec()


def _checkpoint_from_query() -> str | None:
    """A shared link's ``source`` (a registered source's name), else the checkpoint of the usable run it names
    (``run=<name>``, as the sidebar lists it), else None."""
    source = st.query_params.get("source")
    if source and slug(source):
        entry = catalog_dir(runs_dir()) / f"{slug(source)}{DESCRIPTION_SUFFIX}"
        return str(entry) if entry.is_file() else None
    run = st.query_params.get("run")
    if not run:
        return None
    found = next((info.checkpoint for info in offered_runs() if info.name == run), None)
    if found is None:
        st.session_state[RUN_REFUSED_KEY] = display_name(
            f"This link names run {run!r}, which is not a usable run under the runs folder (inside the folders this "
            "app may read): pick a checkpoint in the sidebar."
        )
        return None
    return str(found)


def write_query() -> None:
    """Mirror the session's choices in the URL query parameters."""
    spec = current_spec()
    params = {"data": spec.kind, "split": current_split()}
    for name in QUERY_PATH_FIELDS:
        if getattr(spec, name):
            params[name] = getattr(spec, name)
    if spec.kind == "shapes" and (changed := spec.shapes.to_query()):
        params["shapes"] = changed
    if spec.kind != "shapes" and spec.mask_format != "auto":
        params["mask_format"] = spec.mask_format
    checkpoint = current_checkpoint()
    if checkpoint and is_registered(checkpoint):
        params["source"] = Path(checkpoint).name.removesuffix(DESCRIPTION_SUFFIX)
    elif checkpoint:
        params["run"] = display_name(Path(checkpoint).parent.name)
    st.query_params.from_dict(params)
