"""Metric definitions: the same predictions scored under every common mIoU definition, and why they differ."""

import pandas as pd
import streamlit as st

from pages import hidden_split, ui
from seglab import viz
from seglab.metrics.class_breakdown import AGREEMENT_TOLERANCE, per_class_breakdown
from seglab.metrics.definition_tables import (
    CLASS_ORDERS,
    LEVELS,
    definition_rows,
    extremes,
    largest_gaps,
    order_classes,
)
from seglab.metrics.definitions import compute_definitions, key_choices

number = st.column_config.NumberColumn

ui.start_page()
st.title("Metric definitions")
st.caption(
    "One model, one split, one set of predictions: every row below scores exactly the same pixels. Only two "
    "choices change: whether pixels are summed over the whole split before dividing (dataset-level) or per image "
    "(image-wise), and whether a class that is absent counts as skipped, 0 or 1."
)
st.info(f"**Every other number in this app**: {ui.METRIC_DEFINITION}", icon=":material/functions:")

path = ui.require_checkpoint()

spec = ui.current_spec().with_split(ui.current_split())
hidden_split.refuse_hidden_split(spec)
data, evaluation = ui.require_evaluation(path, spec, what="to score")
names, background = evaluation.class_names, data.label_map.background_index
confusions = [result.confusion for result in evaluation.results]
st.caption(
    f"{spec.describe()} · {len(confusions)} images · {len(names)} classes · "
    + (f"background class: {names[background]}" if background is not None else "no background class")
)

st.subheader("One model, many mIoUs")
with ui.guard("Scoring under every definition"):
    scores = compute_definitions(confusions, background)
    ends = extremes(scores)
    app_score, lowest, highest = ends.app, ends.lowest, ends.highest
    cards = st.columns(3)
    cards[0].metric("This app's mIoU", f"{app_score.value:.3f}", help=app_score.formula, border=True)
    cards[1].metric(
        "Lowest", f"{lowest.value:.3f}", delta=f"{lowest.value - app_score.value:+.3f}", help=lowest.name, border=True
    )
    cards[2].metric(
        "Highest",
        f"{highest.value:.3f}",
        delta=f"{highest.value - app_score.value:+.3f}",
        help=highest.name,
        border=True,
    )
    st.markdown(
        f"The same predictions score anywhere from **{lowest.value:.3f}** ({lowest.name}) to **{highest.value:.3f}** "
        f"({highest.name}): before comparing your number with a paper's or a leaderboard's, check which choices they "
        "made."
    )

    st.markdown("#### The choices that matter")
    for index, choice in enumerate(key_choices(scores)):
        words, picture = st.columns([2, 3], vertical_alignment="center")
        words.markdown(f"**{index + 1}. {choice.title}**  \n{choice.explanation}")
        picture.plotly_chart(ui.shared_figure(viz.definitions_figure, choice.scores), key=f"metrics_choice_{index}")
    if background is None:
        st.caption("No background class in this label map: the with/without background choice does not apply.")

    with st.expander(f"All {len(scores)} definitions: formulas and who uses each"):
        level = st.radio("Show", list(LEVELS), format_func=LEVELS.get, horizontal=True, key="metrics_level")
        st.dataframe(
            pd.DataFrame(definition_rows(scores, level)),
            hide_index=True,
            key="metrics_definitions",
            height="content",
            column_config={
                "value": st.column_config.TextColumn(help="n/a: the label map has no background class"),
                "this app": st.column_config.CheckboxColumn(help="The definition every other page reports"),
                "formula": st.column_config.TextColumn(width="large"),
                "who uses it": st.column_config.TextColumn(width="large"),
                "note": st.column_config.TextColumn(width="large"),
            },
        )
        st.plotly_chart(ui.shared_figure(viz.definitions_figure, scores), key="metrics_definitions_figure")
        st.caption(
            "Orange: this app's definition · dark blue: dataset-level · light blue: image-wise."
            + (
                ""
                if background is not None
                else " No background class in this label map: the 'without background' rows are n/a."
            )
        )

st.subheader("Per class: why dataset-level and image-wise IoU differ")
st.caption(
    "Dataset-level IoU of a class is Σₙ TPₙ / Σₙ Uₙ = Σₙ (Uₙ / Σₘ Uₘ) · IoUₙ: a mean of the per-image IoUs weighted "
    "by each "
    "image's union pixels (U = TP + FP + FN). Image-wise IoU is the unweighted mean over the images where the class "
    "appears in the ground truth or the prediction. The gap is entirely that weighting."
)
with ui.guard("Per-class breakdown"):
    rows = per_class_breakdown(confusions, names)
    sort = st.radio(
        "Order", list(CLASS_ORDERS), format_func=CLASS_ORDERS.get, horizontal=True, key="metrics_class_order"
    )
    figure = ui.shared_figure(
        viz.per_class_bar_figure,
        {"dataset-level": [row.dataset_iou for row in rows], "image-wise": [row.imagewise_iou for row in rows]},
        names,
        title="IoU per class under both views",
        yaxis_title="IoU",
    )
    st.plotly_chart(figure, key="metrics_class_figure")
    st.dataframe(
        pd.DataFrame([row.to_row() for row in order_classes(rows, sort)]),
        hide_index=True,
        key="metrics_class_table",
        column_config={
            "dataset IoU": number(format="%.3f"),
            "image-wise IoU": number(format="%.3f"),
            "gap": number(format="%+.3f", help="image-wise minus dataset-level"),
            "predicted only": number(
                help="Images where the class is predicted but not in the ground truth: IoU 0 there"
            ),
            "mean px / image": number(format="%.0f", help="Ground-truth pixels per image that holds the class"),
            "pixel share": number(format="percent"),
            "why": st.column_config.TextColumn(width="large"),
        },
    )
    gaps = largest_gaps(rows)
    st.markdown("**Largest gaps**" if gaps else f"The two views agree within {AGREEMENT_TOLERANCE} for every class.")
    for row in gaps:
        st.markdown(
            f"- **{row.name}** (dataset {row.dataset_iou:.3f}, image-wise {row.imagewise_iou:.3f}): {row.explanation}"
        )
