"""Plotly figures: per-class bars, class distributions, images with per-pixel hover, curves, LR schedules,
object sizes. Plotly is imported inside each function: ``import seglab.viz`` stays light."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from seglab.data.label_map import LabelMap
from seglab.metrics.definitions import APP_DEFINITION, DefinitionScore
from seglab.viz.colors import as_mask, as_rgb, check_same_size, to_hex
from seglab.viz.confusion_figure import check_class_count

if TYPE_CHECKING:
    import plotly.graph_objects as go


# Long side of image_figure's hover layer. Plotly serialises string customdata element by element:
# a full 480x360 CamVid frame (173k cells) takes ~2.5 s to send to the browser, 2x2 blocks ~0.7 s.
MAX_HOVER_SIDE = 256


def value_axis(title: str | None, log: bool, values: Iterable[float] | np.ndarray = ()) -> dict[str, Any]:
    """A y axis layout; on a log scale, labels only where they cannot collide.

    Plotly labels every digit 2-9 of each decade on a log axis ("1 9 8 7 ... 0.1 9 8"), which overlap on
    a chart of normal height. Spanning two decades or more, only the powers of ten are labelled (minor
    ticks mark the rest); within a smaller range 1, 2 and 5 of each decade are.
    """
    axis: dict[str, Any] = {"title": {"text": title}, "type": "log" if log else "linear"}
    if log:
        positive = np.asarray(
            [v for v in np.ravel(np.asarray(list(values), dtype=np.float64)) if v > 0 and math.isfinite(v)]
        )
        decades = math.log10(positive.max() / positive.min()) if positive.size else 0.0
        axis |= (
            {"dtick": 1, "minor": {"ticks": "outside", "dtick": "D1", "showgrid": False}}
            if decades >= 2
            else {"dtick": "D2"}
        )
    return axis


def per_class_bar_figure(
    values: Mapping[str, Sequence[float] | np.ndarray] | Sequence[float] | np.ndarray,
    class_names: Sequence[str],
    title: str | None = None,
    yaxis_title: str | None = None,
    log_y: bool = False,
) -> go.Figure:
    """Bars per class; one group per class and one bar per series (e.g. per checkpoint).

    Args:
        values: ``{series name: (K,) values}`` or one (K,) array; NaN (class absent) = no bar.
        class_names: K names (the x axis).
        title, yaxis_title: labels.
        log_y: logarithmic y axis.

    Returns:
        A figure with one ``go.Bar`` per series.
    """
    import plotly.graph_objects as go

    series = dict(values) if isinstance(values, Mapping) else {yaxis_title or "value": values}
    names = [str(name) for name in class_names]
    figure = go.Figure()
    for series_name, series_values in series.items():
        array = np.asarray(series_values, dtype=np.float64).ravel()
        check_class_count(len(array), names, f"series {series_name!r}")
        figure.add_trace(
            go.Bar(
                x=names,
                y=array,
                name=str(series_name),
                hovertemplate=f"%{{x}}<br>{series_name}: %{{y:.4g}}<extra></extra>",
            )
        )
    figure.update_layout(
        title=title,
        barmode="group",
        yaxis=value_axis(
            yaxis_title, log_y, np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in series.values()])
        ),
        xaxis={"tickangle": -45},
        showlegend=len(series) > 1,
        margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
    )
    return figure


def class_distribution_figure(
    pixel_fraction: Sequence[float] | np.ndarray,
    image_count: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    colors: np.ndarray | Sequence[Sequence[int]],
    title: str | None = "Class distribution",
    log_y: bool = True,
) -> go.Figure:
    """Share of labelled pixels per class, bars in the class colours, the number of images containing
    the class above each bar. A log axis (the default) shows classes spanning orders of magnitude; a
    linear one shows how lopsided the imbalance really is.

    Args:
        pixel_fraction: (K,) fraction of non-void pixels of each class; classes with 0 get no bar
            (a log axis cannot show 0) but keep their place and their "0 img" label.
        image_count: (K,) number of images in which the class occurs.
        class_names: K names.
        colors: (K, 3) uint8 RGB (``label_map.colors``).
        title: figure title.

    Returns:
        A figure with one ``go.Bar``.
    """
    import plotly.graph_objects as go

    fraction = np.asarray(pixel_fraction, dtype=np.float64).ravel()
    counts = np.asarray(image_count).ravel()
    names = [str(name) for name in class_names]
    check_class_count(len(fraction), names, "pixel_fraction")
    check_class_count(len(counts), names, "image_count")
    rgb = np.asarray(colors).reshape(-1, 3)
    check_class_count(len(rgb), names, "colors")
    shown = np.where(fraction > 0, fraction, np.nan) if log_y else fraction
    figure = go.Figure(
        go.Bar(
            x=names,
            y=shown,
            marker={"color": [to_hex(color) for color in rgb], "line": {"color": "#333333", "width": 1}},
            customdata=np.stack([fraction, counts.astype(np.float64)], axis=-1),
            text=[f"{int(count)} img" for count in counts],
            textposition="outside",
            hovertemplate="%{x}<br>pixels: %{customdata[0]:.3%}<br>images: %{customdata[1]:,.0f}<extra></extra>",
        )
    )
    figure.update_layout(
        title=title,
        yaxis=value_axis("fraction of labelled pixels", log_y, shown) | {"tickformat": ".1~%" if log_y else ".0%"},
        xaxis={"tickangle": -45},
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
    )
    return figure


def _hover_grid(height: int, width: int, max_side: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows and columns sampled for the hover layer (block centres) and the block size."""
    step = max(1, math.ceil(max(height, width) / max_side))
    rows = np.minimum(np.arange(0, height, step) + step // 2, height - 1)
    columns = np.minimum(np.arange(0, width, step) + step // 2, width - 1)
    return rows, columns, step


def image_figure(
    rgb: np.ndarray,
    hover_labels: np.ndarray | Mapping[str, np.ndarray] | None = None,
    label_map: LabelMap | None = None,
    title: str | None = None,
    max_hover_side: int = MAX_HOVER_SIDE,
    display_width: int = 620,
) -> go.Figure:
    """Show an image in Plotly (zoom/pan) with the class names under the cursor on hover.

    The image is sent as one compressed PNG (``px.imshow(binary_string=True)``). Hover comes from
    a transparent heatmap on top whose ``customdata`` is 3-D (h, w, k): Plotly 6+ ignores 2-D
    customdata on heatmaps. The hover layer is downsampled (nearest, block centres) to at most
    ``max_hover_side`` pixels on the long side to keep the figure small.

    Args:
        rgb: (H, W, 3) uint8 image (e.g. an overlay).
        hover_labels: (H, W) class ids, or ``{"GT": target, "Pred": pred}`` to show several.
        label_map: turns ids into names (``void`` for the ignore index); without it ids are shown.
        title: figure title.
        max_hover_side: long side of the hover layer in cells.
        display_width: the width (px) the figure is expected to get; its height follows the image's aspect
            ratio (within 240-720 px), so no empty band surrounds the image.

    Returns:
        A figure: ``data[0]`` the image, ``data[1]`` (with labels) the hover heatmap whose
        ``customdata[i, j, k]`` is the name of layer k at hover cell (i, j).
    """
    import plotly.express as px
    import plotly.graph_objects as go

    rgb = as_rgb(rgb)
    figure = px.imshow(rgb, binary_string=True)
    if hover_labels is not None:
        layers = dict(hover_labels) if isinstance(hover_labels, Mapping) else {"class": hover_labels}
        rows, columns, step = _hover_grid(rgb.shape[0], rgb.shape[1], max_hover_side)
        names_per_layer = []
        for layer_name, labels in layers.items():
            labels = as_mask(labels, f"hover labels {layer_name!r}")
            check_same_size(rgb, labels, "image", f"hover labels {layer_name!r}")
            sampled = labels[np.ix_(rows, columns)]
            names_per_layer.append(_label_names(sampled, label_map))
        customdata = np.stack(names_per_layer, axis=-1)
        lines = "<br>".join(f"{name}: %{{customdata[{k}]}}" for k, name in enumerate(layers))
        transparent = [[0.0, "rgba(0,0,0,0)"], [1.0, "rgba(0,0,0,0)"]]
        figure.add_trace(
            go.Heatmap(
                z=np.zeros((len(rows), len(columns)), dtype=np.uint8),
                # Cell centres in image pixel coordinates, so each cell covers its block.
                x=np.arange(len(columns)) * step + (step - 1) / 2,
                y=np.arange(len(rows)) * step + (step - 1) / 2,
                customdata=customdata,
                colorscale=transparent,
                showscale=False,
                hovertemplate=f"{lines}<br>x=%{{x:.0f}}, y=%{{y:.0f}}<extra></extra>",
            )
        )
        figure.data[0].hoverinfo = "skip"
    top = 40 if title else 0
    height = min(max(round(display_width * rgb.shape[0] / rgb.shape[1]), 240), 720) + top
    figure.update_layout(title=title, margin={"l": 0, "r": 0, "t": top, "b": 0}, height=height)
    figure.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    figure.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    return figure


def _label_names(labels: np.ndarray, label_map: LabelMap | None) -> np.ndarray:
    """Class ids -> names via a lookup over the distinct values (str array, same shape).

    A fixed-width str array, not an object array: Plotly copies and serialises it about twice as
    fast, which is most of the cost of an image figure sent to the browser.
    """
    values, inverse = np.unique(labels, return_inverse=True)
    if label_map is None:
        names = np.array([str(int(value)) for value in values], dtype=str)
    else:
        names = np.array([label_map.class_name(int(value)) for value in values], dtype=str)
    return names[inverse.reshape(labels.shape)]


def line_figure(
    series: Mapping[str, tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]],
    title: str | None = None,
    xaxis_title: str | None = None,
    yaxis_title: str | None = None,
    log_y: bool = False,
    height: int | None = None,
    uirevision: str | None = None,
    y_from_zero: bool = False,
    markers: Mapping[str, Mapping[str, Any]] | None = None,
) -> go.Figure:
    """Lines (training curves): ``{name: (x, y)}``, one trace per name; markers when short.

    ``height`` in px (Plotly's default when None); ``uirevision`` keeps the user's zoom while the figure is
    redrawn with new points (a live run); ``y_from_zero``: the y axis starts at 0 (linear axes); ``markers``:
    a series' marker style by name (e.g. ``{"this step": {"size": 14}}`` for one highlighted point).

    Returns:
        A figure with one ``go.Scatter`` per series.
    """
    import plotly.graph_objects as go

    figure = go.Figure()
    for name, (x_values, y_values) in series.items():
        x_array = np.asarray(x_values, dtype=np.float64).ravel()
        y_array = np.asarray(y_values, dtype=np.float64).ravel()
        if len(x_array) != len(y_array):
            raise ValueError(f"series {name!r} has {len(x_array)} x values but {len(y_array)} y values")
        figure.add_trace(
            go.Scatter(
                x=x_array,
                y=y_array,
                name=str(name),
                mode="lines+markers" if len(x_array) <= 30 else "lines",
                hovertemplate=f"{name}: %{{y:.4g}}<extra></extra>",
                marker=dict((markers or {}).get(name, {})),
            )
        )
    figure.update_layout(
        title=title,
        xaxis={"title": {"text": xaxis_title}},
        yaxis=value_axis(
            yaxis_title,
            log_y,
            np.concatenate([np.ravel(np.asarray(y, dtype=np.float64)) for _, y in series.values()] or [np.zeros(0)]),
        ),
        hovermode="x unified",
        margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
        height=height,
        uirevision=uirevision,
    )
    if y_from_zero:
        figure.update_yaxes(rangemode="tozero")
    return figure


def lr_schedule_figure(
    steps: Sequence[float] | np.ndarray,
    learning_rates: Sequence[float] | np.ndarray,
    title: str | None = "Learning rate schedule",
    log_y: bool = False,
    xaxis_title: str = "step",
    **layout: Any,
) -> go.Figure:
    """Learning rate against step (or seconds, for a run with a time budget): a :func:`line_figure` with one series
    (``layout``: its other options, e.g. ``height``)."""
    return line_figure(
        {"learning rate": (steps, learning_rates)},
        title=title,
        xaxis_title=xaxis_title,
        yaxis_title="learning rate",
        log_y=log_y,
        **layout,
    )


def object_size_figure(
    object_class: Sequence[int] | np.ndarray,
    object_area: Sequence[float] | np.ndarray,
    class_names: Sequence[str],
    colors: np.ndarray | Sequence[Sequence[int]],
    title: str | None = "Object size per class",
) -> go.Figure:
    """Box per class of object areas (connected components) on a log axis.

    Quartiles are computed here and sent precomputed (whiskers = smallest and largest object), so
    the figure stays small however many objects a dataset has.

    Args:
        object_class: (M,) class id of each object (``DatasetStats.object_class``).
        object_area: (M,) pixels of each object (``DatasetStats.object_area``).
        class_names: K names; every class keeps its place on the x axis.
        colors: (K, 3) uint8 RGB (``label_map.colors``).
        title: figure title.

    Returns:
        A figure with one ``go.Box`` per class that has objects, named after the class.
    """
    import plotly.graph_objects as go

    classes = np.asarray(object_class, dtype=np.int64).ravel()
    areas = np.asarray(object_area, dtype=np.float64).ravel()
    if classes.shape != areas.shape:
        raise ValueError(f"object_class has {classes.size} objects but object_area has {areas.size}")
    names = [str(name) for name in class_names]
    rgb = np.asarray(colors).reshape(-1, 3)
    check_class_count(len(rgb), names, "colors")
    boxes = []
    for class_id, name in enumerate(names):
        sizes = areas[classes == class_id]
        if sizes.size == 0:
            continue
        q1, median, q3 = np.percentile(sizes, [25, 50, 75])
        boxes.append(
            go.Box(
                x=[name],
                q1=[q1],
                median=[median],
                q3=[q3],
                lowerfence=[sizes.min()],
                upperfence=[sizes.max()],
                mean=[sizes.mean()],
                name=name,
                marker={"color": to_hex(rgb[class_id])},
                line={"color": "#333333", "width": 1},
                fillcolor=to_hex(rgb[class_id]),
            )
        )
    figure = go.Figure(boxes)  # one validation pass: add_trace per class costs ~5 ms each
    figure.update_layout(
        title=title,
        yaxis=value_axis("object area (pixels)", True, areas),
        xaxis={"tickangle": -45, "categoryorder": "array", "categoryarray": names},
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
    )
    return figure


def definitions_figure(scores: Sequence[DefinitionScore], highlight: str = APP_DEFINITION) -> go.Figure:
    """Horizontal bars of every applicable definition's value, the app's own definition highlighted."""
    import plotly.graph_objects as go

    shown = [score for score in scores if not math.isnan(score.value)][::-1]  # plotly draws bottom-up
    colors = [
        "#d55e00" if score.key == highlight else ("#0072b2" if score.level == "dataset" else "#56b4e9")
        for score in shown
    ]
    figure = go.Figure(
        go.Bar(
            x=[score.value for score in shown],
            y=[score.name for score in shown],
            orientation="h",
            marker={"color": colors},
            text=[f"{score.value:.3f}" for score in shown],
            textposition="outside",
            hovertemplate="%{y}: %{x:.4f}<extra></extra>",
        )
    )
    figure.update_layout(
        xaxis={"range": [0, 1.08], "title": {"text": "score", "standoff": 4}},
        height=70 + 28 * len(shown),  # room below the bars for the tick labels and the axis title, however few bars
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return figure
