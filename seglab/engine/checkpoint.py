"""Checkpoints: plain dicts of tensors and primitive values, saved atomically, loaded safely.

A checkpoint never holds pickled objects, so ``torch.load(weights_only=True)`` reads it and a
tampered file cannot execute code. Loading checks the format and explains mismatches (another
tool's file, a truncated save, a different number of classes or architecture) in one line.
"""

from __future__ import annotations

import datetime as _dt
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seglab import __version__
from seglab.data.label_map import LabelMap
from seglab.engine.divergence import non_finite_tensors
from seglab.errors import CheckpointError, LabelMapError
from seglab.io.atomic_files import atomic_write
from seglab.io.output_paths import write_failure

FORMAT_NAME = "seglab-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = {
    "format": str,
    "format_version": int,
    "model_name": str,
    "num_classes": int,
    "model_options": dict,
    "model_state": dict,
    "config": dict,
    "label_map": dict,
    "step": int,
    "epoch": int,
}


@dataclass
class Checkpoint:
    """A loaded and validated checkpoint."""

    path: Path
    model_name: str
    num_classes: int
    model_options: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    config: dict[str, Any]
    label_map: LabelMap
    step: int
    epoch: int
    metrics: dict[str, Any]
    optimizer_state: dict[str, Any] | None
    extra: dict[str, Any]

    def build_model(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """Rebuild the architecture and load the weights, in eval mode."""
        from seglab.models import build_model

        model = build_model(self.model_name, self.num_classes, **self.model_options)
        load_model_state(model, self.model_state, source=str(self.path))
        return model.to(device).eval()

    def describe(self) -> str:
        miou = self.metrics.get("miou") if self.metrics else None
        score = f", val mIoU {miou:.3f}" if isinstance(miou, float) else ""
        return f"{self.model_name} ({self.num_classes} classes, {self.label_map.name}), step {self.step}{score}"


def checkpoint_payload(
    *,
    model: torch.nn.Module,
    config: dict[str, Any],
    label_map: LabelMap,
    step: int,
    epoch: int,
    metrics: dict[str, Any] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The plain dict written to disk (tensors, dicts, lists, str, int, float, bool, None only)."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "seglab_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model_name": str(getattr(model, "name", type(model).__name__)),
        "num_classes": int(getattr(model, "num_classes", label_map.num_classes)),
        "model_options": dict(getattr(model, "options", {})),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "config": config,
        "label_map": label_map.to_dict(),
        "step": int(step),
        "epoch": int(epoch),
        "metrics": metrics or {},
        "extra": extra or {},
    }


class NonFiniteWeightsError(CheckpointError):
    """A checkpoint's weights hold NaN or infinity: refused when saving and when loading."""


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``payload`` to ``path`` atomically: a temp file in the same folder, fsync, os.replace.

    The one function that writes checkpoints. It refuses weights holding NaN or infinity
    (:class:`NonFiniteWeightsError`), so the file at ``path`` stays the last good one; a full disk
    or a read-only folder is a CheckpointError saying so. A crash, kill or failure halfway leaves
    the previous file at ``path`` untouched (a killed process may leave its ``.tmp`` file, which
    :func:`seglab.engine.run_folder.clean_temporary_files` removes when the run or its resume starts).
    """
    path = Path(path)
    bad = non_finite_tensors(payload.get("model_state") or {})
    if bad:
        raise NonFiniteWeightsError(
            f"refusing to write {path}: {len(bad)} weight tensor(s) hold NaN or infinity (e.g. {bad[0]}); "
            f"the previous {path.name} is kept"
        )
    try:
        with atomic_write(path, "wb") as stream:  # durable, and readable by others: checkpoints are meant to be shared
            torch.save(payload, stream)
    except BaseException as error:
        reason = write_failure(error, path) if isinstance(error, (OSError, RuntimeError)) else None
        if reason is None:
            raise
        kept = f"the previous {path.name} is unchanged" if path.exists() else f"no {path.name} was written"
        raise CheckpointError(
            f"cannot write checkpoint {path}: {reason}; {kept}. Free some space or fix the folder's permissions, "
            "or write to another folder (--out)"
        ) from None
    return path


def checkpoint_file_problem(path: str | os.PathLike) -> str | None:
    """Why the file at ``path`` cannot be a loadable checkpoint, from its size and zip directory only.

    Cheap (no tensor is read), for listings: catches a missing, empty, truncated or foreign file.
    :func:`load_checkpoint` does the full checks.
    """
    path = Path(path)
    if not path.is_file():
        return f"{path.name} does not exist"
    try:
        if path.stat().st_size == 0:
            return f"{path.name} is empty (0 bytes)"
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return f"{path.name} is truncated or damaged (not a complete PyTorch zip archive)"
    if not any(name.endswith("data.pkl") for name in names):
        return f"{path.name} is not a PyTorch checkpoint (no data.pkl inside)"
    return None


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load and validate a seglab checkpoint; raise CheckpointError with a one-line reason."""
    path = Path(path)
    if path.is_dir():
        candidates = [path / "best.pt", path / "last.pt"]
        path = next((c for c in candidates if c.is_file()), candidates[0])
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (pass a .pt file or a run folder)")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (not a zip archive): it is truncated, damaged or another format"
        )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path} is not a plain seglab checkpoint: it holds Python objects that safe loading refuses "
            f"({_refusal_reason(error)}); nothing in it was executed"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError) as error:
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} is truncated or damaged ({reason})") from None
    checkpoint = _validate(payload, path)
    bad = non_finite_tensors(checkpoint.model_state)
    if bad:
        raise NonFiniteWeightsError(
            f"{path} holds NaN or infinite weights in {len(bad)} tensor(s) (e.g. {bad[0]}): the run that wrote it "
            "diverged, so its predictions mean nothing; use an earlier checkpoint or retrain with a lower --lr"
        )
    return checkpoint


