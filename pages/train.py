"""Train: configure a run, preview its LR schedule, launch it in the background and watch it live.

Runs are separate processes writing run folders (seglab.engine.runs); this page only reads those files,
so training never blocks the app and a reload reattaches to whatever is on disk.
"""

import streamlit as st

from pages import hidden_split, ui
from seglab.engine.config import CLASS_WEIGHTINGS, TrainConfig
from seglab.engine.curves import RunWatcher, headline_numbers, no_points_note, sync_watchers
from seglab.engine.distributed import max_processes
from seglab.engine.optim import OPTIMIZERS, SCHEDULES
from seglab.engine.run_dir import FAILED, RUNNING
from seglab.engine.run_plan import (
    NO_SECOND_LOSS,
    RunPlan,
    build_config,
    data_defaults,
    describe_quick_run,
    form_loss_spec,
    hard_mining_start_percent,
    loss_form_defaults,
    quick_run_config,
)
from seglab.engine.runs import list_runs, run_info, runs_table, runs_to_watch, start_run, stop_run
from seglab.errors import ConfigError
from seglab.losses.criterion import LOSS_EXPLANATIONS, available_losses
from seglab.models import available_models, imagenet_models, imagenet_weights_note
from seglab.viz import line_figure, lr_schedule_figure

DEFAULTS = TrainConfig()
HELP = TrainConfig.option_help()
WATCH_KEY = "train_watched_runs"
WATCHERS_KEY = "train_run_watchers"  # run name -> RunWatcher: each refresh reads only new events
CONFIGURE_KEY = "train_configure_open"  # the form's expander: folded away while a run trains
STARTED_KEY = "train_started_run"  # name of the run launched by the previous script run
DEFAULTS_FOR_KEY = "train_defaults_for"  # the data the form's crop and batch sizes were derived from
REFRESH = "2s"
# After a stop request a run evaluates the whole validation split and saves last.pt; on a busy laptop CPU that
# can take a minute, so only a run still alive after this long is terminated.
STOP_GRACE_S = 120.0
STATE_COLORS = {"running": "blue", "finished": "green", "failed": "red", "stopped": "orange"}
KEEP = {"persist_state": "session"}  # the form survives a visit to another page


def number(column, label: str, field: str, low, high, **kwargs):
    """A number input for ``TrainConfig.<field>``: its default (or the data's, see DEFAULTS_FOR_KEY) and help text,
    kept across page visits."""
    key = f"train_{field}"
    start = {} if key in st.session_state else {"value": getattr(DEFAULTS, field)}  # a value set there wins
    return column.number_input(label, low, high, key=key, help=HELP.get(field), **start, **KEEP, **kwargs)


def choice(column, label: str, field: str, options: list[str], **kwargs) -> str:
    """A selectbox for ``TrainConfig.<field>`` starting at its default (or the data's, see DEFAULTS_FOR_KEY)."""
    key = f"train_{field}"
    start = {} if key in st.session_state else {"index": options.index(getattr(DEFAULTS, field))}
    return column.selectbox(label, options, key=key, help=HELP.get(field), **start, **KEEP, **kwargs)


def pretrained_option(model: str) -> str:
    """The "Start from ImageNet weights" toggle: live for models with an ImageNet encoder, disabled and
    explained for the others (their runs start from random weights)."""
    label = "Start from ImageNet weights"
    if model not in imagenet_models():
        st.toggle(label, False, key="train_pretrained_unavailable", disabled=True, help=HELP["pretrained"])
        st.caption(imagenet_weights_note(model))
        return "none"
    start = {} if "train_pretrained" in st.session_state else {"value": DEFAULTS.pretrained == "imagenet"}
    on = st.toggle(label, key="train_pretrained", help=HELP["pretrained"], **start, **KEEP)
    st.caption(imagenet_weights_note(model))
    return "imagenet" if on else "none"


def loop_options() -> dict:
    models = available_models()
    model = choice(st, "Model", "model", list(models))
    st.caption(models[model])
    pretrained = pretrained_option(model)
    left, right = st.columns(2)
    return {
        "model": model,
        "pretrained": pretrained,
        "epochs": number(left, "Epochs", "epochs", 1, 10_000),
        "time_budget_s": right.number_input(
            "Time budget (s)",
            0,
            86_400,
            int(DEFAULTS.time_budget_s or 0),
            step=30,
            key="train_time_budget_s",
            help="0 = train for all epochs. " + HELP["time_budget_s"],
            **KEEP,
        ),
        "batch_size": number(left, "Batch size", "batch_size", 1, 512),
        "crop_size": number(right, "Crop size", "crop_size", 0, 2048, step=16),
    }


