"""A figure shown by many sessions is encoded once: seglab.viz.frozen_figure, and the figure options that let a
page build a panel whole (so it can be shared)."""

from __future__ import annotations

import json

import numpy as np
import plotly.io as pio
import pytest
from plotly.io import _json as plotly_json
from plotly.tools import return_figure_from_figure_or_data

from seglab.data.label_map import generic_label_map
from seglab.viz import image_figure, line_figure
from seglab.viz.frozen_figure import FrozenFigure, freeze


def shown_json(figure) -> dict:
    """What ``st.plotly_chart`` sends for ``figure`` (its own two steps), parsed."""
    as_dict = return_figure_from_figure_or_data(figure, validate_figure=True)
    return json.loads(pio.to_json(as_dict, validate=False))


def hover_figure(seed: int = 0):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, (40, 60), dtype=np.uint8)
    label_map = generic_label_map(3)
    return image_figure(rgb, hover_labels={"GT": labels, "Pred": labels[::-1]}, label_map=label_map)


def test_a_frozen_figure_sends_what_the_original_sends() -> None:
    for figure in (hover_figure(), line_figure({"loss": ([0, 1, 2], [1.0, float("nan"), 0.25])}, title="<b>t</b>")):
        frozen = freeze(figure)
        assert isinstance(frozen, FrozenFigure)
        assert shown_json(frozen) == shown_json(figure)
        assert freeze(frozen) is frozen
        assert frozen.layout.height == figure.layout.height  # what sizes the chart


def test_showing_a_frozen_figure_skips_plotlys_element_by_element_cleaning(monkeypatch: pytest.MonkeyPatch) -> None:
    figure = hover_figure()
    frozen = freeze(figure)

    def cleaning(*args, **kwargs):
        raise AssertionError("the figure was cleaned element by element")

    monkeypatch.setattr(plotly_json, "clean_to_json_compatible", cleaning)
    shown_json(frozen)  # plain lists and strings: orjson encodes them in one call
    with pytest.raises(AssertionError, match="element by element"):
        shown_json(figure)  # the hover layer's strings: what every session paid before


def test_a_caller_changing_its_dict_does_not_change_the_frozen_figure() -> None:
    frozen = freeze(hover_figure())
    first = frozen.to_dict()
    original = first["data"][1]["customdata"][0][0][0]
    first["data"][1]["customdata"][0][0][0] = "changed"  # deep inside: every caller gets its own dict
    first["data"][0].pop("uid", None)
    first.pop("layout")
    again = frozen.to_dict()
    assert again["data"][1]["customdata"][0][0][0] == original and "layout" in again


def test_line_figure_takes_a_panels_whole_layout() -> None:
    """Everything a page sets on a curve panel is an argument, so the panel can be shared (built whole)."""
    figure = line_figure({"loss": ([0, 1], [2.0, 1.0])}, height=250, uirevision="run-a", y_from_zero=True)
    assert (figure.layout.height, figure.layout.uirevision, figure.layout.yaxis.rangemode) == (250, "run-a", "tozero")
    plain = line_figure({"loss": ([0, 1], [2.0, 1.0])})
    assert (plain.layout.height, plain.layout.uirevision, plain.layout.yaxis.rangemode) == (None, None, None)


def test_line_figure_styles_one_series_markers() -> None:
    figure = line_figure({"curve": ([0, 1], [1.0, 0.5]), "now": ([1], [0.5])}, markers={"now": {"size": 14}})
    assert figure.data[1].marker.size == 14 and figure.data[0].marker.size is None
