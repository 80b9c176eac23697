"""Export a seglab checkpoint to ONNX or TorchScript, check it, and describe it for seglab.

:func:`export_checkpoint` writes the file (any height and width), a description file beside it
(``<stem>.seglab.json``: classes and seglab's preprocessing), checks parity on real images of the
checkpoint's dataset (max |logit difference| against PyTorch, at the images' sizes and at an odd
crop so a size-specialised graph is caught), and loads the file back as a prediction source.

ONNX exporter: torch's dynamo exporter needs the ``onnxscript`` package; without it (or when it
fails on a model) the TorchScript-based exporter (``dynamo=False``) is used. Both keep height and
width dynamic; the report says which one ran.
"""

from __future__ import annotations

import importlib.util
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from seglab.data.base import SegmentationDataset
from seglab.engine.checkpoint import load_checkpoint
from seglab.engine.predict import image_to_tensor
from seglab.errors import SeglabError, SourceError
from seglab.io.atomic_files import atomic_path
from seglab.sources.description import SourceDescription, description_path, save_description
from seglab.sources.isolation import InProcessRunner
from seglab.sources.preprocessing import Preprocessing

EXPORT_FORMATS = ("onnx", "torchscript")
EXPORTERS = ("auto", "dynamo", "legacy")
DEFAULT_TOLERANCE = 1e-3
ONNX_OPSET = 17


