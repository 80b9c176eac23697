"""Diverging runs: never a checkpoint with non-finite weights, a run that ends failed (not finished) with
the reason, and every surface (eval, Leaderboard, loading) refusing such a checkpoint."""

from __future__ import annotations

import math

import pytest
import torch

from seglab.analysis.leaderboard import build_leaderboard
from seglab.data.label_map import shapes_label_map
from seglab.data.shapes import ShapesConfig, ShapesDataset
from seglab.engine.checkpoint import NonFiniteWeightsError, checkpoint_payload, load_checkpoint, save_checkpoint
from seglab.engine.config import TrainConfig
from seglab.engine.divergence import DivergenceGuard, all_finite, non_finite_tensors
from seglab.engine.run_dir import RunDirectory
from seglab.engine.trainer import Trainer
from seglab.errors import TrainingDivergedError
from seglab.models import build_model
from tests.helpers.configs import tiny_train_config

TINY = ShapesConfig(train_size=8, val_size=4, test_size=2, image_size=32)


def tiny_config(**options) -> TrainConfig:
    return tiny_train_config(TINY, **{"epochs": 8, "schedule": "constant", **options})


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def assert_finite_checkpoints(run: RunDirectory) -> list[int]:
    steps = []
    for path in (run.best_path, run.last_path):
        if path.exists():
            checkpoint = load_checkpoint(path)  # refuses non-finite weights
            assert not non_finite_tensors(checkpoint.model_state)
            steps.append(checkpoint.step)
    return steps


def test_a_diverging_sgd_run_fails_and_keeps_finite_checkpoints(tmp_path):
    """SGD at lr 100 used to end 'finished' with 6 non-finite tensors in last.pt."""
    trainer = Trainer(tiny_config(optimizer="sgd", lr=100.0, momentum=0.9), out_dir=tmp_path)
    with pytest.raises(TrainingDivergedError, match=r"at step \d+ \(epoch \d+\): the training diverged") as caught:
        trainer.fit()
    run = RunDirectory(tmp_path)
    status = run.read_status()
    assert status["state"] == "failed" and status["error"] == str(caught.value)
    assert run.read_events()[-1]["state"] == "failed"
    steps = assert_finite_checkpoints(run)
    assert steps, "the run saved before diverging; those checkpoints must remain"
    assert all(step <= trainer.step for step in steps)
    assert f"last.pt (step {steps[-1]})" in status["error"]


@pytest.mark.parametrize("lr", [1e2, 1e4, 1e8])
def test_adamw_at_an_absurd_learning_rate_ends_failed_not_finished(tmp_path, lr):
    """AdamW at lr 1e4 used to finish 'finished' with loss 6e14; at 1e8 it left non-finite weights in last.pt."""
    trainer = Trainer(tiny_config(optimizer="adamw", lr=lr), out_dir=tmp_path)
    with pytest.raises(TrainingDivergedError, match="loss exploded|NaN or infinite|loss is"):
        trainer.fit()
    assert RunDirectory(tmp_path).read_status()["state"] == "failed"
    assert_finite_checkpoints(RunDirectory(tmp_path))


def test_weights_that_turn_infinite_after_a_step_stop_the_run_before_any_save(tmp_path):
    trainer = Trainer(tiny_config(epochs=3), out_dir=tmp_path)
    real_step = trainer.optimizer.step

    def step_then_overflow(*args, **kwargs):
        result = real_step(*args, **kwargs)
        if trainer.step == 3:  # the 4th step: after the first two epochs' checkpoints
            next(trainer.model.parameters()).data[0] = math.inf
        return result

    trainer.optimizer.step = step_then_overflow
    with pytest.raises(
        TrainingDivergedError, match=r"weight tensor\(s\) became NaN or infinite .* at step 3 \(epoch 1\)"
    ):
        trainer.fit()
    assert assert_finite_checkpoints(RunDirectory(tmp_path)) == [2, 2]


def test_a_slow_climb_is_caught_relative_to_the_runs_lowest_loss():
    guard = DivergenceGuard()
    for loss in (2.3, 77.5, 812.0):  # SGD at lr 50: the median climbs with the loss
        assert guard.loss_problem(loss) is None
    assert "more than 1000x the lowest loss" in guard.loss_problem(3070.0)
    assert "loss is nan" == guard.loss_problem(float("nan"))


def test_a_well_fit_loss_may_wobble_without_a_false_alarm():
    guard = DivergenceGuard()
    for loss in [2.0, 0.5, 0.01, 1e-4, 1e-5]:
        assert guard.loss_problem(loss) is None
    assert guard.loss_problem(5.0) is None  # 500000x the lowest, but a normal loss value
    assert guard.loss_problem(999.0) is None
    assert guard.loss_problem(2000.0) is not None


def test_all_finite_and_the_names_of_bad_tensors():
    good = {"a": torch.ones(3), "n": torch.tensor([3], dtype=torch.int64)}
    assert all_finite(good.values()) and non_finite_tensors(good) == []
    bad = {**good, "b": torch.tensor([1.0, float("nan")]), "c": torch.tensor([float("-inf")], dtype=torch.bfloat16)}
    assert not all_finite(bad.values()) and non_finite_tensors(bad) == ["b", "c"]
    assert all_finite([torch.tensor([3e38, 3e38])])  # the sum overflows, the values are finite: no false alarm
    assert all_finite([torch.full((100,), 60000.0, dtype=torch.float16)])  # half precision summed in float32


def diverged_payload():
    model = build_model("tiny_unet_small", 7)
    payload = checkpoint_payload(model=model, config={}, label_map=shapes_label_map(), step=5, epoch=1)
    name = next(key for key, value in payload["model_state"].items() if value.is_floating_point())
    payload["model_state"][name].fill_(float("nan"))
    return payload


def test_save_checkpoint_refuses_non_finite_weights_and_keeps_the_previous_file(tmp_path):
    model = build_model("tiny_unet_small", 7)
    good = save_checkpoint(
        checkpoint_payload(model=model, config={}, label_map=shapes_label_map(), step=4, epoch=1), tmp_path / "best.pt"
    )
    before = good.read_bytes()
    with pytest.raises(NonFiniteWeightsError, match="NaN or infinity .* the previous best.pt is kept"):
        save_checkpoint(diverged_payload(), tmp_path / "best.pt")
    assert good.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]


def test_loading_and_the_leaderboard_refuse_a_checkpoint_with_non_finite_weights(tmp_path):
    path = tmp_path / "run" / "best.pt"
    path.parent.mkdir()
    (path.parent / "config.json").write_text("{}")
    torch.save(diverged_payload(), path)  # as a diverged run used to write it
    with pytest.raises(NonFiniteWeightsError, match="NaN or infinite weights"):
        load_checkpoint(path)
    dataset = ShapesDataset("test", ShapesConfig(train_size=2, val_size=2, test_size=2, image_size=32))
    board = build_leaderboard([path], dataset, cache_dir=tmp_path / "cache")
    assert board.rows == [] and "NaN or infinite weights" in board.skipped[0].reason
