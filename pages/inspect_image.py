"""Inspect's view of one image: its scores, ground truth, prediction and confidence, a hover view (error map,
overlays, uncertainty), its per-class IoU and what it confused with what."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from pages import ui
from seglab import viz
from seglab.analysis.diagnostics.report import image_bf_score
from seglab.analysis.failures import image_class_table, top_confusions
from seglab.data.spec import DataSpec
from seglab.engine.predict import DatasetEvaluation, ImageResult
from seglab.viz.diagnostics import confidently_wrong_map, uncertainty

VIEWS = ("error map", "prediction", "ground truth", "confidently wrong", "entropy", "margin")
CONFIDENTLY_WRONG = 0.9  # the Diagnostics page's default threshold
BF_HELP = (
    "Boundary F1 of this image, mean over its classes: contour pixels matched within a few pixels "
    "(Csurka et al. 2013). The Diagnostics page has it per class."
)
HOVER_SIDE = 128  # hover cells on the long side: ~0.1 s to build and send for a CamVid frame, 256 takes ~0.5 s
NO_CONFIDENCE = "No confidence map: this source gives labels only (no per-class probabilities)."

VIEW_NOTES = {
    "confidently wrong": f"Red: wrong with confidence ≥ {CONFIDENTLY_WRONG}, where label errors and systematic "
    "confusions hide (see Label quality); orange: wrong but unsure.",
    "entropy": "Entropy of the class probabilities / log K: dark = unsure between many classes.",
    "margin": "1 − (top-1 − top-2 probability): dark = torn between two classes.",
}


def show_image(
    result: ImageResult, class_id: int | None, data: Any, evaluation: DatasetEvaluation, path: str, spec: DataSpec
) -> None:
    """Image, ground truth, prediction, confidence, error map, per-class IoU and confusions of one image."""
    names, label_map = evaluation.class_names, data.label_map
    background = label_map.background_index
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
    for column, (picture, caption, encoding) in zip(picture_columns, pictures):
        # masks as PNG: no JPEG halos
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
