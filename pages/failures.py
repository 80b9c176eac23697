"""Inspect: a model's (checkpoint's, model file's or predictions folder's) worst images, why each one fails, and where
one confusion happens."""

import pandas as pd
import streamlit as st

from pages import hidden_split, inspect_image, ui
from pages.inspect_image import show_image
from seglab import viz
from seglab.analysis.failures import (
    failure_ranking,
    predicted_shares_line,
    ranking_label,
    ranking_rows,
    split_headline,
)

UPLOAD_MAX_PIXELS = 2_000_000  # a CPU prediction of a larger image takes too long for an interactive page
CELL_KEY = "inspect_cell"

ui.start_page()
st.title("Inspect")
st.caption(
    ui.METRIC_DEFINITION + " The ranking below is image-wise: an image's mIoU is the mean IoU over the classes "
    "present in *that* image (ground truth or prediction), so every image weighs the same."
)

path = ui.require_checkpoint()

spec = ui.current_spec().with_split(ui.current_split())
hidden_split.refuse_hidden_split(spec)
data, evaluation = ui.require_evaluation(path, spec, what="to inspect")
names, label_map, metrics = evaluation.class_names, data.label_map, evaluation.metrics
background = label_map.background_index
st.caption(f"{spec.describe()} · {split_headline(evaluation, background)}")
for note in evaluation.notes:
    st.caption(f"Note: {note}")


@st.fragment
def confusion_gallery() -> None:
    """Click a confusion-matrix cell (or pick it) to see the images holding most of its pixels."""
    normalize = st.radio(
        "Confusion matrix shows", list(ui.NORMALIZATIONS), format_func=ui.NORMALIZATIONS.get, horizontal=True
    )
    title = f"{spec.describe()}: rows = ground truth, click a cell"
    figure = viz.clickable_confusion_figure(metrics.confusion, names, normalize=normalize, title=title)
    event = st.plotly_chart(figure, on_select="rerun", selection_mode="points", key="inspect_confusion")
    cell = ui.clicked_cell(event, names, CELL_KEY, default=ui.largest_confusion(metrics.confusion, names))
    ui.cell_gallery_view(path, spec, names, cell, CELL_KEY, open_in=("inspect_tab", "Worst images"))


@st.fragment
def upload_section() -> None:
    """Predict an uploaded PNG/JPEG with the chosen model."""
    abilities = ui.abilities(path, spec)
    if not abilities.images:
        st.info(
            "A folder of predictions only knows the images it has files for: pick a model to predict your own image."
        )
        return
    uploaded = st.file_uploader(
        "Upload a PNG or JPEG", type=["png", "jpg", "jpeg"], help=f"At most {UPLOAD_MAX_PIXELS / 1e6:.0f} MP"
    )
    if uploaded is None:
        return
    with ui.guard(f"Predicting {uploaded.name}"):
        image, prediction, checkpoint_labels = ui.upload_prediction(path, spec, uploaded.getvalue(), UPLOAD_MAX_PIXELS)
        left, right = st.columns(2)
        left.image(
            viz.overlay(image, prediction.labels, checkpoint_labels), caption="Prediction overlay", width="stretch"
        )
        if abilities.probabilities:
            right.image(
                viz.confidence_map(prediction.confidence),
                caption="Confidence (max softmax): dark = unsure",
                width="stretch",
            )
        else:
            right.caption(inspect_image.NO_CONFIDENCE)
        st.caption(predicted_shares_line(prediction.labels, checkpoint_labels.names))


images_tab, cell_tab, upload_tab = st.tabs(
    ["Worst images", "Confusion cell → images", "Your own image"], **ui.LAZY_TABS("inspect_tab")
)
if images_tab.open:  # only the open tab runs (ui.LAZY_TABS)
    with images_tab:
        class_id = st.selectbox(
            "Class filter",
            [None, *range(len(names))],
            help="Find every image where one class fails",
            format_func=lambda c: ranking_label(c, names),
        )
        without_background = (
            class_id is None
            and background is not None
            and st.toggle(
                f"Rank by image mIoU without {names[background]}",
                help="Background is easy and large: without it, object failures stand out",
            )
        )
        ranked = failure_ranking(evaluation, class_id, exclude_class=background if without_background else None)
        if not ranked:
            st.info(f"No image of this split has {names[class_id]} in its ground truth or prediction.")
        else:
            table_key = f"inspect_table_{class_id}_{without_background}"
            table = pd.DataFrame(ranking_rows(ranked, names, class_id, background))
            scores = {
                column: st.column_config.NumberColumn(format="%.3f")
                for column in table.columns
                if "IoU" in column or "acc" in column
            }
            event = st.dataframe(
                table,
                hide_index=True,
                height=240,
                column_config=scores,
                key=table_key,
                on_select="rerun",
                selection_mode="single-row",
            )
            sample = ui.choose_sample(
                [result.sample_id for result in ranked], event, table_key, ui.current_sample(), group="inspect_ranking"
            )
            if sample != ui.current_sample():
                ui.set_sample(sample)
            with ui.guard(f"Showing {sample}"):
                show_image(
                    next(result for result in ranked if result.sample_id == sample),
                    class_id,
                    data,
                    evaluation,
                    path,
                    spec,
                )
if cell_tab.open:  # only the open tab runs (ui.LAZY_TABS)
    with cell_tab:
        confusion_gallery()
if upload_tab.open:  # only the open tab runs (ui.LAZY_TABS)
    with upload_tab:
        upload_section()
