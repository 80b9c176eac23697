"""The ``seglab`` command line (also ``python -m seglab``).

Every command turns a :class:`seglab.errors.SeglabError` into a one-line message and exit code 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from seglab.data.spec import DATA_KINDS, DataSpec
from seglab.errors import SeglabError

EPILOG = """examples:
  seglab stats --data shapes
  seglab stats --data camvid --root ../shared/data/camvid --split train
  seglab stats --data voc --root ~/data/VOC2012 --split train
  seglab stats --data folder --images imgs/ --masks masks/ --label-map labels.json
"""


def add_data_arguments(parser: argparse.ArgumentParser, *, split_default: str | None = "train") -> None:
    """The flags that pick a dataset: shared by stats, train, eval."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data", choices=DATA_KINDS, default=None, help="dataset layout (default: shapes, the built-in synthetic data)"
    )
    group.add_argument("--root", help="dataset folder for --data voc/camvid (e.g. ../shared/data/camvid)")
    group.add_argument("--split", default=split_default, help="split name: train/val/test (VOC: also trainval)")
    group.add_argument("--images", help="--data folder: folder of images")
    group.add_argument("--masks", help="--data folder: folder of masks (class-index or colour-coded PNGs)")
    group.add_argument(
        "--list-file", help="--data folder: optional list of 'IMAGE [MASK]' lines (matched by file name)"
    )
    group.add_argument("--label-map", help="label map JSON (class ids, names, colours, ignore index)")
    group.add_argument(
        "--mask-format", choices=("auto", "index", "rgb"), default="auto", help="--data folder: how masks are encoded"
    )


def data_spec_from_args(args: argparse.Namespace, base: DataSpec | None = None) -> DataSpec:
    """Build a DataSpec from data flags, starting from ``base`` (e.g. a checkpoint's data)."""
    spec = DataSpec() if base is None else DataSpec.from_dict(base.to_dict())
    if args.data is not None and args.data != spec.kind:
        spec = DataSpec(kind=args.data)
    for flag in ("root", "images", "masks", "list_file", "label_map"):
        value = getattr(args, flag, None)
        if value is not None:
            setattr(spec, flag, value)
    if getattr(args, "split", None):
        spec.split = args.split
    if getattr(args, "mask_format", "auto") != "auto":
        spec.mask_format = args.mask_format
    return spec


# -- stats ---------------------------------------------------------------------------------------
def command_stats(args: argparse.Namespace) -> int:
    from seglab.analysis.stats import compute_stats
    from seglab.cli.report import format_stats_report
    from seglab.data.spec import build_dataset
    from seglab.progress import progress_bar

    dataset = build_dataset(data_spec_from_args(args))
    with progress_bar(total=len(dataset), description=f"stats {dataset.describe()}") as update:
        stats = compute_stats(dataset, progress=update, use_cache=not args.no_cache)
    print(format_stats_report(stats, dataset.describe()))
    return 0


# -- train ---------------------------------------------------------------------------------------
TRAIN_EXAMPLES = """examples:
  seglab train                                    # quick CPU demo on the built-in Shapes data
  seglab train --data shapes --model unet --loss ce --epochs 5 --out checkpoints/demo
  seglab train --loss ce+dice --class-weights median --time-budget-s 60
  seglab train --loss hard_ce --top-k-percent-pixels 0.25 --hard-example-mining-step 500
  seglab train --data camvid --root ../shared/data/camvid --model deeplabv3plus_resnet18 --crop-size 256
  seglab train --model lraspp_mobilenet_v3_large --pretrained imagenet   # ImageNet encoder, fetched once
  seglab train --config checkpoints/demo/config.json --out checkpoints/demo --resume
  torchrun --standalone --nproc-per-node 4 -m seglab train --device cuda --out checkpoints/ddp   # 4 GPUs, DDP
"""

