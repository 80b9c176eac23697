"""What every session would compute alike is computed once (pages.shared): figures, pictures and results
shared by the content of their arguments."""

from __future__ import annotations

import numpy as np
import pytest

from pages import shared
from seglab.viz import image_figure, line_figure


def test_shared_figure_builds_once_per_content() -> None:
    shared._shared_figure.clear()
    rgb = np.zeros((20, 30, 3), dtype=np.uint8)
    first = shared.shared_figure(image_figure, rgb, title="a")
    assert shared.shared_figure(image_figure, rgb.copy(), title="a") is first  # equal arrays: the same figure
    other = rgb.copy()
    other[0, 0] = 255
    assert shared.shared_figure(image_figure, other, title="a") is not first  # other pixels: another figure
    assert shared.shared_figure(image_figure, rgb, title="b") is not first
    assert shared.shared_figure(line_figure, {"x": ([0], [1])}) is not first
    with pytest.raises(ValueError, match="a named module-level function"):
        shared.shared_figure(lambda: image_figure(rgb))

    def page_function() -> None:  # what a page script defines: its module is __main__ on every page
        return None

    page_function.__module__, page_function.__qualname__ = "__main__", "page_function"
    with pytest.raises(ValueError, match="a named module-level function"):
        shared.shared_figure(page_function)


def test_content_key_tells_apart_arrays_streamlit_would_sample() -> None:
    big = np.zeros((1200, 1000), dtype=np.uint8)  # over a million elements: Streamlit hashes a sample of them
    other = big.copy()
    other[3, 4] = 1
    assert shared.content_key(big) != shared.content_key(other)
    assert shared.content_key(({"a": big}, [big])) == shared.content_key(({"a": big.copy()}, [big.copy()]))
    assert shared.content_key(big) != shared.content_key(big.reshape(1000, 1200))  # same bytes, other shape
    assert shared.content_key((1, "x", None)) == ("tuple", 1, "x", None)


def test_encoded_picture_is_what_st_image_would_send_encoded_once() -> None:
    from streamlit.elements.lib.image_utils import _np_array_to_bytes

    shared._encoded_picture.clear()
    rng = np.random.default_rng(1)
    picture = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    for output_format in ("JPEG", "PNG"):
        encoded = shared.encoded_picture(picture, output_format)
        assert encoded == _np_array_to_bytes(picture, output_format)  # the same bytes, so the same media URL
        assert shared.encoded_picture(picture.copy(), output_format.lower()) is encoded  # encoded once
    changed = picture.copy()
    changed[0, 0] ^= 1
    assert shared.encoded_picture(changed, "PNG") != shared.encoded_picture(picture, "PNG")


def test_shared_result_computes_once_per_content() -> None:
    shared._shared_result.clear()
    values = np.arange(6.0)
    first = shared.shared_result(np.cumsum, values)
    assert shared.shared_result(np.cumsum, values.copy()) is first
    assert shared.shared_result(np.cumsum, values + 1) is not first
    with pytest.raises(ValueError, match="a named module-level function"):
        shared.shared_result(lambda: values)
