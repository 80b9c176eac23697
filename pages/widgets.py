"""Widgets shared by several pages: the error guard, the sidebar, the "no checkpoint yet" stop, the
dataset + evaluation loading block and the sample picker beside a clickable table."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

from pages import loaders, state
from seglab.analysis.gallery import table_choice
from seglab.data.discover import split_names
from seglab.data.spec import DataSpec
from seglab.engine.predict import DatasetEvaluation
from seglab.errors import SeglabError
from seglab.io.names import display_name

_log = logging.getLogger("seglab.app")

METRIC_DEFINITION = (
    "mIoU here is dataset-accumulated (MMSegmentation IoUMetric): one confusion matrix summed over the whole split, "
    "void pixels dropped, mean over the classes present in ground truth or prediction."
)


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Show a SeglabError (or any unexpected error) as st.error and let the rest of the page run."""
    try:
        yield
    except SeglabError as error:
        st.error(f"**{what}**: {display_name(str(error))}", icon=":material/error:")
    except StreamlitAPIException:
        raise  # a page layout bug: let it surface in tests instead of posing as a data problem
    except Exception as error:  # an odd file or checkpoint must not take the rest of the page down
        _log.exception("%s failed", what)
        st.error(
            f"**{what}** failed: {type(error).__name__}: {display_name(str(error))}. The details are in the server "
            "log.",
            icon=":material/error:",
        )


def LAZY_TABS(key: str) -> dict[str, Any]:  # noqa: N802 (reads as a constant at the call: st.tabs(..., **LAZY_TABS(k)))
    """``st.tabs`` options that run only the open tab (test ``tab.open``): a class of browsers opening a page
    renders one tab each instead of all of them; the choice is kept in ``st.session_state[key]``."""
    return {"key": key, "on_change": "rerun"}


# Streamlit loads each element's front-end code only when a page first draws one, and shows a grey skeleton
# until it has run: PlotlyChart's 4.6 MB and the table's 1.3 MB took 2-4 s in a fresh browser, after the script
# had finished. These are the parts the pages draw, heaviest first.
FRONTEND_PARTS = (
    "PlotlyChart",
    "DataFrame",
    "ArrowVegaLiteChart",
    "StreamlitMarkdown",
    "Metric",
    "ImageList",
    "Selectbox",
    "Radio",
    "Slider",
    "Checkbox",
    "ButtonGroup",
    "Progress",
)
PRELOAD_CLASS = "seglab-preload"
READY_ATTRIBUTE = "seglabFrontend"  # <html data-seglab-frontend="ready"> once every part has loaded (browser tests)


@functools.cache
def frontend_chunks() -> tuple[str, ...]:
    """File names of the installed Streamlit's front-end parts in :data:`FRONTEND_PARTS` (hashed per version)."""
    folder = Path(st.__file__).parent / "static" / "static" / "js"
    return tuple(path.name for name in FRONTEND_PARTS for path in sorted(folder.glob(f"{name}.*.js")))


def preload_frontend() -> None:
    """Have the browser load the front-end code of the elements the pages draw, first thing in every run, so it
    loads while the script computes instead of after it (once per browser tab; an invisible element)."""
    chunks = json.dumps(list(frontend_chunks()))
    script = (
        "(() => { if (window.seglabPreloaded) return; window.seglabPreloaded = true;"
        " const index = document.querySelector('script[src*=\"/static/js/index.\"]'); if (!index) return;"
        f" Promise.allSettled({chunks}.map((name) => import(new URL(name, index.src).href)))"
        f".then(() => {{ document.documentElement.dataset.{READY_ATTRIBUTE} = 'ready'; }}); }})();"
    )
    st.html(f"<style>.stElementContainer:has(.{PRELOAD_CLASS}) {{display: none}}</style>")
    st.html(f"<span class='{PRELOAD_CLASS}'></span><script>{script}</script>", unsafe_allow_javascript=True)


