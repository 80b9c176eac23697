"""Class mapping: a source's classes -> the dataset's classes, with "other" for the rest.

A Cityscapes model evaluated on CamVid predicts 19 classes, the data has 11. A :class:`ClassMapping`
sends every source class to one dataset class id or to *other*. Unmapped source classes are never
dropped: their pixels keep a label of their own, :func:`unassigned_label`, which evaluation counts
as a false negative of the ground-truth class and as no class's false positive (the extra
"other" prediction column of the confusion matrix, MMSegmentation's treatment of predictions
outside the class range). Probabilities are mapped by summing the source classes of each
dataset class; the mass of unmapped classes is the *other* probability.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seglab.data.label_map import LabelMap
from seglab.errors import SourceError

OTHER = "other"


def unassigned_label(num_classes: int, ignore_index: int) -> int:
    """The label value that marks "other" pixels in mapped predictions: K, or K + 1 when K is the ignore index."""
    value = num_classes if num_classes != ignore_index else num_classes + 1
    if value > 255:
        raise SourceError(f"a dataset with {num_classes} classes leaves no uint8 label for 'other' predictions")
    return value


def normalize_name(name: str) -> str:
    """Case-insensitive name key that also ignores spaces, '_' and '-' ("Traffic light" == "traffic_light")."""
    return re.sub(r"[\s_\-]+", "", str(name)).casefold()


@dataclass(frozen=True)
class MappedPrediction:
    """A prediction in the dataset's classes."""

    labels: np.ndarray  # (H, W) uint8 dataset class ids, or the unassigned label for "other"
    confidence: np.ndarray  # (H, W) float32 probability of the chosen label (1 without probabilities)
    probabilities: np.ndarray | None  # (K, H, W) float32 per dataset class (rows need not sum to 1)
    other_probability: np.ndarray | None  # (H, W) float32 mass of unmapped source classes, None if none


