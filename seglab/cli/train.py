"""``seglab train``: its flags (one per :class:`~seglab.engine.config.TrainConfig` field), the config they build
(defaults < ``--config`` file < explicit flags, with seglab's recipe for the data filling the rest), the run and
its progress bar."""

from __future__ import annotations

import argparse
import sys

from seglab.cli.arguments import add_data_arguments, apply_shapes_options, data_spec_from_args, parse_key_values

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


def train_config_from_args(args: argparse.Namespace):
    """Defaults < --config file < explicit flags."""
    from dataclasses import fields

    from seglab.engine.config import TrainConfig

    config = TrainConfig.load(args.config) if getattr(args, "config", None) else TrainConfig()
    explicit = {item.name for item in fields(TrainConfig) if hasattr(args, item.name)}
    for item in fields(TrainConfig):
        if item.name in _TRAIN_SKIP or item.name not in explicit:
            continue
        value = getattr(args, item.name)
        if item.name == "model_options":
            value = {**config.model_options, **parse_key_values(value, "--model-option")}
        setattr(config, item.name, value)
    config.data = data_spec_from_args(args, base=config.data)
    if getattr(args, "split", None) is None:
        config.data.split = "train" if not getattr(args, "config", None) else config.data.split
    if hasattr(args, "shapes"):
        apply_shapes_options(config.data, args.shapes)
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


def add_train_command(commands: argparse._SubParsersAction) -> None:
    """The ``seglab train`` sub-command."""
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
