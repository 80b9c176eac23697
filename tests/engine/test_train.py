"""Tests for seglab/engine/trainer.py: a short real training run, its run folder, NaN guard, resume, budgets."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from seglab.analysis.stats import compute_stats, trivial_baseline
from seglab.data.shapes import ShapesConfig, ShapesDataset
from seglab.data.spec import DataSpec
from seglab.engine.checkpoint import load_checkpoint
from seglab.engine.config import TrainConfig
from seglab.engine.run_dir import RunDirectory
from seglab.engine.trainer import Trainer, train
from seglab.errors import CheckpointError, TrainingDivergedError
from seglab.losses.criterion import CrossEntropyLoss, HardPixelCrossEntropy
from seglab.metrics.confusion import SegmentationMetrics
from tests.helpers.configs import tiny_train_config

# Easy Shapes (one shape class on flat backgrounds): a 0.1M-parameter UNet learns it in ~100 steps.
# Scale augmentation is off because at 64 px it pads most of each batch, which slows learning a lot.
EASY_SHAPES = ShapesConfig(
    train_size=32,
    val_size=8,
    image_size=64,
    seed=0,
    class_frequencies=(1, 0, 0, 0, 0, 0),
    difficulty=0.0,
    background_noise=0.0,
    tiny_object_probability=0.0,
    similar_color_probability=0.0,
)
TINY_SHAPES = ShapesConfig(train_size=8, val_size=4, image_size=32, seed=1)


def tiny_config(**options) -> TrainConfig:
    """A run of a few steps on 32 px images: for plumbing, not accuracy."""
    return tiny_train_config(TINY_SHAPES, **{"lr": 3e-3, **options})


@pytest.fixture(autouse=True, scope="module")
def fast_and_isolated(tmp_path_factory):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGLAB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One real run, shared by the tests that inspect its folder."""
    config = TrainConfig(
        data=DataSpec(shapes=EASY_SHAPES),
        model="tiny_unet_small",
        epochs=12,
        batch_size=4,
        crop_size=0,
        scale_min=1.0,
        scale_max=1.0,
        lr=3e-3,
        optimizer="adamw",
        schedule="constant",
        log_every=4,
        preview_images=2,
        device="cpu",
    )
    out = tmp_path_factory.mktemp("runs") / "easy"
    seen = []
    result = Trainer(config, out_dir=out, callbacks=[seen.append]).fit()
    return config, RunDirectory(out), result, seen


@pytest.mark.slow
def test_training_beats_the_trivial_background_baseline(trained_run):
    _, _, result, _ = trained_run
    baseline = trivial_baseline(compute_stats(ShapesDataset("val", EASY_SHAPES))).metrics
    assert result.state == "finished" and result.epochs == 12 and result.steps == 12 * 8
    assert result.best_metric == result.best_metrics["miou"]
    assert result.best_metric > baseline.miou + 0.05, (result.best_metric, baseline.miou)
    assert result.best_metrics["miou_no_background"] > baseline.miou_no_background == 0.0


@pytest.mark.slow
def test_events_file_has_start_step_eval_end_with_documented_keys(trained_run):
    config, run, result, seen = trained_run
    events = run.read_events()
    assert [e["type"] for e in events][0] == "start" and events[-1]["type"] == "end"
    assert [{k: v for k, v in e.items() if k != "time"} for e in events] == seen  # callbacks see the same events
    start = events[0]
    assert start["config"] == config.to_dict() and start["steps_per_epoch"] == 8
    assert start["train_images"] == 32 and start["val_images"] == 8
    steps = [e for e in events if e["type"] == "step"]
    assert [e["step"] for e in steps] == list(range(4, 97, 4))  # log_every=4
    for event in steps:
        assert {"step", "epoch", "loss", "terms", "lr", "images_per_s", "grad_norm", "time"} <= set(event)
        assert {"ce", "aux", "total"} <= set(event["terms"]) and math.isfinite(event["loss"])
        assert event["lr"] == pytest.approx(3e-3) and event["images_per_s"] > 0
        assert event["epoch"] == (event["step"] - 1) // 8
    evals = [e for e in events if e["type"] == "eval"]
    assert [e["epoch"] for e in evals] == list(range(1, 13))
    metric_keys = set(SegmentationMetrics.from_confusion(np.eye(7, dtype=np.int64)).to_dict(None))
    for event in evals:
        assert metric_keys <= set(event["metrics"]) and event["split"] == "val"
    assert any(e["best"] for e in evals)
    assert events[-1]["state"] == "finished" and events[-1]["error"] is None and events[-1]["step"] == 96
    assert result.history == [{k: v for k, v in e.items() if k != "time"} for e in evals]


