"""Source description files (``model.seglab.json``): describe a model or predictions folder once, then pick it.

Format (every key but ``kind`` and ``path`` optional)::

    {
      "seglab_source": 1,
      "kind": "onnx",                      # onnx | torchscript | huggingface | predictions | checkpoint
      "path": "model.onnx",                # relative to this file
      "name": "segformer-b0 cityscapes",
      "class_names": ["road", "sidewalk", ...],           # the model's outputs, in order
      "mapping": {"sidewalk": "Pavement", "terrain": null},  # model class -> dataset class, null = other
      "preprocessing": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "channel_order": "RGB",
                        "input_size": "any", "fixed_size_mode": "resize", "size_divisor": 32,
                        "output": null, "output_kind": "logits"},
      "predictions": {"encoding": "auto", "resize": false,    # folders of predictions only; label_map:
                      "label_map": "palette.json"}           # their colours and void (default: the dataset's)
    }

:func:`load_description` names every problem at once; :func:`describe_target` finds the file next
to a model (``<file name>.seglab.json``, or ``model.seglab.json`` inside a folder) or infers the kind
from the path when there is none.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from seglab.data.label_map import LabelMap
from seglab.errors import SourceError
from seglab.io.atomic_files import write_json_atomic
from seglab.sources.base import DEFAULT_LIMITS, PredictionSource, SourceLimits
from seglab.sources.preprocessing import Preprocessing, parse_preprocessing

FORMAT_VERSION = 1
KINDS = ("checkpoint", "torchscript", "onnx", "huggingface", "predictions")
DESCRIPTION_SUFFIX = ".seglab.json"
FOLDER_DESCRIPTION = "model" + DESCRIPTION_SUFFIX
TOP_LEVEL_KEYS = {"seglab_source", "kind", "path", "name", "class_names", "mapping", "preprocessing", "predictions"}


@dataclass(frozen=True)
class SourceDescription:
    """A parsed description: everything needed to open a source and map its classes."""

    kind: str
    path: Path  # absolute
    name: str | None = None
    class_names: tuple[str, ...] | None = None
    mapping: dict[str, Any] | None = None  # source class -> dataset class name/id, or None for other
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    encoding: str = "auto"  # predictions folders: PNG encoding
    resize: bool = False  # predictions folders: nearest-resize predictions of another size
    label_map: Path | None = None  # predictions folders: the label map of their colours and ignore value (absolute)
    file: Path | None = None  # the description file it came from, if any

    def to_dict(self, relative_to: Path | None = None) -> dict[str, Any]:
        """The JSON form; ``path`` relative to ``relative_to`` (the description file's folder) when given."""
        path = Path(os.path.relpath(self.path, relative_to)) if relative_to is not None else self.path
        data: dict[str, Any] = {"seglab_source": FORMAT_VERSION, "kind": self.kind, "path": path.as_posix()}
        if self.name:
            data["name"] = self.name
        if self.class_names is not None:
            data["class_names"] = list(self.class_names)
        if self.mapping is not None:
            data["mapping"] = dict(self.mapping)
        if self.kind in ("torchscript", "onnx"):
            data["preprocessing"] = self.preprocessing.to_dict()
        if self.kind == "predictions":
            data["predictions"] = {"encoding": self.encoding, "resize": self.resize}
            if self.label_map is not None:
                where = os.path.relpath(self.label_map, relative_to) if relative_to is not None else self.label_map
                data["predictions"]["label_map"] = Path(where).as_posix()
        return data

    def open(
        self,
        *,
        device: str = "cpu",
        limits: SourceLimits = DEFAULT_LIMITS,
        isolated: bool = True,
        label_map: LabelMap | None = None,
        flip: bool = False,
        scales: tuple[float, ...] = (1.0,),
    ) -> PredictionSource:
        """The prediction source this describes (``label_map`` decodes colour PNGs of a predictions folder)."""
        if self.kind == "checkpoint":
            from seglab.engine.evaluation import Protocol
            from seglab.sources.checkpoint_source import CheckpointSource

            return CheckpointSource(self.path, protocol=Protocol(flip=flip, scales=tuple(scales)), device=device)
        if self.kind in ("torchscript", "onnx"):
            from seglab.sources.model_file import ModelFileSource

            return ModelFileSource(
                self.path,
                self.kind,
                preprocessing=self.preprocessing,
                class_names=self.class_names,
                name=self.name,
                device=device,
                flip=flip,
                scales=scales,
                limits=limits,
                isolated=isolated,
            )
        if self.kind == "huggingface":
            from seglab.sources.model_file import HuggingFaceSource

            return HuggingFaceSource(self.path, name=self.name, device=device, limits=limits, isolated=isolated)
        from seglab.sources.folder_source import PredictionFolderSource

        if self.label_map is not None:
            label_map = LabelMap.load(self.label_map)
        return PredictionFolderSource(
            self.path,
            class_names=self.class_names,
            label_map=label_map,
            encoding=self.encoding,
            resize=self.resize,
            name=self.name,
            limits=limits,
        )


def parse_description(data: Any, base: Path, where: str = "description") -> tuple[SourceDescription | None, list[str]]:
    """``(description or None, problems)`` from the JSON form; ``path`` is resolved against ``base``."""
    if not isinstance(data, Mapping):
        return None, [f"{where} must be a JSON object, got {type(data).__name__}"]
    problems = [f"unknown key {key!r}" for key in sorted(set(data) - TOP_LEVEL_KEYS)]
    version = data.get("seglab_source", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        problems.append(
            f"seglab_source {version!r} is newer than this seglab understands ({FORMAT_VERSION}); upgrade seglab"
        )
    kind = data.get("kind")
    if kind not in KINDS:
        problems.append(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    raw_path = data.get("path")
    path = None
    if not isinstance(raw_path, str) or not raw_path:
        problems.append("path (the model file or folder, relative to the description) is missing")
    else:
        path = (base / raw_path).resolve()
        if not path.exists():
            problems.append(f"path {raw_path!r} does not exist (looked for {path})")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        problems.append(f"name must be a string, got {name!r}")
    class_names = data.get("class_names")
    if class_names is not None:
        if (
            not isinstance(class_names, list)
            or not class_names
            or not all(isinstance(n, str) and n for n in class_names)
        ):
            problems.append("class_names must be a non-empty list of names (the model's outputs, in order)")
            class_names = None
        elif len(set(class_names)) != len(class_names):
            problems.append(
                f"class_names repeat a name: {sorted({n for n in class_names if class_names.count(n) > 1})}"
            )
    mapping = data.get("mapping")
    if mapping is not None:
        problems += _mapping_problems(mapping, class_names)
    preprocessing, preprocessing_problems = parse_preprocessing(data.get("preprocessing"))
    problems += preprocessing_problems
    if "preprocessing" in data and kind not in ("torchscript", "onnx"):
        problems.append(f"preprocessing applies to torchscript and onnx files, not to kind {kind!r}")
    predictions = data.get("predictions") or {}
    encoding, resize, label_map = "auto", False, None
    if not isinstance(predictions, Mapping):
        problems.append("predictions must be an object {encoding, resize, label_map}")
    else:
        known = ("encoding", "resize", "label_map")
        problems += [f"predictions.{key}: unknown setting" for key in predictions if key not in known]
        label_map, label_map_problems = _label_map_path(predictions.get("label_map"), base)
        problems += label_map_problems
        encoding = predictions.get("encoding", "auto")
        if encoding not in ("auto", "index", "rgb"):
            problems.append(f"predictions.encoding must be auto, index or rgb, got {encoding!r}")
        resize = predictions.get("resize", False)
        if not isinstance(resize, bool):
            problems.append(f"predictions.resize must be true or false, got {resize!r}")
    if problems or path is None:
        return None, problems
    description = SourceDescription(
        kind=str(kind),
        path=path,
        name=name,
        class_names=tuple(class_names) if class_names else None,
        mapping=dict(mapping) if mapping is not None else None,
        preprocessing=preprocessing,
        encoding=encoding,
        resize=resize,
        label_map=label_map,
    )
    return description, []


def _label_map_path(value: Any, base: Path) -> tuple[Path | None, list[str]]:
    """The resolved label map file of a predictions folder, checked by loading it."""
    from seglab.errors import LabelMapError

    if value is None:
        return None, []
    if not isinstance(value, str) or not value:
        return None, [f"predictions.label_map must be a path to a label map JSON, got {value!r}"]
    path = (base / value).resolve()
    try:
        LabelMap.load(path)
    except LabelMapError as error:
        return None, [f"predictions.label_map: {error}"]
    return path, []


def _mapping_problems(mapping: Any, class_names: list[str] | None) -> list[str]:
    if not isinstance(mapping, Mapping):
        return ["mapping must be an object {model class: dataset class name, id or null}"]
    problems = []
    for source, target in mapping.items():
        if class_names is not None and source not in class_names:
            problems.append(f"mapping: {source!r} is not one of class_names")
        if target is not None and not isinstance(target, (str, int)) or isinstance(target, bool):
            problems.append(f"mapping: {source!r} -> {target!r} must be a dataset class name, id or null")
    return problems


def load_description(path: str | os.PathLike) -> SourceDescription:
    """Read and validate a description file; :class:`SourceError` lists every problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceError(f"description file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SourceError(f"cannot read description file {path}: {error}") from None
    description, problems = parse_description(data, path.parent.resolve(), where=str(path))
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise SourceError(f"{path} has {len(problems)} problem(s):\n{listed}")
    assert description is not None
    return replace(description, file=path.resolve())


def save_description(description: SourceDescription, path: str | os.PathLike) -> Path:
    """Write ``description`` as JSON (atomically), its ``path`` relative to the file's folder."""
    path = Path(path)
    write_json_atomic(path, description.to_dict(relative_to=path.parent.resolve()))
    return path


def description_path(target: str | os.PathLike) -> Path:
    """Where a target's description is written: ``<file name>.seglab.json`` beside a file (``model.onnx.seglab.json``),
    ``model.seglab.json`` inside a folder."""
    target = Path(target)
    if target.is_dir():
        return target / FOLDER_DESCRIPTION
    return target.with_name(target.name + DESCRIPTION_SUFFIX)


def _descriptions_beside(target: Path) -> list[Path]:
    """Description files that may describe ``target``, most specific first."""
    if target.is_dir():
        return [target / FOLDER_DESCRIPTION]
    return [
        description_path(target),
        target.with_name(target.stem + DESCRIPTION_SUFFIX),
        target.with_name(FOLDER_DESCRIPTION),
    ]


def describe_target(target: str | os.PathLike, describe: str | os.PathLike | None = None) -> SourceDescription:
    """The description of a model file/folder: ``describe`` if given, a file beside it, else inferred.

    ``target`` may itself be a ``*.seglab.json`` file. An explicit ``describe`` file keeps its own
    settings but points at ``target``. A description beside the target is used only when its
    ``path`` is that target (``model.seglab.json`` may describe a sibling file).
    """
    target = Path(target)
    if describe is not None:
        return replace(load_description(describe), path=target.resolve())
    if target.name.endswith(DESCRIPTION_SUFFIX) and target.is_file():
        return load_description(target)
    for candidate in _descriptions_beside(target):
        if candidate.is_file():
            description = load_description(candidate)
            if description.path == target.resolve():
                return description
    return SourceDescription(kind=infer_kind(target), path=target.resolve())


def infer_kind(target: Path) -> str:
    """The source kind a path looks like, or :class:`SourceError` saying what was expected."""
    from seglab.sources.runners import is_torchscript_archive

    if target.is_dir():
        if (target / "config.json").is_file() and any(target.glob("*.safetensors")):
            return "huggingface"
        if (target / "best.pt").is_file() or (target / "last.pt").is_file():
            return "checkpoint"
        if any(p.suffix.lower() in (".png", ".npy", ".npz") for p in target.iterdir()):
            return "predictions"
        raise SourceError(
            f"{target} is neither a Hugging Face model folder, a seglab run folder nor a folder of predictions "
            "(.png/.npy/.npz named after the sample ids)"
        )
    if not target.is_file():
        raise SourceError(f"{target} does not exist")
    if target.suffix.lower() == ".onnx":
        return "onnx"
    if is_torchscript_archive(target):
        return "torchscript"
    if zipfile.is_zipfile(target):
        return "checkpoint"
    raise SourceError(
        f"cannot tell what {target} is: expected a .onnx file, a TorchScript archive (torch.jit.save), a seglab "
        f"checkpoint, or a description file ({DESCRIPTION_SUFFIX})"
    )


def open_source(
    target: str | os.PathLike, *, describe: str | os.PathLike | None = None, **options: Any
) -> tuple[PredictionSource, SourceDescription]:
    """``(source, description)`` for a path: the one call the CLI and the app need.

    ``options`` are those of :meth:`SourceDescription.open` (device, limits, isolated, label_map, flip, scales).
    """
    description = describe_target(target, describe)
    return description.open(**options), description
