"""Figures shared by many sessions: encoded once (seglab.viz.frozen_figure), cached per content (pages.loaders)."""

from __future__ import annotations

import json

import numpy as np
import plotly.io as pio
import pytest
from plotly.io import _json as plotly_json
from plotly.tools import return_figure_from_figure_or_data

from pages import loaders
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
        assert frozen.layout.height == figure.layout.height  # read back like any figure


def test_showing_a_frozen_figure_skips_plotlys_element_by_element_cleaning(monkeypatch: pytest.MonkeyPatch) -> None:
    figure = hover_figure()
    frozen = freeze(figure)

    def cleaning(*args, **kwargs):
        raise AssertionError("the figure was cleaned element by element")

    monkeypatch.setattr(plotly_json, "clean_to_json_compatible", cleaning)
    shown_json(frozen)  # plain lists and strings: orjson encodes them in one call
    with pytest.raises(AssertionError, match="element by element"):
        shown_json(figure)  # the hover layer's strings: what every session paid before


def test_a_caller_dropping_keys_does_not_change_the_frozen_figure() -> None:
    frozen = freeze(hover_figure())
    first = frozen.to_dict()
    first["data"][1].pop("customdata")
    first.pop("layout")
    again = frozen.to_dict()
    assert "customdata" in again["data"][1] and "layout" in again


def test_shared_figure_builds_once_per_content() -> None:
    loaders._shared_figure.clear()
    rgb = np.zeros((20, 30, 3), dtype=np.uint8)
    first = loaders.shared_figure(image_figure, rgb, title="a")
    assert loaders.shared_figure(image_figure, rgb.copy(), title="a") is first  # equal arrays: the same figure
    other = rgb.copy()
    other[0, 0] = 255
    assert loaders.shared_figure(image_figure, other, title="a") is not first  # other pixels: another figure
    assert loaders.shared_figure(image_figure, rgb, title="b") is not first
    assert loaders.shared_figure(line_figure, {"x": ([0], [1])}) is not first
    with pytest.raises(ValueError, match="a named module-level function"):
        loaders.shared_figure(lambda: image_figure(rgb))

    def page_function() -> None:  # what a page script defines: its module is __main__ on every page
        return None

    page_function.__module__, page_function.__qualname__ = "__main__", "page_function"
    with pytest.raises(ValueError, match="a named module-level function"):
        loaders.shared_figure(page_function)


def test_line_figure_takes_a_panels_whole_layout() -> None:
    """Everything a page sets on a curve panel is an argument, so the panel can be shared (built whole)."""
    figure = line_figure({"loss": ([0, 1], [2.0, 1.0])}, height=250, uirevision="run-a", y_from_zero=True)
    assert (figure.layout.height, figure.layout.uirevision, figure.layout.yaxis.rangemode) == (250, "run-a", "tozero")
    plain = line_figure({"loss": ([0, 1], [2.0, 1.0])})
    assert (plain.layout.height, plain.layout.uirevision, plain.layout.yaxis.rangemode) == (None, None, None)


def test_line_figure_styles_one_series_markers() -> None:
    figure = line_figure({"curve": ([0, 1], [1.0, 0.5]), "now": ([1], [0.5])}, markers={"now": {"size": 14}})
    assert figure.data[1].marker.size == 14 and figure.data[0].marker.size is None


def test_content_key_tells_apart_arrays_streamlit_would_sample() -> None:
    big = np.zeros((1200, 1000), dtype=np.uint8)  # over a million elements: Streamlit hashes a sample of them
    other = big.copy()
    other[3, 4] = 1
    assert loaders.content_key(big) != loaders.content_key(other)
    assert loaders.content_key(({"a": big}, [big])) == loaders.content_key(({"a": big.copy()}, [big.copy()]))
    assert loaders.content_key(big) != loaders.content_key(big.reshape(1000, 1200))  # same bytes, other shape
    assert loaders.content_key((1, "x", None)) == ("tuple", 1, "x", None)


def test_encoded_picture_is_what_st_image_would_send_encoded_once() -> None:
    from streamlit.elements.lib.image_utils import _np_array_to_bytes

    loaders._encoded_picture.clear()
    rng = np.random.default_rng(1)
    picture = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    for output_format in ("JPEG", "PNG"):
        encoded = loaders.encoded_picture(picture, output_format)
        assert encoded == _np_array_to_bytes(picture, output_format)  # the same bytes, so the same media URL
        assert loaders.encoded_picture(picture.copy(), output_format.lower()) is encoded  # encoded once
    changed = picture.copy()
    changed[0, 0] ^= 1
    assert loaders.encoded_picture(changed, "PNG") != loaders.encoded_picture(picture, "PNG")


def test_shared_result_computes_once_per_content() -> None:
    loaders._shared_result.clear()
    values = np.arange(6.0)
    first = loaders.shared_result(np.cumsum, values)
    assert loaders.shared_result(np.cumsum, values.copy()) is first
    assert loaders.shared_result(np.cumsum, values + 1) is not first
    with pytest.raises(ValueError, match="a named module-level function"):
        loaders.shared_result(lambda: values)
