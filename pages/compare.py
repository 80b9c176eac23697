"""Compare: models side by side on the current split (checkpoints, model files, predictions folders), and exactly
what B fixed and broke vs A."""

import streamlit as st

from pages import compare_tabs, hidden_split, ui
from seglab.analysis import compare

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
paths = {name: paths[name] for name in names}  # the models that could be evaluated
st.caption(f"Evaluated on **{spec.describe()}** ({len(data)} images), single-scale. {ui.METRIC_DEFINITION}")
metrics_tab, diagnostics_tab, confusion_tab, curves_tab, diff_tab = st.tabs(
    ["Metrics", "Diagnostics", "Confusion matrices", "Training curves", "A vs B"], **ui.LAZY_TABS("compare_tab")
)

if metrics_tab.open:  # only the open tab runs (ui.LAZY_TABS)
    with metrics_tab, ui.guard("Metric table"):
        compare_tabs.metrics_tab(evaluations, class_names)
if diagnostics_tab.open:
    with diagnostics_tab, ui.guard("Diagnostics"):
        compare_tabs.diagnostics_tab(paths, spec)
if confusion_tab.open:
    with confusion_tab, ui.guard("Confusion matrices"):
        compare_tabs.confusion_tab(evaluations, paths, class_names, spec)
if curves_tab.open:
    with curves_tab, ui.guard("Training curves"):
        compare_tabs.curves_tab(paths, spec)
if diff_tab.open:
    with diff_tab:
        left, right = st.columns(2)
        name_a = left.selectbox("A (reference)", names, index=0)
        name_b = right.selectbox("B (the change)", [name for name in names if name != name_a], index=0)
        evaluation_a, evaluation_b = evaluations[name_a], evaluations[name_b]
        diff = None
        with ui.guard("Pixel diff of A and B"):
            diff = compare_tabs.pixel_diff_section((paths[name_a], paths[name_b]), (evaluation_a, evaluation_b), spec)
        with ui.guard("Per-image comparison"):
            compare_tabs.per_image_section(data, evaluation_a, evaluation_b, diff)
