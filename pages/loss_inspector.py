"""Loss inspector: where each training loss puts its weight, pixel by pixel and class by class."""

import pandas as pd
import streamlit as st

from pages import hidden_split, ui
from pages.loss_controls import loss_controls
from seglab import viz
from seglab.analysis.loss_inspector import (
    FOCAL,
    MINING,
    PLAIN,
    WEIGHTED,
    heatmap_scale,
    image_panels,
    loss_breakdown,
    mining_progress_sentence,
    mining_schedule,
)
from seglab.engine.config import CLASS_WEIGHTINGS

number = st.column_config.NumberColumn

ui.start_page()
st.title("Loss inspector")
st.caption(
    "The sidebar model's predictions on a few images, seen through the losses training can use. Class weights apply "
    "to every loss at once, as in training (CE, focal as its alpha, and mining, which ranks the weighted losses)."
)

path = ui.require_checkpoint()

spec = ui.current_spec().with_split(ui.current_split())
hidden_split.refuse_hidden_split(spec)
ui.require_probabilities(path, spec, "The loss inspector")
data = None
with ui.guard("Loading the data"):
    data = ui.dataset(spec)
if data is None or not len(data):
    if data is not None:
        st.warning(f"{spec.describe()} has no images.")
    st.stop()
names, label_map, ids = data.class_names, data.label_map, list(data.ids)

controls = loss_controls(ids, ui.current_sample())
chosen, weighting, gamma, top_k = controls.chosen, controls.weighting, controls.gamma, controls.top_k
mining_step, step, last_step = controls.mining_step, controls.step, controls.last_step
if not chosen:
    st.info("Pick at least one image.")
    st.stop()

breakdown = None
with ui.guard("Computing the losses of these images"):
    images, masks, logits = ui.loss_inputs(path, spec, chosen)
    weights = None if weighting == "none" else ui.stats(ui.current_spec()).class_weights(weighting)
    breakdown = ui.shared_result(  # the same for every session with the same choices: computed once
        loss_breakdown,
        logits,
        masks,
        data.ignore_index,
        class_weights=weights,
        focal_gamma=gamma,
        top_k_percent_pixels=top_k,
        hard_example_mining_step=mining_step,
        step=step,
    )
if breakdown is None:
    st.stop()

cards = st.columns(len(breakdown.series) + 1)
for card, name in zip(cards, breakdown.series):
    card.metric(
        name, f"{breakdown.loss_values[name]:.4f}", border=True, help="The value this loss returns on the batch"
    )
cards[-1].metric(
    "Kept by mining",
    f"{breakdown.kept_fraction:.1%}",
    border=True,
    delta=f"{breakdown.kept_pixels:,} of {breakdown.valid_pixels:,} px",
    delta_color="off",
    help="DeepLab: ratio = min(1, step / mining_step); kept = ratio × top_k + (1 − ratio) of the labelled pixels",
)
st.caption(mining_progress_sentence(step, top_k, mining_step))

st.subheader("Pixel by pixel")
scale = heatmap_scale(breakdown.cross_entropy, breakdown.per_pixel, valid=breakdown.valid)
st.caption(
    f"Loss maps share one colour scale: dark = 0, yellow ≥ {scale:.2f} (99th percentile); light grey = void, never "
    "counted. "
    f"Focal factor (1 − p_y)^{gamma:g}: yellow = counts as in CE, dark = already easy, muted. Orange = kept by mining."
)
for index, sample_id in enumerate(chosen):
    panels = image_panels(
        breakdown,
        index,
        images[index],
        masks[index],
        label_map,
        sample_id=sample_id,
        scale=scale,
        weighting=None if weights is None else CLASS_WEIGHTINGS[weighting],
        gamma=gamma,
        step=step,
    )
    for column, (picture, caption) in zip(st.columns(5), panels):
        column.image(ui.encoded_picture(picture), caption=caption, width="stretch")

st.subheader("Hard pixel mining schedule")
schedule = {
    "kept fraction": mining_schedule(top_k, mining_step, last_step),
    "this step": ([step], [breakdown.kept_fraction]),
}
figure = ui.shared_figure(
    viz.line_figure,
    schedule,
    xaxis_title="training step",
    yaxis_title="share of labelled pixels kept",
    height=300,
    markers={"this step": {"size": 14, "color": "#d55e00"}},
)
st.plotly_chart(figure, key="loss_schedule")

st.subheader("Who carries the loss")
st.markdown(breakdown.rarest_class_sentence(names))
with ui.guard("Per-class loss shares"):
    present, series = breakdown.share_series(names)
    st.plotly_chart(
        ui.shared_figure(
            viz.per_class_bar_figure,
            series,
            present,
            title="Share of pixels vs share of each loss",
            yaxis_title="share of the batch total",
        ),
        key="loss_shares",
    )
    rows = pd.DataFrame(breakdown.class_rows(names))
    formats = {column: number(format="percent") for column in rows.columns if column.startswith("share")}
    formats |= {column: number(format="%.0f") for column in rows.columns if column.startswith("effective")}
    st.dataframe(
        rows,
        hide_index=True,
        key="loss_class_table",
        height="content",
        column_config=formats | {"class weight": number(format="%.3f")},
    )
    st.caption(
        "Share of a loss = the class's part of that loss's sum over the batch. Effective px = the sum of each pixel's "
        f"multiplier against plain CE: class weight ({WEIGHTED}), × (1 − p)^γ ({FOCAL}), × kept ({MINING}); "
        f"{PLAIN} counts every labelled pixel once. A loss helps a rare class when its share rises above the pixel "
        "share."
    )