def _refusal_reason(error: Exception) -> str:
    """The informative line of torch's weights_only refusal (e.g. 'unsupported GLOBAL posix.system')."""
    for line in str(error).splitlines():
        if "GLOBAL" in line or "Unsupported" in line or "unsupported" in line:
            return line.strip()[:160]
    return "unsupported content"


def _validate(payload: Any, path: Path) -> Checkpoint:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{path} is not a seglab checkpoint (no '{FORMAT_NAME}' marker): "
            "a plain state_dict or another tool's file; "
            "to start from its weights, train with --model-option weights_path=FILE"
        )
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer seglab (format {payload['format_version']}); upgrade seglab"
        )
    for key, expected in REQUIRED_KEYS.items():
        if not isinstance(payload.get(key), expected):
            raise CheckpointError(f"{path} is damaged: field {key!r} is missing or not a {expected.__name__}")
    state = payload["model_state"]
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path} is damaged: model_state must map names to tensors")
    try:
        label_map = LabelMap.from_dict(payload["label_map"], source=f"{path} label map")
    except LabelMapError as error:
        raise CheckpointError(str(error)) from None
    if label_map.num_classes != payload["num_classes"]:
        raise CheckpointError(
            f"{path} is inconsistent: {payload['num_classes']} classes but its label map has {label_map.num_classes}"
        )
    return Checkpoint(
        path=path,
        model_name=payload["model_name"],
        num_classes=payload["num_classes"],
        model_options=payload["model_options"],
        model_state=state,
        config=payload["config"],
        label_map=label_map,
        step=payload["step"],
        epoch=payload["epoch"],
        metrics=payload.get("metrics") or {},
        optimizer_state=payload.get("optimizer_state"),
        extra=payload.get("extra") or {},
    )


def load_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """``model.load_state_dict(state)`` with a readable explanation of any mismatch."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{name}: checkpoint {tuple(state[name].shape)} vs model {tuple(own[name].shape)}"
        for name in sorted(set(own) & set(state))
        if own[name].shape != state[name].shape
    ]
    if missing or unexpected or mismatched:
        details = []
        if mismatched:
            details.append(f"{len(mismatched)} tensors differ in shape (e.g. {mismatched[0]})")
        if missing:
            details.append(f"{len(missing)} tensors missing (e.g. {missing[0]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
        raise CheckpointError(
            f"{source} does not fit model {getattr(model, 'name', type(model).__name__)}: {'; '.join(details)}. "
            "It was trained with another architecture or number of classes."
        )
    model.load_state_dict(state)


def check_compatible(checkpoint: Checkpoint, label_map: LabelMap) -> None:
    """Raise when a checkpoint's classes do not match the data it is about to be evaluated on."""
    if checkpoint.num_classes != label_map.num_classes:
        raise CheckpointError(
            f"{checkpoint.path} predicts {checkpoint.num_classes} classes ({checkpoint.label_map.name}) "
            "but the data has "
            f"{label_map.num_classes} ({label_map.name}); evaluate it on the dataset it was trained for"
        )


def check_resumable(checkpoint: Checkpoint, model_name: str, label_map: LabelMap) -> None:
    """Raise unless a run training ``model_name`` on ``label_map`` can continue from ``checkpoint``."""
    if checkpoint.num_classes != label_map.num_classes or checkpoint.model_name != model_name:
        raise CheckpointError(
            f"cannot resume from {checkpoint.path}: it is a {checkpoint.model_name} model "
            f"for {checkpoint.num_classes} classes ({checkpoint.label_map.name}) "
            f"but this run trains {model_name} on "
            f"{label_map.num_classes} classes ({label_map.name}); "
            "use a new run folder or the same model and data"
        )