def loss_options() -> dict:
    losses = available_losses()
    first_default, extra_name, weight_default = loss_form_defaults(DEFAULTS.loss)
    first = st.selectbox("Loss", losses, index=losses.index(first_default), key="train_loss", **KEEP)
    st.caption(LOSS_EXPLANATIONS[first])
    extras = [NO_SECOND_LOSS] + [name for name in losses if name != first]
    left, right = st.columns([3, 2])
    extra = left.selectbox(
        "Plus",
        extras,
        index=extras.index(extra_name) if extra_name in extras else 0,
        key="train_loss_extra",
        help="Add a second term, e.g. ce + dice",
        **KEEP,
    )
    weight = right.number_input(
        "Weight",
        0.0,
        100.0,
        weight_default,
        step=0.05,
        format="%g",
        key="train_loss_weight",
        disabled=extra == NO_SECOND_LOSS,
        **KEEP,
    )
    if extra != NO_SECOND_LOSS:
        st.caption(LOSS_EXPLANATIONS[extra])
    options = {"loss": form_loss_spec(first, extra, weight)}
    options["class_weights"] = choice(
        st, "Class weights", "class_weights", list(CLASS_WEIGHTINGS), format_func=CLASS_WEIGHTINGS.get
    )
    if "hard_ce" in (first, extra):
        left, right = st.columns(2)
        percent = hard_mining_start_percent(DEFAULTS)
        options["top_k_percent_pixels"] = (
            left.slider("Keep hardest pixels (%)", 1, 100, percent, key="train_top_k", **KEEP) / 100
        )
        options["hard_example_mining_step"] = number(right, "Mining steps", "hard_example_mining_step", 0, 1_000_000)
    if "focal" in (first, extra):
        options["focal_gamma"] = st.slider(
            "Focal gamma", 0.0, 5.0, DEFAULTS.focal_gamma, 0.5, key="train_focal_gamma", **KEEP
        )
    return options


def augmentation_options() -> dict:
    scale = st.slider(
        "Random scale",
        0.25,
        2.0,
        (DEFAULTS.scale_min, DEFAULTS.scale_max),
        0.05,
        key="train_scale",
        help=HELP["scale_min"],
        **KEEP,
    )
    left, right = st.columns(2)
    return {
        "scale_min": scale[0],
        "scale_max": scale[1],
        "hflip": left.slider("Horizontal flip p", 0.0, 1.0, DEFAULTS.hflip, 0.05, key="train_hflip", **KEEP),
        "vflip": right.slider("Vertical flip p", 0.0, 1.0, DEFAULTS.vflip, 0.05, key="train_vflip", **KEEP),
        "color_jitter": st.slider(
            "Colour jitter",
            0.0,
            1.0,
            DEFAULTS.color_jitter,
            0.05,
            key="train_color_jitter",
            help=HELP["color_jitter"],
            **KEEP,
        ),
        "rare_class_crops": st.slider(
            "Crops centred on rare classes",
            0.0,
            1.0,
            step=0.05,
            key="train_rare_class_crops",
            help=HELP["rare_class_crops"],
            **({} if "train_rare_class_crops" in st.session_state else {"value": DEFAULTS.rare_class_crops}),
            **KEEP,
        ),
    }


def optimizer_options() -> dict:
    optimizer = choice(st, "Optimiser", "optimizer", list(OPTIMIZERS))
    st.caption(OPTIMIZERS[optimizer])
    left, right = st.columns(2)
    options = {
        "optimizer": optimizer,
        "lr": number(left, "Learning rate", "lr", 1e-6, 10.0, step=1e-3, format="%g"),
        "weight_decay": number(right, "Weight decay", "weight_decay", 0.0, 1.0, step=1e-4, format="%g"),
        "nesterov": False,
    }
    if optimizer == "sgd":
        options["momentum"] = number(left, "Momentum", "momentum", 0.0, 0.999, step=0.05)
        options["nesterov"] = right.checkbox("Nesterov", DEFAULTS.nesterov, key="train_nesterov", **KEEP)
    return options


def schedule_options() -> dict:
    schedule = choice(st, "LR schedule", "schedule", list(SCHEDULES))
    st.caption(SCHEDULES[schedule])
    left, right = st.columns(2)
    options = {"schedule": schedule}
    if schedule == "poly":
        options["power"] = number(left, "Power", "power", 0.1, 5.0, step=0.1)
    if schedule == "step":
        options["step_size"] = number(left, "Step size", "step_size", 1, 1_000_000)
        options["gamma"] = number(right, "Gamma", "gamma", 0.01, 1.0, step=0.05)
    options["warmup_steps"] = number(left, "Warm-up steps", "warmup_steps", 0, 100_000)
    options["slow_start_steps"] = number(right, "Slow-start steps", "slow_start_steps", 0, 100_000)
    if options["slow_start_steps"]:
        options["slow_start_lr"] = number(right, "Slow-start LR", "slow_start_lr", 0.0, 1.0, step=1e-4, format="%g")
    return options


def launched(name: str) -> None:
    """Rerun with the new run watched and the form folded, so the live view is in sight."""
    st.session_state[STARTED_KEY] = name
    st.rerun()


def chart(build, *args, key: str, **options) -> None:
    """A curve panel ``build(*args, **options)``, built once for every session showing the same points
    (``ui.shared_figure``); uirevision keeps the zoom across refreshes."""
    figure = ui.shared_figure(build, *args, height=250, uirevision=key, y_from_zero=True, **options)
    st.plotly_chart(figure, key=key)