@pytest.mark.slow
def test_status_and_run_files(trained_run):
    config, run, result, _ = trained_run
    status = run.read_status()
    assert status["state"] == "finished" and status["error"] is None
    assert status["step"] == 96 and status["epoch"] == 12
    assert status["best_metric"] == pytest.approx(result.best_metric) and status["best_metric_name"] == "miou"
    assert set(status["latest"]) == {"miou", "miou_no_background", "pixel_acc", "mean_acc"}
    assert TrainConfig.load(run.config_path) == config
    assert json.loads(run.label_map_path.read_text())["classes"][1]["name"] == "circle"
    assert run.latest_preview() is not None and len(list(run.previews_path.glob("eval_*.png"))) == 12
    preview = np.asarray(Image.open(run.latest_preview()))
    assert preview.ndim == 3 and preview.shape[0] >= 2 * 32  # two rows of image | truth | prediction
    assert not list(run.path.glob(".*tmp"))


@pytest.mark.slow
def test_best_and_last_checkpoints_load_and_best_is_weights_only(trained_run):
    _, run, result, _ = trained_run
    best, last = load_checkpoint(run.best_path), load_checkpoint(run.last_path)
    assert best.optimizer_state is None and last.optimizer_state is not None
    assert run.best_path.stat().st_size < 0.6 * run.last_path.stat().st_size  # AdamW keeps two moments per weight
    assert last.step == 96 and last.epoch == 12
    assert best.metrics["miou"] == pytest.approx(result.best_metric)
    best_eval = max((e for e in result.history), key=lambda e: e["metrics"]["miou"])
    assert best.step == best_eval["step"]
    model = best.build_model()
    assert model.num_classes == 7 and model.name == "tiny_unet_small"


def test_time_budget_stops_early_and_still_evaluates(tmp_path):
    config = tiny_config(epochs=10_000, time_budget_s=0.5)
    result = Trainer(config, out_dir=tmp_path).fit()
    assert result.state == "finished" and 0 < result.epochs < 10_000
    assert result.seconds < 60
    events = RunDirectory(tmp_path).read_events()
    evals = [e for e in events if e["type"] == "eval"]
    assert evals and evals[-1]["step"] == result.steps
    assert len({e["step"] for e in evals}) == len(evals)  # the final stop does not evaluate the same step twice
    assert load_checkpoint(tmp_path / "last.pt").step == result.steps


def test_median_class_weights_reach_the_loss():
    trainer = Trainer(tiny_config(class_weights="median"))
    expected = compute_stats(trainer.train_data).median_frequency_weights()
    ce = trainer.criterion.losses[0]
    assert isinstance(ce, CrossEntropyLoss)
    np.testing.assert_allclose(ce.class_weights.numpy(), expected, rtol=1e-6)
    assert not np.allclose(expected, 1.0)
    assert trainer.fit().steps == 2


def test_rare_class_crops_use_the_median_frequency_weights_of_the_training_split():
    trainer = Trainer(tiny_config(rare_class_crops=0.5, crop_size=16))
    crop = next(step for step in trainer.train_augmented.transform.transforms if hasattr(step, "class_focus"))
    expected = compute_stats(trainer.train_data).median_frequency_weights()
    np.testing.assert_allclose(crop.class_focus, expected)
    assert crop.focus_probability == 0.5 and trainer.fit().steps == 2
    plain = Trainer(tiny_config(crop_size=16))
    assert all(getattr(step, "class_focus", None) is None for step in plain.train_augmented.transform.transforms)


