"""The Train page's live view of one run: status and stop button, headline numbers, curves and sample predictions."""

from __future__ import annotations

from typing import Any

import streamlit as st

from pages.shared import shared_figure
from seglab.engine.curves import RunWatcher, headline_numbers, no_points_note
from seglab.engine.run_dir import FAILED, RUNNING
from seglab.engine.runs import RunInfo, stop_run
from seglab.viz import line_figure

# After a stop request a run evaluates the whole validation split and saves last.pt; on a busy laptop CPU that
# can take a minute, so only a run still alive after this long is terminated.
STOP_GRACE_S = 120.0
STATE_COLORS = {"running": "blue", "finished": "green", "failed": "red", "stopped": "orange"}


def chart(build: Any, *args: Any, key: str, **options: Any) -> None:
    """A curve panel ``build(*args, **options)`` 250 px high, built once for every session showing the same points
    (``pages.shared.shared_figure``); uirevision keeps its zoom across refreshes."""
    figure = shared_figure(build, *args, height=250, uirevision=key, y_from_zero=True, **options)
    st.plotly_chart(figure, key=key)


def show_run(watcher: RunWatcher, info: RunInfo) -> None:
    """One watched run: status, stop button, numbers, curves and the latest sample predictions."""
    curves = watcher.curves
    with st.container(border=True):
        title, action = st.columns([6, 1], vertical_alignment="center")
        title.markdown(
            f"**{info.name}** :{STATE_COLORS.get(info.state, 'gray')}-badge[{info.state}] · "
            f"{info.model} · loss `{info.loss}` · data {info.data}"
        )
        if info.state == RUNNING and watcher.run.stop_requested():
            action.caption("stopping...")
        elif info.state == RUNNING and action.button(
            "Stop", key=f"train_stop_{info.name}", icon=":material/stop_circle:"
        ):
            stop_run(info.path, grace_s=STOP_GRACE_S)
            st.toast(f"Asked **{info.name}** to stop: it saves last.pt first")
        if info.state == FAILED:
            st.error(
                f"**Run failed**: {info.error or 'no error message; see train.log in the run folder'}",
                icon=":material/error:",
            )
        for column, (label, value) in zip(st.columns(5), headline_numbers(curves).items(), strict=True):
            column.metric(label, value)
        if note := no_points_note(curves, running=info.state == RUNNING):
            st.caption(note)
            return
        charts, preview = st.columns([3, 1])
        with charts:
            top, bottom = st.columns(2), st.columns(2)
            panels = [
                (top[0], curves.loss_series(), "Training loss (terms)", "loss"),
                (top[1], curves.metric_series(), f"Validation ({curves.val_images or '?'} images)", "metrics"),
                (bottom[0], curves.lr_series(), "Learning rate", "lr"),
                (bottom[1], curves.throughput_series(), "Throughput (images/s)", "speed"),
            ]
            for column, series, title, key in panels:
                with column:
                    if series:
                        chart(line_figure, series, key=f"train_{key}_{info.name}", title=title, xaxis_title="step")
                    else:
                        st.caption(f"{title}: no points yet")
        with preview:
            latest_preview = watcher.latest_preview()
            if latest_preview is None:
                st.caption(
                    "Sample predictions appear after the first evaluation."
                    if info.state == RUNNING
                    else "This run saved no sample predictions (the demo runs ship without them); "
                    "open it on Inspect to see its predictions."
                )
            else:
                path, step = latest_preview
                st.image(
                    str(path),
                    caption=f"Validation samples at step {step}: image | ground truth | prediction",
                    output_format="PNG",
                )