def show_run(watcher: RunWatcher, info) -> None:
    """One watched run: status, stop button, numbers, curves and the latest sample predictions."""
    curves = watcher.curves
    with st.container(border=True):
        title, action = st.columns([6, 1], vertical_alignment="center")
        title.markdown(
            f"**{info.name}** :{STATE_COLORS.get(info.state, 'gray')}-badge[{info.state}] · "
            f"{info.model} · loss `{info.loss}` · data {info.data}"
        )
        if info.state == RUNNING and watcher.run.stop_requested():
            action.caption("stopping...")
        elif info.state == RUNNING and action.button(
            "Stop", key=f"train_stop_{info.name}", icon=":material/stop_circle:"
        ):
            stop_run(info.path, grace_s=STOP_GRACE_S)
            st.toast(f"Asked **{info.name}** to stop: it saves last.pt first")
        if info.state == FAILED:
            st.error(
                f"**Run failed**: {info.error or 'no error message; see train.log in the run folder'}",
                icon=":material/error:",
            )
        for column, (label, value) in zip(st.columns(5), headline_numbers(curves).items()):
            column.metric(label, value)
        if note := no_points_note(curves, running=info.state == RUNNING):
            st.caption(note)
            return
        charts, preview = st.columns([3, 1])
        with charts:
            top, bottom = st.columns(2), st.columns(2)
            panels = [
                (top[0], curves.loss_series(), "Training loss (terms)", "loss"),
                (top[1], curves.metric_series(), f"Validation ({curves.val_images or '?'} images)", "metrics"),
                (bottom[0], curves.lr_series(), "Learning rate", "lr"),
                (bottom[1], curves.throughput_series(), "Throughput (images/s)", "speed"),
            ]
            for column, series, title, key in panels:
                with column:
                    if series:
                        chart(line_figure, series, key=f"train_{key}_{info.name}", title=title, xaxis_title="step")
                    else:
                        st.caption(f"{title}: no points yet")
        with preview:
            latest_preview = watcher.latest_preview()
            if latest_preview is None:
                st.caption(
                    "Sample predictions appear after the first evaluation."
                    if info.state == RUNNING
                    else "This run saved no sample predictions (the demo runs ship without them); "
                    "open it on Inspect to see its predictions."
                )
            else:
                path, step = latest_preview
                st.image(
                    str(path),
                    caption=f"Validation samples at step {step}: image | ground truth | prediction",
                    output_format="PNG",
                )


# -- page ------------------------------------------------------------------------------------
ui.start_page()
st.title("Train")
runs = list_runs(ui.runs_dir())
names = [run.name for run in runs]
run_paths = {run.name: run.path for run in runs}  # names are display-safe; the folder may not be UTF-8
if WATCH_KEY in st.session_state:
    st.session_state[WATCH_KEY] = [name for name in st.session_state[WATCH_KEY] if name in names]
else:  # first visit or reload: whatever is training, plus the latest run
    st.session_state[WATCH_KEY] = runs_to_watch(runs)
if CONFIGURE_KEY not in st.session_state:
    st.session_state[CONFIGURE_KEY] = not any(run.state == RUNNING for run in runs)
if started := st.session_state.pop(STARTED_KEY, None):
    st.session_state[WATCH_KEY] = [started, *st.session_state[WATCH_KEY]]
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
    if recipe and st.session_state.get(DEFAULTS_FOR_KEY) != spec.to_dict():
        # New data: start the form from seglab's recipe for its images (the user's other choices stay).
        st.session_state[DEFAULTS_FOR_KEY] = spec.to_dict()
        for field, value in recipe.items():
            st.session_state[f"train_{field}"] = value

with st.expander("Configure a run", icon=":material/tune:", key=CONFIGURE_KEY, on_change="rerun"):
    columns = st.columns(3, gap="medium")
    options = {}
    for column, heading, draw in zip(
        columns, ["Model and length", "Loss", "Augmentation"], [loop_options, loss_options, augmentation_options]
    ):
        with column:
            st.markdown(f"**{heading}**")
            with ui.guard(heading):
                options |= draw()
    optimizer_column, schedule_column, curve_column = st.columns([1, 1, 2], gap="medium")
    with optimizer_column:
        st.markdown("**Optimiser**")
        options |= optimizer_options()
    with schedule_column:
        st.markdown("**Schedule**")
        options |= schedule_options()
    plan = None
    with curve_column, ui.guard("Checking the options"):
        if train_data is not None:
            # The recipe's fields without a widget (e.g. eval_every) come along; the form's values win.
            plan = RunPlan.check(build_config(spec, **{**recipe, **options}), len(train_data), train_data.num_classes)
            x_values, rates, x_title = plan.lr_preview()
            chart(
                lr_schedule_figure,
                x_values,
                rates,
                key="train_lr_preview",
                title="Learning rate this run will follow",
                xaxis_title=x_title,
            )
            st.caption(plan.summary())

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
any_running = any(run.state == RUNNING for run in runs if run.name in watched)


@st.fragment(run_every=REFRESH if any_running else None)
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
    if any_running and not still_running:
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
