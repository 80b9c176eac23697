"""Benchmark prediction sources on CPU: one network as eager PyTorch, TorchScript and ONNX Runtime.

The network (default ``tiny_unet``, 11 CamVid classes, random weights: speed does not depend on
them) is exported with ``seglab export`` to ONNX and TorchScript, then every runtime predicts the
same CamVid-sized 480x360 frames (real CamVid frames when ../shared/data/camvid exists, random
ones otherwise), one image at a time, with the same number of threads. Two views:

- network: the bare forward pass on the normalised tensor (the runtime itself), in this process;
- source: ``PredictionSource.predict`` end to end (normalisation, softmax, labels), model files in
  their worker process (the default for untrusted files).

Then the evaluation time of a folder of predictions (class-index PNGs) against evaluating the
checkpoint on the same split. Ratios are against eager PyTorch / the checkpoint in the same run.

    python benchmarks/bench_sources.py --images 12 --repeats 3
    python benchmarks/bench_sources.py --model deeplabv3plus_resnet18 --images 6
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Runnable as a plain script from a checkout, without installing seglab. seglab is imported before torch,
# as in the app and the CLI, so its OpenMP setting (passive waiting on a shared CPU) applies here too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import seglab  # noqa: E402, F401, I001

import numpy as np  # noqa: E402
import torch  # noqa: E402

from seglab.engine.checkpoint import checkpoint_payload, save_checkpoint  # noqa: E402
from seglab.engine.config import TrainConfig  # noqa: E402
from seglab.data.label_map import ClassInfo, LabelMap, camvid_label_map  # noqa: E402
from seglab.data.spec import DataSpec, build_dataset  # noqa: E402
from seglab.engine.evaluation import evaluate_checkpoint, evaluate_source  # noqa: E402
from seglab.engine.export import export_checkpoint  # noqa: E402
from seglab.models import build_model  # noqa: E402
from seglab.engine.predict import image_to_tensor  # noqa: E402
from seglab.sources import CheckpointSource, ModelFileSource, PredictionFolderSource, write_prediction_png  # noqa: E402
from seglab.sources.isolation import InProcessRunner  # noqa: E402

CAMVID = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"
FRAME = (360, 480)  # height, width


def frames_dataset(workdir: Path, count: int):
    """A folder dataset of ``count`` 480x360 frames: real CamVid val frames when present, else random."""
    if (CAMVID / "val").is_dir():
        dataset = build_dataset(DataSpec(kind="camvid", root=str(CAMVID), split="val"))
        ids = list(range(min(count, len(dataset))))
        origin = f"CamVid val frames ({CAMVID})"
        samples = [dataset.load(index) for index in ids]
        label_map = dataset.label_map
    else:
        rng = np.random.default_rng(0)
        samples = [
            (rng.integers(0, 256, (*FRAME, 3), dtype=np.uint8), rng.integers(0, 11, FRAME, dtype=np.uint8))
            for _ in range(count)
        ]
        origin = "random frames (CamVid not found)"
        label_map = camvid_label_map()
    images, masks = workdir / "images", workdir / "masks"
    images.mkdir()
    masks.mkdir()
    from PIL import Image

    for index, (image, mask) in enumerate(samples):
        Image.fromarray(image).save(images / f"frame{index:03d}.png")
        Image.fromarray(mask).save(masks / f"frame{index:03d}.png")
    label_map.save(workdir / "labels.json")
    spec = DataSpec(kind="folder", images=str(images), masks=str(masks), label_map=str(workdir / "labels.json"))
    return build_dataset(spec), origin


def time_interleaved(methods: dict, inputs: list, repeats: int) -> list[tuple[str, list[float]]]:
    """Seconds per item of each method; methods take turns per repeat so a burst of load hits all alike."""
    for method in methods.values():
        method(inputs[0])  # warm-up: loading, allocator, thread pools
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, method in methods.items():
            started = time.perf_counter()
            for item in inputs:
                method(item)
            seconds[name].append((time.perf_counter() - started) / len(inputs))
    return list(seconds.items())


def report(rows: list[tuple[str, list[float]]], baseline: str, unit: str = "img/s") -> None:
    reference = statistics.median(dict(rows)[baseline])
    for name, seconds in rows:
        median = statistics.median(seconds)
        print(
            f"  {name:<34} {1 / median:8.2f} {unit}   best {1 / min(seconds):8.2f}   "
            f"x{reference / median:5.2f} vs {baseline}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny_unet", help="registry architecture (default: tiny_unet)")
    parser.add_argument("--images", type=int, default=12, help="frames per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="threads for every runtime")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {args.threads} thread(s) per runtime")

    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        dataset, origin = frames_dataset(workdir, args.images)
        print(f"{args.model}, 11 classes, {len(dataset)} {origin}, 480x360, one image at a time")
        names = camvid_label_map().names
        label_map = LabelMap(
            tuple(
                ClassInfo(i, n, c)
                for i, (n, c) in enumerate(zip(names, camvid_label_map().colors.tolist(), strict=True))
            ),
            ignore_index=dataset.ignore_index,
            background_index=None,
            name="camvid",
        )
        torch.manual_seed(0)
        model = build_model(args.model, 11).eval()
        payload = checkpoint_payload(model=model, config=TrainConfig().to_dict(), label_map=label_map, step=0, epoch=0)
        checkpoint = save_checkpoint(payload, workdir / "run" / "best.pt")
        exported = {}
        for fmt, name in (("onnx", "model.onnx"), ("torchscript", "model.pt")):
            exported[fmt] = export_checkpoint(checkpoint, fmt, workdir / name, dataset=dataset, parity_images=2)
            print(
                f"  export {fmt}: {exported[fmt].exporter}, max |logit diff| {exported[fmt].max_logit_difference:.1e}"
            )

        images = [dataset.load(index)[0] for index in range(len(dataset))]
        tensors = [image_to_tensor(image) for image in images]
        arrays = [tensor.numpy() for tensor in tensors]
        options = {"device": "cpu", "threads": args.threads}
        onnx_runner = InProcessRunner("onnx", str(exported["onnx"].path), options)
        script_runner = InProcessRunner("torchscript", str(exported["torchscript"].path), options)

        def eager(tensor):
            with torch.inference_mode():
                return model(tensor)["out"]

        print("network (forward pass only, in this process):")
        pairs = list(zip(tensors, arrays, strict=True))
        methods = {
            "eager PyTorch": lambda pair: eager(pair[0]),
            "TorchScript": lambda pair: script_runner.run(pair[1]),
            "ONNX Runtime (CPU provider)": lambda pair: onnx_runner.run(pair[1]),
        }
        report(time_interleaved(methods, pairs, args.repeats), "eager PyTorch")

        print("source (PredictionSource.predict end to end; model files in their worker process):")
        sources = {
            "seglab checkpoint (eager)": CheckpointSource(checkpoint),
            "TorchScript source (worker)": ModelFileSource(
                exported["torchscript"].path, "torchscript", threads=args.threads
            ),
            "ONNX source (worker)": ModelFileSource(exported["onnx"].path, "onnx", threads=args.threads),
        }
        methods = {name: (lambda image, s=source: s.predict(None, image)) for name, source in sources.items()}
        report(time_interleaved(methods, images, args.repeats), "seglab checkpoint (eager)")
        for source in sources.values():
            source.close()

        evaluation = evaluate_checkpoint(checkpoint, dataset, use_cache=False)
        predictions = workdir / "predictions"
        predictions.mkdir()
        for result in evaluation.results:
            write_prediction_png(result.labels, predictions / f"{result.sample_id}.png")
        print(f"evaluation of the {len(dataset)} frames (no cache):")
        methods = {
            "checkpoint (evaluate_checkpoint)": lambda _: evaluate_checkpoint(checkpoint, dataset, use_cache=False),
            "predictions folder (evaluate_source)": lambda _: evaluate_source(
                PredictionFolderSource(predictions), dataset, use_cache=False
            ),
        }
        report(time_interleaved(methods, [None], args.repeats), "checkpoint (evaluate_checkpoint)", unit="evals/s")
        same = evaluate_source(PredictionFolderSource(predictions), dataset, use_cache=False)
        print(f"  identical metrics: {same.metrics.to_dict() == evaluation.metrics.to_dict()}")


if __name__ == "__main__":
    main()