class LogitsOnly(torch.nn.Module):
    """A seglab model with one output: the ``"out"`` logits (N, K, H, W), what the description declares."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)["out"]


@dataclass
class ExportReport:
    """What was written and how closely it matches PyTorch."""

    path: Path
    description: Path
    format: str
    exporter: str  # dynamo | legacy | torch.jit.trace
    max_logit_difference: float
    tolerance: float
    images: list[str]  # what the parity check ran on
    label_agreement: float  # share of pixels where the reloaded source's labels equal PyTorch's
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.max_logit_difference <= self.tolerance

    def summary(self) -> str:
        lines = [
            f"wrote {self.path} ({self.format}, {self.exporter}, {self.path.stat().st_size / 2**20:.1f} MB) "
            f"and {self.description}",
            f"parity vs PyTorch on {len(self.images)} input(s): max |logit difference| {self.max_logit_difference:.2e} "
            f"(tolerance {self.tolerance:g}); reloaded as a prediction source: labels agree on "
            f"{self.label_agreement:.2%} "
            f"of pixels [{self.seconds:.1f} s]",
        ]
        return "\n".join(lines + [f"note: {note}" for note in self.notes])


def export_checkpoint(
    checkpoint_path: str | os.PathLike,
    fmt: str,
    out: str | os.PathLike,
    *,
    dataset: SegmentationDataset | None = None,
    parity_images: int = 3,
    tolerance: float = DEFAULT_TOLERANCE,
    exporter: str = "auto",
) -> ExportReport:
    """Export, describe and check a checkpoint (see the module docstring); :class:`SourceError` when parity fails.

    Args:
        checkpoint_path: a seglab ``.pt`` file or run folder.
        fmt: "onnx" or "torchscript".
        out: the file to write (its folder is created).
        dataset: images for the parity check (default: the checkpoint's validation split; random
            images, reported, when that data is not available here).
        parity_images: how many dataset images to check (plus one odd-sized crop).
        tolerance: the largest acceptable |logit difference|.
        exporter: ONNX only: "auto" (dynamo when onnxscript is installed, else legacy), "dynamo", "legacy".
    """
    if fmt not in EXPORT_FORMATS:
        raise SourceError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    if exporter not in EXPORTERS:
        raise SourceError(f"exporter must be one of {', '.join(EXPORTERS)}, got {exporter!r}")
    started = time.perf_counter()
    checkpoint = load_checkpoint(checkpoint_path)
    model = LogitsOnly(checkpoint.build_model("cpu")).eval()
    notes: list[str] = []
    images, names = _parity_images(checkpoint, dataset, parity_images, notes)
    inputs = [image_to_tensor(image) for image in images]
    out = Path(out)
    with atomic_path(out) as temporary:
        if fmt == "onnx":
            used = _export_onnx(model, inputs[0], temporary, exporter, notes)
        else:
            used = _export_torchscript(model, inputs[0], temporary)
        difference = _max_difference(model, inputs, temporary, fmt)
        if difference > tolerance:
            raise SourceError(
                f"the exported {fmt} model differs from PyTorch by up to {difference:.2e} in its logits (tolerance "
                f"{tolerance:g}); nothing was written. The architecture may hold size-dependent code the exporter froze"
            )
    description = SourceDescription(
        kind=fmt,
        path=out.resolve(),
        name=f"{checkpoint.path.parent.name}/{checkpoint.path.stem} ({checkpoint.model_name})",
        class_names=tuple(checkpoint.label_map.names),
        preprocessing=Preprocessing(),
    )
    described = save_description(description, description_path(out))
    agreement = _reload_agreement(model, described, images[0])
    return ExportReport(
        path=out,
        description=described,
        format=fmt,
        exporter=used,
        max_logit_difference=difference,
        tolerance=tolerance,
        images=names,
        label_agreement=agreement,
        seconds=time.perf_counter() - started,
        notes=notes,
    )


def _parity_images(checkpoint, dataset, count: int, notes: list[str]) -> tuple[list[np.ndarray], list[str]]:
    """(H, W, 3) uint8 images: ``count`` dataset images and an odd-sized crop of the first, with their names."""
    if dataset is None:
        dataset = _checkpoint_dataset(checkpoint, notes)
    if dataset is not None and len(dataset):
        picks = np.linspace(0, len(dataset) - 1, num=min(count, len(dataset))).round().astype(int)
        images = [(dataset.ids[i], dataset.load(int(i))[0]) for i in dict.fromkeys(picks.tolist())]
    else:
        generator = np.random.default_rng(0)
        images = [
            (f"random {h}x{w}", generator.integers(0, 256, (h, w, 3), dtype=np.uint8))
            for h, w in ((96, 128), (75, 101))
        ]
    first_id, first = images[0]
    height, width = first.shape[:2]
    crop = first[
        : max(8, height - 3 if height % 2 == 0 else height - 2), : max(8, width - 5 if width % 2 == 0 else width - 4)
    ]
    images.append((f"{first_id} cropped to {crop.shape[1]}x{crop.shape[0]}", np.ascontiguousarray(crop)))
    return [image for _, image in images], [name for name, _ in images]


def _checkpoint_dataset(checkpoint, notes: list[str]) -> SegmentationDataset | None:
    from seglab.data.spec import build_dataset
    from seglab.engine.config import TrainConfig

    try:
        config = TrainConfig.from_dict(checkpoint.config) if checkpoint.config else TrainConfig()
        return build_dataset(config.data.with_split(config.val_split))
    except (SeglabError, TypeError, ValueError, KeyError) as error:
        notes.append(f"the checkpoint's dataset is not available here ({error}); parity was checked on random images")
        return None


def _export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path, exporter: str, notes: list[str]) -> str:
    dynamo_available = importlib.util.find_spec("onnxscript") is not None
    if exporter == "dynamo" and not dynamo_available:
        raise SourceError(
            "the dynamo ONNX exporter needs the onnxscript package (pip install onnxscript); or use --exporter legacy"
        )
    if exporter in ("auto", "dynamo") and dynamo_available:
        try:
            batch, height, width = (torch.export.Dim(name, min=1, max=65536) for name in ("batch", "height", "width"))
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=True,
                external_data=False,
                input_names=["image"],
                output_names=["logits"],
                dynamic_shapes={"images": {0: batch, 2: height, 3: width}},
            )
            return "dynamo"
        except Exception as error:  # the dynamo exporter fails in many ways; auto falls back to the legacy one
            if exporter == "dynamo":
                raise SourceError(
                    f"the dynamo ONNX exporter failed: {type(error).__name__}: {str(error)[:300]}"
                ) from None
            notes.append(f"the dynamo exporter failed ({type(error).__name__}); used the TorchScript-based exporter")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its deprecation notice, and tracer warnings the parity check covers
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={
                "image": {0: "batch", 2: "height", 3: "width"},
                "logits": {0: "batch", 2: "height", 3: "width"},
            },
        )
    return "legacy"


def _export_torchscript(model: torch.nn.Module, example: torch.Tensor, path: Path) -> str:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shapes: the parity check at another size covers them
        traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, str(path))  # deprecated in favour of torch.export since torch 2.9, still supported
    return "torch.jit.trace"


def _max_difference(model: torch.nn.Module, inputs: list[torch.Tensor], path: Path, fmt: str) -> float:
    runner = InProcessRunner(fmt, str(path), {"device": "cpu"})
    worst = 0.0
    with torch.inference_mode():
        for batch in inputs:
            expected = model(batch).numpy()
            found = runner.run(batch.numpy())
            if found.shape != expected.shape:
                raise SourceError(
                    f"the exported model returned shape {found.shape} where PyTorch returns {expected.shape}"
                )
            worst = max(worst, float(np.abs(found - expected).max()))
    runner.close()
    return worst


def _reload_agreement(model: torch.nn.Module, description_file: Path, image: np.ndarray) -> float:
    """Open the written file as a prediction source (worker process) and compare its labels with PyTorch's."""
    from seglab.sources.description import load_description

    with load_description(description_file).open() as source:
        labels = source.predict(None, image).labels
    with torch.inference_mode():
        expected = model(image_to_tensor(image)).argmax(dim=1)[0].numpy()
    return float((labels == expected).mean())
