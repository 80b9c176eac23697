"""The one "worst first" order of seglab's image and object rankings (Failures, Compare, Label quality)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def worst_first(scores: Sequence[float] | np.ndarray, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """Positions that order ``scores`` lowest first, undefined (NaN) scores last, ties by ``indices`` (dataset order).

    Rank by a gain instead of a loss with ``worst_first(-gain, indices)``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    indices = np.asarray(indices)
    if scores.shape != indices.shape or scores.ndim != 1:
        raise ValueError(
            f"worst_first needs one score per index, got {scores.shape} scores and {indices.shape} indices"
        )
    undefined = np.isnan(scores)
    # lexsort's last key is the primary one: defined scores first, then the score, then the index.
    return np.lexsort((indices, np.where(undefined, 0.0, scores), undefined))
