"""Inspect: a model's (checkpoint's, model file's or predictions folder's) worst images, why each one fails, and where
one confusion happens."""

import pandas as pd
import streamlit as st

from pages import hidden_split, ui
from seglab import viz
from seglab.analysis.diagnostics.report import image_bf_score
from seglab.analysis.failures import (
    failure_ranking,
    image_class_table,
    predicted_shares_line,
    ranking_label,
    ranking_rows,
    split_headline,
    top_confusions,
)
from seglab.viz.diagnostics import confidently_wrong_map, uncertainty

UPLOAD_MAX_PIXELS = 2_000_000  # a CPU prediction of a larger image takes too long for an interactive page
CELL_KEY = "inspect_cell"
VIEWS = ("error map", "prediction", "ground truth", "confidently wrong", "entropy", "margin")
CONFIDENTLY_WRONG = 0.9  # the Diagnostics page's default threshold
BF_HELP = (
    "Boundary F1 of this image, mean over its classes: contour pixels matched within a few pixels "
    "(Csurka et al. 2013). The Diagnostics page has it per class."
)
HOVER_SIDE = 128  # hover cells on the long side: ~0.1 s to build and send for a CamVid frame, 256 takes ~0.5 s

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
NO_CONFIDENCE = "No confidence map: this source gives labels only (no per-class probabilities)."


VIEW_NOTES = {
    "confidently wrong": f"Red: wrong with confidence ≥ {CONFIDENTLY_WRONG}, where label errors and systematic "
    "confusions hide (see Label quality); orange: wrong but unsure.",
    "entropy": "Entropy of the class probabilities / log K: dark = unsure between many classes.",
    "margin": "1 − (top-1 − top-2 probability): dark = torn between two classes.",
}


def show_image(result, class_id: int | None) -> None:
    """Image, ground truth, prediction, confidence, error map, per-class IoU and confusions of one image."""
    image, target = data.load(result.index)

    def uncertainty_picture(kind: str):
        probabilities = ui.image_probabilities(path, spec, result.index).probabilities
        return viz.confidence_map(1 - uncertainty(probabilities, kind))

    columns = st.columns(5)
    columns[0].metric("Pixel accuracy", f"{result.pixel_acc:.3f}")
    columns[1].metric("Image mIoU", f"{result.miou:.3f}", help="Mean over the classes present in this image")
    if class_id is not None:
        columns[2].metric(f"IoU {names[class_id]}", f"{result.iou[class_id]:.3f}")
    if evaluation.has_probabilities:
        columns[3].metric(
            "Mean confidence", f"{float(result.confidence.mean()):.2f}", help="Mean max-softmax probability"
        )
    bf = image_bf_score(evaluation, result)
    columns[4].metric("BF score", "-" if bf is None else f"{bf:.3f}", help=BF_HELP)
    pictures = [
        (image, "Image", "JPEG"),
        (viz.colorize_mask(target, label_map), "Ground truth", "PNG"),
        (viz.colorize_mask(result.labels, label_map), "Prediction", "PNG"),
    ]
    if evaluation.has_probabilities:
        pictures.append((viz.confidence_map(result.confidence), "Confidence (max softmax): dark = unsure", "JPEG"))
    picture_columns = st.columns(4)
    for column, (picture, caption, encoding) in zip(picture_columns, pictures):  # masks as PNG: no JPEG halos
        column.image(ui.encoded_picture(picture, encoding), caption=caption, width="stretch", output_format=encoding)
    if not evaluation.has_probabilities:
        picture_columns[3].caption(NO_CONFIDENCE)
    left, right = st.columns(2)
    with left:
        view = st.radio(
            "Hover view", VIEWS, horizontal=True, help="Hover any pixel to read its ground truth and prediction"
        )
        shown = {
            "error map": lambda: viz.error_map(result.labels, target, data.ignore_index, background, image=image),
            "prediction": lambda: viz.overlay(image, result.labels, label_map),
            "ground truth": lambda: viz.overlay(image, target, label_map),
            "confidently wrong": lambda: confidently_wrong_map(
                image, result.labels, target, result.confidence, data.ignore_index, CONFIDENTLY_WRONG
            ),
            "entropy": lambda: uncertainty_picture("entropy"),
            "margin": lambda: uncertainty_picture("margin"),
        }[view]()
        # A coarser hover grid than viz's default: the figure is rebuilt on every image change.
        hover = {"GT": target, "Pred": result.labels}
        st.plotly_chart(
            ui.shared_figure(
                viz.image_figure, shown, hover_labels=hover, label_map=label_map, max_hover_side=HOVER_SIDE
            ),
            key="inspect_hover",
        )
        if view in VIEW_NOTES:
            st.caption(VIEW_NOTES[view])
        legend = viz.error_legend(has_background=background is not None)
        st.html(
            " &nbsp; ".join(
                f"<span title='{row['description']}'><b style='color:{row['color']}'>■</b> {row['name']}</span>"
                for row in legend
            )
        )
    with right:
        st.markdown("**Per-class IoU in this image**")
        iou_format = {
            "IoU": st.column_config.NumberColumn(format="%.3f"),
            "mostly confused with": st.column_config.TextColumn(width="large"),
        }  # "Pedestrian (1,234 px)" fits
        st.dataframe(pd.DataFrame(image_class_table(result, names)), hide_index=True, column_config=iou_format)
        st.markdown("**What it confused with what**")
        confusions = top_confusions(result.confusion, names, k=5)
        st.markdown("\n".join(f"- {confusion.sentence()}" for confusion in confusions) or "No confused pixels.")


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
            right.caption(NO_CONFIDENCE)
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
                show_image(next(result for result in ranked if result.sample_id == sample), class_id)
if cell_tab.open:  # only the open tab runs (ui.LAZY_TABS)
    with cell_tab:
        confusion_gallery()
if upload_tab.open:  # only the open tab runs (ui.LAZY_TABS)
    with upload_tab:
        upload_section()
