"""The Diagnostics page's tabs: objects found and missed, boundaries, confidence, and data slices."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from pages import ui
from seglab.analysis.diagnostics.report import boundary_scores, calibration_rows, object_rows, slice_records
from seglab.data.spec import DataSpec
from seglab.engine.predict import DatasetEvaluation
from seglab.viz.diagnostics import boundary_figure, object_recall_figure, reliability_figure

GALLERY_SIZE = 12
TAGS_MAX_BYTES = 5 << 20
SCORE = st.column_config.NumberColumn(format="%.3f")
WHY_LESION_DICE = (
    "**Lesion-wise Dice vs IoU:** the split IoU counts pixels, so large objects (road, sky) dominate it; lesion-wise "
    "Dice averages one score per ground-truth object, a missed object counting 0, so a model that misses many small "
    "objects scores far lower on it than on IoU."
)


def open_in_inspect(sample_id: str, key: str) -> None:
    """A button that shows ``sample_id`` on the Inspect page."""
    if st.button("Inspect", key=key, help=f"Open {sample_id} on the Inspect page"):
        ui.set_sample(sample_id)
        st.switch_page("pages/failures.py")


def objects_tab(
    summary: dict[str, Any], evaluation: DatasetEvaluation, path: str, spec: DataSpec, cover: float
) -> None:
    """Objects found per class and size beside the split IoU, and a gallery of the missed objects."""
    objects, names, metrics = summary["objects"], evaluation.class_names, evaluation.metrics
    st.markdown(WHY_LESION_DICE)
    sizes = objects["sizes"]
    if sizes:
        st.caption(
            f"Sizes: small {sizes['small']}, medium {sizes['medium']}, large {sizes['large']}; "
            f"{sizes['ignored']} are left out."
        )
    # The split IoU of each class beside its lesion-wise Dice: the sentence above, per class.
    table = pd.DataFrame(object_rows(summary, metrics.iou))
    scores = {column: SCORE for column in table.columns if "recall" in column or column in ("lesion dice", "IoU")}
    st.dataframe(table, hide_index=True, column_config=scores)
    st.plotly_chart(ui.shared_figure(object_recall_figure, objects["per_class"], names), key="diagnostics_recall")
    st.subheader("Missed objects")
    left, right = st.columns(2)
    class_id = left.selectbox(
        "Class",
        [None, *range(len(names))],
        key="diagnostics_missed_class",
        format_func=lambda c: "every class" if c is None else names[c],
    )
    largest = right.radio("Order", ["smallest first", "largest first"], horizontal=True) == "largest first"
    with ui.guard("Cropping the missed objects"):
        count, gallery = ui.missed_objects(path, spec, class_id, cover, largest, GALLERY_SIZE)
        st.caption(
            f"{count:,} objects missed; the first {len(gallery)}: image | ground truth | prediction, "
            "the object's class outlined in yellow."
        )
        for start in range(0, len(gallery), 3):
            row = enumerate(gallery[start : start + 3], start)
            for column, (position, (info, picture)) in zip(st.columns(3), row, strict=False):
                column.image(
                    picture,
                    width="stretch",
                    output_format="PNG",
                    caption=f"{info.sample_id}: {info.class_name}, {info.area:,} px, {info.coverage:.0%} "
                    f"found, predicted as {info.predicted_instead}",
                )
                with column:
                    open_in_inspect(info.sample_id, f"diagnostics_missed_{position}")


def boundary_tab(summary: dict[str, Any], evaluation: DatasetEvaluation) -> None:
    """Boundary IoU and BF score per class beside the IoU."""
    boundary, names, metrics = summary["boundary"], evaluation.class_names, evaluation.metrics
    st.markdown(
        f"**Boundary IoU** (Cheng et al. 2021) is the IoU of ground truth and prediction within "
        f"{boundary['band_px']} px (2% of the image diagonal) of their contours; the **BF score** (Csurka et al. "
        f"2013) is the F1 of contour pixels matched within {boundary['tolerance_px']} px. A class whose IoU is "
        "fair "
        "but whose boundary scores are low has blurry or shifted outlines; one low on both is missed as a whole."
    )
    st.plotly_chart(
        ui.shared_figure(boundary_figure, metrics.iou, *boundary_scores(summary), names), key="diagnostics_boundary"
    )
    st.caption(
        "Where the boundary errors lie in each image: **Inspect → Confusion cell → images** splits every "
        "confusion into the band along ground-truth edges and the interior."
    )
    st.page_link("pages/failures.py", label="Open Inspect", icon=":material/search:")


def calibration_tab(summary: dict[str, Any]) -> None:
    """The reliability diagram, ECE per class and the images with most confidently wrong pixels."""
    calibration = summary["calibration"]
    if not calibration["available"]:
        st.info("This model gives labels only: there is no confidence to calibrate.")
    else:
        reliability = ui.shared_figure(reliability_figure, calibration["reliability"], calibration["ece"])
        st.plotly_chart(reliability, key="diagnostics_reliability")
        wrong = summary["confidently_wrong"]
        share = "-" if wrong["share"] is None else f"{wrong['share']:.1%}"
        st.markdown(
            f"**{wrong['pixels']:,} pixels ({share}) are wrong with confidence ≥ {wrong['threshold']:.2f}**: "
            "label errors and systematic confusions hide there (see **Label quality**)."
        )
        left, right = st.columns(2)
        with left:
            st.dataframe(pd.DataFrame(calibration_rows(summary)), hide_index=True, column_config={"ECE": SCORE})
        with right:
            worst = pd.DataFrame(wrong["worst_images"])
            if worst.empty:
                st.caption("No confidently wrong pixel.")
            else:
                event = st.dataframe(
                    worst,
                    hide_index=True,
                    on_select="rerun",
                    selection_mode="single-row",
                    key="diagnostics_wrong_table",
                )
                chosen = list(event.selection.rows) if event else []
                if chosen:
                    open_in_inspect(str(worst["id"].iloc[chosen[0]]), "diagnostics_open_wrong")
        st.page_link("pages/label_quality.py", label="Open Label quality", icon=":material/rule:")


def slices_tab(
    summary: dict[str, Any], evaluation: DatasetEvaluation, path: str, spec: DataSpec, cover: float, confident: float
) -> None:
    """mIoU per built-in or uploaded slice of the split, and the images of a chosen slice."""
    metrics = evaluation.metrics
    uploaded = st.file_uploader("Your own slices: a CSV of id,tag rows", type=["csv", "txt"], key="diagnostics_tags")
    tags_text = ""
    if uploaded is not None:
        if uploaded.size > TAGS_MAX_BYTES:
            st.error(f"{uploaded.name} is larger than {TAGS_MAX_BYTES >> 20} MB.")
        else:
            tags_text = uploaded.getvalue().decode("utf-8-sig", errors="replace")
    with ui.guard("Scoring the slices"):
        sliced = ui.diagnostics(path, spec, cover, confident, tags_text) if tags_text else summary
        if sliced["unknown_tag_ids"]:
            st.warning("Tagged ids not in this split: " + ", ".join(sliced["unknown_tag_ids"]))
        slice_rows = sliced["slices"]
        if not slice_rows:
            st.info("No slice for this split: add tags to see some.")
        else:
            table = pd.DataFrame(slice_records(slice_rows))
            st.caption(
                f"mIoU per slice against the whole split ({metrics.miou:.3f}), worst gap first; "
                "click a row to list its images."
            )
            formats = {column: SCORE for column in table.columns if column not in ("slice", "images")}
            event = st.dataframe(
                table,
                hide_index=True,
                on_select="rerun",
                selection_mode="single-row",
                column_config=formats,
                key="diagnostics_slices_table",
            )
            chosen = list(event.selection.rows) if event else []
            if chosen:
                ids = slice_rows[chosen[0]]["ids"]
                sample = st.selectbox(f"Images of {slice_rows[chosen[0]]['slice']}", ids, key="diagnostics_slice_image")
                open_in_inspect(sample, "diagnostics_open_slice")
