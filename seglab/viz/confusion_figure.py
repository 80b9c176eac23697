"""The confusion-matrix figure (Plotly): normalisations, cell labels, a size that keeps labels readable."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from seglab.metrics.scores import divide

if TYPE_CHECKING:
    import plotly.graph_objects as go


MAX_ANNOTATED_CLASSES = 25  # confusion matrices larger than this get no per-cell numbers


# -- Plotly figures ----------------------------------------------------------------------------
# Confusion-matrix normalisations and how the app names them.
NORMALIZATIONS = {
    "none": "pixel counts",
    "recall": "recall (rows sum to 1)",
    "precision": "precision (columns sum to 1)",
}


def check_class_count(length: int, class_names: Sequence[str], what: str) -> None:
    """Raise ValueError when ``what`` has another number of classes than ``class_names``."""
    if length != len(class_names):
        raise ValueError(f"{what} has {length} classes but {len(class_names)} class names were given")


def _share(counts: np.ndarray, axis: int) -> np.ndarray:
    """Counts divided by their row (axis=1) or column (axis=0) sums; NaN where the sum is 0."""
    totals = counts.sum(axis=axis, keepdims=True)
    return divide(counts, totals)


def confusion_matrix_figure(
    matrix: np.ndarray,
    class_names: Sequence[str],
    normalize: str = "none",
    title: str | None = None,
) -> go.Figure:
    """Heatmap of a confusion matrix.

    Args:
        matrix: (K, K) counts, rows = ground truth, columns = prediction (as
            ``ConfusionMatrix.matrix``); (K, K + 1) when a mapped source predicted "other" (its
            last column, drawn as an "other" column, never dropped).
        class_names: K names.
        normalize: ``"none"`` (counts), ``"recall"`` (each row divided by its sum: where the
            pixels of a true class went) or ``"precision"`` (each column divided by its sum: what
            a predicted class really was). Rows/columns with no pixels are NaN and drawn blank.
        title: figure title.

    Returns:
        A figure whose ``data[0]`` is the heatmap (``z`` = the shown values, (K, K)); hover shows
        ground truth, prediction, count and the shares of the row and the column. Cells carry
        their value as text when K <= 25.
    """
    import plotly.graph_objects as go

    counts = np.asarray(matrix, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[1] not in (counts.shape[0], counts.shape[0] + 1):
        raise ValueError(f"a confusion matrix must be (K, K) or (K, K + 1), got shape {counts.shape}")
    check_class_count(counts.shape[0], class_names, "the confusion matrix")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, got {normalize!r}")
    row_share = _share(counts, axis=1)
    column_share = _share(counts, axis=0)
    values = {"none": counts, "recall": row_share, "precision": column_share}[normalize]
    names = [str(name) for name in class_names]
    class_count = len(names)
    heatmap = go.Heatmap(
        z=values,
        x=confusion_columns(names, counts.shape[1]),
        y=names,
        customdata=np.stack([counts, row_share, column_share], axis=-1),
        colorscale="Blues",
        zmin=0.0,
        zmax=1.0 if normalize != "none" else None,
        hoverongaps=False,
        hovertemplate=(
            "GT: %{y}<br>Pred: %{x}<br>count: %{customdata[0]:,.0f}"
            "<br>share of GT row: %{customdata[1]:.1%}<br>share of predicted column: %{customdata[2]:.1%}"
            "<extra></extra>"
        ),
        colorbar={"title": {"text": "pixels" if normalize == "none" else normalize}},
    )
    labels = _cell_labels(values, as_count=normalize == "none")
    side, font_size, annotate = confusion_geometry(
        class_count, max((len(label) for label in labels.ravel()), default=1)
    )
    if annotate:
        heatmap.text = labels
        heatmap.texttemplate = "%{text}"
        heatmap.textfont = {"size": font_size}
    figure = go.Figure(heatmap)
    figure.update_layout(
        title=title,
        height=side,
        xaxis={"title": {"text": "Prediction"}, "tickangle": -45, "constrain": "domain", "showgrid": False},
        yaxis={"title": {"text": "Ground truth"}, "autorange": "reversed", "scaleanchor": "x", "showgrid": False},
        plot_bgcolor="white",  # blank (NaN) rows and columns read as "no data", not as a colour
        margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
    )
    return figure


def confusion_columns(class_names: Sequence[str], columns: int) -> list[str]:
    """Column names of a confusion matrix: the classes, plus "other" for a (K, K + 1) matrix."""
    names = [str(name) for name in class_names]
    return names + ["other"] if columns == len(names) + 1 else names


CELL_TEXT_WIDTH = 0.62  # width of one digit of plotly's default font, in font sizes
CONFUSION_AXES_PX = 180  # room around the square for the title, tick labels (rotated) and axis titles
MAX_CONFUSION_PX = 1000


def confusion_geometry(class_count: int, longest_label: int) -> tuple[int, int, bool]:
    """Figure height, cell font size and whether cells get text, for a ``class_count`` confusion matrix.

    Cells are made wide enough for their longest label (``longest_label`` characters) plus padding, at
    least 60 px for small matrices so the square uses the page; when even a 1000 px figure cannot fit
    the labels (or beyond :data:`MAX_ANNOTATED_CLASSES`), cells carry no text and hover gives the values.
    """
    font_size = 12 if class_count <= 12 else 9
    label_px = CELL_TEXT_WIDTH * font_size * longest_label + 10
    cell = max(label_px, 60 if class_count <= 12 else 24)
    side = CONFUSION_AXES_PX + cell * class_count
    if side > MAX_CONFUSION_PX:
        cell = (MAX_CONFUSION_PX - CONFUSION_AXES_PX) / class_count
        side = MAX_CONFUSION_PX
    annotate = class_count <= MAX_ANNOTATED_CLASSES and cell >= label_px
    return int(round(max(side, 360))), font_size, annotate


def _cell_labels(values: np.ndarray, as_count: bool) -> np.ndarray:
    """Short per-cell text: compact counts (``12.3k``) or fractions (``0.93``); blank for NaN."""
    flat = values.ravel()
    if as_count:
        labels = [_compact_count(v) for v in flat]
    else:
        labels = ["" if math.isnan(v) else "0" if v == 0 else f"{v:.2f}" for v in flat]
    return np.array(labels, dtype=object).reshape(values.shape)


def _compact_count(value: float) -> str:
    """At most four characters: ``8``, ``950``, ``9.7k``, ``93k``, ``1.1M`` (hover has the exact count)."""
    if math.isnan(value):
        return ""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            scaled = value / limit
            return f"{scaled:.0f}{suffix}" if abs(scaled) >= 10 else f"{scaled:.2g}{suffix}"
    return f"{value:.0f}"


def clickable_confusion_figure(
    confusion: np.ndarray, class_names: Sequence[str], normalize: str = "none", title: str | None = None
) -> go.Figure:
    """:func:`confusion_matrix_figure` whose cells can be clicked in ``st.plotly_chart(on_select=...)``.

    Plotly cannot select heatmap cells (Streamlit returns an empty selection for them), so an
    invisible marker sits on every cell and carries the hover text; a click selects that marker
    (``x`` = predicted class name, ``y`` = ground-truth class name) and outlines its cell.
    """
    import plotly.graph_objects as go

    figure = confusion_matrix_figure(confusion, class_names, normalize=normalize, title=title)
    heatmap = figure.data[0]
    names = [str(name) for name in class_names]
    columns = list(heatmap.x)  # the classes, and "other" for a mapped source's (K, K + 1) matrix
    figure.add_trace(
        go.Scatter(
            x=np.tile(columns, len(names)),
            y=np.repeat(names, len(columns)),
            customdata=np.asarray(heatmap.customdata).reshape(len(names) * len(columns), -1),
            mode="markers",
            marker={"symbol": "square-open", "size": 18, "color": "#d55e00", "line": {"width": 3}, "opacity": 0.0},
            selected={"marker": {"opacity": 1.0}},
            unselected={"marker": {"opacity": 0.0}},
            hovertemplate=heatmap.hovertemplate,
            showlegend=False,
        )
    )
    heatmap.hoverinfo = "skip"
    heatmap.hovertemplate = None
    figure.update_layout(clickmode="event+select", hovermode="closest")
    return figure
