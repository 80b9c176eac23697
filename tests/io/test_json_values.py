"""Tests for seglab/io/json_values.py: the one NaN/inf -> null conversion."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from seglab.io.json_values import json_default, json_number, sanitize_for_json


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf, np.float32("nan"), np.float64("inf")])
def test_undefined_numbers_become_none(value):
    assert json_number(value) is None


@pytest.mark.parametrize("value", [0, 3, 0.25, np.float32(0.5), np.int64(7), torch.tensor(1.5)])
def test_defined_numbers_become_plain_floats(value):
    result = json_number(value)
    assert type(result) is float and result == float(value)


def test_sanitize_walks_containers_and_the_result_is_strict_json():
    value = {"miou": math.nan, "iou": [0.5, math.inf, (1.0, -math.inf)], "name": "x", "step": 3}
    clean = sanitize_for_json(value)
    assert clean == {"miou": None, "iou": [0.5, None, [1.0, None]], "name": "x", "step": 3}
    json.dumps(clean, allow_nan=False)


def test_json_default_turns_numpy_and_torch_values_into_plain_ones():
    text = json.dumps({"a": np.int64(2), "b": np.arange(3), "c": torch.tensor([1, 2])}, default=json_default)
    assert json.loads(text) == {"a": 2, "b": [0, 1, 2], "c": [1, 2]}
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        json.dumps(object(), default=json_default)
