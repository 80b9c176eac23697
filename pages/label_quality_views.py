"""The Label quality page's panels: scoring progress, one image's suspicious objects, the check against Shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from pages import ui
from seglab import viz
from seglab.analysis.label_quality import LabelQualityReport, pixel_quality, self_confidence_picture, suspicion_picture
from seglab.concurrency import BackgroundJob
from seglab.data.spec import DataSpec

REFRESH_S = 1.0  # how often the partial ranking refreshes while the model runs
MAX_OUTLINED = 10  # more outlines and sentences than this bury the worst ones
SCORE_FORMAT = {
    name: st.column_config.NumberColumn(format="%.3f")
    for name in ("score", "mean p(label)", "precision@k", "recall@k", "random ranking precision")
}
SHARE_FORMAT = {name: st.column_config.NumberColumn(format="percent") for name in ("over", "outline band disagrees")}
OBJECT_FORMAT = {**SCORE_FORMAT, **SHARE_FORMAT}


@st.fragment(run_every=REFRESH_S)
def scoring_progress(job: BackgroundJob) -> None:
    """While the model runs: how far it got and the images scored so far, refreshed until all are (then the
    whole page reruns with the complete report)."""
    if job.finished:
        st.rerun()
    if not job.total:
        st.progress(0.0, "Reading and predicting the first images...")
        return
    st.progress(job.done / job.total, f"Scored {job.done} of {job.total} images: the ranking fills in as it goes")
    partial = job.partial()
    if partial is not None and partial.images:
        st.caption(
            f"Partial ranking of the {len(partial.images)} images scored so far (confident thresholds from them "
            "alone, so scores can still move); the image details and the objects open when all are scored."
        )
        st.dataframe(pd.DataFrame(partial.image_rows()), hide_index=True, height=240, column_config=SCORE_FORMAT)


def show_image(report: LabelQualityReport, data: Any, path: Path, spec: DataSpec, sample_id: str) -> None:
    """Image with suspicious objects outlined, given label, prediction, self-confidence and the objects' scores."""
    names, label_map = report.class_names, data.label_map
    scores = report.image_of(sample_id)
    image, labels = data.load(scores.index)
    prediction = ui.image_probabilities(path, spec, scores.index)
    pixels = pixel_quality(prediction.probabilities, labels, report.thresholds, data.ignore_index)
    cutoff = st.slider("Outline objects scoring below", 0.0, 1.0, 0.5, 0.05, help="The worst object is always outlined")
    shown, more_below = report.outlined(scores, cutoff, MAX_OUTLINED)
    small = len(scores.objects) - len(scores.ranked_objects)
    columns = st.columns(3)
    columns[0].metric("Image score", f"{scores.score:.3f}", help="Score of its worst object (1 = no object to doubt)")
    columns[1].metric(
        "Objects",
        len(scores.ranked_objects),
        help=f"Objects of at least {report.min_pixels} px"
        + (f"; {small} smaller ones are not ranked" if small else ""),
    )
    columns[2].metric(
        "Suspicious pixels",
        f"{pixels.suspicious_share:.1%}",
        help="Share of the non-void pixels the model confidently gives another class than their label",
    )
    pictures = [
        (
            suspicion_picture(image, labels, data.ignore_index, shown, skip_classes=report.skip_classes),
            f"Worst objects (below {cutoff:.2f}), numbered",
        ),
        (viz.colorize_mask(labels, label_map), "Given label"),
        (viz.colorize_mask(prediction.labels, label_map), "Model prediction"),
        (
            self_confidence_picture(pixels.self_confidence, label_map.ignore_color),
            "Self-confidence p(given label): dark = doubted",
        ),
    ]
    for column, (picture, caption) in zip(st.columns(4), pictures, strict=True):
        column.image(ui.encoded_picture(picture, "PNG"), caption=caption, width="stretch")
    more = f"\n\n…and {more_below} more below {cutoff:.2f}: see the objects table below." if more_below else ""
    st.markdown("\n".join(f"- {item.sentence(names)}" for item in shown) + more or "No object to outline.")
    smaller = f" ({small} smaller than {report.min_pixels} px are not ranked)" if small else ""
    with st.expander(f"All {len(scores.ranked_objects)} objects of {sample_id}{smaller}"):
        st.dataframe(pd.DataFrame(report.object_rows(scores)), hide_index=True, column_config=OBJECT_FORMAT)
    if st.button("Open in Inspect", help="See this image's errors, confusions and confidence on the Inspect page"):
        ui.set_sample(sample_id)
        st.switch_page("pages/failures.py")


def validation_panel(data: Any, path: Path, spec: DataSpec, band: int) -> None:
    """Shapes knows which labels it corrupted: how many of them does the ranking put on top?"""
    validation = ui.shapes_validation(path, spec, band)
    k = validation.corrupted_objects
    st.markdown(
        f"This split was generated with label noise {data.config.label_noise:.0%}: Shapes knows the **{k}** objects it "
        f"corrupted (flipped class, eroded or dilated outline). A good ranking puts them first; a random one "
        f"finds them at the base rate of {validation.base_rate:.0%}."
    )
    if not k:
        return
    columns = st.columns(4)
    columns[0].metric(
        f"Precision@{k}",
        f"{validation.precision_at(k):.0%}",
        help=f"Share of the {k} worst objects that were corrupted",
    )
    columns[1].metric(
        f"Recall@{2 * k}",
        f"{validation.recall_at(2 * k):.0%}",
        help=f"Share of the corrupted objects among the {2 * k} worst",
    )
    columns[2].metric(
        "Random ranking", f"{validation.base_rate:.0%}", help="Precision of a ranking that ignores the model"
    )
    columns[3].metric(
        "Mean rank of flipped objects",
        f"top {validation.mean_rank_percentile('flip'):.0%}",
        help="Mean position of the flipped-class objects in the ranking, as a share of it",
    )
    left, right = st.columns(2)
    left.dataframe(pd.DataFrame(validation.rows()), hide_index=True, column_config=SCORE_FORMAT)
    right.dataframe(
        pd.DataFrame(validation.corruption_rows()),
        hide_index=True,
        column_config={"mean rank (share of the ranking)": st.column_config.NumberColumn(format="percent")},
    )
    curve = pd.DataFrame(
        {"precision@k": validation.precision_curve(), "random ranking": validation.base_rate},
        index=pd.RangeIndex(1, validation.ranked_objects + 1, name="k"),
    )
    st.line_chart(curve, x_label="k worst objects", y_label="share corrupted", height=220)