@pytest.mark.parametrize("native", [True, False])
def test_cpu_bf16_autocasts_only_where_the_cpu_has_native_bf16(monkeypatch, native):
    import seglab.engine.precision as precision_module

    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: native)
    seen = []
    trainer = Trainer(tiny_config(cpu_bf16=True), callbacks=[seen.append])
    assert trainer.use_amp is native and trainer.amp_dtype == torch.bfloat16
    assert not trainer.scaler.is_enabled()  # bfloat16 needs no loss scaling
    result = trainer.fit()
    assert result.steps == 2 and all(math.isfinite(e["loss"]) for e in seen if e["type"] == "step")
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # autocast keeps float32 weights
    assert not Trainer(tiny_config()).use_amp  # off by default on a CPU


def test_hard_pixel_mining_loss_trains():
    seen = []
    config = tiny_config(loss="hard_ce", top_k_percent_pixels=0.25, hard_example_mining_step=2)
    trainer = Trainer(config, callbacks=[seen.append])
    assert isinstance(trainer.criterion.losses[0], HardPixelCrossEntropy)
    trainer.fit()
    steps = [e for e in seen if e["type"] == "step"]
    assert len(steps) == 2 and all("hard_ce" in e["terms"] and math.isfinite(e["loss"]) for e in steps)


def test_aux_head_model_adds_the_aux_loss():
    seen = []
    config = tiny_config(
        model="unet", model_options={"base_width": 4, "depth": 2, "aux": True}, aux_weight=0.4, loss="ce"
    )
    Trainer(config, callbacks=[seen.append]).fit()
    step = next(e for e in seen if e["type"] == "step")
    assert step["terms"]["aux"] > 0
    assert step["terms"]["total"] == pytest.approx(step["terms"]["ce"] + 0.4 * step["terms"]["aux"], rel=1e-5)


class NaNAtStep:
    """Wraps a criterion: returns NaN at one step, after remembering last.pt's bytes at that moment."""

    def __init__(self, trainer: Trainer, step: int):
        self.trainer, self.criterion, self.step = trainer, trainer.criterion, step
        self.last_bytes = None

    def set_step(self, step: int) -> None:
        self.criterion.set_step(step)

    def __call__(self, outputs, target):
        loss, terms = self.criterion(outputs, target)
        if self.trainer.step == self.step:
            self.last_bytes = self.trainer.run.last_path.read_bytes()
            return loss * float("nan"), terms
        return loss, terms


def test_nan_loss_stops_with_an_error_and_keeps_the_last_checkpoint(tmp_path):
    trainer = Trainer(tiny_config(epochs=3), out_dir=tmp_path)  # 2 steps per epoch
    guard = trainer.criterion = NaNAtStep(trainer, step=3)
    with pytest.raises(TrainingDivergedError, match="at step 3") as caught:
        trainer.fit()
    run = RunDirectory(tmp_path)
    status = run.read_status()
    assert status["state"] == "failed" and status["error"] == str(caught.value)
    assert "lower --lr" in status["error"]
    assert run.read_events()[-1]["type"] == "end" and run.read_events()[-1]["state"] == "failed"
    assert run.last_path.read_bytes() == guard.last_bytes  # untouched by the failure
    assert load_checkpoint(run.last_path).step == 2


def test_a_huge_learning_rate_diverges_with_a_clear_error():
    config = tiny_config(epochs=20, lr=1e30, optimizer="sgd", momentum=0.0, weight_decay=0.0)
    with pytest.raises(TrainingDivergedError, match=r"at step \d+ \(epoch \d+\)"):
        Trainer(config).fit()


