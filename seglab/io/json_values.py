"""Numbers for strict JSON: the one place NaN and infinity become ``None`` (``null``).

seglab's files (run events, metrics, caches, the competition database) are strict JSON, which has
no NaN or infinity; a metric that is undefined (a class absent from ground truth and prediction) is
written as ``null`` and read back as NaN where a float is needed.
"""

from __future__ import annotations

import math
from typing import Any


def json_number(value: Any) -> float | None:
    """``value`` as a float; ``None`` for ``None``, NaN and ±infinity. Accepts numpy and torch scalars."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def sanitize_for_json(value: Any) -> Any:
    """Replace NaN/inf floats by ``None`` recursively in dicts, lists and tuples (tuples become lists)."""
    if isinstance(value, float):
        return json_number(value)
    if isinstance(value, dict):
        return {k: sanitize_for_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize_for_json(v) for v in value]
    return value


def json_default(value: Any) -> Any:
    """``default=`` for :func:`json.dumps`: numpy/torch scalars and arrays as plain numbers and lists."""
    if hasattr(value, "tolist"):  # numpy/torch scalars and arrays alike (.item() fails on arrays)
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
