"""Time to reach a validation mIoU on Shapes: seglab's quick-run default vs baseline recipes.

Every recipe trains on the same built-in Shapes data in this process, evaluating the whole val split
after every epoch; the clock is wall time since training started, evaluations included. A recipe
stops as soon as it reaches the target or runs out of its budget. Prints time-to-target, best mIoU,
training and evaluation throughput, and the ratio of each baseline's time to seglab's.

    python benchmarks/bench_train.py                       # default vs LR-ASPP (torchvision recipe) and UNet+Adam
    python benchmarks/bench_train.py --target 0.9 --budget 60 --baseline-budget 240
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, replace

from seglab.engine.config import TrainConfig
from seglab.engine.stopping import StopTraining
from seglab.engine.trainer import Trainer


@dataclass
class Outcome:
    name: str
    seconds_to_target: float | None
    best_miou: float
    seconds: float
    steps: int
    train_images_per_s: float
    eval_images_per_s: float


def baseline_recipes(default: TrainConfig) -> dict[str, TrainConfig]:
    """The recipes seglab's default is compared with (same data, same crops)."""
    return {
        # torchvision's references/segmentation recipe: SGD lr 0.01, momentum 0.9, wd 1e-4, poly(0.9), CE.
        "lraspp_mobilenet_v3 (torchvision recipe)": replace(
            default,
            model="lraspp_mobilenet_v3_large",
            model_options={},
            optimizer="sgd",
            lr=0.01,
            momentum=0.9,
            weight_decay=1e-4,
            schedule="poly",
            power=0.9,
            warmup_steps=0,
            loss="ce",
            class_weights="none",
        ),
        "unet + adam (plain)": replace(
            default,
            model="unet",
            model_options={},
            optimizer="adam",
            lr=1e-3,
            weight_decay=0.0,
            schedule="constant",
            warmup_steps=0,
            loss="ce",
            class_weights="none",
        ),
    }


def run_recipe(name: str, config: TrainConfig, target: float, budget_s: float) -> Outcome:
    """Train until ``target`` mIoU or ``budget_s`` seconds; evaluation time counts."""
    # The clock, not the epoch count, ends a run (the LR schedule follows the clock too).
    epochs = config.epochs if config.time_budget_s else 1000
    config = replace(config, time_budget_s=budget_s, epochs=epochs, eval_every=1, preview_images=0)
    reached: list[float] = []
    eval_seconds: list[float] = []
    step_rates: list[float] = []

    def watch(event: dict) -> None:
        if event["type"] == "step":
            step_rates.append(event["images_per_s"])
        if event["type"] == "eval":
            eval_seconds.append(event["eval_seconds"])
            miou = event["metrics"].get("miou") or 0.0
            print(f"  {name}: epoch {event['epoch']:>3}  {event['elapsed']:6.1f}s  val mIoU {miou:.4f}", flush=True)
            if miou >= target and not reached:
                reached.append(event["elapsed"])
                raise StopTraining("target reached")

    trainer = Trainer(config, callbacks=[watch])
    started = time.perf_counter()
    result = trainer.fit()
    seconds = time.perf_counter() - started
    val_images = len(trainer.val_data)
    return Outcome(
        name=name,
        seconds_to_target=reached[0] if reached else None,
        best_miou=result.best_metric,
        seconds=seconds,
        steps=result.steps,
        train_images_per_s=sorted(step_rates)[len(step_rates) // 2] if step_rates else float("nan"),
        eval_images_per_s=val_images / (sum(eval_seconds) / len(eval_seconds)) if eval_seconds else float("nan"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=float, default=0.90, help="validation mIoU to reach (default 0.90)")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds for seglab's default (default: its own time budget, else 60)",
    )
    parser.add_argument("--baseline-budget", type=float, default=240.0, help="seconds for each baseline (default 240)")
    parser.add_argument("--skip-baselines", action="store_true", help="only time seglab's default")
    args = parser.parse_args()

    default = TrainConfig()
    budget = args.budget or default.time_budget_s or 60.0
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; target val mIoU {args.target}")
    outcomes = [run_recipe("seglab default (quick run)", default, args.target, budget)]
    if not args.skip_baselines:
        for name, config in baseline_recipes(default).items():
            outcomes.append(run_recipe(name, config, args.target, args.baseline_budget))

    print(
        f"\n{'recipe':42} {'time to target':>15} {'best mIoU':>10} {'steps':>6} {'train img/s':>12} {'eval img/s':>11}"
    )
    for outcome in outcomes:
        reached = (
            f"{outcome.seconds_to_target:.1f}s"
            if outcome.seconds_to_target
            else f">{outcome.seconds:.0f}s (not reached)"
        )
        print(
            f"{outcome.name:42} {reached:>15} {outcome.best_miou:10.4f} {outcome.steps:6d} "
            f"{outcome.train_images_per_s:12.1f} {outcome.eval_images_per_s:11.1f}"
        )
    ours = outcomes[0]
    for outcome in outcomes[1:]:
        if ours.seconds_to_target and outcome.seconds_to_target:
            print(f"ratio {outcome.name} / seglab default: {outcome.seconds_to_target / ours.seconds_to_target:.2f}x")
        elif ours.seconds_to_target:
            ratio = outcome.seconds / ours.seconds_to_target
            print(f"ratio {outcome.name} / seglab default: > {ratio:.2f}x (baseline did not reach the target)")
    print(f"load at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
