"""A Plotly figure built once and shown by many sessions: its JSON form computed once, not once per showing.

``st.plotly_chart`` turns the figure it is given into a dict (``figure.to_dict()``: a deep copy) and the
dict into JSON. An image figure's hover layer holds one string per cell, which Plotly's JSON encoder
cleans element by element in Python: ~0.1 s per showing, under the GIL, and a class of 8 sessions
showing the same figure paid it 8 times over (issue 10). A :class:`FrozenFigure` keeps the figure's
JSON-native dict (plain lists, strings and numbers, which orjson encodes in one C call) and hands out a
cheap copy of it, so a figure shared through a cache costs its encoding once.
"""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio


class FrozenFigure(go.Figure):
    """A read-only copy of a figure whose :meth:`to_dict` is computed once (a figure to share between sessions).

    Changing it after it is made (``update_layout``, ``add_trace``) is not supported: :meth:`to_dict` would
    still return the original. Traces and layout read back equal the original's after a JSON round trip
    (numpy arrays become lists, NaN becomes None), exactly what the browser receives either way.
    """

    def __init__(self, figure: go.Figure) -> None:
        super().__init__(figure)
        self._plain: dict[str, Any] = json.loads(pio.to_json(figure, validate=False, remove_uids=True))

    def to_dict(self) -> dict[str, Any]:
        """The figure as a JSON-native dict; its top level and traces are fresh copies (a caller may drop keys
        there, as ``plotly.io.to_json`` drops trace ``uid`` s), the values inside are shared: do not modify them."""
        plain = dict(self._plain)
        plain["data"] = [dict(trace) for trace in self._plain.get("data", [])]
        return plain


def freeze(figure: go.Figure) -> FrozenFigure:
    """``figure`` as a :class:`FrozenFigure` (itself when it already is one)."""
    return figure if isinstance(figure, FrozenFigure) else FrozenFigure(figure)
