"""Confusion cell -> images (Inspect and Compare): a clickable confusion matrix and the gallery of the
images holding most pixels of the chosen cell."""

from __future__ import annotations

from typing import Any

import streamlit as st

from pages import loaders, state
from pages.widgets import guard
from seglab.analysis.failures import REGIONS, top_confusions
from seglab.data.spec import DataSpec

REGION_LABELS = {"all": "all pixels", "boundary": "boundary band", "interior": "object interiors"}


def largest_confusion(confusion: Any, names: list[str]) -> tuple[int, int]:
    """(ground truth, prediction) of the largest off-diagonal cell, the gallery's first view."""
    largest = top_confusions(confusion, names, k=1)
    return (largest[0].gt_class, largest[0].pred_class) if largest else (0, 0)


def clicked_cell(event: Any, names: list[str], key: str, default: tuple[int, int]) -> tuple[int, int]:
    """The cell chosen on a clickable confusion figure: a new click wins, else the last choice under ``key``."""
    points = event.selection.points if event else []
    # An "other" column (a mapped source's unmapped classes) has no images to list: its clicks are ignored.
    clicked = (names.index(points[0]["y"]), names.index(points[0]["x"])) if points and points[0]["x"] in names else None
    cell = st.session_state.get(key) or default
    if clicked and clicked != st.session_state.get(key + "_seen"):
        cell = clicked
        # A click moves the class pickers of cell_gallery_view too (their state lives under these keys).
        st.session_state[f"{key}_gt"], st.session_state[f"{key}_pred"] = clicked
    st.session_state[key + "_seen"] = clicked
    return cell if max(cell) < len(names) else (0, 0)


def last_clicked_chart(events: dict, key: str) -> str:
    """Of several clickable charts (name -> plotly_chart event), the one clicked last; the first until then.

    Streamlit keeps each chart's selection across reruns, so the chart whose selection changed since
    the previous run is the new click.
    """
    clicked = None
    for name, event in events.items():
        points = str(event.selection.points) if event and event.selection.points else ""
        if points and points != st.session_state.get(f"{key}_{name}"):
            clicked = name
        st.session_state[f"{key}_{name}"] = points
    chosen = clicked or st.session_state.get(key)
    chosen = chosen if chosen in events else next(iter(events))
    st.session_state[key] = chosen
    return str(chosen)


def _open_image(sample_id: str, tabs_key: str, tab: str) -> None:
    """Button callback (it runs before the script, so it may still switch the tabs)."""
    state.set_sample(sample_id)
    st.session_state[tabs_key] = tab


def cell_gallery_view(
    path: str,
    spec: DataSpec,
    names: list[str],
    cell: tuple[int, int],
    key: str,
    *,
    open_in: tuple[str, str] | None = None,
) -> None:
    """The images holding most pixels of one confusion cell, those pixels in yellow on the error map.

    ``open_in``: (tabs key, tab label) of the page's tab that shows one image: each image gets an "Inspect"
    button that opens it there.
    """
    for widget_key, class_id in ((f"{key}_gt", cell[0]), (f"{key}_pred", cell[1])):
        if st.session_state.get(widget_key) not in range(len(names)):  # first view, or another dataset's classes
            st.session_state[widget_key] = class_id
    left, middle, right = st.columns(3)
    gt_class = left.selectbox("Ground-truth class", range(len(names)), format_func=names.__getitem__, key=f"{key}_gt")
    pred_class = middle.selectbox(
        "Predicted class", range(len(names)), format_func=names.__getitem__, key=f"{key}_pred"
    )
    st.session_state[key] = (gt_class, pred_class)
    width = right.slider(
        "Boundary band N (px)", 1, 5, 2, help="Pixels within N px of a ground-truth class edge", key=f"{key}_band"
    )
    region = st.radio(
        "Pixels",
        REGIONS,
        format_func=REGION_LABELS.get,
        horizontal=True,
        key=f"{key}_region",
        help="Boundary errors call for sharper decoders or cleaner edges; whole-object misses for data and context",
    )
    with guard("Ranking the images of this cell"):
        ranking, pictures = loaders.cell_gallery(path, spec, gt_class, pred_class, region, width)
        cell_name = f"{names[gt_class]} predicted as {names[pred_class]}"
        if not ranking.total_pixels:
            st.info(f"No pixel of {cell_name} in this split.")
            return
        st.markdown(
            f"**{ranking.total_pixels:,} px of {cell_name}**: {ranking.boundary_pixels:,} "
            f"({ranking.boundary_share:.0%}) within {width} px of a ground-truth edge, {ranking.interior_pixels:,} "
            f"({1 - ranking.boundary_share:.0%}) farther inside. {len(ranking.hits)} images hold such pixels "
            f"({REGION_LABELS[region]}); the first {len(pictures)} below, those pixels in yellow on the error map."
        )
        for start in range(0, len(pictures), 4):
            for column, hit, picture in zip(
                st.columns(4), ranking.hits[start : start + 4], pictures[start : start + 4]
            ):
                column.image(
                    picture,
                    caption=f"{hit.sample_id}: {hit.pixels:,} px ({hit.boundary_pixels:,} boundary)",
                    width="stretch",
                )
                if open_in:
                    column.button(
                        "Inspect",
                        key=f"{key}_open_{hit.sample_id}",
                        help=f"Show this image in the {open_in[1]} tab",
                        on_click=_open_image,
                        args=(hit.sample_id, *open_in),
                    )
