"""Cross-page state: the data source, split, model (a checkpoint or a registered source) and sample a session chose.

Choices live in ``st.session_state`` and are mirrored in the URL query parameters, so a view can be
shared and reloaded. Paths that come from a URL are checked against the data-root allow-list
(:mod:`seglab.allowed_paths`) before anything reads them.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec
from seglab.errors import SeglabError
from seglab.sources.catalog import allowed_roots, catalog_dir, is_registered, slug
from seglab.sources.description import DESCRIPTION_SUFFIX

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("SEGLAB_DATA_ROOT", PROJECT_ROOT.parent / "shared" / "data"))

SPEC_KEY = "seglab_data_spec"
SPLIT_KEY = "seglab_split"
CHECKPOINT_KEY = "seglab_checkpoint"
SAMPLE_KEY = "seglab_sample"
QUERY_PATH_FIELDS = ("root", "images", "masks", "list_file", "label_map")


def runs_dir() -> Path:
    """Where run folders live: ``$SEGLAB_RUNS_DIR`` or ``checkpoints/`` next to app.py (read on every call)."""
    return Path(os.environ.get("SEGLAB_RUNS_DIR", PROJECT_ROOT / "checkpoints"))


def source_roots() -> list[Path]:
    """Folders registered model files and predictions folders may live in (runs, data, ``$SEGLAB_SOURCE_ROOTS``)."""
    return allowed_roots(runs_dir(), DATA_ROOT)


def current_spec() -> DataSpec:
    """The data source chosen on Home (or in the URL), defaulting to built-in Shapes."""
    if SPEC_KEY not in st.session_state:
        st.session_state[SPEC_KEY] = _spec_from_query().to_dict()
    return DataSpec.from_dict(st.session_state[SPEC_KEY])


def set_spec(spec: DataSpec) -> None:
    """Make ``spec`` the data source of every page (and of the URL)."""
    st.session_state[SPEC_KEY] = spec.to_dict()
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
        return DataSpec(kind=kind, mask_format=params.get("mask_format", "auto"), **paths)
    except (SeglabError, ValueError, TypeError):
        return DataSpec()


def _checkpoint_from_query() -> str | None:
    """A shared link's ``run`` (a run folder's name) or ``source`` (a registered source's name)."""
    source = st.query_params.get("source")
    if source and slug(source):
        entry = catalog_dir(runs_dir()) / f"{slug(source)}{DESCRIPTION_SUFFIX}"
        return str(entry) if entry.is_file() else None
    run = st.query_params.get("run")
    if not run:
        return None
    path = runs_dir() / Path(run).name / "best.pt"
    return str(path) if path.is_file() else None


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
        params["run"] = Path(checkpoint).parent.name
    st.query_params.from_dict(params)
