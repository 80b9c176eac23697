"""Streamlit glue shared by every page: cached loaders, cross-page state, the shared sidebar.

Pages import this module and the ``seglab`` library; nothing here does tensor math or file
parsing. Caches are keyed on JSON strings, file paths + mtimes and dataset fingerprints, never on
arrays. Cross-page choices (dataset, split, checkpoint, sample) live in ``st.session_state`` and are
mirrored in the URL query parameters so a view can be shared and reloaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from seglab.data.spec import DataSpec, build_dataset
from seglab.errors import SeglabError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("SEGLAB_DATA_ROOT", PROJECT_ROOT.parent / "shared" / "data"))
METRIC_DEFINITION = (
    "mIoU here is dataset-accumulated (MMSegmentation IoUMetric): one confusion matrix summed over the whole split, "
    "void pixels dropped, mean over the classes present in ground truth or prediction."
)

SPEC_KEY = "seglab_data_spec"
SPLIT_KEY = "seglab_split"
CHECKPOINT_KEY = "seglab_checkpoint"
SAMPLE_KEY = "seglab_sample"


def runs_dir() -> Path:
    """Where run folders live: ``$SEGLAB_RUNS_DIR`` or ``checkpoints/`` next to app.py (read on every call)."""
    return Path(os.environ.get("SEGLAB_RUNS_DIR", PROJECT_ROOT / "checkpoints"))


# -- cross-page state ------------------------------------------------------------------------
def current_spec() -> DataSpec:
    """The data source chosen on Home (or in the URL), defaulting to built-in Shapes."""
    if SPEC_KEY not in st.session_state:
        st.session_state[SPEC_KEY] = _spec_from_query().to_dict()
    return DataSpec.from_dict(st.session_state[SPEC_KEY])


def set_spec(spec: DataSpec) -> None:
    st.session_state[SPEC_KEY] = spec.to_dict()
    _write_query()


def current_split() -> str:
    return st.session_state.get(SPLIT_KEY) or st.query_params.get("split") or "val"


def current_checkpoint() -> str | None:
    """Path of the checkpoint chosen in the sidebar (a file under the runs folder)."""
    return st.session_state.get(CHECKPOINT_KEY) or _checkpoint_from_query()


def _spec_from_query() -> DataSpec:
    params = st.query_params
    kind = params.get("data", "shapes")
    if kind == "shapes":
        return DataSpec()
    try:
        return DataSpec(kind=kind, root=params.get("root"), images=params.get("images"), masks=params.get("masks"),
                        label_map=params.get("label_map"))  # fmt: skip
    except SeglabError:
        return DataSpec()


def _checkpoint_from_query() -> str | None:
    run = st.query_params.get("run")
    if not run:
        return None
    path = runs_dir() / Path(run).name / "best.pt"
    return str(path) if path.is_file() else None


def _write_query() -> None:
    spec = current_spec()
    params = {"data": spec.kind, "split": current_split()}
    for name in ("root", "images", "masks", "label_map"):
        if getattr(spec, name):
            params[name] = getattr(spec, name)
    checkpoint = current_checkpoint()
    if checkpoint:
        params["run"] = Path(checkpoint).parent.name
    st.query_params.from_dict(params)


# -- cached loaders --------------------------------------------------------------------------
def spec_key(spec: DataSpec) -> str:
    """A hashable cache key for a DataSpec."""
    return json.dumps(spec.to_dict(), sort_keys=True)


@st.cache_resource(max_entries=8, show_spinner="Loading dataset...")
def _dataset(key: str):
    return build_dataset(DataSpec.from_dict(json.loads(key)))


def dataset(spec: DataSpec):
    """The dataset a spec describes (shared across sessions; raises SeglabError on bad paths)."""
    return _dataset(spec_key(spec))


@st.cache_data(max_entries=16, show_spinner="Computing class statistics (cached on disk afterwards)...")
def _stats(key: str, fingerprint: str):
    from seglab.stats import compute_stats

    return compute_stats(_dataset(key))


def stats(spec: DataSpec):
    """Dataset statistics, keyed by the dataset fingerprint so edited data is recomputed."""
    data = dataset(spec)
    return _stats(spec_key(spec), data.fingerprint())


@st.cache_resource(max_entries=6, show_spinner="Loading checkpoint...")
def _checkpoint(path: str, mtime_ns: int):
    from seglab.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path)
    return checkpoint, checkpoint.build_model("cpu")


def checkpoint_and_model(path: str | os.PathLike):
    """``(Checkpoint, model in eval mode)`` for a file, reloaded when the file changes."""
    path = Path(path)
    return _checkpoint(str(path), path.stat().st_mtime_ns)


@st.cache_resource(max_entries=8, show_spinner="Evaluating checkpoint on the split (cached on disk afterwards)...")
def _evaluation(path: str, mtime_ns: int, key: str):
    from seglab.evaluation import evaluate_checkpoint

    return evaluate_checkpoint(path, _dataset(key))


def evaluation(path: str | os.PathLike, spec: DataSpec):
    """Per-image predictions and metrics of a checkpoint on a split (memory, then disk cache)."""
    path = Path(path)
    return _evaluation(str(path), path.stat().st_mtime_ns, spec_key(spec))


def checkpoint_options() -> dict[str, str]:
    """``{label: path}`` of every run's best (else last) checkpoint, newest first."""
    from seglab.runs import list_runs

    options = {}
    for run in list_runs(runs_dir()):
        if run.checkpoint is not None:
            score = f" · mIoU {run.best_metric:.3f}" if run.best_metric is not None else ""
            options[f"{run.name}{score}"] = str(run.checkpoint)
    return options


# -- errors ---------------------------------------------------------------------------------
@contextmanager
def guard(what: str) -> Iterator[None]:
    """Show a SeglabError (or any unexpected error) as st.error and let the rest of the page run."""
    try:
        yield
    except SeglabError as error:
        st.error(f"**{what}**: {error}", icon=":material/error:")
    except (OSError, ValueError, RuntimeError) as error:
        st.error(f"**{what}** failed: {type(error).__name__}: {error}", icon=":material/error:")


# -- the shared sidebar -----------------------------------------------------------------------
def sidebar() -> None:
    """Dataset summary, split and checkpoint pickers: drawn by app.py for every page."""
    spec = current_spec()
    with st.sidebar:
        st.caption(f"Data: **{spec.describe().split(' [')[0]}**")
        splits = ["train", "val", "test"] if spec.kind in ("shapes", "camvid") else ["train", "val", "trainval"]
        if spec.kind == "folder":
            splits = [spec.split or "custom"]
        split = current_split()
        st.selectbox("Split", splits, index=splits.index(split) if split in splits else 0, key=SPLIT_KEY,
                     on_change=_write_query, help="Which split the Dataset, Inspect, Compare and Leaderboard pages show")  # fmt: skip
        options = checkpoint_options()
        labels = list(options)
        chosen = current_checkpoint()
        index = next((i for i, label in enumerate(labels) if options[label] == chosen), 0)
        if labels:
            label = st.selectbox("Checkpoint", labels, index=index, help="Run folders under checkpoints/ (best.pt)")
            if options[label] != st.session_state.get(CHECKPOINT_KEY):
                st.session_state[CHECKPOINT_KEY] = options[label]
                _write_query()
        else:
            st.caption("No checkpoints yet: train one on the Train page.")
