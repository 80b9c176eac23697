"""Training throughput with 1 and N processes (DistributedDataParallel via torchrun) and the scaling efficiency.

Each measurement is a real ``seglab train`` run on the same Shapes config: one process is plain
``python -m seglab train`` (no DDP), N processes are ``python -m torch.distributed.run --standalone
--nproc-per-node N -m seglab train``. Batch size is per process (weak scaling), so N processes
take N x batch images per step. Throughput is the steady state: the images of the logged steps
after ``--warmup`` steps divided by the wall time between them (rank 0's event timestamps; data
loading and the gradient all-reduce included, start-up and evaluation excluded).

    python benchmarks/bench_ddp.py                  # CPU: 1 and 2 processes (1 thread each); then 1 and all GPUs if any
    python benchmarks/bench_ddp.py --device cuda --processes 1,2,4 --model deeplabv3plus_resnet18

Scaling efficiency = throughput_N / (N x throughput_1); 1.0 is perfect. On CPU the processes
share the machine's cores with everything else running, so the machine load is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec
from seglab.engine.config import TrainConfig
from seglab.engine.distributed import launch_command
from seglab.engine.run_dir import RunDirectory

REPO = Path(__file__).resolve().parents[1]


def bench_config(args: argparse.Namespace) -> TrainConfig:
    shapes = ShapesConfig(train_size=args.train_size, val_size=4, test_size=4, image_size=args.image_size, seed=0)
    return TrainConfig(
        data=DataSpec(shapes=shapes),
        model=args.model,
        epochs=1,
        batch_size=args.batch_size,
        crop_size=0,
        scale_min=1.0,
        scale_max=1.0,
        log_every=1,
        preview_images=0,
        device=args.device,
        threads=1 if args.device == "cpu" else 0,
        seed=0,
    )


def measure(config: TrainConfig, processes: int, folder: Path, warmup: int) -> dict:
    """Train one epoch with ``processes`` processes; return steady-state images/s and step counts."""
    folder.mkdir(parents=True)
    config_path = folder / "config.json"
    config_path.write_text(json.dumps(config.to_dict()))
    launcher = launch_command(processes) if processes > 1 else [sys.executable, "-m", "seglab"]
    command = [*launcher, "train", "--config", str(config_path), "--out", str(folder / "run"), "--quiet"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env["OMP_NUM_THREADS"] = "1" if config.device == "cpu" else env.get("OMP_NUM_THREADS", "4")
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    finished = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"{processes} process(es) failed:\n{finished.stdout[-3000:]}")
    steps = [event for event in RunDirectory(folder / "run").read_events() if event["type"] == "step"]
    if len(steps) <= warmup + 1:
        raise SystemExit(f"only {len(steps)} steps with {processes} process(es); raise --train-size or lower --warmup")
    first, last = steps[warmup], steps[-1]
    images = (last["step"] - first["step"]) * config.batch_size * processes
    return {
        "processes": processes,
        "images_per_s": images / (last["time"] - first["time"]),
        "steps": len(steps),
        "measured_steps": last["step"] - first["step"],
        "wall_s": seconds,
        "load": (load_before, os.getloadavg()[0]),
    }


def report(title: str, results: list[dict]) -> None:
    base = results[0]["images_per_s"]
    print(f"\n{title}")
    columns = f"{'processes':>9}  {'images/s':>9}  {'speed-up':>8}  {'efficiency':>10}  {'steps':>5}  {'wall s':>6}"
    print(f"{columns}  load 1-min (before -> after)")
    for result in results:
        speedup = result["images_per_s"] / base
        efficiency = speedup / (result["processes"] / results[0]["processes"])
        print(
            f"{result['processes']:>9}  {result['images_per_s']:>9.1f}  {speedup:>7.2f}x  {efficiency:>10.2f}  "
            f"{result['steps']:>5}  {result['wall_s']:>6.1f}  {result['load'][0]:.2f} -> {result['load'][1]:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto: CPU, then GPUs when there are any"
    )
    parser.add_argument(
        "--processes", default=None, help="comma-separated process counts (default: 1,2 on CPU; 1,all GPUs)"
    )
    parser.add_argument("--model", default="tiny_unet")
    parser.add_argument(
        "--train-size", type=int, default=None, help="training images (default: 384 on CPU, 4096 on GPU)"
    )
    parser.add_argument("--image-size", type=int, default=None, help="default: 64 on CPU, 256 on GPU")
    parser.add_argument("--batch-size", type=int, default=8, help="per process")
    parser.add_argument("--warmup", type=int, default=3, help="logged steps skipped before timing")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available here")
    devices = [args.device] if args.device != "auto" else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(
        f"machine: {os.cpu_count()} CPU cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"{torch.cuda.device_count() if torch.cuda.is_available() else 0} CUDA device(s)"
    )
    for device in devices:
        gpu = device == "cuda"
        options = argparse.Namespace(**{**vars(args), "device": device})
        options.train_size = args.train_size or (4096 if gpu else 384)
        options.image_size = args.image_size or (256 if gpu else 64)
        default_counts = [1, max(2, torch.cuda.device_count())] if gpu else [1, 2]
        counts = [int(n) for n in args.processes.split(",")] if args.processes else default_counts
        config = bench_config(options)
        print(
            f"\nconfig: {config.model}, Shapes {options.train_size} images of {options.image_size} px, batch "
            f"{args.batch_size} per process, device {device}{', 1 thread per process' if not gpu else ''}; "
            f"timing skips {args.warmup} steps"
        )
        with tempfile.TemporaryDirectory(prefix="bench_ddp_") as temporary:
            results = [measure(replace(config), n, Path(temporary) / f"n{n}", args.warmup) for n in counts]
        report(f"training throughput on {device} (images/s over all processes, steady state)", results)
    print(
        "\nefficiency = throughput_N / (N x throughput_1), 1.00 = perfect scaling. CPU processes share the machine's "
        "cores with whatever else runs (see the load): with fewer free cores than processes it cannot reach 1."
    )


if __name__ == "__main__":
    main()
