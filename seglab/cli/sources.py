"""Command-line parts for prediction sources: ``eval``/``predict`` on any model or predictions folder, ``export``.

Kept apart from :mod:`seglab.cli.commands` so that file only gains a few hooks: the flags added to ``eval``
and ``predict``, the handlers those commands hand over to, and the ``export`` sub-command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from seglab.errors import ConfigError, SourceError

EXPORT_EXAMPLES = """examples:
  seglab export checkpoints/demo/best.pt --format onnx --out exported/demo.onnx
  seglab export checkpoints/demo/best.pt --format torchscript --out exported/demo.pt
  seglab eval --model exported/demo.onnx          # the exported file is a prediction source
"""


def add_source_arguments(parser: argparse.ArgumentParser, *, predictions: bool = True) -> None:
    """``--model`` (and ``--predictions``) with their options, for ``eval`` and ``predict``."""
    group = parser.add_argument_group("models seglab did not train (instead of --checkpoint)")
    group.add_argument(
        "--model",
        metavar="FILE_OR_DIR",
        help="an ONNX or TorchScript file, a Hugging Face model folder, a seglab checkpoint, "
        "or a *.seglab.json description (read from beside the file when present)",
    )
    if predictions:
        group.add_argument(
            "--predictions",
            metavar="DIR",
            help="a folder of predictions, one file per sample named after its id: class-index or colour "
            "PNG, or .npy/.npz labels (H, W) or probabilities/logits (K, H, W)",
        )
        group.add_argument(
            "--resize-predictions",
            action="store_true",
            help="resize predictions of another size than their image (nearest neighbour, reported) "
            "instead of refusing them",
        )
    group.add_argument(
        "--describe", metavar="JSON", help="description file (kind, preprocessing, class names, mapping)"
    )
    group.add_argument(
        "--mapping",
        metavar="JSON",
        help="class mapping file {model class: dataset class or null}; unmapped classes count as 'other'",
    )
    group.add_argument(
        "--timeout-s", type=float, default=None, help="time limit per image for model files (default: 30)"
    )
    group.add_argument("--max-file-mb", type=float, default=None, help="size limit of a model file (default: 500)")


def uses_source(args: argparse.Namespace) -> bool:
    """Whether ``eval``/``predict`` was asked for a model source rather than a checkpoint."""
    return bool(getattr(args, "model", None) or getattr(args, "predictions", None))


def check_one_target(args: argparse.Namespace) -> None:
    """Exactly one of --checkpoint, --model, --predictions."""
    given = [flag for flag in ("checkpoint", "model", "predictions") if getattr(args, flag, None)]
    if len(given) != 1:
        choices = (
            "--checkpoint, --model or --predictions" if hasattr(args, "predictions") else "--checkpoint or --model"
        )
        said = f" (got {', '.join('--' + flag for flag in given)})" if given else ""
        raise ConfigError(f"give exactly one of {choices}{said}")


def _limits(args: argparse.Namespace):
    from dataclasses import replace

    from seglab.sources.base import DEFAULT_LIMITS

    limits = DEFAULT_LIMITS
    if getattr(args, "timeout_s", None) is not None:
        if args.timeout_s <= 0:
            raise ConfigError(f"--timeout-s must be positive, got {args.timeout_s}")
        limits = replace(limits, timeout_s=args.timeout_s)
    if getattr(args, "max_file_mb", None) is not None:
        if args.max_file_mb <= 0:
            raise ConfigError(f"--max-file-mb must be positive, got {args.max_file_mb}")
        limits = replace(limits, max_file_bytes=int(args.max_file_mb * 2**20))
    return limits


def _declared_mapping(args: argparse.Namespace, description) -> dict[str, Any] | None:
    if not getattr(args, "mapping", None):
        return description.mapping
    try:
        mapping = json.loads(Path(args.mapping).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise SourceError(f"cannot read mapping file {args.mapping}: {error}") from None
    if not isinstance(mapping, dict):
        raise SourceError(f"mapping file {args.mapping} must hold a JSON object {{model class: dataset class or null}}")
    return mapping


def open_cli_source(args: argparse.Namespace, label_map=None):
    """``(source, description)`` from --model/--predictions, --describe and the limit flags."""
    from dataclasses import replace

    from seglab.sources.description import describe_target

    target = args.model or args.predictions
    description = describe_target(target, args.describe)
    if getattr(args, "predictions", None):
        if description.kind != "predictions":
            raise SourceError(f"--predictions {target} is a {description.kind} source; pass it with --model")
        if args.resize_predictions:
            description = replace(description, resize=True)
    elif description.kind == "predictions":
        raise SourceError(f"--model {target} is a folder of predictions; pass it with --predictions")
    device = getattr(args, "device", "auto")
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    scales = tuple(float(s) for s in args.scales.split(",")) if getattr(args, "scales", None) else (1.0,)
    options: dict[str, Any] = {"device": device, "limits": _limits(args), "label_map": label_map}
    if description.kind != "predictions":
        options.update(flip=bool(getattr(args, "tta_flip", False)), scales=scales)
    return description.open(**options), description


def command_eval_source(args: argparse.Namespace) -> int:
    """``seglab eval --model/--predictions``: the same report and JSON as for a checkpoint."""
    from seglab.cli.arguments import data_spec_from_args
    from seglab.cli.report import print_evaluation
    from seglab.data.spec import DataSpec, build_dataset
    from seglab.engine.evaluation import evaluate_source
    from seglab.progress import progress_bar

    check_one_target(args)
    spec = data_spec_from_args(args, base=DataSpec().with_split("val"))
    dataset = build_dataset(spec)
    source, description = open_cli_source(args, label_map=dataset.label_map)
    mapping = _declared_mapping(args, description)
    with source, progress_bar(len(dataset), f"eval {source.name} on {spec.describe()}", unit="img") as update:
        result = evaluate_source(
            source, dataset, mapping=mapping, progress=update, batch_size=args.batch_size, use_cache=not args.no_cache
        )
    summary = result.metrics.to_dict(dataset.class_names)
    summary["data"] = spec.to_dict()
    summary["predictions" if args.predictions else "model"] = str(description.path)
    summary["source"] = result.source
    summary["notes"] = result.notes
    title = f"{source.name} on {spec.describe()} ({len(dataset)} images)"
    print_evaluation(summary, result, dataset, args, title=title, notes=result.notes)
    return 0


def command_predict_source(args: argparse.Namespace, out: Path) -> int:
    """``seglab predict --model``: masks, overlays and class-id PNGs from any model source, into ``out``."""
    from seglab.data.label_map import LabelMap
    from seglab.engine.predict import Prediction

    check_one_target(args)
    source, _ = open_cli_source(args)
    chosen = LabelMap.load(args.label_map) if getattr(args, "label_map", None) else None

    def predict_image(image: np.ndarray) -> tuple[Prediction, LabelMap]:
        predicted = source.predict(None, image)
        label_map = chosen or _display_label_map(source.class_names, predicted)
        scores = predicted.probabilities
        confidence = scores.max(axis=0) if scores is not None else np.ones(predicted.labels.shape, np.float32)
        return Prediction(labels=predicted.labels.astype(np.uint8), confidence=confidence), label_map

    with source:
        failures = write_image_predictions(args.images, out, args.alpha, predict_image)
    return 2 if failures else 0


def write_image_predictions(image_paths: list[str], out: Path, alpha: float, predict_image: Any) -> int:
    """Predict image files with ``predict_image(image) -> (Prediction, LabelMap)`` and write mask, overlay and
    class-id PNGs per file (``seglab.engine.predict.save_prediction``); unreadable files are skipped. Returns their
    count.

    ``out`` must exist (``seglab.io.output_paths.prepare_output_folder``); output names are unique even when
    file names repeat across folders (``a/ok.png`` and ``b/ok.jpg`` must not share files).
    """
    from seglab.data.io import read_image
    from seglab.engine.predict import save_prediction, unique_output_stems
    from seglab.errors import DatasetError

    failures = 0
    stems = unique_output_stems([Path(path) for path in image_paths])
    for image_path, stem in zip(image_paths, stems, strict=True):
        try:
            image = read_image(
                image_path, upright=True
            )  # a photo: honour its EXIF orientation, as the app's upload does
        except DatasetError as error:
            print(f"skipped: {error}", file=sys.stderr)
            failures += 1
            continue
        prediction, label_map = predict_image(image)
        written = save_prediction(image, prediction, label_map, out, stem, alpha=alpha)
        print(f"{image_path}: " + ", ".join(str(p) for p in written))
    return failures


def _display_label_map(class_names: list[str] | None, prediction) -> Any:
    """Colours for a model's classes: its names in distinct palette colours."""
    from dataclasses import replace

    from seglab.data.label_map import ClassInfo, generic_label_map

    count = (
        len(class_names)
        if class_names
        else (
            prediction.probabilities.shape[0]
            if prediction.probabilities is not None
            else int(prediction.labels.max()) + 1
        )
    )
    if count > 255:
        raise SourceError(
            f"the model predicts {count} classes; seglab predict writes 8-bit class PNGs (at most 255 classes)"
        )
    generic = generic_label_map(count)
    if not class_names:
        return generic
    classes = tuple(
        ClassInfo(info.id, name, info.color) for info, name in zip(generic.classes, class_names, strict=True)
    )
    return replace(generic, classes=classes, name="model")


