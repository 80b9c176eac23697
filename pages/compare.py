"""Compare: models side by side on the current split (checkpoints, model files, predictions folders), and exactly
what B fixed and broke vs A."""

import numpy as np
import pandas as pd
import streamlit as st

from pages import hidden_split, ui
from seglab import viz
from seglab.analysis import compare
from seglab.analysis.diagnostics.report import diagnostics_deltas

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
    return "color: #009E73" if value > 0 else "color: #D55E00" if value < 0 else ""


ui.start_page()
st.title("Compare models")
spec = ui.current_spec().with_split(ui.current_split())
hidden_split.refuse_hidden_split(spec)
options = ui.model_options()
if len(options) < 2:
    st.info(
        "Comparing needs at least two models: train another run on the Train page, or register a model file or "
        "a folder of predictions on Home."
    )
    st.stop()

chosen = st.multiselect(
    "Models (the first one is the reference for the deltas)",
    list(options),
    default=compare.default_models(options, ui.current_checkpoint()),
    help="Seglab checkpoints and the sources registered on Home",
)
data = None
with ui.guard(f"Loading {spec.describe()}"):
    data = ui.dataset(spec)
if data is None:
    st.stop()
paths = {name: options[label] for name, label in compare.short_names(chosen).items()}  # run or source names
evaluations = {}
for name, path in paths.items():
    with ui.guard(f"{name} is skipped"):
        evaluations[name] = ui.evaluation(path, spec)
if len(evaluations) < 2:
    st.info(f"Pick at least two models that fit this dataset ({spec.describe()}).")
    st.stop()

names, class_names = list(evaluations), data.class_names
st.caption(f"Evaluated on **{spec.describe()}** ({len(data)} images), single-scale. {ui.METRIC_DEFINITION}")
metrics_tab, diagnostics_tab, confusion_tab, curves_tab, diff_tab = st.tabs(
    ["Metrics", "Diagnostics", "Confusion matrices", "Training curves", "A vs B"], **ui.LAZY_TABS("compare_tab")
)

if metrics_tab.open:  # only the open tab runs (ui.LAZY_TABS)
    with metrics_tab, ui.guard("Metric table"):
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

if diagnostics_tab.open:  # only the open tab runs (ui.LAZY_TABS)
    with diagnostics_tab, ui.guard("Diagnostics"):
        summaries = {name: ui.diagnostics(paths[name], spec, 0.5, 0.9) for name in names}
        rows = diagnostics_deltas({name: summary for name, summary in summaries.items() if summary is not None})
        frame = pd.DataFrame(rows).set_index("diagnostic")
        shown = [column for column in frame.columns if column != "better"]
        signs = frame["better"].map({"higher": 1, "lower": -1})
        gains = [column for column in frame.columns if column.startswith("Δ ")]

        def gain_style(column: pd.Series) -> list[str]:
            return [
                delta_style(value * sign) if pd.notna(value) else "" for value, sign in zip(column, signs, strict=True)
            ]

        styled = frame.style.format("{:.3f}", subset=shown, na_rep="–").apply(gain_style, subset=gains)
        st.dataframe(styled)
        st.caption(
            "Objects found at 50% coverage, boundary scores, calibration (see the **Diagnostics** page for the "
            f"definitions and the pictures). Δ = checkpoint − reference ({names[0]}); green = better in the "
            "direction the 'better' column gives."
        )

if confusion_tab.open:  # only the open tab runs (ui.LAZY_TABS)
    with confusion_tab, ui.guard("Confusion matrices"):
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

if curves_tab.open:  # only the open tab runs (ui.LAZY_TABS)
    with curves_tab, ui.guard("Training curves"):
        runs = [name for name in names if not ui.abilities(paths[name], spec).registered]
        curves = {name: compare.checkpoint_curves(paths[name]) for name in runs}
        validation, losses, missing = compare.run_curves(curves)
        left, right = st.columns(2)
        left.plotly_chart(
            ui.shared_figure(
                viz.line_figure, validation, title="Validation mIoU", xaxis_title="step", yaxis_title="mIoU"
            )
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

if diff_tab.open:  # only the open tab runs (ui.LAZY_TABS)
    with diff_tab:
        left, right = st.columns(2)
        name_a = left.selectbox("A (reference)", names, index=0)
        name_b = right.selectbox("B (the change)", [name for name in names if name != name_a], index=0)
        evaluation_a, evaluation_b = evaluations[name_a], evaluations[name_b]
        diff = None
        with ui.guard("Pixel diff of A and B"):
            diff = ui.pixel_diff(paths[name_a], paths[name_b], spec)
            st.subheader("What B fixed and what it broke", divider="gray")
            for column, category, count, share in zip(
                st.columns(len(diff.categories)), diff.categories, diff.totals, diff.shares
            ):
                column.metric(category.name, f"{share:.1%}", help=category.description)
                column.caption(f"{count:,} px")
            by_class = pd.DataFrame(diff.class_records()).set_index("class")
            by_class.insert(0, "Δ IoU (B − A)", compare.class_deltas(evaluation_a, evaluation_b))
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
                class_names,
                title="Per-class IoU change from A to B",
                yaxis_title="Δ IoU",
            )
            st.plotly_chart(delta_figure)

        with ui.guard("Per-image comparison"):
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
            sample = st.selectbox(
                "Image", ranking.sample_ids, format_func=lambda s: f"{s}  (Δ mIoU {delta_by_id[s]:+.3f})"
            )
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
                "A vs B": viz.disagreement_rgb(
                    result_a.labels, result_b.labels, target, data.ignore_index, image=image
                ),
            }
            for column, (caption, picture) in zip(st.columns(len(pictures)), pictures.items()):
                column.image(picture, caption=caption, width="stretch")
            legend = viz.disagreement_legend()
            swatches = viz.legend_image([(entry["name"], entry["color"]) for entry in legend], columns=3)
            st.image(swatches, width=swatches.shape[1])  # its own size: a long caption would stretch it
            st.caption("A vs B: " + "; ".join(f"**{entry['name']}**: {entry['description']}" for entry in legend))
            classes = viz.legend_image(viz.class_legend(data.label_map, include_ignore=True), columns=6)
            st.image(classes, width=classes.shape[1])
