"""Check a prediction source against a dataset before using it: every problem named at once.

Model sources get a dummy forward pass on one image (the dataset's first, or a grey 64x64 image
without a dataset): output shape, class count against the declared names, finite probabilities,
the class mapping, and the time it took. Folders of predictions get count, stem and size matching
against the dataset's samples and a decode of the first file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from seglab.data.base import SegmentationDataset
from seglab.errors import SeglabError
from seglab.sources.base import PredictionSource
from seglab.sources.mapping import DeclaredMapping, resolve_mapping

MAX_LISTED = 5


@dataclass
class SourceCheck:
    """What :func:`check_source` found: ``problems`` block use, ``facts`` describe what works."""

    problems: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> str:
        """Multi-line text: facts, then problems."""
        lines = [f"ok: {fact}" for fact in self.facts] + [f"problem: {problem}" for problem in self.problems]
        return "\n".join(lines)


def check_source(
    source: PredictionSource,
    dataset: SegmentationDataset | None = None,
    *,
    mapping: DeclaredMapping | None = None,
) -> SourceCheck:
    """Try ``source`` on ``dataset`` (see the module docstring); never raises for a faulty source."""
    check = SourceCheck()
    if source.can_predict_images:
        _check_model(source, dataset, mapping, check)
    else:
        _check_folder(source, dataset, mapping, check)
    return check


def _check_model(source: PredictionSource, dataset: SegmentationDataset | None, mapping, check: SourceCheck) -> None:
    if dataset is not None and len(dataset):
        image, _ = dataset.load(0)
        sample_id: str | None = dataset.ids[0]
    else:
        image, sample_id = np.full((64, 64, 3), 128, np.uint8), None
    started = time.perf_counter()
    try:
        prediction = source.predict(sample_id, image)
    except SeglabError as error:
        check.problems.append(f"a forward pass on one {image.shape[1]}x{image.shape[0]} image failed: {error}")
        return
    seconds = time.perf_counter() - started
    check.facts.append(
        f"one {image.shape[1]}x{image.shape[0]} image predicted in {seconds:.2f} s (first call, includes loading)"
    )
    if prediction.labels.shape != image.shape[:2]:
        check.problems.append(f"labels have shape {prediction.labels.shape}, the image {image.shape[:2]}")
    if prediction.probabilities is not None:
        count = prediction.probabilities.shape[0]
        check.facts.append(f"the model outputs {count} classes")
        if not np.isfinite(prediction.probabilities).all():
            check.problems.append("the model's output holds NaN or infinite values")
        names = source.class_names
        if names is not None and len(names) != count:
            check.problems.append(f"the description names {len(names)} classes but the model outputs {count}")
    else:
        count = None
        check.facts.append("the model outputs labels only (no probabilities)")
    if dataset is not None:
        _check_mapping(source, count, dataset, mapping, check)


def _check_mapping(source, count: int | None, dataset: SegmentationDataset, mapping, check: SourceCheck) -> None:
    try:
        resolved = resolve_mapping(source.class_names, count, dataset.label_map, mapping, source=source.name)
    except SeglabError as error:
        check.problems.append(str(error))
        return
    check.facts += resolved.summary() or ["classes are the dataset's"]


def _check_folder(source, dataset: SegmentationDataset | None, mapping, check: SourceCheck) -> None:
    files = getattr(source, "files", {})
    check.facts.append(f"{len(files)} prediction file(s) in {getattr(source, 'folder', source.name)}")
    if dataset is None:
        return
    missing, extra = source.match(dataset.ids)
    if missing:
        check.problems.append(
            f"{len(missing)} of {len(dataset)} samples have no prediction file, e.g. {', '.join(missing[:MAX_LISTED])} "
            "(files are matched by name: <sample id>.png/.npy/.npz)"
        )
    else:
        check.facts.append(f"every one of the {len(dataset)} samples has a prediction file")
    if extra:
        check.facts.append(
            f"{len(extra)} file(s) match no sample and are ignored, e.g. {', '.join(extra[:MAX_LISTED])}"
        )
    size_of = getattr(dataset, "image_size", None)
    wrong_size = []
    present = [index for index, sample_id in enumerate(dataset.ids) if sample_id not in set(missing)]
    for index in present:
        try:
            found = source.prediction_size(dataset.ids[index])
        except SeglabError as error:
            check.problems.append(str(error))
            continue
        expected = tuple(size_of(index)) if callable(size_of) else dataset.load(index)[0].shape[:2]
        if tuple(found) != tuple(expected):
            wrong_size.append(f"{dataset.ids[index]} ({found[1]}x{found[0]} vs {expected[1]}x{expected[0]})")
    if wrong_size and not getattr(source, "resize", False):
        check.problems.append(
            f"{len(wrong_size)} prediction(s) differ in size from their image, "
            f"e.g. {', '.join(wrong_size[:MAX_LISTED])}; "
            "allow a nearest-neighbour resize (--resize-predictions) or write them at the image's size"
        )
    elif wrong_size:
        check.facts.append(f"{len(wrong_size)} prediction(s) of another size will be resized (nearest neighbour)")
    if present:
        index = present[0]
        try:
            prediction = source.predict(dataset.ids[index], dataset.load(index)[0])
        except SeglabError as error:
            check.problems.append(str(error))
            return
        count = prediction.probabilities.shape[0] if prediction.probabilities is not None else None
        kind = f"probabilities over {count} classes" if count else "class labels"
        check.facts.append(f"{dataset.ids[index]} decodes to {kind}")
        _check_mapping(source, count, dataset, mapping, check)
