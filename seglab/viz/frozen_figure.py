"""A Plotly figure built once and shown by many sessions: its JSON form computed once, not once per showing.

``st.plotly_chart`` turns the figure it is given into a dict (``figure.to_dict()``: a deep copy) and the
dict into JSON. An image figure's hover layer holds one string per cell, which Plotly's JSON encoder
cleans element by element in Python: ~0.1 s per showing, under the GIL, and a class of 8 sessions
showing the same figure paid it 8 times over (issue 10). A :class:`FrozenFigure` keeps the figure's
JSON text and hands out a dict parsed from it (plain lists, strings and numbers, which Plotly's encoder
turns back into JSON in one C call), so a figure shared through a cache costs its encoding once.
"""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio


class FrozenFigure(go.Figure):
    """A figure whose JSON form is computed once: to share one figure between sessions.

    The figure lives only in that JSON form, kept as text (a CamVid image figure's is ~0.1-0.7 MB; its
    objects took ~3 MB): :meth:`to_dict` parses it, a fresh dict every call (what ``st.plotly_chart``
    encodes again in one C call). As an object it keeps only its layout's width and height (what a caller
    sizing the chart reads); ``.data`` is empty. Changing it (``update_layout``, ``add_trace``) is not
    supported: :meth:`to_dict` would still return the original.
    """

    def __init__(self, figure: go.Figure) -> None:
        super().__init__(layout={"width": figure.layout.width, "height": figure.layout.height})
        self._json = pio.to_json(figure, validate=False, remove_uids=True)

    def to_dict(self) -> dict[str, Any]:
        """The figure as a JSON-native dict (lists, strings, numbers; NaN as None), parsed anew each call."""
        return json.loads(self._json)


def freeze(figure: go.Figure) -> FrozenFigure:
    """``figure`` as a :class:`FrozenFigure` (itself when it already is one)."""
    return figure if isinstance(figure, FrozenFigure) else FrozenFigure(figure)
