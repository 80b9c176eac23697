"""Benchmark confusion-matrix counting: seglab vs the seed's np.histogram method vs torchmetrics.

All three count the same random batch (uint8 masks, ~5% ignore pixels); the script checks that
they agree, then prints Mpx/s (best and median over interleaved repeats) and the speed-ups.
The machine is shared, so the load average is printed too: compare runs taken at similar load.

    python benchmarks/bench_metrics.py --size 16 512 512 --classes 21 --repeats 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

# Runnable as a plain script from a checkout, without installing seglab.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seglab.metrics.confusion import ConfusionMatrix  # noqa: E402

IGNORE_INDEX = 255


def intersection_and_union(pred: np.ndarray, label: np.ndarray, num_classes: int):
    """The seed's CSAIL ``intersectionAndUnion`` (ignore label -1), verbatim apart from names."""
    pred = np.asarray(pred).copy()
    label = np.asarray(label).copy()
    pred += 1
    label += 1
    pred = pred * (label > 0)
    intersection = pred * (pred == label)
    (area_intersection, _) = np.histogram(intersection, bins=num_classes, range=(1, num_classes))
    (area_pred, _) = np.histogram(pred, bins=num_classes, range=(1, num_classes))
    (area_label, _) = np.histogram(label, bins=num_classes, range=(1, num_classes))
    return area_intersection, area_pred + area_label - area_intersection


def make_batch(size: tuple[int, int, int], num_classes: int, seed: int = 0):
    """Random uint8 (pred, target); the prediction is right on ~60% of the pixels."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, num_classes, size, dtype=np.uint8)
    wrong = rng.integers(0, num_classes, size, dtype=np.uint8)
    pred = np.where(rng.random(size) < 0.6, target, wrong).astype(np.uint8)
    target[rng.random(size) < 0.05] = IGNORE_INDEX
    return pred, target


def time_interleaved(methods: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call; methods take turns so a burst of load hits all of them alike."""
    for method in methods.values():
        method()  # warm-up: imports, allocator, thread start-up
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, method in methods.items():
            start = time.perf_counter()
            method()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=3, default=[16, 512, 512], metavar=("N", "H", "W"))
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    from torchmetrics.classification import MulticlassConfusionMatrix

    num_classes = args.classes
    pred, target = make_batch(tuple(args.size), num_classes)
    pixels = target.size
    # The seed's inputs as CSAIL's evaluation has them: int64, ignore = -1 (prepared untimed).
    csail_pred = pred.astype(np.int64)
    csail_label = target.astype(np.int64)
    csail_label[target == IGNORE_INDEX] = -1
    pred_tensor, target_tensor = torch.from_numpy(pred), torch.from_numpy(target)

    ours = ConfusionMatrix(num_classes, ignore_index=IGNORE_INDEX)
    seed_areas: list[np.ndarray] = []
    torchmetrics_metric = MulticlassConfusionMatrix(num_classes, ignore_index=IGNORE_INDEX)
    unchecked_metric = MulticlassConfusionMatrix(num_classes, ignore_index=IGNORE_INDEX, validate_args=False)

    def run_ours() -> None:
        ours.reset()
        ours.update(pred, target)

    def run_seed() -> None:
        per_image = [intersection_and_union(p, t, num_classes) for p, t in zip(csail_pred, csail_label)]
        seed_areas[:] = [sum(areas[0] for areas in per_image), sum(areas[1] for areas in per_image)]

    def run_torchmetrics() -> None:
        torchmetrics_metric.reset()
        torchmetrics_metric.update(pred_tensor, target_tensor)

    def run_unchecked() -> None:
        unchecked_metric.reset()
        unchecked_metric.update(pred_tensor, target_tensor)

    load_before = os.getloadavg()
    seconds = time_interleaved(
        {
            "seglab ConfusionMatrix.update": run_ours,
            "seed intersectionAndUnion (np.histogram)": run_seed,
            "torchmetrics MulticlassConfusionMatrix": run_torchmetrics,
            "  same, validate_args=False": run_unchecked,
        },
        args.repeats,
    )
    load_after = os.getloadavg()

    matrix = ours.matrix
    true_positive = np.diagonal(matrix)
    union = matrix.sum(0) + matrix.sum(1) - true_positive
    agree_torchmetrics = np.array_equal(matrix, torchmetrics_metric.compute().numpy())
    agree_unchecked = np.array_equal(matrix, unchecked_metric.compute().numpy())
    agree_seed = np.array_equal(true_positive, seed_areas[0]) and np.array_equal(union, seed_areas[1])
    if not (agree_torchmetrics and agree_seed and agree_unchecked):
        raise SystemExit(
            f"results disagree: seed {agree_seed}, torchmetrics {agree_torchmetrics}, "
            f"unvalidated torchmetrics {agree_unchecked}"
        )

    print(
        f"{args.size[0]} x {args.size[1]} x {args.size[2]} uint8 masks = {pixels / 1e6:.2f} Mpx, "
        f"{num_classes} classes, {np.mean(target == IGNORE_INDEX):.1%} ignore pixels, "
        f"{args.repeats} interleaved repeats, torch threads {torch.get_num_threads()}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"load average (1/5/15 min): before {load_before[0]:.2f}/{load_before[1]:.2f}/"
        f"{load_before[2]:.2f}, after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}"
    )
    print(f"{'method':44s} {'best Mpx/s':>11s} {'median Mpx/s':>13s}")
    best = {}
    for name, times in seconds.items():
        best[name] = pixels / min(times) / 1e6
        print(f"{name:44s} {best[name]:11.1f} {pixels / statistics.median(times) / 1e6:13.1f}")
    print("all three agree on the counts (seed: intersection and union per class)")
    names = list(seconds)
    print(f"speed-up ours / seed:         {best[names[0]] / best[names[1]]:6.1f}x  (best vs best)")
    print(
        f"speed-up ours / torchmetrics: {best[names[0]] / best[names[2]]:6.1f}x  "
        f"({best[names[0]] / best[names[3]]:.1f}x vs validate_args=False)"
    )


if __name__ == "__main__":
    main()
