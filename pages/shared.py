"""What every session would compute alike, computed once: figures, pictures and results shared by content.

A class opening a page asks for the same figure 8 or 30 times; Plotly's per-showing copy and element-by-element
JSON encoding, Pillow's encoding of a picture and a page's own numpy or torch work were most of a page's server
time under a class (issue 10). These functions key a named, pure function's result on the content of its
arguments (:func:`content_key`) in ``st.cache_resource``, so it is computed once and shared by every session:
what they return is read-only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st

from seglab.analysis.gallery import encode_picture
from seglab.viz.frozen_figure import freeze

FIGURES_KEPT = 128  # a frozen image figure is its JSON text: ~0.1-0.7 MB
PICTURES_KEPT = 512  # encoded pictures of a few to a few hundred kB
RESULTS_KEPT = 16


def content_key(value: Any) -> Any:
    """``value`` with every numpy array in it (in tuples, lists and dict values) replaced by its shape, dtype and a
    digest of all its bytes: a cache key that tells apart arrays Streamlit's own hashing would not (it samples
    arrays of a million elements or more)."""
    if isinstance(value, np.ndarray):
        return ("ndarray", value.shape, value.dtype.str, hashlib.blake2b(np.ascontiguousarray(value).data).hexdigest())
    if isinstance(value, list | tuple):
        return (type(value).__name__, *(content_key(item) for item in value))
    if isinstance(value, dict):
        return ("dict", *((key, content_key(item)) for key, item in value.items()))
    return value


def _builder_name(build: Callable[..., Any]) -> str:
    """``build``'s qualified name, refused when it cannot stand for the function in a cache key."""
    name = f"{build.__module__}.{build.__qualname__}"
    if "<" in name or build.__module__ == "__main__":  # a lambda, a local function or a page's: keys could clash
        raise ValueError(f"a shared computation needs a named module-level function, got {name}")
    return name


@st.cache_resource(max_entries=FIGURES_KEPT, show_spinner=False)
def _shared_figure(name: str, key: Any, _build: Callable[..., Any], _args: tuple, _kwargs: dict[str, Any]) -> Any:
    return freeze(_build(*_args, **_kwargs))


@st.cache_resource(max_entries=RESULTS_KEPT, show_spinner=False)
def _shared_result(name: str, key: Any, _build: Callable[..., Any], _args: tuple, _kwargs: dict[str, Any]) -> Any:
    return _build(*_args, **_kwargs)


def shared_result(build: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``build(*args, **kwargs)`` computed once for every session asking with equal arguments (by content, see
    :func:`content_key`; ``build`` a named seglab function of its arguments alone). The result is shared by
    every session: read it, never change it."""
    return _shared_result(_builder_name(build), content_key((args, kwargs)), build, args, kwargs)


def shared_figure(build: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``build(*args, **kwargs)`` as a ``seglab.viz.frozen_figure.FrozenFigure``, built and encoded once for every
    session asking with equal arguments (a class opening a page showed the same figure 8 or 30 times over).

    The key is ``build``'s qualified name and the arguments' contents (:func:`content_key`), so ``build`` must
    be a named function of its arguments alone, and the figure must not be changed afterwards (build it
    whole, layout included).
    """
    return _shared_figure(_builder_name(build), content_key((args, kwargs)), build, args, kwargs)


@st.cache_resource(max_entries=PICTURES_KEPT, show_spinner=False)
def _encoded_picture(key: Any, output_format: str, _picture: np.ndarray) -> bytes:
    return encode_picture(_picture, output_format)


def encoded_picture(picture: np.ndarray, output_format: str = "JPEG") -> bytes:
    """A uint8 picture as ``st.image`` would encode it (JPEG at quality 100, or PNG: the same bytes), encoded
    once for every session showing the same pixels."""
    return _encoded_picture(content_key(picture), output_format.upper(), picture)
