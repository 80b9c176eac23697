"""The Train page's run form: one block per group of ``TrainConfig`` options, each starting at the config's default
(or the data's recipe) and kept across page visits."""

from __future__ import annotations

from typing import Any

import streamlit as st

from pages import ui
from pages.run_view import chart
from seglab.data.spec import DataSpec
from seglab.engine.config import CLASS_WEIGHTINGS, TrainConfig
from seglab.engine.optim import OPTIMIZERS, SCHEDULES
from seglab.engine.run_plan import (
    NO_SECOND_LOSS,
    RunPlan,
    build_config,
    form_loss_spec,
    hard_mining_start_percent,
    loss_form_defaults,
)
from seglab.losses.criterion import LOSS_EXPLANATIONS, available_losses
from seglab.models import available_models, imagenet_models, imagenet_weights_note
from seglab.viz import lr_schedule_figure

DEFAULTS = TrainConfig()
HELP = TrainConfig.option_help()
KEEP = {"persist_state": "session"}  # the form survives a visit to another page
DEFAULTS_FOR_KEY = "train_defaults_for"  # the data the form's crop and batch sizes were derived from


def number(column: Any, label: str, field: str, low: float, high: float, **kwargs: Any) -> Any:
    """A number input for ``TrainConfig.<field>``: its default (or the data's, see DEFAULTS_FOR_KEY) and help text,
    kept across page visits."""
    key = f"train_{field}"
    start = {} if key in st.session_state else {"value": getattr(DEFAULTS, field)}  # a value set there wins
    return column.number_input(label, low, high, key=key, help=HELP.get(field), **start, **KEEP, **kwargs)


def choice(column: Any, label: str, field: str, options: list[str], **kwargs: Any) -> str:
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
    """Model, ImageNet start, epochs, time budget, batch and crop size."""
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
    """The loss (one or two terms), class weights and the options of hard-pixel mining and focal loss."""
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
    """Random scale, flips, colour jitter and crops centred on rare classes."""
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
    """The optimiser, learning rate, weight decay (and momentum and Nesterov for SGD)."""
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
    """The LR schedule, its parameters, warm-up and slow start."""
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


def start_from_recipe(spec: DataSpec, recipe: dict[str, Any]) -> None:
    """New data: start the form from seglab's recipe for its images (the user's other choices stay)."""
    if recipe and st.session_state.get(DEFAULTS_FOR_KEY) != spec.to_dict():
        st.session_state[DEFAULTS_FOR_KEY] = spec.to_dict()
        for field, value in recipe.items():
            st.session_state[f"train_{field}"] = value


def run_form(spec: DataSpec, recipe: dict[str, Any], train_data: Any) -> RunPlan | None:
    """Every option group, then the checked plan and its LR curve (None while the data or an option has a problem).
    The recipe's fields without a widget (e.g. eval_every) come along; the form's values win."""
    options: dict[str, Any] = {}
    for column, heading, draw in zip(
        st.columns(3, gap="medium"),
        ["Model and length", "Loss", "Augmentation"],
        [loop_options, loss_options, augmentation_options],
        strict=True,
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
    return plan
