"""TorchScript and ONNX model files, and Hugging Face model folders, as prediction sources.

All three run in a worker process by default (:mod:`seglab.sources.isolation`): a file from a
stranger that hangs or crashes its runtime costs one error message, not the app. Pre- and
post-processing happen here, in the parent, with seglab's own code
(:func:`seglab.sources.preprocessing.predict_with_runner`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from seglab.errors import SourceError
from seglab.sources.base import (
    DEFAULT_LIMITS,
    PredictionSource,
    SourceLimits,
    SourcePrediction,
    check_image,
    labels_dtype,
)
from seglab.sources.isolation import make_runner
from seglab.sources.preprocessing import DEFAULT_PREPROCESSING, Preprocessing, predict_with_runner
from seglab.sources.runners import check_model_file

MODEL_FILE_KINDS = ("torchscript", "onnx")


class ModelFileSource(PredictionSource):
    """A TorchScript (``kind="torchscript"``) or ONNX (``kind="onnx"``) file.

    Args:
        path: the model file.
        kind: "torchscript" or "onnx".
        preprocessing: input/output declaration (defaults: seglab's recipe, logits NCHW).
        class_names: the model's classes in output order (``None``: the dataset's order is assumed).
        device: "cpu" or "cuda" (ONNX: the CUDA provider when onnxruntime has it, else CPU).
        flip, scales: test-time augmentation, as for seglab checkpoints.
        limits: file size, image size and per-image time limits.
        isolated: run in a worker process (default); ``False`` only for files you trust.
        threads: intra-op threads of the runtime (0: its default).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        kind: str,
        *,
        preprocessing: Preprocessing = DEFAULT_PREPROCESSING,
        class_names: Sequence[str] | None = None,
        name: str | None = None,
        device: str = "cpu",
        flip: bool = False,
        scales: Sequence[float] = (1.0,),
        limits: SourceLimits = DEFAULT_LIMITS,
        isolated: bool = True,
        threads: int = 0,
    ) -> None:
        if kind not in MODEL_FILE_KINDS:
            raise SourceError(f"model file kind must be one of {', '.join(MODEL_FILE_KINDS)}, got {kind!r}")
        self.kind = kind  # type: ignore[misc]
        self.path = check_model_file(Path(path).resolve(), kind, limits.max_file_bytes)
        self.name = name or self.path.name
        self.preprocessing = preprocessing
        self._class_names = list(class_names) if class_names is not None else None
        self._notes: list[str] = []
        fixed = _static_onnx_input_size(self.path) if kind == "onnx" and preprocessing.input_size is None else None
        if fixed is not None:
            self.preprocessing = replace(preprocessing, input_size=fixed)
            self._notes.append(
                f"{self.name} takes {fixed[1]}x{fixed[0]} inputs only: images are resized to it "
                "(declare preprocessing.input_size and fixed_size_mode 'sliding' to tile them instead)"
            )
        self.device, self.flip, self.scales = device, bool(flip), tuple(float(s) for s in scales)
        self.limits, self.isolated, self.threads = limits, isolated, threads
        self._runner: Any = None
        self._runner_lock = threading.Lock()  # one worker even when several app sessions predict at once

    @property
    def class_names(self) -> list[str] | None:
        return self._class_names

    @property
    def num_classes(self) -> int | None:
        if self._class_names is not None:
            return len(self._class_names)
        return self._static_class_count()

    @property
    def has_probabilities(self) -> bool:
        return self.preprocessing.output_kind != "labels"

    def content_hash(self) -> str:
        from seglab.engine.evaluation import file_sha256

        return file_sha256(self.path)

    def settings(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "preprocessing": self.preprocessing.to_dict(),
            "class_names": self._class_names,
            "flip": self.flip,
            "scales": list(self.scales),
        }

    def notes(self) -> list[str]:
        return list(self._notes)

    def runner(self) -> Any:
        """The loaded runner (worker or in-process), started on first use."""
        with self._runner_lock:
            if self._runner is None:
                self._runner = self._make_runner()
        return self._runner

    def _make_runner(self) -> Any:
        options = {"device": self.device, "output": self.preprocessing.output, "threads": self.threads}
        return make_runner(
            self.kind,
            str(self.path),
            options,
            isolated=self.isolated,
            name=self.name,
            load_timeout_s=self.limits.load_timeout_s,
        )

    def predict(self, sample_id: str | None, image: np.ndarray) -> SourcePrediction:
        check_image(image, self.limits)
        runner = self.runner()
        deadline = time.monotonic() + self.limits.timeout_s
        prediction = predict_with_runner(
            lambda batch: runner.run(batch, deadline), image, self.preprocessing, flip=self.flip, scales=self.scales
        )
        _check_class_count(prediction, self._class_names, self.name)
        return prediction

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def _static_class_count(self) -> int | None:
        """The class axis of an ONNX output when the graph fixes it (no model load)."""
        if self.kind != "onnx" or self.preprocessing.output_kind == "labels":
            return None
        import onnx

        graph = onnx.load(str(self.path), load_external_data=False).graph
        outputs = list(graph.output)
        choice = self.preprocessing.output
        chosen = next((o for o in outputs if o.name == choice), None) if isinstance(choice, str) else None
        if chosen is None:
            chosen = outputs[choice if isinstance(choice, int) else 0] if outputs else None
        dims = chosen.type.tensor_type.shape.dim if chosen is not None else []
        return int(dims[1].dim_value) if len(dims) == 4 and dims[1].dim_value > 0 else None