def sidebar() -> None:
    """Dataset summary, split and checkpoint pickers: drawn by app.py for every page."""
    spec = state.current_spec()
    with st.sidebar:
        preload_frontend()
        st.caption(f"Data: **{spec.describe().split(' [')[0]}**")
        splits = list(split_names(spec))
        split = state.current_split()
        st.selectbox(
            "Split",
            splits,
            index=splits.index(split) if split in splits else 0,
            key=state.SPLIT_KEY,
            on_change=state.write_query,
            help="Which split the Dataset, Inspect, Compare and Leaderboard pages show",
        )
        options = loaders.model_options()
        labels = list(options)
        chosen = state.current_checkpoint()
        if labels:
            shown = state.current_split() if state.current_split() in splits else (splits or [None])[0]
            here = spec.with_split(shown) if shown else spec  # the fit is judged on the split the pages show
            default = next((label for label in labels if options[label] == chosen), None)
            if default is None:  # nothing chosen yet, or the choice is gone: the one that fits this data best
                default = loaders.best_fitting(options, here) if splits else labels[0]
            elif splits and _misfit(loaders.fit(options[default], here)):  # the data changed under the choice
                better = loaders.best_fitting(options, here)
                if better is not None and not _misfit(loaders.fit(options[better], here)):
                    st.caption(f"**{default}** does not fit this data's classes: switched to **{better}**.")
                    default = better
            misfits = {label for label in labels if splits and _misfit(loaders.fit(options[label], here))}
            label = st.selectbox(
                "Model / predictions",
                labels,
                index=labels.index(default),
                format_func=lambda label: (
                    f"{label} (other classes: cannot run on this data)" if label in misfits else label
                ),
                help="Seglab runs under checkpoints/ (best.pt) and the model files and predictions folders "
                "registered on Home; the default fits the current data's classes",
            )
            if options[label] != st.session_state.get(state.CHECKPOINT_KEY):
                st.session_state[state.CHECKPOINT_KEY] = options[label]
                state.write_query()
        else:
            st.caption("No model yet: train one on the Train page, or register a model file or predictions on Home.")
        if problem := state.allowed().problem:  # a broken seglab.toml: its folders are not allowed until fixed
            st.warning(problem, icon=":material/warning:")
    for refused in (st.session_state.get(state.REFUSED_KEY), st.session_state.pop(state.RUN_REFUSED_KEY, None)):
        if refused:  # above the page: the view is not what the link asked for
            st.error(refused, icon=":material/block:")


def _misfit(fit: int | None) -> bool:
    """A model that cannot work on the data (``None``: the data itself cannot be loaded, so no verdict)."""
    return fit is not None and fit <= 0


def require_checkpoint() -> str:
    """The sidebar's model (a checkpoint or a registered source), or stop the page with a pointer to Train and Home."""
    path = state.current_checkpoint()
    if not path:
        st.info(
            "No model yet: train one on the **Train** page, or register a model file or a folder of predictions on "
            "**Home**, then pick it in the sidebar.",
            icon=":material/info:",
        )
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        st.stop()
    return str(path)


def require_probabilities(choice: str, spec: DataSpec, what: str) -> None:
    """Stop the page with a one-line reason when ``choice`` gives labels only (``what`` needs probabilities)."""
    abilities = None
    with guard("Opening the model"):
        abilities = loaders.abilities(choice, spec)
    if abilities is None:
        st.stop()
    if not abilities.probabilities:
        st.info(
            f"{what} needs per-class probabilities, and this source gives labels only: pick a model, or a folder of "
            ".npy/.npz probabilities or logits.",
            icon=":material/block:",
        )
        st.stop()


def require_evaluation(path: str, spec: DataSpec, *, what: str = "to inspect") -> tuple[Any, DatasetEvaluation]:
    """``(dataset, evaluation)`` of the sidebar's model on the split, or stop the page saying why."""
    data = evaluation = None
    with guard("Evaluating this model on the chosen data"):
        data = loaders.dataset(spec)
        evaluation = loaders.evaluation(path, spec)
    if evaluation is None or not evaluation.results:
        if evaluation is not None:
            st.warning(f"{spec.describe()} has no images {what}.")
        st.stop()
    return data, evaluation


def choose_sample(
    ids: list[str], table_event: Any, table_key: str, current: str | None, group: str | None = None
) -> str:
    """The sample shown beside a clickable table: a newly clicked row wins, then the selectbox, then ``current``.

    Tables of one ``group`` (e.g. Inspect's rankings, keyed by their filter) share the choice: switching to
    another table of the group starts at its first row, as the user just asked for another ranking.
    """
    rows = list(table_event.selection.rows) if table_event else []
    shown_key = f"{group or table_key}_shown_table"
    new_ranking = st.session_state.get(shown_key, table_key) != table_key
    st.session_state[shown_key] = table_key
    chosen = table_choice(ids, rows, st.session_state.get(table_key + "_seen"), current, new_ranking=new_ranking)
    st.session_state[table_key + "_seen"] = rows
    # No key: when the table changes the choice, the index changes and the selectbox follows it.
    return str(st.selectbox("Image", ids, index=ids.index(chosen), help="Or click a row of the table"))