def add_export_command(commands: argparse._SubParsersAction) -> None:
    """The ``export`` sub-command."""
    from seglab.cli.arguments import add_data_arguments
    from seglab.engine.export import DEFAULT_TOLERANCE, EXPORT_FORMATS, EXPORTERS

    export = commands.add_parser(
        "export",
        help="export a checkpoint to ONNX or TorchScript (any image size)",
        description="Export a checkpoint's network to ONNX or TorchScript with dynamic height and width, write "
        "<file>.seglab.json beside it (classes and preprocessing), check parity against PyTorch on images of the "
        "checkpoint's dataset (max |logit difference|), and load the file back as a prediction source.",
        epilog=EXPORT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("checkpoint", help="a .pt file or a run folder (uses best.pt)")
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS, help="onnx (onnxruntime) or torchscript")
    export.add_argument("--out", required=True, help="the file to write, e.g. exported/model.onnx")
    export.add_argument(
        "--exporter",
        choices=EXPORTERS,
        default="auto",
        help="ONNX only: dynamo (needs onnxscript), legacy (TorchScript-based), auto: dynamo when available",
    )
    export.add_argument(
        "--parity-images", type=int, default=3, help="dataset images the parity check runs on (default: 3)"
    )
    export.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"largest acceptable |logit difference| (default: {DEFAULT_TOLERANCE:g})",
    )
    add_data_arguments(export, split_default=None)
    export.set_defaults(handler=command_export)


