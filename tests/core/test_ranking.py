"""Tests for seglab/ranking.py: the one worst-first order."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seglab.ranking import worst_first


def test_lowest_first_undefined_last_ties_by_index():
    scores = [0.5, math.nan, 0.1, 0.5, -math.inf, math.inf]
    indices = [7, 0, 3, 2, 9, 1]
    assert worst_first(scores, indices).tolist() == [4, 2, 3, 0, 5, 1]


def test_ties_follow_the_dataset_index_not_the_list_order():
    assert worst_first([0.2, 0.2, 0.2], [5, 1, 3]).tolist() == [1, 2, 0]


def test_a_gain_ranks_best_first_with_a_minus_sign():
    gain = np.array([0.1, math.nan, 0.4, -0.2])
    assert worst_first(-gain, np.arange(4)).tolist() == [2, 0, 3, 1]


def test_empty_and_mismatched_inputs():
    assert worst_first([], []).tolist() == []
    with pytest.raises(ValueError, match="one score per index"):
        worst_first([0.1, 0.2], [1])
