"""The Compare page's tabs: metric table, diagnostics, confusion matrices, training curves, and the A vs B diff."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from pages import ui
from seglab import viz
from seglab.analysis import compare
from seglab.analysis.compare import PixelDiff
from seglab.analysis.diagnostics.report import diagnostics_deltas
from seglab.data.spec import DataSpec
from seglab.engine.evaluation import DatasetEvaluation

METRIC_NAMES = {"iou": "IoU", "precision": "precision", "recall": "recall", "f1": "F1 (Dice)"}
METRIC_FORMULAS = {
    "iou": "IoU = TP / (TP + FP + FN)",
    "precision": "precision = TP / pixels predicted as the class",
    "recall": "recall = TP / ground-truth pixels of the class",
    "f1": "F1 = 2 TP / (ground-truth + predicted pixels)",
}
CELL_KEY = "compare_cell"
GALLERY_RUN_KEY = "compare_cell_run"
BEST_STYLE = "font-weight: bold; background-color: rgba(0, 158, 115, 0.22)"


def delta_style(value: float) -> str:
    """Green for a gain, orange for a loss."""
    return "color: #009E73" if value > 0 else "color: #D55E00" if value < 0 else ""


def metrics_tab(evaluations: dict[str, DatasetEvaluation], class_names: list[str]) -> None:
    """One per-class metric of every model side by side, deltas to the first, and its bar chart."""
    names = list(evaluations)
    metric = st.radio("Per-class metric", list(METRIC_NAMES), format_func=METRIC_NAMES.get, horizontal=True)
    table = compare.metric_table(list(evaluations.values()), names, class_names, metric)
    frame = pd.DataFrame(table.records()).set_index("row")
    deltas = [column for column in frame.columns if column.startswith("Δ ")]
    styled = (
        frame.style.format("{:.3f}", subset=names + deltas, na_rep="–")
        .apply(lambda _: np.where(table.is_best, BEST_STYLE, ""), axis=None, subset=names)
        .map(delta_style, subset=deltas)
    )
    st.dataframe(
        styled, height=35 * (len(frame) + 1) + 3, column_config={"row": st.column_config.TextColumn(width="medium")}
    )
    st.caption(
        f"{METRIC_FORMULAS[metric]}, per class over the whole split; – = undefined (class neither in ground "
        "truth nor "
        f"predicted). The last {table.summary_rows} rows are split scores, the same whatever the metric: mean "
        "accuracy = "
        "mean per-class recall; image-wise mIoU = mean of the per-image mIoU (every image weighs the same, however "
        f"many pixels it has). Δ = model − reference ({names[0]}); green = better; highlighted = best per row."
    )
    per_class = {name: table.values[: len(class_names), column] for column, name in enumerate(names)}
    title = f"{METRIC_NAMES[metric]} per class"
    st.plotly_chart(
        ui.shared_figure(
            viz.per_class_bar_figure, per_class, class_names, title=title, yaxis_title=METRIC_NAMES[metric]
        )
    )


def diagnostics_tab(paths: dict[str, str], spec: DataSpec) -> None:
    """Each model's diagnostics headlines and their change from the first model."""
    names = list(paths)
    summaries = {name: ui.diagnostics(paths[name], spec, 0.5, 0.9) for name in names}
    rows = diagnostics_deltas({name: summary for name, summary in summaries.items() if summary is not None})
    frame = pd.DataFrame(rows).set_index("diagnostic")
    shown = [column for column in frame.columns if column != "better"]
    signs = frame["better"].map({"higher": 1, "lower": -1})
    gains = [column for column in frame.columns if column.startswith("Δ ")]

    def gain_style(column: pd.Series) -> list[str]:
        return [delta_style(value * sign) if pd.notna(value) else "" for value, sign in zip(column, signs, strict=True)]

    styled = frame.style.format("{:.3f}", subset=shown, na_rep="–").apply(gain_style, subset=gains)
    st.dataframe(styled)
    st.caption(
        "Objects found at 50% coverage, boundary scores, calibration (see the **Diagnostics** page for the "
        f"definitions and the pictures). Δ = checkpoint − reference ({names[0]}); green = better in the "
        "direction the 'better' column gives."
    )


def confusion_tab(
    evaluations: dict[str, DatasetEvaluation], paths: dict[str, str], class_names: list[str], spec: DataSpec
) -> None:
    """Every model's confusion matrix; a clicked cell lists that model's images holding those pixels."""
    names = list(evaluations)
    normalize = st.radio("Show", list(ui.NORMALIZATIONS), format_func=ui.NORMALIZATIONS.get, horizontal=True)
    st.caption(
        "Rows = ground truth, columns = prediction. Rows normalised: the diagonal is recall; columns: precision. "
        "Click a cell to list that model's images holding those pixels."
    )
    columns = st.columns(min(len(names), 3))
    events = {}
    for position, name in enumerate(names):
        figure = viz.clickable_confusion_figure(
            evaluations[name].metrics.confusion, class_names, normalize=normalize, title=name
        )
        events[name] = columns[position % len(columns)].plotly_chart(
            figure, key=f"confusion-{position}", on_select="rerun", selection_mode="points"
        )
    gallery_name = ui.last_clicked_chart(events, GALLERY_RUN_KEY)
    st.subheader(f"Confusion cell → images of {gallery_name}", divider="gray")
    gallery_metrics = evaluations[gallery_name].metrics
    cell = ui.clicked_cell(
        events[gallery_name],
        class_names,
        CELL_KEY,
        default=ui.largest_confusion(gallery_metrics.confusion, class_names),
    )
    ui.cell_gallery_view(paths[gallery_name], spec, class_names, cell, CELL_KEY)


