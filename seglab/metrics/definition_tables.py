"""The metric definitions arranged for reading: the app's score beside the lowest and highest, the definitions of
one level as table rows, and the per-class breakdown in a chosen order with its largest gaps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from seglab.errors import ConfigError
from seglab.metrics.class_breakdown import AGREEMENT_TOLERANCE, ClassBreakdown
from seglab.metrics.definitions import APP_DEFINITION, DefinitionScore

#: Which definitions a table shows: key -> label.
LEVELS = {"all": "all definitions", "dataset": "dataset-level only", "image-wise": "image-wise only"}
#: How the per-class breakdown is ordered: key -> label.
CLASS_ORDERS = {"gap": "largest gap first", "class": "class order", "images": "fewest images first"}


@dataclass(frozen=True)
class Extremes:
    """This app's definition and the lowest and highest of the definitions that apply."""

    app: DefinitionScore
    lowest: DefinitionScore
    highest: DefinitionScore


def extremes(scores: Sequence[DefinitionScore]) -> Extremes:
    """The app's score (:data:`APP_DEFINITION`) and the lowest and highest applicable (non-NaN) scores; the first
    of equal values."""
    applicable = [score for score in scores if not math.isnan(score.value)]
    app = next((score for score in scores if score.key == APP_DEFINITION), None)
    if app is None or not applicable:
        raise ConfigError(f"the scores lack this app's definition ({APP_DEFINITION}) or any applicable one")
    return Extremes(
        app=app,
        lowest=min(applicable, key=lambda score: score.value),
        highest=max(applicable, key=lambda score: score.value),
    )


def definition_rows(scores: Sequence[DefinitionScore], level: str = "all") -> list[dict[str, Any]]:
    """Table rows of the definitions of ``level`` (a :data:`LEVELS` key): the name, whether it is this app's,
    the value as text ("0.734", "n/a" where it does not apply), level, formula, users and note."""
    if level not in LEVELS:
        raise ConfigError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    rows = []
    for score in scores:
        if level != "all" and score.level != level:
            continue
        row = {"definition": score.name, "this app": score.key == APP_DEFINITION, **score.to_row()}
        row["value"] = "n/a" if math.isnan(score.value) else f"{score.value:.3f}"
        rows.append(row)
    return rows


def _gap_first(row: ClassBreakdown) -> float:
    return -abs(row.gap) if not math.isnan(row.gap) else math.inf


def order_classes(rows: Sequence[ClassBreakdown], order: str = "gap") -> list[ClassBreakdown]:
    """The breakdown in a :data:`CLASS_ORDERS` order: largest |gap| first (undefined gaps last), class order, or
    fewest images holding the class first (ties keep class order)."""
    if order == "gap":
        return sorted(rows, key=_gap_first)
    if order == "class":
        return list(rows)
    if order == "images":
        return sorted(rows, key=lambda row: row.images_with_class)
    raise ConfigError(f"order must be one of {', '.join(CLASS_ORDERS)}, got {order!r}")


def largest_gaps(
    rows: Sequence[ClassBreakdown], count: int = 3, tolerance: float = AGREEMENT_TOLERANCE
) -> list[ClassBreakdown]:
    """Up to ``count`` classes whose image-wise and dataset-level IoU differ by at least ``tolerance``, largest
    first (empty when the two views agree for every class)."""
    return [row for row in order_classes(rows, "gap") if not math.isnan(row.gap) and abs(row.gap) >= tolerance][:count]