@dataclass(frozen=True)
class ClassMapping:
    """Source class ``i`` -> dataset class ``targets[i]`` (``None`` = other).

    ``source_names`` are the source's classes (generated ``class_0..`` when undeclared),
    ``dataset_names`` the dataset's. Build one with :func:`resolve_mapping`.
    """

    source_names: tuple[str, ...]
    dataset_names: tuple[str, ...]
    targets: tuple[int | None, ...]
    ignore_index: int = 255
    how: str = "identity"  # identity | by id | by name | declared: how it was made, for reports

    @classmethod
    def identity(cls, label_map: LabelMap) -> ClassMapping:
        """Every class to itself (a seglab checkpoint on its own data)."""
        names = tuple(label_map.names)
        return cls(names, names, tuple(range(len(names))), label_map.ignore_index, "identity")

    @property
    def is_identity(self) -> bool:
        return len(self.source_names) == len(self.dataset_names) and self.targets == tuple(
            range(len(self.dataset_names))
        )

    @property
    def unmapped(self) -> list[str]:
        """Source classes counted as other."""
        return [name for name, target in zip(self.source_names, self.targets, strict=True) if target is None]

    @property
    def has_other(self) -> bool:
        return any(target is None for target in self.targets)

    @property
    def other_label(self) -> int:
        return unassigned_label(len(self.dataset_names), self.ignore_index)

    @property
    def unpredictable(self) -> list[str]:
        """Dataset classes no source class maps to: the source can never predict them."""
        reached = {target for target in self.targets if target is not None}
        return [name for index, name in enumerate(self.dataset_names) if index not in reached]

    def to_dict(self) -> dict[str, str | None]:
        """``{source class: dataset class or None}``: the JSON form of description files."""
        return {
            name: (self.dataset_names[target] if target is not None else None)
            for name, target in zip(self.source_names, self.targets, strict=True)
        }

    def key(self) -> str:
        """Canonical string for cache keys."""
        return json.dumps({"source": self.source_names, "targets": self.targets}, default=str)

    def summary(self) -> list[str]:
        """Lines telling how classes were matched, what counts as other and what can never be predicted."""
        if self.how == "identity":
            return []
        renamed = [
            f"{source}->{self.dataset_names[target]}"
            for source, target in zip(self.source_names, self.targets, strict=True)
            if target is not None and normalize_name(source) != normalize_name(self.dataset_names[target])
        ]
        lines = [
            f"class mapping ({self.how}): " + (", ".join(renamed) if renamed else "every mapped class matched by name")
        ]
        if self.unmapped:
            lines.append(
                f"{len(self.unmapped)} source class(es) count as '{OTHER}' (a miss of the true class, no class's "
                f"false positive): {', '.join(self.unmapped)}"
            )
        if self.unpredictable:
            lines.append(f"dataset classes no source class maps to: {', '.join(self.unpredictable)}")
        return lines

    # -- applying ------------------------------------------------------------------------------------
    def lookup_table(self) -> np.ndarray:
        """(K_source,) uint8: dataset label of every source class."""
        other = self.other_label
        return np.array([other if target is None else target for target in self.targets], dtype=np.uint8)

    def apply(
        self, labels: np.ndarray, probabilities: np.ndarray | None, *, what: str = "prediction"
    ) -> MappedPrediction:
        """Map one source prediction (see :class:`seglab.sources.base.SourcePrediction`) into dataset classes."""
        labels = np.asarray(labels)
        num_source = len(self.source_names)
        if labels.dtype.kind not in "iub" or labels.ndim != 2:
            raise SourceError(f"{what}: labels must be an (H, W) integer array, got {labels.dtype} {labels.shape}")
        if labels.size and int(labels.max()) >= num_source:
            # A void value (255, or the dataset's ignore index) that is no class of the source means "no class".
            void = (labels >= num_source) & ((labels == 255) | (labels == self.ignore_index))
            labels = np.where(void, -1, labels) if void.any() else labels
        if labels.size and int(labels.max()) >= num_source:
            bad = np.unique(labels[labels >= num_source])[:8].tolist()
            raise SourceError(
                f"{what} holds class ids {bad} but the source has {num_source} classes; declare the source's "
                "class_names (all of them, in output order) in its description"
            )
        if probabilities is not None and probabilities.shape != (num_source, *labels.shape):
            raise SourceError(
                f"{what}: probabilities have shape {probabilities.shape}, expected ({num_source}, {labels.shape[0]}, "
                f"{labels.shape[1]}) for {num_source} source classes"
            )
        if self.is_identity and not (labels.size and int(labels.min()) < 0):
            mapped = labels.astype(np.uint8, copy=False)
            dataset_probabilities, other_probability = probabilities, None
        else:
            table = self.lookup_table()
            mapped = np.where(labels < 0, self.other_label, table[np.clip(labels, 0, None)]).astype(np.uint8)
            dataset_probabilities, other_probability = self._map_probabilities(probabilities)
        confidence = _confidence(mapped, dataset_probabilities, other_probability, self.other_label)
        return MappedPrediction(mapped, confidence, dataset_probabilities, other_probability)

    def _map_probabilities(self, probabilities: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        if probabilities is None:
            return None, None
        num_classes = len(self.dataset_names)
        mapped = np.zeros((num_classes, *probabilities.shape[1:]), dtype=np.float32)
        other = np.zeros(probabilities.shape[1:], dtype=np.float32) if self.has_other else None
        for source_index, target in enumerate(self.targets):
            if target is None:
                other += probabilities[source_index]
            else:
                mapped[target] += probabilities[source_index]
        return mapped, other


def _confidence(
    labels: np.ndarray, probabilities: np.ndarray | None, other: np.ndarray | None, other_label: int
) -> np.ndarray:
    """Probability of each pixel's chosen label; 1 where the source gave labels only."""
    if probabilities is None:
        return np.ones(labels.shape, dtype=np.float32)
    num_classes = probabilities.shape[0]
    picked = np.take_along_axis(probabilities, np.minimum(labels, num_classes - 1)[None].astype(np.intp), axis=0)[0]
    if other is not None:
        picked = np.where(labels == other_label, other, picked)
    elif labels.size and int(labels.max()) >= num_classes:  # "no class" pixels of a prediction file
        picked = np.where(labels >= num_classes, 0.0, picked)
    return picked.astype(np.float32, copy=False)


DeclaredMapping = Mapping[str, Any]


def resolve_mapping(
    source_names: Sequence[str] | None,
    num_source_classes: int | None,
    label_map: LabelMap,
    declared: ClassMapping | DeclaredMapping | None = None,
    *,
    source: str = "the source",
) -> ClassMapping:
    """The mapping from a source's classes to ``label_map``'s.

    Rules, in order:

    1. ``declared`` (``{source class: dataset class name or id, or None/"other"}``) decides for the
       classes it lists; the others are matched by name (case-insensitive), else count as other.
    2. Undeclared source classes (``source_names`` is None): the dataset's order is assumed, which
       needs the same number of classes (or an unknown number: labels are then checked per image).
    3. Same names (case-insensitive): identity.
    4. Otherwise classes are matched by name; with no name in common but the same number of classes
       the dataset's order is assumed (reported); with neither, :class:`SourceError` asks for a mapping.
    """
    dataset_names = tuple(label_map.names)
    ignore = label_map.ignore_index
    if isinstance(declared, ClassMapping):
        if declared.dataset_names != dataset_names:
            raise SourceError(
                f"the mapping of {source} is for classes {list(declared.dataset_names)}, not this dataset's"
            )
        return declared
    if source_names is None:
        count = num_source_classes if num_source_classes is not None else len(dataset_names)
        source_names = [f"class_{index}" for index in range(count)]
        if declared is None:
            if count != len(dataset_names):
                raise SourceError(
                    f"{source} predicts {count} classes but the data has {len(dataset_names)} "
                    f"({', '.join(dataset_names)}); declare the source's class_names and a mapping in its description"
                )
            return ClassMapping(tuple(source_names), dataset_names, tuple(range(count)), ignore, "identity")
    source_names = tuple(str(name) for name in source_names)
    if num_source_classes is not None and num_source_classes != len(source_names):
        raise SourceError(
            f"{source} outputs {num_source_classes} classes but its description names {len(source_names)}; "
            "list every output class, in order"
        )
    by_name = {normalize_name(name): index for index, name in enumerate(dataset_names)}
    if declared is not None:
        targets = _declared_targets(source_names, dataset_names, by_name, declared, source)
        return ClassMapping(source_names, dataset_names, targets, ignore, "declared")
    matched = tuple(by_name.get(normalize_name(name)) for name in source_names)
    if matched == tuple(range(len(dataset_names))) and len(source_names) == len(dataset_names):
        return ClassMapping(source_names, dataset_names, matched, ignore, "identity")
    if all(target is None for target in matched):
        if len(source_names) == len(dataset_names):
            return ClassMapping(source_names, dataset_names, tuple(range(len(source_names))), ignore, "by id")
        raise SourceError(
            f"no class of {source} ({', '.join(source_names[:12])}) matches a dataset class "
            f"({', '.join(dataset_names)}); give a mapping {{model class: dataset class or null}} (--mapping JSON)"
        )
    return ClassMapping(source_names, dataset_names, matched, ignore, "by name")


def _declared_targets(
    source_names: tuple[str, ...],
    dataset_names: tuple[str, ...],
    by_name: dict[str, int],
    declared: DeclaredMapping,
    source: str,
) -> tuple[int | None, ...]:
    if not isinstance(declared, Mapping):
        raise SourceError(
            f"a class mapping must be a JSON object {{model class: dataset class}}, got {type(declared).__name__}"
        )
    known = {normalize_name(name): index for index, name in enumerate(source_names)}
    problems = [f"{name!r} is not a class of {source}" for name in declared if normalize_name(name) not in known]
    chosen: dict[int, int | None] = {}
    for name, target in declared.items():
        if normalize_name(name) not in known:
            continue
        if target is None or (isinstance(target, str) and normalize_name(target) == OTHER):
            chosen[known[normalize_name(name)]] = None
        elif isinstance(target, int) and not isinstance(target, bool) and 0 <= target < len(dataset_names):
            chosen[known[normalize_name(name)]] = target
        elif isinstance(target, str) and normalize_name(target) in by_name:
            chosen[known[normalize_name(name)]] = by_name[normalize_name(target)]
        else:
            problems.append(f"{name!r} -> {target!r}: not a dataset class (one of {', '.join(dataset_names)}, or null)")
    if problems:
        raise SourceError("class mapping: " + "; ".join(problems))
    return tuple(
        chosen[index] if index in chosen else by_name.get(normalize_name(name))
        for index, name in enumerate(source_names)
    )