def command_export(args: argparse.Namespace) -> int:
    from seglab.cli.arguments import data_spec_from_args
    from seglab.data.spec import build_dataset
    from seglab.engine.export import export_checkpoint

    if args.parity_images < 1:
        raise ConfigError(f"--parity-images must be at least 1, got {args.parity_images}")
    data_given = any(getattr(args, flag, None) for flag in ("data", "root", "images", "masks", "split"))
    dataset = build_dataset(data_spec_from_args(args)) if data_given else None
    report = export_checkpoint(
        args.checkpoint,
        args.format,
        args.out,
        dataset=dataset,
        parity_images=args.parity_images,
        tolerance=args.tolerance,
        exporter=args.exporter,
    )
    print(report.summary())
    return 0


def add_sources_command(commands: argparse._SubParsersAction) -> None:
    """The ``sources`` sub-command: the sources catalog the app's sidebar lists (list, add, remove)."""
    from seglab.cli.arguments import add_data_arguments
    from seglab.sources.catalog import REGISTERED_KINDS

    sources = commands.add_parser(
        "sources",
        help="list, register or remove model files and predictions folders for the app",
        description="The sources catalog (<runs folder>/sources/): model files and predictions folders registered "
        "once, then picked in the app's sidebar like checkpoints. Paths must lie inside the runs folder, "
        "$SEGLAB_DATA_ROOT or a folder of $SEGLAB_DATA_ROOTS.",
    )
    actions = sources.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every registered source, broken ones with their problem")
    add = actions.add_parser("add", help="check a source on the data, then register it")
    add.add_argument("name", help="the name shown in the app")
    add.add_argument("path", help="the model file or predictions folder")
    add.add_argument("--kind", required=True, choices=REGISTERED_KINDS)
    add.add_argument("--class-names", default="", help="the model's classes in output order, comma-separated")
    add.add_argument("--mapping", metavar="JSON", help="class mapping file {model class: dataset class or null}")
    add.add_argument("--resize-predictions", action="store_true", help="predictions folders: resize other sizes")
    add_data_arguments(add, split_default="val")
    remove = actions.add_parser("remove", help="forget a source (its files are left alone)")
    remove.add_argument("name")
    for parser in (listing, add, remove):
        parser.add_argument("--dir", default="checkpoints", help="the runs folder (default: checkpoints)")
    sources.set_defaults(handler=command_sources)


def command_sources(args: argparse.Namespace) -> int:
    """``seglab sources list|add|remove``."""
    import os

    from seglab.sources.catalog import DESCRIPTION_SUFFIX, allowed_roots, catalog_dir, list_sources, slug
    from seglab.sources.registration import SourceForm, register_checked, remove_source

    roots = allowed_roots(args.dir, os.environ.get("SEGLAB_DATA_ROOT"))
    if args.action == "list":
        for entry in list_sources(args.dir, roots):
            where = entry.description.path if entry.description is not None else "?"
            print(f"{entry.name}\t{entry.kind}\t{where}" + ("" if entry.ok else f"\tbroken: {entry.problem}"))
        return 0
    if args.action == "remove":
        file = catalog_dir(args.dir) / f"{slug(args.name)}{DESCRIPTION_SUFFIX}"
        if not file.is_file():
            raise SourceError(f"no registered source named {args.name!r} in {catalog_dir(args.dir)}")
        remove_source(args.dir, file)
        print(f"removed {args.name}")
        return 0
    from seglab.cli.arguments import data_spec_from_args
    from seglab.data.spec import DataSpec, build_dataset

    mapping = None
    if args.mapping:
        try:
            mapping = json.loads(Path(args.mapping).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise SourceError(f"cannot read mapping file {args.mapping}: {error}") from None
    dataset = build_dataset(data_spec_from_args(args, base=DataSpec().with_split("val")))
    form = SourceForm(
        name=args.name,
        kind=args.kind,
        path=args.path,
        class_names=args.class_names,
        mapping=mapping,
        resize_predictions=args.resize_predictions,
    )
    registered, problems, facts = register_checked(args.dir, form, roots, dataset)
    for fact in facts:
        print(f"ok: {fact}")
    if registered is None:
        raise SourceError(f"{args.name} was not registered, {len(problems)} problem(s):\n" + "\n".join(problems))
    print(f"registered {registered.name} ({registered.file}): pick it in the app's sidebar")
    return 0
