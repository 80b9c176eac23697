"""Home: choose the data source, check it, and see what each page is for."""

import streamlit as st

from pages import ui
from seglab.data.discover import discover_datasets
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
    ("Inspect", "Rank the worst images of a checkpoint, see its error map, confidence and confused classes."),
    ("Compare", "Put checkpoints side by side: per-class deltas, confusion matrices, curves, where A beats B."),
    ("Leaderboard", "Score every checkpoint with one fixed protocol, rank by mIoU, export CSV."),
    ("Metric definitions", "The same predictions under every mIoU definition people use, and why they differ per class."),
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
    default_root = current.root if current.kind == kind and current.root else (suggestions[0] if suggestions else "")
    if suggestions:
        st.caption(f"Found under {ui.data_root()}: " + ", ".join(f"`{root}`" for root in suggestions))
    root = st.text_input("Dataset folder", value=default_root, placeholder="/path/to/" + ("camvid" if kind == "camvid" else "VOC2012"))
    label_map = st.text_input("Label map JSON (optional)", value=current.label_map or "", help="Overrides the built-in classes")
    candidate = DataSpec(kind=kind, root=root.strip() or None, label_map=label_map.strip() or None)
else:
    images = st.text_input("Image folder", value=current.images or "")
    masks = st.text_input("Mask folder", value=current.masks or "")
    list_file = st.text_input("List file (optional)", value=current.list_file or "", help="Lines 'IMAGE [MASK]', matched by file name")
    label_map = st.text_input("Label map JSON", value=current.label_map or "", help="Class ids, names, colours, ignore index")
    candidate = DataSpec(kind="folder", split="custom", images=images.strip() or None, masks=masks.strip() or None,
                         list_file=list_file.strip() or None, label_map=label_map.strip() or None)  # fmt: skip
if kind != "shapes" and not ui.client_is_local():
    folders = ", ".join(f"`{root}`" for root in ui.allowed().roots)
    st.caption(f"From this browser the server opens folders and files under {folders} only (more: see README).")
if kind != "shapes":
    with st.expander("What goes in a label map JSON file?"):
        st.markdown("Class ids as stored in the masks, their names and colours, and the void/ignore value "
                    "(never a class, never counted). `background_index` names the class that 'without background' "
                    "scores drop (`null` if there is none); `ignore_color` is the void colour of colour-coded masks.")  # fmt: skip
        st.code(label_map_example(), language="json")

awaiting_folders = kind == "folder" and not (candidate.images and candidate.masks)
if awaiting_folders:
    st.info("Type the image folder and the mask folder (paths on this server) to check this source.")
with ui.guard("Checking the data source"):
    report = None if awaiting_folders else ui.source_report(ui.check_form_spec(candidate))  # outside the allow-list: refused unread
    if report is None:
        pass
    elif report.ok:
        st.success(f"{len(report.class_names)} classes · " + " · ".join(f"{split}: {n} images" for split, n in report.splits.items()))
        st.caption("Classes: " + ", ".join(report.class_names) + f" · void/ignore index: {report.ignore_index}")
        for note in report.notes:
            st.info(note)
        for split, problems in report.sample_problems.items():
            listed = "\n".join(f"- {problem}" for problem in problems[:MAX_SHOWN_PROBLEMS])
            st.warning(
                f"**{split}**: {len(problems)} of {report.sampled[split]} sampled image/mask pairs cannot be used "
                f"(training and the Dataset page would stop at them):\n\n{listed}",
                icon=":material/warning:",
            )
        if report.sampled and not report.sample_problems:
            checked = sum(report.sampled.values())
            st.caption(f"{checked} sampled image/mask pairs read and checked: sizes and label values fit.")
        for split, problem in report.problems.items():
            st.caption(f"{split}: {problem}")
        if candidate.to_dict() != current.to_dict():
            if st.button("Use this dataset", type="primary"):
                ui.set_spec(candidate)
                st.rerun()
        else:
            st.caption("This is the dataset every page uses now.")
    else:
        st.error("This source cannot be loaded yet:\n\n" + "\n\n".join(f"- **{s}**: {p}" for s, p in report.problems.items()))

st.subheader("Pages")
for title, purpose in PAGE_GUIDE:
    st.markdown(f"**{title}** — {purpose}")
st.caption(ui.METRIC_DEFINITION)