_TRAIN_SKIP = {"data"}


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (defaults shown), plus --config/--out/--resume."""
    from dataclasses import fields

    from seglab.engine.config import TrainConfig, field_default

    help_texts = TrainConfig.option_help()
    group = parser.add_argument_group("training options (defaults: the fast CPU demo)")
    for item in fields(TrainConfig):
        if item.name in _TRAIN_SKIP:
            continue
        default = field_default(item)
        flag = "--" + item.name.replace("_", "-")
        text = f"{help_texts.get(item.name, '')} (default: {default})"
        if item.name == "model_options":
            group.add_argument(
                "--model-option",
                dest="model_options",
                action="append",
                metavar="KEY=VALUE",
                default=argparse.SUPPRESS,
                help="extra model option, repeatable (e.g. base_width=16)",
            )
        elif isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=text)
        else:
            kind = float if item.name in ("time_budget_s", "grad_clip") else type(default)
            group.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=text)
    group.add_argument(
        "--shapes",
        action="append",
        metavar="KEY=VALUE",
        default=argparse.SUPPRESS,
        help="Shapes generator option, repeatable (e.g. train_size=800, difficulty=0.8)",
    )


def _parse_key_values(items: list[str], what: str) -> dict:
    import json

    from seglab.errors import ConfigError

    parsed = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} {item!r} must look like KEY=VALUE")
        try:
            parsed[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key.strip()] = raw
    return parsed


def train_config_from_args(args: argparse.Namespace):
    """Defaults < --config file < explicit flags."""
    from dataclasses import fields

    from seglab.data.shapes import ShapesConfig
    from seglab.engine.config import TrainConfig

    config = TrainConfig.load(args.config) if getattr(args, "config", None) else TrainConfig()
    explicit = {item.name for item in fields(TrainConfig) if hasattr(args, item.name)}
    for item in fields(TrainConfig):
        if item.name in _TRAIN_SKIP or item.name not in explicit:
            continue
        value = getattr(args, item.name)
        if item.name == "model_options":
            value = {**config.model_options, **_parse_key_values(value, "--model-option")}
        setattr(config, item.name, value)
    config.data = data_spec_from_args(args, base=config.data)
    if getattr(args, "split", None) is None:
        config.data.split = "train" if not getattr(args, "config", None) else config.data.split
    if hasattr(args, "shapes"):
        merged = {**config.data.shapes.to_dict(), **_parse_key_values(args.shapes, "--shapes")}
        try:
            config.data.shapes = ShapesConfig.from_dict(merged)
        except (TypeError, ValueError) as error:
            from seglab.errors import ConfigError

            raise ConfigError(f"--shapes: {error}") from None
    if not getattr(args, "config", None):
        apply_data_recipe(config, explicit)
    config.validate()  # flags were set one by one: check the whole before any work
    return config


def apply_data_recipe(config, explicit: set[str]) -> None:
    """Fill the options not given as flags from seglab's recipe for the training data (see run_plan.data_defaults).

    Says what it chose on stderr. Data that cannot be read is left to the trainer, whose error names the file.
    """
    from seglab.engine.run_plan import data_defaults, describe_recipe, training_image_size
    from seglab.errors import SeglabError

    try:
        image_size = training_image_size(config.data)
    except (SeglabError, OSError):
        return
    if image_size is None:
        return
    chosen = {
        name: value for name, value in data_defaults(image_size, config.data.kind).items() if name not in explicit
    }
    if "model_options" in explicit:
        chosen.pop("model", None)  # options given for the default model stay with it
    changed = {name: value for name, value in chosen.items() if getattr(config, name) != value}
    for name, value in changed.items():
        setattr(config, name, value)
    if changed:
        print(
            f"seglab's recipe for {image_size[1]}x{image_size[0]} images: {describe_recipe(changed)} "
            "(any flag overrides it)",
            file=sys.stderr,
        )


def command_train(args: argparse.Namespace) -> int:
    import signal
    import threading
    from contextlib import nullcontext

    from seglab.analysis.label_quality.cache import best_checkpoint_gatherers
    from seglab.cli.report import format_metrics_report
    from seglab.engine import distributed
    from seglab.engine.run_dir import RunDirectory
    from seglab.engine.run_folder import claim_run_folder
    from seglab.engine.runs import new_run_name
    from seglab.engine.trainer import Trainer
    from seglab.options import resolve_device

    config = train_config_from_args(args)

    def interrupted(signum, frame):  # SIGTERM from `seglab.engine.runs.stop_run` escalation (or torchrun): stop cleanly
        raise KeyboardInterrupt

    # Only the main thread may install handlers; restore it after, for in-process callers (tests).
    previous = (
        signal.signal(signal.SIGTERM, interrupted) if threading.current_thread() is threading.main_thread() else None
    )
    try:
        # Under torchrun: one process group for the whole command, left even on an error or a stop.
        with distributed.process_group(resolve_device(config.device)) as world:
            # Only rank 0 talks; every rank must use rank 0's folder name (it holds a timestamp).
            say = (lambda message: print(message, file=sys.stderr)) if world.is_main else (lambda message: None)
            out = args.out or distributed.broadcast_object(f"checkpoints/{new_run_name(config)}")
            # Rank 0 owns the folder: refuses to replace a run, locks it for the run's life, cleans leftovers.
            claim = (
                claim_run_folder(out, resume=args.resume, overwrite=args.overwrite, launch_id=args.launch_id)
                if world.is_main
                else nullcontext()
            )
            with claim:
                for note in getattr(claim, "notes", []):
                    say(note)
                callbacks = [] if args.quiet else [TrainProgress()]
                # The Label quality page's report of best.pt, scored in the evaluation pass that produced it.
                gatherers = best_checkpoint_gatherers(RunDirectory(out).best_path)
                trainer = Trainer(config, out_dir=out, callbacks=callbacks, eval_consumer=gatherers)
                if args.resume:
                    last = RunDirectory(out).last_path  # every rank loads it: on several nodes, a shared file system
                    if last.is_file():
                        trainer.resume(last)
                        say(f"resuming {out} from step {trainer.step} (epoch {trainer.epoch})")
                    else:
                        say(f"--resume: no {last} yet, starting from scratch")
                processes = f", {world.size} processes x batch {config.batch_size}" if world.distributed else ""
                say(
                    f"training {config.model} on {config.data.describe()} -> {out} (device {trainer.device}{processes})"
                )
                result = trainer.fit()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if not world.is_main:
        return 0
    print(
        format_metrics_report(
            result.best_metrics,
            title=f"best on {config.val_split} ({config.best_metric} "
            f"{result.best_metric:.4f}), {result.steps} steps in {result.seconds:.1f}s: {out}",
        )
    )
    return 0


class TrainProgress:
    """CLI callback: a tqdm bar per epoch and one line per evaluation."""

    def __init__(self):
        self.bar = None

    def __call__(self, event: dict) -> None:
        from tqdm import tqdm

        kind = event.get("type")
        if kind == "note":  # e.g. "Downloading ImageNet weights ..." before torch hub's own bar
            print(event["message"], file=sys.stderr)
        elif kind == "start":
            self.steps_per_epoch = event.get("steps_per_epoch") or 0
        elif kind == "step":
            if self.bar is None:
                self.bar = tqdm(
                    total=self.steps_per_epoch,
                    desc=f"epoch {event['epoch'] + 1}",
                    unit="step",
                    file=sys.stderr,
                    leave=False,
                )
            self.bar.n = event["step"] - event["epoch"] * self.steps_per_epoch
            self.bar.set_postfix(
                loss=f"{event['loss']:.4f}", lr=f"{event['lr']:.2e}", img_s=f"{event['images_per_s']:.0f}"
            )
        elif kind in ("epoch", "end") and self.bar is not None:
            self.bar.close()
            self.bar = None
        if kind == "eval":
            metrics = event["metrics"]
            print(
                f"epoch {event['epoch']:>3} step {event['step']:>6}  val mIoU {metrics.get('miou') or 0:.4f}  "
                f"pixel acc {metrics.get('pixel_acc') or 0:.4f}  {'*best*' if event.get('best') else ''}  "
                f"[{event.get('elapsed', 0):.0f}s]",
                file=sys.stderr,
            )
        elif kind == "end" and event.get("error"):
            print(f"run ended: {event['state']}: {event['error']}", file=sys.stderr)


# -- eval ----------------------------------------------------------------------------------------
def command_eval(args: argparse.Namespace) -> int:
    import json

    from seglab.analysis.label_quality.cache import checkpoint_gatherer
    from seglab.cli.diagnostics import add_diagnostics, check_diagnostics_arguments
    from seglab.cli.report import format_metrics_report
    from seglab.cli.sources import check_one_target, command_eval_source, uses_source
    from seglab.data.spec import build_dataset
    from seglab.engine.checkpoint import check_compatible, load_checkpoint
    from seglab.engine.config import TrainConfig
    from seglab.engine.evaluation import Protocol, evaluate_checkpoint
    from seglab.options import InferenceOptions, parse_scales
    from seglab.progress import progress_bar

    # Every option is checked before any work: --device cuda on a machine without CUDA is refused here.
    options = InferenceOptions(
        device=args.device, batch_size=args.batch_size, flip=args.tta_flip, scales=parse_scales(args.scales)
    )
    device = options.torch_device()
    check_diagnostics_arguments(args)
    if uses_source(args):
        return command_eval_source(args)
    check_one_target(args)
    checkpoint = load_checkpoint(args.checkpoint)
    trained = TrainConfig.from_dict(checkpoint.config) if checkpoint.config else TrainConfig()
    base = trained.data.with_split(trained.val_split)
    spec = data_spec_from_args(args, base=base)
    dataset = build_dataset(spec)
    check_compatible(checkpoint, dataset.label_map)
    protocol = Protocol(flip=options.flip, scales=options.scales)
    with progress_bar(len(dataset), f"eval {spec.describe()}", unit="img") as update:
        result = evaluate_checkpoint(
            checkpoint.path,
            dataset,
            protocol=protocol,
            progress=update,
            device=str(device),
            batch_size=options.batch_size,
            use_cache=not args.no_cache,
            consumer=None if args.no_cache else checkpoint_gatherer(checkpoint.path, dataset, protocol=protocol),
        )
    summary = result.metrics.to_dict(dataset.class_names)
    summary["data"] = spec.to_dict()
    summary["checkpoint"] = str(checkpoint.path)
    # What stats and the app say about the data (images without masks skipped, unknown colours read as void).
    summary["warnings"] = dataset.notes()
    for note in summary["warnings"]:
        print(f"seglab eval: warning: {note}", file=sys.stderr)
    diagnostics = add_diagnostics(summary, result, dataset, args)
    if args.json:
        print(json.dumps(summary, allow_nan=False, default=str))
    else:
        print(format_metrics_report(summary, title=f"{checkpoint.path} on {spec.describe()} ({len(dataset)} images)"))
        if diagnostics:
            print(diagnostics)
    return 0


# -- predict -------------------------------------------------------------------------------------
def command_predict(args: argparse.Namespace) -> int:

    from seglab.cli.sources import check_one_target, command_predict_source, uses_source, write_image_predictions
    from seglab.engine.checkpoint import load_checkpoint
    from seglab.engine.predict import predict
    from seglab.io.output_paths import prepare_output_folder
    from seglab.options import InferenceOptions, parse_scales

    # Every option and the output folder are checked before the model is loaded or anything is written.
    options = InferenceOptions(
        flip=args.tta_flip, scales=parse_scales(args.scales), tile_size=args.tile_size, alpha=args.alpha
    )
    device = options.torch_device()
    check_one_target(args)
    out = prepare_output_folder(args.out)
    if uses_source(args):
        return command_predict_source(args, out)
    checkpoint = load_checkpoint(args.checkpoint)
    model = checkpoint.build_model(device)

    def predict_image(image):
        prediction = predict(model, image, flip=options.flip, scales=options.scales, tile_size=options.tile_size)
        return prediction, checkpoint.label_map

    failures = write_image_predictions(args.images, out, options.alpha, predict_image)
    return 2 if failures else 0


# -- runs / models -------------------------------------------------------------------------------
def command_runs(args: argparse.Namespace) -> int:
    import datetime as dt

    from seglab.cli.report import format_table
    from seglab.engine.runs import list_runs

    runs = list_runs(args.dir)
    if not runs:
        print(f"no runs under {args.dir} (start one with 'seglab train')")
        return 0
    rows = []
    for run in runs:
        started = dt.datetime.fromtimestamp(run.started).strftime("%Y-%m-%d %H:%M") if run.started else "-"
        best = f"{run.best_metric_name} {run.best_metric:.4f}" if run.best_metric is not None else "-"
        note = f"unusable: {run.problem}" if run.problem else (run.error or "")
        rows.append((run.name, run.state, run.model, run.loss, run.data, run.step, best, started, note[:90]))
    print(
        format_table(
            rows, ("run", "state", "model", "loss", "data", "step", "best", "started", "error"), align="lllllrrll"
        )
    )
    return 0


def command_models(args: argparse.Namespace) -> int:
    from seglab.cli.report import format_table
    from seglab.models import available_models

    print(format_table(sorted(available_models().items()), ("model", "description"), align="ll"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from seglab.cli.diagnostics import add_diagnostics_arguments
    from seglab.cli.sources import add_export_command, add_source_arguments, add_sources_command

    parser = argparse.ArgumentParser(
        prog="seglab",
        description="seglab: train, evaluate and debug semantic segmentation models.",
        epilog="Run 'seglab COMMAND --help' for the options of one command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    stats = commands.add_parser(
        "stats",
        help="class-imbalance statistics of a dataset split",
        description="Per-class pixel share, image count, class weights (inverse and median frequency), object "
        "sizes, and the scores of a trivial all-background model. Results are cached per dataset fingerprint.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_arguments(stats)
    stats.add_argument("--no-cache", action="store_true", help="recompute even when cached statistics exist")
    stats.set_defaults(handler=command_stats)

    train = commands.add_parser(
        "train",
        help="train a model (the defaults are a fast CPU demo on Shapes)",
        description="Train a segmentation model. Writes checkpoints/<run>/ with config.json, label_map.json, "
        "events.jsonl, status.json, last.pt and best.pt. Every option can also come from --config FILE.json "
        "(flags override the file).",
        epilog=TRAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_arguments(train, split_default=None)
    train.add_argument("--config", help="JSON file with training options (e.g. a run's config.json)")
    train.add_argument("--out", help="run folder (default: checkpoints/<model>-<loss>-<time>)")
    train.add_argument("--resume", action="store_true", help="continue the run in OUT from its last.pt")
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="OUT already holds a run: move it aside to OUT-replaced-<time> (nothing is deleted) and start anew",
    )
    train.add_argument("--launch-id", help=argparse.SUPPRESS)  # set by the app's launcher for the folder it prepared
    train.add_argument("--quiet", action="store_true", help="no progress bar (background runs)")
    add_train_arguments(train)
    train.set_defaults(handler=command_train)

    evaluate = commands.add_parser(
        "eval",
        help="evaluate a checkpoint (per-class IoU, precision, recall)",
        description="Evaluate a checkpoint with one confusion matrix over the whole split (void pixels dropped; "
        "the MMSegmentation IoUMetric definition). The data defaults to the split the checkpoint was validated on.",
        epilog="examples:\n  seglab eval --checkpoint checkpoints/demo/best.pt\n"
        "  seglab eval --checkpoint checkpoints/camvid/best.pt "
        "--data camvid --root ../shared/data/camvid --split val --json\n"
        "  seglab eval --model exported/model.onnx --data camvid --root ../shared/data/camvid --split test\n"
        "  seglab eval --model segformer/ --mapping cityscapes_to_camvid.json "
        "--data camvid --root ../shared/data/camvid\n"
        "  seglab eval --predictions my_predictions/ --data camvid --root ../shared/data/camvid --split test --json\n"
        "  seglab eval --checkpoint checkpoints/demo/best.pt --tags tags.csv --detect-threshold 0.3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("--checkpoint", help="a .pt file or a run folder (uses best.pt)")
    add_data_arguments(evaluate, split_default=None)
    evaluate.add_argument(
        "--json", action="store_true", help="print one JSON object (miou, pixel_acc, iou per class, ...)"
    )
    evaluate.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default: 8)")
    evaluate.add_argument("--tta-flip", action="store_true", help="average with the horizontally flipped prediction")
    evaluate.add_argument("--scales", help="multi-scale test-time augmentation, e.g. 0.75,1,1.25")
    evaluate.add_argument(
        "--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto = CUDA if available)"
    )
    evaluate.add_argument("--no-cache", action="store_true", help="evaluate again even when a cached evaluation exists")
    add_source_arguments(evaluate)
    add_diagnostics_arguments(evaluate)
    evaluate.set_defaults(handler=command_eval)

    predict = commands.add_parser(
        "predict",
        help="predict masks for image files",
        description="Writes <name>_mask.png (colourised), <name>_overlay.png "
        "and <name>_labels.png (class ids) per image. "
        "Images sharing a name (a/ok.png, b/ok.jpg) get distinct names (ok_png_*, ok_jpg_*). A photo's EXIF "
        "orientation is applied, as a phone shows it.",
        epilog="example:\n  seglab predict --checkpoint checkpoints/demo/best.pt "
        "photo1.png photo2.jpg --out predictions/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument("--checkpoint", help="a .pt file or a run folder")
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    predict.add_argument("--out", required=True, help="output folder")
    predict.add_argument("--alpha", type=float, default=0.5, help="overlay opacity, 0-1 (default: 0.5)")
    predict.add_argument("--tta-flip", action="store_true")
    predict.add_argument("--scales", help="multi-scale TTA, e.g. 0.75,1,1.25")
    predict.add_argument("--tile-size", type=int, default=None, help="sliding-window tile size for large images")
    predict.add_argument("--label-map", help="--model: label map JSON giving the colours of the model's classes")
    add_source_arguments(predict, predictions=False)
    predict.set_defaults(handler=command_predict)

    runs = commands.add_parser("runs", help="list training runs with status and best metric")
    runs.add_argument("--dir", default="checkpoints", help="folder holding run folders (default: checkpoints)")
    runs.set_defaults(handler=command_runs)

    models = commands.add_parser("models", help="list the available model architectures")
    models.set_defaults(handler=command_models)

    add_export_command(commands)
    add_sources_command(commands)

    from seglab.competition.cli import add_competition_parser

    add_competition_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``seglab`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 1
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(args.command, warnings.showwarning)
            return int(args.handler(args) or 0)
    except SeglabError as error:
        print(f"seglab {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `seglab eval --json | head`
        sys.stderr.close()
        return 0
    except OSError as error:  # a full disk or a read-only folder met while writing results
        from seglab.io.output_paths import write_failure

        where = f" {error.filename}" if error.filename else ""
        print(
            f"seglab {args.command}: error: file system error{where}: {write_failure(error, error.filename or '.')}; "
            "free some space or fix the permissions, or use another folder (--out)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"seglab {args.command}: interrupted", file=sys.stderr)
        return 130


def _warning_printer(command: str, fallback):
    """Show seglab's own warnings (e.g. a cache that cannot be written) as one line each, others as usual."""
    from tqdm import tqdm

    from seglab.errors import SeglabWarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SeglabWarning):
            tqdm.write(
                f"seglab {command}: warning: {message}", file=sys.stderr
            )  # on its own line, even mid-progress-bar
        else:
            fallback(message, category, filename, lineno, file, line)

    return show


if __name__ == "__main__":
    raise SystemExit(main())
