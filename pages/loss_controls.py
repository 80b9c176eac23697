"""The Loss inspector's controls: a batch of images and the options of the losses it is seen through."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from seglab.analysis.loss_inspector import schedule_end
from seglab.engine.config import CLASS_WEIGHTINGS
from seglab.losses.criterion import LOSS_EXPLANATIONS

MAX_IMAGES = 8


@dataclass(frozen=True)
class LossControls:
    """What the controls chose: the batch's sample ids and each loss option."""

    chosen: list[str]
    weighting: str  # a CLASS_WEIGHTINGS key
    gamma: float
    top_k: float
    mining_step: int
    step: int
    last_step: int  # the end of the mining-schedule view


def loss_controls(ids: list[str], current: str | None) -> LossControls:
    """The images (starting at ``current``, the app's sample) and the loss options, in one bordered box."""
    with st.container(border=True):
        start = ids.index(current) if current in ids else 0
        chosen = st.multiselect(
            "Images (one batch; mining ranks them together)",
            ids,
            default=ids[start : start + 4],
            max_selections=MAX_IMAGES,
            key="loss_images",
        )
        weights_column, focal_column, top_k_column, mining_column, step_column = st.columns(5)
        weighting = weights_column.radio(
            "Class weights",
            list(CLASS_WEIGHTINGS),
            format_func=CLASS_WEIGHTINGS.get,
            key="loss_weights",
            help="From the training data's statistics, as TrainConfig.class_weights computes them",
        )
        gamma = focal_column.slider("Focal γ", 0.0, 5.0, 2.0, 0.5, key="loss_gamma", help=LOSS_EXPLANATIONS["focal"])
        top_k = top_k_column.slider(
            "Hardest pixels kept (end)",
            0.05,
            1.0,
            0.25,
            0.05,
            key="loss_top_k",
            help=LOSS_EXPLANATIONS["hard_ce"] + " (DeepLab's top_k_percent_pixels)",
        )
        mining_step = mining_column.number_input(
            "Mining ramp (steps)",
            0,
            1_000_000,
            1000,
            100,
            key="loss_mining_step",
            help="Steps over which mining goes from all pixels to the hardest share "
            "(0 = at once; DeepLab's hard_example_mining_step)",
        )
        last_step = schedule_end(mining_step)
        if st.session_state.get("loss_step", 0) > last_step:  # a smaller mining step shrank the slider
            st.session_state["loss_step"] = last_step
        step = step_column.slider(
            "Training step",
            0,
            last_step,
            mining_step // 2,
            key="loss_step",
            help="Where in training to look at the mining schedule",
        )
    return LossControls(chosen, weighting, gamma, top_k, int(mining_step), step, last_step)
