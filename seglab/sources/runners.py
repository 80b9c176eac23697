"""Bare runners of model files: load once, then ``run(array) -> array``. They run inside the worker process.

Safety of the loaders (why no Python pickle runs):

- TorchScript (``torch.jit.load``): the archive holds TorchScript source (compiled by TorchScript's
  own compiler, never Python's ``exec``) and its constants/attributes pickled in ``data.pkl``/
  ``constants.pkl``, which are read by TorchScript's C++ unpickler: it rebuilds tensors, primitive
  containers and TorchScript classes only, and refuses arbitrary Python globals (no ``__reduce__``
  code path exists there). Its C++ parsers are still a large attack surface, hence the worker.
- ONNX (``onnxruntime.InferenceSession``): a protobuf graph of standard operators; no Python. Custom
  operator libraries are never registered; external-data paths are checked to stay beside the file
  (:func:`check_onnx_file`).
- Hugging Face: ``from_pretrained`` with ``local_files_only`` (never a download), ``use_safetensors``
  (weights from safetensors, never a pickled ``pytorch_model.bin``) and ``trust_remote_code=False``
  (no Python from the folder).

Imports are lazy so an ONNX worker does not pay for importing torch.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from seglab.errors import SourceError

ONNX_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}


def check_model_file(path: str | os.PathLike, kind: str, max_bytes: int) -> Path:
    """Raise :class:`SourceError` unless ``path`` is a regular file of plausible format within ``max_bytes``."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"model file {path} does not exist (or is not a file)")
    size = path.stat().st_size
    if size > max_bytes:
        raise SourceError(
            f"model file {path} is {size / 2**20:.0f} MB, more than the {max_bytes / 2**20:.0f} MB limit; "
            "raise the limit (--max-file-mb) only for files you trust"
        )
    if kind == "torchscript" and not is_torchscript_archive(path):
        raise SourceError(
            f"{path} is not a TorchScript archive (torch.jit.save output); export with torch.jit.trace/script"
        )
    if kind == "onnx":
        check_onnx_file(path)
    return path


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """A zip whose members include ``<name>/code/`` (TorchScript source): what ``torch.jit.save`` writes."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def check_onnx_file(path: Path) -> None:
    """Parse the graph (no weights) and refuse custom-op domains and external data outside the file's folder."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf raises DecodeError and others
        raise SourceError(f"{path} is not a readable ONNX model ({type(error).__name__}: {str(error)[:120]})") from None
    custom = sorted({opset.domain for opset in model.opset_import} - ONNX_DOMAINS)
    if custom:
        raise SourceError(f"{path} uses custom operator domains {custom}; seglab runs standard ONNX operators only")
    folder = path.parent.resolve()
    for tensor in onnx.external_data_helper._get_all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
        target = (folder / location).resolve()
        if Path(location).is_absolute() or folder not in target.parents:
            raise SourceError(f"{path} points to external weights at {location!r}, outside its folder; refused")


def select_output(output: Any, choice: str | int | None, names: list[str] | None = None) -> Any:
    """The output ``choice`` picks from a tensor, dict, tuple/list (``None``: "out" if present, else the first)."""
    if isinstance(output, dict):
        if choice is None:
            choice = "out" if "out" in output else next(iter(output))
        if choice not in output:
            raise SourceError(f"the model's output has no key {choice!r}; it has {', '.join(map(str, output))}")
        return output[choice]
    if isinstance(output, (tuple, list)):
        if isinstance(choice, str):
            if names and choice in names:
                return output[names.index(choice)]
            raise SourceError(f"the model has no output named {choice!r}; outputs: {', '.join(names or [])}")
        position = 0 if choice is None else choice
        if not -len(output) <= position < len(output):
            raise SourceError(f"the model has {len(output)} outputs, no output {position}")
        return output[position]
    if choice not in (None, 0):
        raise SourceError(f"the model returns one tensor; output {choice!r} does not exist (use null)")
    return output


def failure_message(error: BaseException) -> str:
    """One line for a runtime's exception: its last line holds the reason (TorchScript prints a traceback first)."""
    from seglab.errors import SeglabError

    if isinstance(error, SeglabError):
        return str(error)
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # TorchScript puts the reason on the last line after its traceback; other runtimes' lines all count.
    reason = (lines[-1] if "Traceback of TorchScript" in str(error) else " ".join(lines)) if lines else ""
    return f"{type(error).__name__}: {reason[:500]}" if not reason.startswith(type(error).__name__) else reason[:500]


