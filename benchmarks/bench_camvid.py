"""Real data in minutes: seglab's CamVid recipe vs torchvision's reference recipe, same time budget.

For each budget, trains one recipe after the other in this process on CamVid's train split, from
scratch, with the clock ending each run (evaluations included, the LR schedule following the clock),
then evaluates the final weights of both on the whole val split with one protocol (full 480x360
images, no test-time augmentation, MMSegmentation's dataset-accumulated IoU, void dropped) and
prints mIoU, per-class IoU and the ratio seglab / reference.

- seglab: what ``seglab train --data camvid --root ROOT --time-budget-s N`` runs with no other flag
  (``seglab.engine.run_plan.recipe_config``).
- reference: torchvision's references/segmentation recipe, scaled to CamVid: LR-ASPP MobileNetV3-Large
  from scratch, SGD lr 0.01, momentum 0.9, weight decay 1e-4, poly(0.9), cross-entropy, random scale
  0.5-2.0, 320 px crops (their 480 of 520, scaled to CamVid's 360 px), batch 8, horizontal flips.
- pretrained (only when its ImageNet file is already in torch's cache; skipped with the reason otherwise):
  seglab's recipe on LR-ASPP MobileNetV3-Large with ``pretrained="imagenet"``.

    python benchmarks/bench_camvid.py                          # 300 s and 600 s, both recipes (~32 min)
    python benchmarks/bench_camvid.py --budgets 60 --root ../shared/data/camvid
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from seglab.data.spec import DataSpec
from seglab.engine.config import TrainConfig
from seglab.engine.run_plan import recipe_config
from seglab.engine.trainer import Trainer
from seglab.models import cached_imagenet_weights

DEFAULT_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camvid"
PRETRAINED_MODEL = "lraspp_mobilenet_v3_large"


@dataclass
class Outcome:
    name: str
    budget_s: float
    seconds: float
    steps: int
    epochs: int
    miou: float
    iou: dict[str, float]
    best_miou: float


def reference_recipe(data: DataSpec, budget_s: float) -> TrainConfig:
    """torchvision's references/segmentation recipe for LR-ASPP, on CamVid's image size."""
    return TrainConfig(
        data=data,
        model="lraspp_mobilenet_v3_large",
        optimizer="sgd",
        lr=0.01,
        momentum=0.9,
        weight_decay=1e-4,
        schedule="poly",
        power=0.9,
        loss="ce",
        class_weights="none",
        scale_min=0.5,
        scale_max=2.0,
        crop_size=320,
        batch_size=8,
        hflip=0.5,
        epochs=1000,
        eval_every=5,
        time_budget_s=budget_s,
    )


def run_recipe(name: str, config: TrainConfig, threads: int) -> Outcome:
    """Train ``config`` until its time budget is spent; the final weights' val metrics are the result."""
    config = replace(config, preview_images=0, threads=threads)
    started = time.perf_counter()
    result = Trainer(config).fit()
    seconds = time.perf_counter() - started
    final = result.last_metrics
    outcome = Outcome(
        name=name,
        budget_s=float(config.time_budget_s or 0),
        seconds=seconds,
        steps=result.steps,
        epochs=result.epochs,
        miou=float(final["miou"]),
        iou={key: float(value) for key, value in final["iou"].items()},
        best_miou=float(result.best_metric),
    )
    print(
        f"  {name} ({outcome.budget_s:.0f} s): {outcome.steps} steps, {outcome.epochs} epochs in {seconds:.0f} s; "
        f"final val mIoU {outcome.miou:.4f} (best {outcome.best_miou:.4f})",
        flush=True,
    )
    return outcome


def print_table(outcomes: list[Outcome]) -> None:
    classes = list(outcomes[0].iou)
    header = f"{'recipe':34} {'budget':>6} {'steps':>6} {'mIoU':>6} " + " ".join(f"{name[:6]:>6}" for name in classes)
    print("\n" + header)
    for outcome in outcomes:
        row = " ".join(f"{outcome.iou[name]:6.3f}" for name in classes)
        print(f"{outcome.name:34} {outcome.budget_s:6.0f} {outcome.steps:6d} {outcome.miou:6.3f} {row}")
    by_budget: dict[float, dict[str, Outcome]] = {}
    for outcome in outcomes:
        by_budget.setdefault(outcome.budget_s, {})[outcome.name] = outcome
    for budget, named in sorted(by_budget.items()):
        if "seglab recipe" in named and "torchvision reference" in named:
            ours, theirs = named["seglab recipe"], named["torchvision reference"]
            weakest = min(ours.iou, key=ours.iou.get)
            print(
                f"{budget:.0f} s: seglab {ours.miou:.3f} / reference {theirs.miou:.3f} = "
                f"{ours.miou / max(theirs.miou, 1e-9):.2f}x; seglab's weakest class {weakest} {ours.iou[weakest]:.3f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="CamVid folder (SegNet layout)")
    parser.add_argument("--budgets", type=float, nargs="+", default=[300.0, 600.0], help="seconds per run")
    parser.add_argument("--skip-reference", action="store_true", help="only seglab's recipe")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    if not (args.root / "train.txt").is_file():
        raise SystemExit(f"CamVid not found at {args.root} (pass --root; SegNet layout with train.txt)")

    data = DataSpec(kind="camvid", root=str(args.root), split="train")
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; CamVid at {args.root}")
    outcomes = []
    for budget in args.budgets:
        outcomes.append(run_recipe("seglab recipe", recipe_config(data, time_budget_s=budget), args.threads))
        if not args.skip_reference:
            outcomes.append(run_recipe("torchvision reference", reference_recipe(data, budget), args.threads))
        cached = cached_imagenet_weights(PRETRAINED_MODEL)
        if cached is None:
            print(f"  pretrained: skipped, no ImageNet file for {PRETRAINED_MODEL} in torch's cache (offline machine)")
        else:
            config = recipe_config(data, time_budget_s=budget, model=PRETRAINED_MODEL, pretrained="imagenet")
            outcomes.append(run_recipe(f"seglab recipe, {PRETRAINED_MODEL} ImageNet", config, args.threads))
    print_table(outcomes)
    if args.json:
        args.json.write_text(json.dumps([outcome.__dict__ for outcome in outcomes], indent=2))


if __name__ == "__main__":
    main()