def test_resume_continues_step_epoch_and_optimizer_state(tmp_path):
    first = train(tiny_config(epochs=1), tmp_path)
    assert (first.steps, first.epochs) == (2, 1)
    saved = load_checkpoint(tmp_path / "last.pt")

    trainer = Trainer(tiny_config(epochs=2), out_dir=tmp_path)
    trainer.resume(tmp_path / "last.pt")
    assert (trainer.step, trainer.epoch) == (2, 1)
    restored = trainer.optimizer.state_dict()
    assert restored["state"], "optimizer moments were not restored"
    for key, state in saved.optimizer_state["state"].items():
        assert torch.equal(restored["state"][key]["exp_avg"], state["exp_avg"])
        assert int(restored["state"][key]["step"]) == 2
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, saved.model_state[name]), name
    result = trainer.fit()
    assert (result.steps, result.epochs) == (4, 2)
    steps = [e["step"] for e in RunDirectory(tmp_path).read_events() if e["type"] == "step"]
    assert steps == [1, 2, 3, 4]  # the second start continued the numbering
    assert load_checkpoint(tmp_path / "last.pt").epoch == 2


def test_train_function_resumes_from_the_run_folder(tmp_path):
    train(tiny_config(epochs=1), tmp_path)
    result = train(tiny_config(epochs=2), tmp_path, resume=True)
    assert (result.steps, result.epochs) == (4, 2)


def write_three_class_folder(root):
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    rng = np.random.default_rng(0)
    for index in range(4):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(images / f"s{index}.png")
        mask = np.zeros((32, 32), np.uint8)
        mask[8:20, 8:20], mask[24:, :] = 1, 2
        Image.fromarray(mask).save(masks / f"s{index}.png")
    return DataSpec(kind="folder", images=str(images), masks=str(masks))


def test_resume_with_another_number_of_classes_is_a_clear_checkpoint_error(tmp_path):
    train(tiny_config(epochs=1), tmp_path / "shapes")
    other = tiny_config(data=write_three_class_folder(tmp_path / "folder"))
    trainer = Trainer(other, out_dir=tmp_path / "other")
    assert trainer.label_map.num_classes == 3
    with pytest.raises(CheckpointError, match="7 classes .* 3 classes"):
        trainer.resume(tmp_path / "shapes" / "last.pt")


def test_resume_with_another_model_is_a_clear_checkpoint_error(tmp_path):
    train(tiny_config(epochs=1), tmp_path)
    trainer = Trainer(tiny_config(model="unet", model_options={"base_width": 4, "depth": 2}))
    with pytest.raises(CheckpointError, match="tiny_unet_small model .* trains unet"):
        trainer.resume(tmp_path / "last.pt")


def test_stop_file_stops_with_state_stopped_and_saves_last(tmp_path):
    trainer = Trainer(tiny_config(epochs=50), out_dir=tmp_path)

    def request_stop(event):
        if event["type"] == "step" and event["step"] == 3:
            trainer.run.request_stop()

    trainer.callbacks.append(request_stop)
    result = trainer.fit()
    assert result.state == "stopped" and result.steps == 3
    assert RunDirectory(tmp_path).read_status()["state"] == "stopped"
    assert load_checkpoint(tmp_path / "last.pt").step == 3


def test_an_unexpected_error_marks_the_run_failed(tmp_path):
    trainer = Trainer(tiny_config(), out_dir=tmp_path)

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    trainer.criterion = type("Broken", (), {"set_step": lambda self, step: None, "__call__": broken})()
    with pytest.raises(RuntimeError):
        trainer.fit()
    status = RunDirectory(tmp_path).read_status()
    assert status["state"] == "failed" and status["error"] == "RuntimeError: out of memory"


def test_validation_during_training_scores_what_seglab_eval_scores():
    """An image size that is no multiple of the stride: the Trainer and seglab.engine.predict see the same pixels."""
    from seglab.engine.predict import evaluate_dataset

    odd = ShapesConfig(train_size=8, val_size=6, test_size=2, image_size=40, seed=5)
    trainer = Trainer(tiny_config(data=DataSpec(shapes=odd)))
    trainer.fit()
    logged = trainer.evaluate()
    offline = evaluate_dataset(trainer.model, trainer.val_data, batch_size=4).metrics
    assert np.array_equal(logged.confusion, offline.confusion)
