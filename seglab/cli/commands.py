"""The ``seglab`` command line (also ``python -m seglab``).

Every command turns a :class:`seglab.errors.SeglabError` into a one-line message and exit code 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from seglab.cli.arguments import add_data_arguments, data_spec_from_args
from seglab.errors import SeglabError

EPILOG = """examples:
  seglab stats --data shapes
  seglab stats --data camvid --root ../shared/data/camvid --split train
  seglab stats --data voc --root ~/data/VOC2012 --split train
  seglab stats --data folder --images imgs/ --masks masks/ --label-map labels.json
"""


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


# -- eval ----------------------------------------------------------------------------------------
def command_eval(args: argparse.Namespace) -> int:

    from seglab.analysis.label_quality.cache import checkpoint_gatherer
    from seglab.cli.diagnostics import check_diagnostics_arguments
    from seglab.cli.report import print_evaluation
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
    print_evaluation(
        summary, result, dataset, args, title=f"{checkpoint.path} on {spec.describe()} ({len(dataset)} images)"
    )
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
    from seglab.cli.train import add_train_command

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

    add_train_command(commands)

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
