"""The Dataset page's view of one sample: a hoverable overlay, the image and its mask, a legend and the table of
the classes it holds."""

from __future__ import annotations

from typing import Any

import streamlit as st

from pages.shared import encoded_picture, shared_figure
from seglab import viz
from seglab.analysis import gallery
from seglab.analysis.stats import DatasetStats

HOVER_SIDE = 96  # hover cells on the long side: Plotly serialises every cell, ~20 µs each


def sample_view(data: Any, stats: DatasetStats, sample_id: str, opacity: float) -> None:
    """Sample ``sample_id`` of ``data`` with its masks at ``opacity``; ``stats`` the split's statistics."""
    index = stats.ids.index(sample_id)
    label_map, names = data.label_map, stats.class_names
    image, mask = data.load(index)
    figure_column, side_column = st.columns([3, 2])
    figure = shared_figure(
        viz.image_figure,
        viz.overlay(image, mask, label_map, alpha=opacity, skip_background=True),
        hover_labels=mask,
        label_map=label_map,
        title="Overlay: hover for the class under the cursor",
        max_hover_side=HOVER_SIDE,
    )
    figure_column.plotly_chart(figure, key="dataset_sample_figure")
    image_column, mask_column = side_column.columns(2)
    image_column.image(encoded_picture(image), caption="Image", width="stretch", output_format="JPEG")
    mask_column.image(
        encoded_picture(viz.colorize_mask(mask, label_map), "PNG"), caption="Mask", width="stretch", output_format="PNG"
    )
    rows = gallery.sample_class_table(stats, index)
    side_column.image(
        viz.legend_image(
            viz.class_legend(
                label_map,
                [names.index(row["class"]) for row in rows],
                include_ignore=bool(stats.ignore_pixels[index]),
            ),
            columns=3,
        )
    )
    side_column.dataframe(
        rows,
        hide_index=True,
        key="dataset_sample_table",
        height="content",
        column_config={"share": st.column_config.NumberColumn("share", format="percent")},
    )
    side_column.caption(
        f"{stats.ignore_pixels[index]:,} void pixels ({label_map.ignore_index}) are not a class and not counted."
    )
