"""Home: choose the data source, check it, and see what each page is for."""

import streamlit as st

from pages import ui
from pages.model_registration import models_section
from seglab.data.discover import default_root, discover_datasets, form_spec
from seglab.data.label_map import label_map_example
from seglab.data.spec import DataSpec

SOURCES = {
    "shapes": "Built-in Shapes (synthetic, no files)",
    "camvid": "CamVid / SegNet layout",
    "voc": "PASCAL VOC-2012 layout",
    "folder": "Image folder + mask folder",
}
MAX_SHOWN_PROBLEMS = 3
PAGE_GUIDE = [
    ("Dataset", "Browse samples with mask overlays, class-imbalance charts, class weights and the trivial baseline."),
    ("Train", "Launch a short training run, watch loss / LR / validation curves and predictions live, stop it."),
    (
        "Inspect",
        "Rank the worst images of a model (or predictions), see its error map, confidence and confused classes.",
    ),
    ("Compare", "Put models side by side: per-class deltas, confusion matrices, curves, where A beats B."),
    ("Leaderboard", "Score every checkpoint and registered source with one fixed protocol, rank by mIoU, export CSV."),
    (
        "Metric definitions",
        "The same predictions under every mIoU definition people use, and why they differ per class.",
    ),
    ("Loss inspector", "Per-pixel loss, the pixels hard mining keeps, focal modulation and what class weights change."),
    ("Label quality", "Objects whose labels a trained model confidently disagrees with: candidate annotation errors."),
]
ui.start_page()
st.title("seglab")
st.markdown("An interactive lab for finding out **why** a semantic-segmentation model fails.")

current = ui.current_spec()
kinds = list(SOURCES)
kind = st.radio("Data source", kinds, index=kinds.index(current.kind), format_func=SOURCES.get, horizontal=True)

found = discover_datasets(ui.data_root()) if kind in ("camvid", "voc") else []
suggestions = [spec.root for spec in found if spec.kind == kind]
if kind == "shapes":
    candidate = DataSpec(shapes=current.shapes) if current.kind == "shapes" else DataSpec()
    st.caption("Procedural shapes on textured backgrounds, strongly imbalanced like VOC. Tune it on the Dataset page.")
elif kind in ("camvid", "voc"):
    if suggestions:
        st.caption(f"Found under {ui.data_root()}: " + ", ".join(f"`{root}`" for root in suggestions))
    root = st.text_input(
        "Dataset folder",
        value=default_root(current, kind, suggestions),
        placeholder="/path/to/" + ("camvid" if kind == "camvid" else "VOC2012"),
    )
    label_map = st.text_input(
        "Label map JSON (optional)", value=current.label_map or "", help="Overrides the built-in classes"
    )
    candidate = form_spec(kind, root=root, label_map=label_map)
else:
    images = st.text_input("Image folder", value=current.images or "")
    masks = st.text_input("Mask folder", value=current.masks or "")
    list_file = st.text_input(
        "List file (optional)", value=current.list_file or "", help="Lines 'IMAGE [MASK]', matched by file name"
    )
    label_map = st.text_input(
        "Label map JSON", value=current.label_map or "", help="Class ids, names, colours, ignore index"
    )
    candidate = form_spec("folder", images=images, masks=masks, list_file=list_file, label_map=label_map)
if kind != "shapes" and not ui.client_is_local():
    folders = ", ".join(f"`{root}`" for root in ui.allowed().roots)
    st.caption(f"From this browser the server opens folders and files under {folders} only (more: see README).")
if kind != "shapes":
    with st.expander("What goes in a label map JSON file?"):
        st.markdown(
            "Class ids as stored in the masks, their names and colours, and the void/ignore value "
            "(never a class, never counted). `background_index` names the class that 'without background' "
            "scores drop (`null` if there is none); `ignore_color` is the void colour of colour-coded masks."
        )
        st.code(label_map_example(), language="json")

awaiting_folders = kind == "folder" and not (candidate.images and candidate.masks)
if awaiting_folders:
    st.info("Type the image folder and the mask folder (paths on this server) to check this source.")
with ui.guard("Checking the data source"):
    report = (
        None if awaiting_folders else ui.source_report(ui.check_form_spec(candidate))
    )  # outside the allow-list: refused unread
    if report is None:
        pass
    elif report.ok:
        st.success(report.summary())
        st.caption(report.classes_line())
        for note in report.notes:
            st.info(note)
        for warning in report.sample_warnings(MAX_SHOWN_PROBLEMS):
            st.warning(warning, icon=":material/warning:")
        if checked := report.checked_note():
            st.caption(checked)
        for split, problem in report.problems.items():
            st.caption(f"{split}: {problem}")
        if candidate.to_dict() != current.to_dict():
            if st.button("Use this dataset", type="primary"):
                ui.set_spec(candidate)
                st.rerun()
        else:
            st.caption("This is the dataset every page uses now.")
    else:
        st.error(report.failure())


with ui.guard("Models"):
    models_section()

st.subheader("Pages")
for title, purpose in PAGE_GUIDE:
    st.markdown(f"**{title}** — {purpose}")
st.caption(ui.METRIC_DEFINITION)