def curves_tab(paths: dict[str, str], spec: DataSpec) -> None:
    """Validation mIoU and training loss as logged by the seglab runs among the models."""
    names = list(paths)
    runs = [name for name in names if not ui.abilities(paths[name], spec).registered]
    curves = {name: compare.checkpoint_curves(paths[name]) for name in runs}
    validation, losses, missing = compare.run_curves(curves)
    left, right = st.columns(2)
    left.plotly_chart(
        ui.shared_figure(viz.line_figure, validation, title="Validation mIoU", xaxis_title="step", yaxis_title="mIoU")
    )
    right.plotly_chart(
        ui.shared_figure(
            viz.line_figure, losses, title="Training loss", xaxis_title="step", yaxis_title="loss", log_y=True
        )
    )
    st.caption(
        "As logged during training, on each run's own validation split; a step is one optimiser update, "
        "so runs with other batch sizes see a different number of images per step."
    )
    if missing:
        st.caption("No training events for: " + ", ".join(missing))
    if len(runs) < len(names):
        st.caption("Not trained by seglab, so no curves: " + ", ".join(name for name in names if name not in runs))


def pixel_diff_section(
    paths: tuple[str, str], evaluations: tuple[DatasetEvaluation, DatasetEvaluation], spec: DataSpec
) -> PixelDiff:
    """What B fixed and broke: shares of the split's pixels, per class, and the per-class IoU change."""
    evaluation_a, evaluation_b = evaluations
    diff = ui.pixel_diff(*paths, spec)
    st.subheader("What B fixed and what it broke", divider="gray")
    for column, category, count, share in zip(
        st.columns(len(diff.categories)), diff.categories, diff.totals, diff.shares
    ):
        column.metric(category.name, f"{share:.1%}", help=category.description)
        column.caption(f"{count:,} px")
    by_class = pd.DataFrame(compare.class_change_records(diff, evaluation_a, evaluation_b)).set_index("class")
    shares = [category.name for category in diff.categories]
    styled = (
        by_class.style.format("{:.1%}", subset=shares, na_rep="–")
        .format("{:+.3f}", subset=["Δ IoU (B − A)"], na_rep="–")
        .map(delta_style, subset=["Δ IoU (B − A)", "net fixed px"])
    )
    st.dataframe(styled)
    st.caption(
        "Per ground-truth class: share of its pixels in each category (void excluded); "
        "net fixed px = pixels fixed by B − pixels broken by B."
    )
    delta_figure = ui.shared_figure(
        viz.per_class_bar_figure,
        {"Δ IoU (B − A)": by_class["Δ IoU (B − A)"].to_numpy()},
        diff.class_names,
        title="Per-class IoU change from A to B",
        yaxis_title="Δ IoU",
    )
    st.plotly_chart(delta_figure)
    return diff


def per_image_section(
    data: Any, evaluation_a: DatasetEvaluation, evaluation_b: DatasetEvaluation, diff: PixelDiff | None
) -> None:
    """Images ranked by the mIoU change, and one image's ground truth, both predictions and their disagreement."""
    st.subheader("Per image", divider="gray")
    rankings = {"b": "where B beats A", "a": "where A beats B"}
    favour = st.radio("Rank images", list(rankings), format_func=rankings.get, horizontal=True)
    ranking = compare.per_image_deltas(evaluation_a, evaluation_b).ranked(favour)
    st.dataframe(
        pd.DataFrame(ranking.records(diff=diff)).set_index("image"),
        height=250,
        column_config={"Δ mIoU (B − A)": st.column_config.NumberColumn(format="%+.3f")},
    )
    st.caption("Image mIoU averages the classes present in that image (ground truth or prediction).")
    delta_by_id = dict(zip(ranking.sample_ids, ranking.delta))
    sample = st.selectbox("Image", ranking.sample_ids, format_func=lambda s: f"{s}  (Δ mIoU {delta_by_id[s]:+.3f})")
    row = ranking.sample_ids.index(sample)
    result_a, result_b = (
        evaluation_a.results[ranking.positions[row]],
        evaluation_b.results[ranking.positions[row]],
    )
    image, target = data.load(int(ranking.indices[row]))
    pictures = {
        "image": image,
        "ground truth": viz.colorize_mask(target, data.label_map),
        f"A · mIoU {result_a.miou:.3f}": viz.colorize_mask(result_a.labels, data.label_map),
        f"B · mIoU {result_b.miou:.3f}": viz.colorize_mask(result_b.labels, data.label_map),
        "A vs B": viz.disagreement_rgb(result_a.labels, result_b.labels, target, data.ignore_index, image=image),
    }
    for column, (caption, picture) in zip(st.columns(len(pictures)), pictures.items()):
        column.image(picture, caption=caption, width="stretch")
    legend = viz.disagreement_legend()
    swatches = viz.legend_image([(entry["name"], entry["color"]) for entry in legend], columns=3)
    st.image(swatches, width=swatches.shape[1])  # its own size: a long caption would stretch it
    st.caption("A vs B: " + "; ".join(f"**{entry['name']}**: {entry['description']}" for entry in legend))
    classes = viz.legend_image(viz.class_legend(data.label_map, include_ignore=True), columns=6)
    st.image(classes, width=classes.shape[1])
