"""Home's models section: register a model file or a folder of predictions (checked at once on the current data),
list the registered ones and remove them."""

from __future__ import annotations

import streamlit as st

from pages import ui
from seglab.sources.catalog import REGISTERED_KINDS
from seglab.sources.choices import mapping_rows, needs_mapping
from seglab.sources.mapping import OTHER
from seglab.sources.preprocessing import FIXED_SIZE_MODES, OUTPUT_KINDS
from seglab.sources.registration import SourceForm, parse_class_names, register_checked, remove_source

UPLOAD_TYPES = {
    "onnx": ("the model file", ["onnx"]),
    "torchscript": ("the model file", ["pt", "pth", "ts"]),
    "predictions": ("a zip of the prediction files", ["zip"]),
}
KIND_LABELS = {
    "predictions": "Folder of predictions (PNG / .npy / .npz per sample)",
    "onnx": "ONNX file",
    "torchscript": "TorchScript file",
    "huggingface": "Hugging Face model folder",
}


def models_section() -> None:
    """Register a model file or a folder of predictions, checked at once on the current data; list and remove them."""
    st.subheader("Models: bring your own model or predictions")
    st.caption(
        "Checkpoints trained here are listed in the sidebar by themselves. Register a model trained elsewhere "
        "(ONNX, TorchScript, Hugging Face folder) or a folder of predictions written by any tool: it is checked "
        "on the current data, then every page can pick it in the sidebar."
    )
    entries = ui.registered_sources()
    for entry in entries:
        left, right = st.columns([5, 1])
        left.markdown(
            f"**{entry.name}** · {entry.kind} · `{entry.where}`" + ("" if entry.ok else f"  \n:red[{entry.problem}]")
        )
        if right.button("Remove", key=f"remove_{entry.file.name}", help="Forget it (its files are left alone)"):
            remove_source(ui.runs_dir(), entry.file)
            st.rerun()
    with st.expander("Register a model file or a folder of predictions", expanded=not entries):
        registration_form()


def registration_form() -> None:
    """The registration form: kind, path inside the allowed folders, preprocessing, output, classes and mapping."""
    roots = ui.source_roots()
    kind = st.radio("Kind", REGISTERED_KINDS, format_func=KIND_LABELS.get, horizontal=True, key="register_kind")
    name = st.text_input("Name", key="register_name", placeholder="e.g. segformer-b0 cityscapes")
    path = st.text_input(
        "Path",
        key="register_path",
        help="Inside one of: " + ", ".join(str(root) for root in roots),
        placeholder=f"{roots[0]}/my_model.onnx",
    )
    uploaded = None
    if kind in UPLOAD_TYPES:
        uploaded = st.file_uploader(
            f"Or upload {UPLOAD_TYPES[kind][0]}",
            type=UPLOAD_TYPES[kind][1],
            key=f"register_upload_{kind}",
            help="Stored in the sources catalog (checked first); the path is then ignored",
        )
    st.caption(
        "Allowed folders: "
        + ", ".join(f"`{root}`" for root in roots)
        + " (add more with $SEGLAB_DATA_ROOTS or data_roots in seglab.toml)"
    )
    fields: dict = {}
    if kind in ("onnx", "torchscript"):
        columns = st.columns(4)
        fields["mean"] = columns[0].text_input("Mean (0-1)", placeholder="0.485, 0.456, 0.406", key="register_mean")
        fields["std"] = columns[1].text_input("Std (0-1)", placeholder="0.229, 0.224, 0.225", key="register_std")
        fields["channel_order"] = columns[2].radio("Channels", ["RGB", "BGR"], horizontal=True, key="register_channels")
        fields["input_size"] = columns[3].text_input(
            "Input size", value="any", key="register_size", help='"any", a side (512) or height x width (512x1024)'
        )
        columns = st.columns(4)
        fields["size_divisor"] = columns[0].number_input(
            "Multiple of",
            1,
            512,
            1,
            key="register_divisor",
            help="Pad height and width up to a multiple (output stride)",
        )
        fields["output"] = columns[1].text_input(
            "Output key", key="register_output", help='Empty: the first output; a dict key such as torchvision\'s "out"'
        )
        fields["output_kind"] = columns[2].selectbox("Output holds", OUTPUT_KINDS, key="register_output_kind")
        fields["fixed_size_mode"] = columns[3].radio(
            "Fixed-size model sees",
            FIXED_SIZE_MODES,
            key="register_fixed",
            help="Images resized to its input, or tiled (sliding window)",
        )
    if kind == "predictions":
        columns = st.columns(3)
        fields["encoding"] = columns[0].radio(
            "PNG encoding",
            ["auto", "index", "rgb"],
            horizontal=True,
            key="register_encoding",
            help="index: class ids; rgb: colours of a label map; auto: per file",
        )
        fields["label_map"] = columns[1].text_input(
            "Label map JSON of their colours (optional)",
            key="register_label_map",
            help="When the PNGs use another tool's palette; default: the data's",
        )
        fields["resize_predictions"] = columns[2].checkbox(
            "Resize predictions of another size (nearest neighbour, reported)", key="register_resize"
        )
    class_names = st.text_area(
        "Class names of the model, in output order (optional)",
        key="register_classes",
        height=68,
        help="Comma- or line-separated. Empty: the dataset's classes, in its order",
    )
    mapping = None
    names = parse_class_names(class_names)
    data = None
    with ui.guard("Loading the current data"):
        data = ui.dataset(ui.current_spec().with_split(ui.current_split()))
    if data is not None and needs_mapping(names, data.label_map):
        st.caption(
            "Class mapping: model class → dataset class, pre-filled by name; 'other' counts as a miss, never dropped."
        )
        rows = mapping_rows(names, data.label_map)
        edited = st.data_editor(
            {"model class": list(rows), "dataset class": list(rows.values())},
            key="register_mapping",
            hide_index=True,
            disabled=["model class"],
            column_config={
                "dataset class": st.column_config.SelectboxColumn(options=[*data.class_names, OTHER], required=True)
            },
        )
        mapping = dict(zip(edited["model class"], edited["dataset class"], strict=True))
    if st.button("Check and register", type="primary", icon=":material/add:"):
        form = SourceForm(name=name, kind=kind, path=path, class_names=class_names, mapping=mapping, **fields)
        with st.spinner("Checking it on the current data..."):
            upload = uploaded.getvalue() if uploaded is not None else None
            entry, problems, facts = register_checked(ui.runs_dir(), form, roots, data, upload=upload)
        for fact in facts:
            st.caption(f"ok: {fact}")
        if problems:
            st.error(
                f"Not registered, {len(problems)} problem(s):\n\n" + "\n".join(f"- {problem}" for problem in problems)
            )
        else:
            st.success(f"Registered **{entry.name}**: pick it in the sidebar's Model / predictions list.")
