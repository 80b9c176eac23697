"""The demo runs shipped in checkpoints/: small, safe to load, made by the command the README records,
on today's Shapes generator, and their recorded validation mIoU is what evaluating them gives now."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from seglab.cli.commands import build_parser
from seglab.cli.train import train_config_from_args
from seglab.data.spec import build_dataset
from seglab.engine.checkpoint import load_checkpoint
from seglab.engine.config import TrainConfig
from seglab.engine.evaluation import evaluate_checkpoint
from seglab.engine.runs import list_runs
from tests.helpers.paths import ROOT

CHECKPOINTS = ROOT / "checkpoints"
DEMO_RUNS = ("shapes-ce", "shapes-ce-median", "shapes-ce-dice")
# Fields that describe where and how fast a run happened, not what it learned.
UNRECORDED = ("device", "threads", "num_workers")


def recorded_commands() -> dict[str, list[str]]:
    """Run folder name -> the `seglab train` arguments checkpoints/README.md gives for it."""
    commands = {}
    for line in (CHECKPOINTS / "README.md").read_text().splitlines():
        if line.startswith("seglab train "):
            arguments = shlex.split(line)[2:]
            commands[Path(arguments[arguments.index("--out") + 1]).name] = arguments
    return commands


def test_every_demo_run_is_shipped_small_and_finished() -> None:
    runs = {run.name: run for run in list_runs(CHECKPOINTS)}
    for name in DEMO_RUNS:
        run = runs[name]
        assert run.state == "finished" and run.data == "shapes"
        assert run.checkpoint == CHECKPOINTS / name / "best.pt"
        assert run.checkpoint.stat().st_size < 5 * 2**20
        assert (CHECKPOINTS / name / "events.jsonl").stat().st_size > 0  # Compare overlays their curves


@pytest.mark.parametrize("name", DEMO_RUNS)
def test_demo_run_matches_its_recorded_command_and_todays_generator(name: str) -> None:
    arguments = recorded_commands()[name]
    expected = train_config_from_args(build_parser().parse_args(["train", *arguments])).to_dict()
    stored = TrainConfig.load(CHECKPOINTS / name / "config.json").to_dict()
    for field in UNRECORDED:
        expected.pop(field), stored.pop(field)
    assert stored == expected, f"retrain {name} with the command in checkpoints/README.md"


@pytest.mark.slow
@pytest.mark.parametrize("name", DEMO_RUNS)
def test_demo_checkpoint_reproduces_its_recorded_miou(name: str) -> None:
    path = CHECKPOINTS / name / "best.pt"
    checkpoint = load_checkpoint(path)  # weights_only=True inside
    recorded = checkpoint.metrics["miou"]
    config = TrainConfig.from_dict(checkpoint.config)
    result = evaluate_checkpoint(path, build_dataset(config.data.with_split(config.val_split)), use_cache=False)
    # Another CPU may round a few logits differently and flip a handful of pixels, nothing more.
    assert result.metrics.miou == pytest.approx(recorded, abs=2e-3)
    status = json.loads((CHECKPOINTS / name / "status.json").read_text())
    assert status["best_metric"] == pytest.approx(recorded, abs=1e-9)
