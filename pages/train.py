"""Train: configure a run, preview its LR schedule, launch it in the background and watch it live.

Runs are separate processes writing run folders (seglab.engine.runs); this page only reads those files,
so training never blocks the app and a reload reattaches to whatever is on disk.
"""

import streamlit as st

from pages import hidden_split, train_form, ui
from pages.run_view import show_run
from pages.train_form import KEEP
from seglab.engine.curves import sync_watchers
from seglab.engine.distributed import max_processes
from seglab.engine.run_dir import RUNNING
from seglab.engine.run_plan import data_defaults, describe_quick_run, quick_run_config
from seglab.engine.runs import any_running, list_runs, run_info, runs_table, start_run, watch_list
from seglab.errors import ConfigError

WATCH_KEY = "train_watched_runs"
WATCHERS_KEY = "train_run_watchers"  # run name -> RunWatcher: each refresh reads only new events
CONFIGURE_KEY = "train_configure_open"  # the form's expander: folded away while a run trains
STARTED_KEY = "train_started_run"  # name of the run launched by the previous script run
REFRESH = "2s"


def launched(name: str) -> None:
    """Rerun with the new run watched and the form folded, so the live view is in sight."""
    st.session_state[STARTED_KEY] = name
    st.rerun()


# -- page ------------------------------------------------------------------------------------
ui.start_page()
st.title("Train")
runs = list_runs(ui.runs_dir())
names = [run.name for run in runs]
run_paths = {run.name: run.path for run in runs}  # names are display-safe; the folder may not be UTF-8
started = st.session_state.pop(STARTED_KEY, None)
st.session_state[WATCH_KEY] = watch_list(st.session_state.get(WATCH_KEY), runs, started)
if CONFIGURE_KEY not in st.session_state:
    st.session_state[CONFIGURE_KEY] = not any_running(runs)
if started:
    st.session_state[CONFIGURE_KEY] = False
    st.session_state["train_run_name"] = ""  # a name can be used once
    st.toast(f"Started **{started}**", icon=":material/rocket_launch:")

spec = ui.current_spec().with_split("train")
hidden_split.refuse_hidden_split(spec.with_split("val"))  # runs validate on val and preview its masks
train_data = None
image_size = None
recipe: dict = {}  # seglab's recipe for this data (run_plan.data_defaults): the form starts from it
with ui.guard("Loading the training split"):
    train_data = ui.dataset(spec)
    image_size = train_data.load(0)[0].shape[:2] if len(train_data) else None
    st.caption(
        f"Data: **{spec.describe()}** · {len(train_data)} training images · {train_data.num_classes} classes "
        "(change it on the Home page)"
    )
    recipe = data_defaults(image_size, spec.kind) if image_size is not None else {}
    train_form.start_from_recipe(spec, recipe)

with st.expander("Configure a run", icon=":material/tune:", key=CONFIGURE_KEY, on_change="rerun"):
    plan = train_form.run_form(spec, recipe, train_data)

processes = 1
if (devices := max_processes()) > 1:  # several GPUs: one DistributedDataParallel process each (torchrun)
    processes = st.slider(
        "GPU processes for Launch",
        1,
        devices,
        devices,
        key="train_processes",
        **KEEP,
        help="One training process per GPU (torchrun + DistributedDataParallel). Batch size is per "
        "process: each step uses processes x batch size images, and an epoch has that many fewer steps.",
    )
name_column, launch_column, quick_column = st.columns([3, 1, 1], vertical_alignment="bottom")
run_name = name_column.text_input(
    "Run name (optional)", key="train_run_name", placeholder="automatic: model-loss-date-time"
).strip()
if launch_column.button("Launch", type="primary", icon=":material/rocket_launch:", key="train_launch", width="stretch"):
    with ui.guard("Launching the run"):
        if plan is None:
            raise ConfigError("the options have a problem (open 'Configure a run': it is shown in red); fix it first")
        launched(start_run(plan.config, ui.runs_dir(), name=run_name or None, nproc=processes).name)
quick = quick_run_config(spec, image_size)
quick_help = describe_quick_run(quick)
if quick_column.button("Quick run", icon=":material/bolt:", key="train_quick", width="stretch", help=quick_help):
    with ui.guard("Launching the quick run"):
        if train_data is None:
            raise ConfigError("the training data cannot be loaded (see above); pick a working dataset on the Home page")
        launched(start_run(quick, ui.runs_dir(), name=run_name or None).name)

st.subheader("Live view")
watched = st.multiselect("Watch runs", names, key=WATCH_KEY, placeholder="Pick runs to follow")
watching_a_run = any_running(runs, watched)


@st.fragment(run_every=REFRESH if watching_a_run else None)
def live_view() -> None:
    """Polls the watched runs' files; refreshes on a timer only while one of them is running."""
    watchers = st.session_state.setdefault(WATCHERS_KEY, {})
    sync_watchers(watchers, {name: run_paths.get(name, ui.runs_dir() / name) for name in watched})
    still_running = False
    for name in watched:
        with ui.guard(f"Reading run {name}"):
            watcher = watchers[name]
            watcher.refresh()
            info = run_info(watcher.run.path)
            still_running |= info.state == RUNNING
            show_run(watcher, info)
    if watching_a_run and not still_running:
        st.rerun()  # a run just ended: refresh the past-runs table and the sidebar's checkpoint list


if watched:
    st.caption(ui.METRIC_DEFINITION)
    live_view()
elif not runs:
    st.info("No runs yet: press **Quick run** for a one-minute demo on the current data.")

st.subheader("Past runs")
if runs:
    st.dataframe(
        runs_table(runs), hide_index=True, column_config={"best": st.column_config.NumberColumn(format="%.3f")}
    )
else:
    st.caption(f"No run folders in {ui.runs_dir()} yet.")