def _as_array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        value = value.float() if value.is_floating_point() else value.long()
        return value.numpy()
    array = np.asarray(value)
    return array.astype(np.float32) if array.dtype.kind == "f" else array.astype(np.int64)


class TorchScriptRunner:
    """``torch.jit.load`` on ``device``; ``run`` takes a (N, 3, H, W) float32 batch."""

    def __init__(self, path: str, *, device: str = "cpu", output: str | int | None = None, threads: int = 0) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = device
        self.output = output
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch >= 2.9 deprecates TorchScript; loading still works
            self.module = torch.jit.load(path, map_location=device)
        self.module.eval()

    def info(self) -> dict[str, Any]:
        return {"device": self.device}

    def run(self, batch: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            output = self.module(self.torch.from_numpy(batch).to(self.device))
        return _as_array(select_output(output, self.output))


class OnnxRunner:
    """An onnxruntime session: CUDA provider when asked for and available, else CPU, full graph optimisation."""

    def __init__(self, path: str, *, device: str = "cpu", output: str | int | None = None, threads: int = 0) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        # No busy-waiting between runs: spinning pool threads steal the cores torch needs for pre/post-processing
        # (measured on 2 cores: eager PyTorch in the same process slowed down up to 10x after an ORT run).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        available = onnxruntime.get_available_providers()
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in available:
            providers.insert(0, "CUDAExecutionProvider")
        self.session = onnxruntime.InferenceSession(path, sess_options=options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [output.name for output in self.session.get_outputs()]
        self.output = output

    def info(self) -> dict[str, Any]:
        inputs = [
            {"name": i.name, "shape": [d if isinstance(d, int) else str(d) for d in i.shape]}
            for i in self.session.get_inputs()
        ]
        outputs = [
            {"name": o.name, "shape": [d if isinstance(d, int) else str(d) for d in o.shape]}
            for o in self.session.get_outputs()
        ]
        return {"inputs": inputs, "outputs": outputs, "providers": self.session.get_providers()}

    def run(self, batch: np.ndarray) -> np.ndarray:
        outputs = self.session.run(None, {self.input_name: batch})
        return _as_array(select_output(list(outputs), self.output, self.output_names))


class HuggingFaceRunner:
    """``AutoModelForSemanticSegmentation`` + ``AutoImageProcessor`` from a local folder.

    ``run`` takes one (H, W, 3) uint8 image and returns the logits (1, K, h, w) at the model's resolution.
    """

    def __init__(self, path: str, *, device: str = "cpu", threads: int = 0, **_: Any) -> None:
        import torch

        try:
            from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation
        except ImportError:
            raise SourceError("Hugging Face models need the transformers package: pip install 'seglab[hf]'") from None
        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = device
        try:
            self.processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
            self.model = AutoModelForSemanticSegmentation.from_pretrained(
                path, local_files_only=True, use_safetensors=True, trust_remote_code=False
            )
        except (OSError, ValueError) as error:
            raise SourceError(
                f"cannot load the Hugging Face model in {path}: {str(error).splitlines()[0][:300]}"
            ) from None
        self.model.to(device).eval()

    def info(self) -> dict[str, Any]:
        labels = self.model.config.id2label
        return {"class_names": [str(labels[i]) for i in sorted(labels)], "model_type": self.model.config.model_type}

    def run(self, image: np.ndarray) -> np.ndarray:
        inputs = self.processor(images=image, return_tensors="pt")
        with self.torch.inference_mode():
            logits = self.model(pixel_values=inputs["pixel_values"].to(self.device)).logits
        return _as_array(logits)


RUNNERS: dict[str, Any] = {"torchscript": TorchScriptRunner, "onnx": OnnxRunner, "huggingface": HuggingFaceRunner}


def load_runner(kind: str, path: str, options: dict[str, Any]) -> Any:
    """Build the runner of ``kind`` (in whichever process calls this)."""
    if kind not in RUNNERS:
        raise SourceError(f"unknown model kind {kind!r}; one of {', '.join(RUNNERS)}")
    return RUNNERS[kind](path, **options)
