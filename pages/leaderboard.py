"""Leaderboard: every checkpoint under the runs folder and every registered source, scored on a held-out split with
one protocol."""

import pandas as pd
import streamlit as st

from pages import hidden_split, ui
from seglab.analysis.leaderboard import (
    LEADERBOARD_PROTOCOL,
    build_leaderboard,
    entry_name,
    find_checkpoints,
    held_out_split,
    to_csv,
)
from seglab.data.discover import check_source

SCORE_COLUMNS = {
    "miou": "mIoU",
    "miou_no_background": "mIoU (no background)",
    "pixel_acc": "pixel acc",
    "mean_acc": "mean acc",
}

ui.start_page()
st.title("Leaderboard")
st.markdown(
    "Every checkpoint under the runs folder and every model file or predictions folder registered on Home, "
    "scored on **one held-out split** with **one fixed protocol**, ranked by mIoU. Scores are cached by content "
    "hash (and a source's description): each entry is evaluated once per split."
)
spec = ui.current_spec()
splits = []
with ui.guard("Reading the data source"):
    splits = list(check_source(spec, mask_sample=0).splits)
if not splits:
    st.stop()
left, right = st.columns([1, 2])
split = left.selectbox(
    "Held-out split",
    splits,
    index=splits.index(held_out_split(splits)),
    help="Default: test when the data has one (Shapes), else val (CamVid and VOC: no labelled test here)",
)
hidden_split.refuse_hidden_split(spec.with_split(split))
include_last = right.toggle(
    "Also score each run's last.pt", value=False, help="By default each run enters with best.pt"
)
st.info(
    f"**Protocol** (the same for every entry): {LEADERBOARD_PROTOCOL.describe()}, whole image at its original size, "
    f"class = argmax of the softmax. {ui.METRIC_DEFINITION}",
    icon=":material/rule:",
)

paths = ui.keep_allowed(find_checkpoints(ui.runs_dir(), include_last=include_last))
sources = ui.registered_sources()
if not paths and not sources:
    st.info(
        f"No checkpoints under `{ui.runs_dir()}` yet: train one on the Train page, or register a model file or a "
        "folder of predictions on Home."
    )
    st.stop()

with ui.guard("Scoring the checkpoints"):
    data = ui.dataset(spec.with_split(split))
    board = build_leaderboard(paths, data, LEADERBOARD_PROTOCOL, cached_only=True, sources=sources)
    if board.pending:
        names = [f"`{entry_name(path)}`" for path in board.pending]
        scorable = len(paths) + len(sources) - len(board.skipped)  # the skipped are listed below, with reasons
        st.warning(
            f"{len(names)} of {scorable} scorable entries not scored on **{split}** yet: "
            + ", ".join(names[:6])
            + (" ..." if len(names) > 6 else "")
        )
        if st.button(f"Score {len(board.pending)} entries", type="primary", icon=":material/play_arrow:"):
            bar = st.progress(0.0, text="Starting...")
            build_leaderboard(
                paths,
                data,
                LEADERBOARD_PROTOCOL,
                progress=lambda done, text: bar.progress(done, text=text),
                sources=sources,
            )
            st.rerun()  # draw the board again, now entirely from the cache

    if board.rows:
        st.subheader(f"{len(board.rows)} entries on {board.dataset}", divider="gray")
        frame = pd.DataFrame(board.records()).set_index("rank").drop(columns=["dataset", "protocol"])
        if data.label_map.background_index is None:
            frame = frame.drop(columns=["miou_no_background"])  # no background class: it would repeat mIoU
        config = {key: st.column_config.NumberColumn(label, format="%.3f") for key, label in SCORE_COLUMNS.items()}
        config["miou"] = st.column_config.ProgressColumn("mIoU", min_value=0.0, max_value=1.0, format="%.3f")
        config.update(
            {f"iou_{name}": st.column_config.NumberColumn(f"IoU {name}", format="%.3f") for name in board.class_names}
        )
        config["sha256"] = st.column_config.TextColumn("SHA-256", width="small")
        st.dataframe(frame, column_config=config)
        st.caption(
            "Per-class IoU over the whole split; empty = class neither in ground truth nor predicted. "
            "Ties in mIoU are broken by mIoU without background, then by path. Registered sources show their "
            "name as run and their kind as file; predictions folders rank on the same split and protocol."
        )
        st.download_button(
            "Download CSV",
            to_csv(board),
            file_name=f"leaderboard-{spec.kind}-{split}.csv",
            mime="text/csv",
            icon=":material/download:",
        )
    elif not board.pending:
        st.info("Nothing fits this dataset: the reasons are listed below.")

    if board.skipped:
        st.subheader(f"{len(board.skipped)} skipped", divider="gray")
        skipped = pd.DataFrame(board.skipped_records())
        st.dataframe(skipped, hide_index=True, column_config={"reason": st.column_config.TextColumn(width="large")})
