"""Benchmark: what the diagnostics (objects, boundaries, calibration, slices) add to an evaluation.

The same checkpoint evaluates the same split with and without diagnostics (``evaluate_source(...,
diagnose=False)`` is today's evaluation), no disk cache, alternating the two so that a busy machine
slows both alike; the best of ``--repeats`` runs is reported with the ratio. Wall time is what a user
waits; CPU time (this process) is steadier on a shared machine. Then the diagnostics alone per image
(``DiagnosticsAccumulator.add``) and per part, to show where their time goes.

Data: Shapes val (the demo checkpoint ``checkpoints/shapes-ce`` when present), and, when
../shared/data/camvid exists, CamVid val frames (``--camvid-images``, 0 = the whole split) with a
tiny_unet_small of random weights (``--camvid-checkpoint`` for a trained one: a noisy random model
makes more objects and blobs, so it is the harder case for the diagnostics).

    python benchmarks/bench_eval.py
    python benchmarks/bench_eval.py --camvid-images 0 --repeats 3 --threads 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import seglab  # noqa: E402, F401, I001

import cv2  # noqa: E402
import torch  # noqa: E402

from seglab.engine.checkpoint import checkpoint_payload, save_checkpoint  # noqa: E402
from seglab.engine.config import TrainConfig  # noqa: E402
from seglab.data.shapes import ShapesConfig  # noqa: E402
from seglab.data.spec import DataSpec, build_dataset  # noqa: E402
from seglab.analysis.diagnostics import DiagnosticsAccumulator  # noqa: E402
from seglab.analysis.diagnostics.boundary import band_width, boundary_counts, boundary_f1  # noqa: E402
from seglab.analysis.diagnostics.calibration import calibration_counts, wrong_confidence_histogram  # noqa: E402
from seglab.analysis.diagnostics.objects import find_objects  # noqa: E402
from seglab.engine.evaluation import evaluate_source  # noqa: E402
from seglab.models import build_model  # noqa: E402
from seglab.sources import CheckpointSource  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CAMVID = ROOT.parent / "shared" / "data" / "camvid"
SHAPES_CHECKPOINT = ROOT / "checkpoints" / "shapes-ce" / "best.pt"


class Subset:
    """The first ``count`` samples of a dataset (everything evaluation uses: ids, load, classes, fingerprint)."""

    def __init__(self, dataset, count: int) -> None:
        self._dataset, self._count = dataset, min(count, len(dataset)) if count else len(dataset)
        self.ids = dataset.ids[: self._count]

    def __len__(self) -> int:
        return self._count

    def __getattr__(self, name: str):
        return getattr(self._dataset, name)

    def load(self, index: int):
        return self._dataset.load(index)

    def fingerprint(self) -> str:
        return f"{self._dataset.fingerprint()}[:{self._count}]"


def random_checkpoint(label_map, folder: Path) -> Path:
    torch.manual_seed(0)
    model = build_model("tiny_unet_small", label_map.num_classes)
    payload = checkpoint_payload(model=model, config=TrainConfig().to_dict(), label_map=label_map, step=0, epoch=0)
    return save_checkpoint(payload, folder / "random.pt")


def timed(function: Callable[[], object]) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def compare(name: str, checkpoint: Path, dataset, repeats: int, batch_size: int) -> object:
    """Evaluate with and without diagnostics, alternating; print the best times and the ratios."""
    source = CheckpointSource(checkpoint)
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    evaluation = None

    def evaluate(diagnose: bool) -> object:
        return evaluate_source(source, dataset, use_cache=False, batch_size=batch_size, diagnose=diagnose)

    for _ in range(repeats):
        for diagnose in (False, True):
            wall, cpu, result = timed(lambda d=diagnose: evaluate(d))
            runs[diagnose].append((wall, cpu))
            evaluation = result if diagnose else evaluation
    plain_wall, plain_cpu = (min(values) for values in zip(*runs[False], strict=True))
    full_wall, full_cpu = (min(values) for values in zip(*runs[True], strict=True))
    count = len(dataset)
    print(
        f"\n{name}: {count} images of {dataset.load(0)[1].shape[1]}x{dataset.load(0)[1].shape[0]}, "
        f"checkpoint {checkpoint.name}, best of {repeats}"
    )
    print(
        f"  plain evaluation        wall {plain_wall:7.2f} s ({plain_wall / count * 1000:6.1f} ms/img)   "
        f"cpu {plain_cpu:7.2f} s"
    )
    print(
        f"  with diagnostics        wall {full_wall:7.2f} s ({full_wall / count * 1000:6.1f} ms/img)   "
        f"cpu {full_cpu:7.2f} s"
    )
    print(
        f"  overhead                wall {full_wall / plain_wall - 1:+7.1%}                        "
        f"cpu {full_cpu / plain_cpu - 1:+7.1%}   (issue 14 budget: +25%)"
    )
    return evaluation


def breakdown(evaluation, dataset) -> None:
    """Per-image CPU time of each diagnostic on the evaluation's own predictions."""
    k, ignore = dataset.num_classes, dataset.ignore_index
    samples = [dataset.load(result.index) for result in evaluation.results]
    pairs = zip(evaluation.results, samples, strict=True)
    triples = [(result.labels, mask, result.confidence) for result, (_, mask) in pairs]
    band = band_width(samples[0][1].shape, 0.02)
    tolerance = band_width(samples[0][1].shape, 0.0075)
    parts = {
        "objects + false blobs": lambda p, m, c: find_objects(p, m, k, ignore),
        f"boundary IoU (band {band} px)": lambda p, m, c: boundary_counts(p, m, k, ignore, band),
        f"BF score (tolerance {tolerance} px)": lambda p, m, c: boundary_f1(p, m, k, ignore, tolerance),
        "calibration + confidently wrong": lambda p, m, c: (
            calibration_counts(p, m, c, k, ignore),
            wrong_confidence_histogram(p, m, c, ignore),
        ),
    }
    print("  diagnostics alone, CPU ms per image:")
    for name, part in parts.items():
        start = time.process_time()
        for pred, mask, confidence in triples:
            part(pred, mask, confidence)
        print(f"    {name:34s} {(time.process_time() - start) / len(triples) * 1000:6.1f}")
    accumulator = DiagnosticsAccumulator(k, ignore)
    start = time.process_time()
    for (image, _), (pred, mask, confidence) in zip(samples, triples, strict=True):
        accumulator.add(image, pred, mask, confidence)
    print(f"    {'all (DiagnosticsAccumulator.add)':34s} {(time.process_time() - start) / len(triples) * 1000:6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (default: 1)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--shapes-images", type=int, default=64)
    parser.add_argument("--camvid-images", type=int, default=24, help="CamVid val frames (0: all 101)")
    parser.add_argument("--camvid-checkpoint", type=Path, help="a CamVid checkpoint (default: random weights)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU")
    with tempfile.TemporaryDirectory() as folder:
        shapes = build_dataset(DataSpec(split="val", shapes=ShapesConfig(val_size=args.shapes_images)))
        checkpoint = SHAPES_CHECKPOINT
        if not checkpoint.is_file():
            checkpoint = random_checkpoint(shapes.label_map, Path(folder))
        breakdown(compare("Shapes val", checkpoint, shapes, args.repeats, args.batch_size), shapes)
        if (CAMVID / "val").is_dir():
            camvid = Subset(build_dataset(DataSpec(kind="camvid", root=str(CAMVID), split="val")), args.camvid_images)
            checkpoint = args.camvid_checkpoint or random_checkpoint(camvid.label_map, Path(folder))
            breakdown(compare("CamVid val", checkpoint, camvid, args.repeats, args.batch_size), camvid)
        else:
            print(f"\nCamVid not found at {CAMVID}: skipped")


if __name__ == "__main__":
    main()
