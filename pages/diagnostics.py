"""Diagnostics: how a checkpoint fails beyond mIoU: objects missed by size, outlines, calibration, data slices."""

import streamlit as st

from pages import diagnostics_tabs, hidden_split, ui

ui.start_page()
st.title("Diagnostics")
st.caption(
    "How the model fails, not only how much: which objects it finds or misses by size, how sharp its outlines are, "
    "whether its confidence can be trusted, and which parts of the data it fails on. Gathered in the evaluation's "
    "single pass and cached with it; `seglab eval --json` reports the same numbers under `diagnostics`."
)

path = ui.require_checkpoint()
spec = ui.current_spec().with_split(ui.current_split())
hidden_split.refuse_hidden_split(spec)
data, evaluation = ui.require_evaluation(path, spec, what="to diagnose")
metrics = evaluation.metrics

left, right = st.columns(2)
cover = left.slider("An object counts as found when this share of its pixels is predicted right", 0.1, 1.0, 0.5, 0.05)
confident = right.slider("'Confidently wrong' means wrong with a confidence of at least", 0.5, 0.95, 0.9, 0.05)
summary = None
with ui.guard("Summarising the diagnostics"):
    summary = ui.diagnostics(path, spec, cover, confident)
if summary is None:
    st.stop()
objects, boundary, calibration = summary["objects"], summary["boundary"], summary["calibration"]


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


columns = st.columns(6)
columns[0].metric("mIoU", _value(metrics.miou))
columns[1].metric("Objects found", _value(objects["recall"]), help=f"{objects['detected']:,} of {objects['objects']:,}")
columns[2].metric("Lesion-wise Dice", _value(objects["lesion_dice"]), help="Per-object Dice averaged over objects")
columns[3].metric("Boundary IoU", _value(boundary["mean_boundary_iou"]), help=f"Band of {boundary['band_px']} px")
columns[4].metric("BF score", _value(boundary["mean_bf_score"]), help=f"Tolerance {boundary['tolerance_px']} px")
columns[5].metric("ECE", _value(calibration["ece"]), help="Expected calibration error, 15 bins, top label")

objects_tab, boundary_tab, calibration_tab, slices_tab = st.tabs(
    ["Objects", "Boundaries", "Confidence", "Slices"], **ui.LAZY_TABS("diagnostics_tab")
)

if objects_tab.open:  # only the open tab runs (ui.LAZY_TABS)
    with objects_tab:
        diagnostics_tabs.objects_tab(summary, evaluation, path, spec, cover)
if boundary_tab.open:
    with boundary_tab:
        diagnostics_tabs.boundary_tab(summary, evaluation)
if calibration_tab.open:
    with calibration_tab:
        diagnostics_tabs.calibration_tab(summary)
if slices_tab.open:
    with slices_tab:
        diagnostics_tabs.slices_tab(summary, evaluation, path, spec, cover, confident)