def _static_onnx_input_size(path: Path) -> tuple[int, int] | None:
    """(height, width) of an ONNX model whose first input has fixed spatial dimensions, else None."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    dims = inputs[0].type.tensor_type.shape.dim if inputs else []
    if len(dims) == 4 and dims[2].dim_value > 0 and dims[3].dim_value > 0:
        return int(dims[2].dim_value), int(dims[3].dim_value)
    return None


def _check_class_count(prediction: SourcePrediction, class_names: list[str] | None, name: str) -> None:
    if class_names is None or prediction.probabilities is None:
        return
    if prediction.probabilities.shape[0] != len(class_names):
        raise SourceError(
            f"{name} outputs {prediction.probabilities.shape[0]} classes but its description names {len(class_names)}; "
            "list every output class, in order"
        )


class HuggingFaceSource(PredictionSource):
    """A transformers semantic-segmentation model saved in a local folder (``save_pretrained``).

    The folder's image processor prepares the input (resize, rescale, normalise); the logits
    (1/4 of the processed size for SegFormer) are upsampled bilinearly to the image's size.
    Class names come from the model's ``id2label``. Needs ``pip install 'seglab[hf]'``.
    """

    kind = "huggingface"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        name: str | None = None,
        device: str = "cpu",
        limits: SourceLimits = DEFAULT_LIMITS,
        isolated: bool = True,
        threads: int = 0,
    ) -> None:
        if importlib.util.find_spec("transformers") is None:
            raise SourceError("Hugging Face models need the transformers package: pip install 'seglab[hf]'")
        self.path = Path(path).resolve()
        self.files = hugging_face_files(self.path, limits.max_file_bytes)
        self.name = name or self.path.name
        self.device, self.limits, self.isolated, self.threads = device, limits, isolated, threads
        self._runner: Any = None
        self._runner_lock = threading.Lock()

    @property
    def class_names(self) -> list[str] | None:
        """From the folder's config.json ``id2label`` (read as JSON: no model is loaded for it)."""
        try:
            config = json.loads((self.path / "config.json").read_text(encoding="utf-8"))
            labels: dict[str, Any] = config.get("id2label") or {}
            return [str(labels[key]) for key in sorted(labels, key=int)]
        except (OSError, ValueError, TypeError, AttributeError) as error:
            raise SourceError(f"{self.path / 'config.json'} has no readable id2label ({error})") from None

    def content_hash(self) -> str:
        import hashlib

        from seglab.engine.evaluation import file_sha256

        parts = "|".join(f"{file.name}:{file_sha256(file)}" for file in self.files)
        return hashlib.sha256(parts.encode()).hexdigest()

    def settings(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def runner(self) -> Any:
        """The loaded runner (worker or in-process), started on first use."""
        with self._runner_lock:
            if self._runner is None:
                self._runner = make_runner(
                    self.kind,
                    str(self.path),
                    {"device": self.device, "threads": self.threads},
                    isolated=self.isolated,
                    name=self.name,
                    load_timeout_s=self.limits.load_timeout_s,
                )
        return self._runner

    def predict(self, sample_id: str | None, image: np.ndarray) -> SourcePrediction:
        check_image(image, self.limits)
        logits = self.runner().run(np.ascontiguousarray(image), time.monotonic() + self.limits.timeout_s)
        if logits.ndim != 4 or logits.shape[0] != 1:
            raise SourceError(f"{self.name} returned logits of shape {logits.shape}; expected (1, K, h, w)")
        scores = F.interpolate(
            torch.from_numpy(logits).float(), size=image.shape[:2], mode="bilinear", align_corners=False
        )
        probabilities = scores[0].softmax(dim=0)
        labels: np.ndarray = probabilities.argmax(dim=0).numpy().astype(labels_dtype(probabilities.shape[0]))
        return SourcePrediction(labels, probabilities.numpy())

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None


def hugging_face_files(folder: Path, max_bytes: int) -> list[Path]:
    """The files of a saved transformers model (config, processor config, safetensors weights), checked."""
    if not (folder / "config.json").is_file():
        raise SourceError(
            f"{folder} is not a Hugging Face model folder (no config.json); save one with save_pretrained"
        )
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        pickled = sorted(p.name for p in folder.glob("*.bin"))
        hint = f" (it has {', '.join(pickled)}: pickled weights, which seglab does not load)" if pickled else ""
        raise SourceError(
            f"{folder} has no .safetensors weights{hint}; "
            "re-save with model.save_pretrained(folder, safe_serialization=True)"
        )
    if not (folder / "preprocessor_config.json").is_file():
        raise SourceError(
            f"{folder} has no preprocessor_config.json; save the image processor too (processor.save_pretrained)"
        )
    files = [folder / "config.json", folder / "preprocessor_config.json", *weights]
    total = sum(file.stat().st_size for file in files)
    if total > max_bytes:
        raise SourceError(
            f"{folder} holds {total / 2**20:.0f} MB of model files, more than the {max_bytes / 2**20:.0f} MB limit"
        )
    return files
