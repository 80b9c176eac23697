"""Checks run on an upload before it is accepted, answered at once (in the page or the CLI).

Everything that can be known without running a model: the kind is allowed, the file fits the size
limit and is of that format, a checkpoint loads safely (``weights_only=True``) with the
competition's classes in the same order and an architecture this seglab knows, a mask zip is safe
(see :mod:`seglab.competition.archive`) and holds exactly one mask of the right size and label
range per hidden image. An upload that fails is not stored and does not count against the quota.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from seglab.competition.competitions import Competition, HiddenImage
from seglab.competition.errors import SubmissionRejected
from seglab.competition.scoring import KIND_LABELS, KIND_SUFFIXES, MODEL_FILE_KINDS, scorer_available


def guess_kind(file_name: str) -> str:
    """The submission kind a file name suggests (``.zip`` -> masks, ``.onnx``, ``.ts``; else a checkpoint)."""
    suffix = Path(file_name).suffix.lower()
    return {".zip": "masks_zip", ".onnx": "onnx", ".ts": "torchscript", ".torchscript": "torchscript"}.get(
        suffix, "checkpoint"
    )


def check_kind(competition: Competition, kind: str) -> None:
    """Refuse kinds the competition does not allow (with the allowed ones named)."""
    if kind not in competition.kinds:
        allowed = ", ".join(KIND_LABELS.get(k, k) for k in competition.kinds)
        raise SubmissionRejected(f"{KIND_LABELS.get(kind, kind)} submissions are not allowed here; allowed: {allowed}")


def validate_upload(competition: Competition, images: list[HiddenImage], kind: str, path: Path) -> str:
    """Check a staged upload of ``kind``; returns a one-line description, raises SubmissionRejected."""
    check_kind(competition, kind)
    if path.stat().st_size == 0:
        raise SubmissionRejected("the file is empty; choose the file again")
    if kind == "checkpoint":
        return _validate_checkpoint(competition, path)
    if kind == "masks_zip":
        return _validate_mask_zip(competition, images, path)
    if kind in MODEL_FILE_KINDS:
        if not scorer_available(kind):
            raise SubmissionRejected(f"{KIND_LABELS[kind]} submissions cannot be scored by this server yet")
        return f"{KIND_LABELS[kind]}, {path.stat().st_size / 2**20:.1f} MB (checked when scored)"
    raise SubmissionRejected(f"unknown submission kind {kind!r}; choose one of {', '.join(KIND_SUFFIXES)}")


def _validate_checkpoint(competition: Competition, path: Path) -> str:
    from seglab.engine.checkpoint import load_checkpoint
    from seglab.errors import CheckpointError
    from seglab.models import available_models

    if not zipfile.is_zipfile(path):
        raise SubmissionRejected(
            "this is not a PyTorch checkpoint (not a zip archive): upload the best.pt of a seglab run; "
            "for masks choose 'zip of predicted masks'"
        )
    with zipfile.ZipFile(path) as archive:
        if not any(name.endswith("/data.pkl") for name in archive.namelist()):
            raise SubmissionRejected(
                "this is a zip file but not a PyTorch checkpoint (no data.pkl inside); "
                "for predicted masks choose 'zip of predicted masks'"
            )
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as error:
        raise SubmissionRejected(str(error).replace(str(path), "the uploaded file")) from None
    names = list(checkpoint.label_map.names)
    if checkpoint.num_classes != len(competition.class_names):
        raise SubmissionRejected(
            f"the checkpoint predicts {checkpoint.num_classes} classes but this competition has "
            f"{len(competition.class_names)} ({', '.join(competition.class_names)})"
        )
    if names != list(competition.class_names):
        raise SubmissionRejected(
            f"the checkpoint's classes ({', '.join(names)}) differ from the competition's "
            f"({', '.join(competition.class_names)}): train on the competition's data"
        )
    if checkpoint.model_name not in available_models():
        raise SubmissionRejected(
            f"the checkpoint's architecture {checkpoint.model_name!r} is not one this seglab knows; "
            f"use one of {', '.join(sorted(available_models()))}"
        )
    return f"seglab checkpoint: {checkpoint.describe()}"


def _validate_mask_zip(competition: Competition, images: list[HiddenImage], path: Path) -> str:
    from seglab.competition.mask_zip import iter_mask_zip

    sample_ids = [image.sample_id for image in images]
    sizes = [(image.height, image.width) for image in images]
    count = sum(1 for _ in iter_mask_zip(path, sample_ids, sizes, len(competition.class_names)))
    return f"zip of {count} predicted masks, every hidden image present once, sizes and class ids checked"
