"""Planning a run: loss specs, steps per epoch as the trainer counts them, config checks, the LR curve."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import seglab.engine.run_plan as run_plan
from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec
from seglab.engine.config import CLASS_WEIGHTINGS, TrainConfig
from seglab.engine.run_plan import (
    PHOTO_RECIPE,
    QUICK_RUN_SECONDS,
    RunPlan,
    build_config,
    data_defaults,
    loss_spec,
    loss_terms,
    quick_run_config,
    recipe_config,
    steps_per_epoch,
)
from seglab.errors import ConfigError
from seglab.losses.criterion import build_criterion
from seglab.models import available_models


@pytest.mark.parametrize(
    ("terms", "spec"),
    [
        ([(1.0, "ce")], "ce"),
        ([(1.0, "ce"), (0.5, "dice")], "ce+0.5*dice"),
        ([(1, "hard_ce"), (1e-5, "hd")], "hard_ce+1e-05*hd"),
        ([(2.0, "focal"), (0.0, "iou")], "2*focal"),
    ],
)
def test_loss_spec_round_trips_through_the_criterion_parser(terms, spec):
    assert loss_spec(terms) == spec
    assert loss_terms(spec) == [(float(weight), name) for weight, name in terms if weight]
    build_criterion(spec, num_classes=3, ignore_index=255)  # the trainer accepts it


def test_loss_spec_rejects_no_terms_and_negative_weights():
    with pytest.raises(ConfigError, match="at least one"):
        loss_spec([(0.0, "ce")])
    with pytest.raises(ConfigError, match=">= 0"):
        loss_spec([(1.0, "ce"), (-1.0, "dice")])


def test_loss_terms_canonicalises_aliases():
    assert loss_terms("ohem+0.5*jaccard") == [(1.0, "hard_ce"), (0.5, "iou")]


@pytest.mark.parametrize(
    ("images", "batch", "expected"),
    [(400, 16, 25), (401, 16, 25), (40, 16, 2), (20, 16, 2), (16, 16, 1), (3, 16, 1), (0, 4, 0)],
)
def test_steps_per_epoch_matches_the_drop_last_rule(images, batch, expected):
    assert steps_per_epoch(images, batch) == expected


@pytest.mark.parametrize(("images", "batch"), [(20, 8), (9, 4), (5, 8)])
def test_steps_per_epoch_equals_the_trainers_loader_length(images, batch):
    from seglab.engine.trainer import Trainer

    shapes = ShapesConfig(train_size=images, val_size=2, test_size=2, image_size=32)
    config = TrainConfig(model="tiny_unet_small", batch_size=batch, crop_size=32, data=DataSpec(shapes=shapes))
    assert steps_per_epoch(images, batch) == len(Trainer(config).train_loader)


def test_build_config_uses_the_train_split_and_zero_budget_means_none():
    data = DataSpec(split="val", shapes=ShapesConfig(train_size=10))
    config = build_config(data, model="tiny_unet_small", lr=0.01, time_budget_s=0, loss="ce+dice")
    assert config.data.split == "train" and config.data.shapes.train_size == 10
    assert (config.model, config.lr, config.time_budget_s, config.loss) == ("tiny_unet_small", 0.01, None, "ce+dice")
    assert build_config(data, time_budget_s=90).time_budget_s == 90
    assert config.momentum == TrainConfig().momentum  # untouched fields keep their defaults


def test_data_defaults_suit_the_images_small_and_large():
    assert data_defaults((96, 96), "shapes") == {"crop_size": 96, "batch_size": 16}  # Shapes: TrainConfig's own
    assert data_defaults((64, 64)) == {"crop_size": 64, "batch_size": 16}  # never a crop larger than the image
    camvid = data_defaults((360, 480), "camvid")
    assert camvid == {"crop_size": 256, "batch_size": 4, **PHOTO_RECIPE}  # photos: the CamVid recipe
    assert camvid["model"] in available_models() and camvid["class_weights"] in CLASS_WEIGHTINGS
    assert data_defaults((1024, 2048))["batch_size"] == 4 and data_defaults((200, 300))["crop_size"] == 192
    big_shapes = data_defaults((256, 256), "shapes")
    assert big_shapes == {"crop_size": 256, "batch_size": 4}  # synthetic data keeps the quick-run model and loss
    with pytest.raises(ConfigError, match="too small"):
        data_defaults((8, 8))
    quick = quick_run_config(DataSpec(kind="camvid", root="/data/camvid"), (360, 480))
    assert (quick.crop_size, quick.batch_size, quick.model) == (256, 4, PHOTO_RECIPE["model"])
    TrainConfig.from_dict({**TrainConfig().to_dict(), **camvid}).validate()  # every field the recipe names exists


def test_recipe_config_reads_the_first_training_image_and_options_win(photo_folder):
    config = recipe_config(photo_folder, time_budget_s=600, class_weights="none")
    assert (config.crop_size, config.model, config.rare_class_crops) == (256, PHOTO_RECIPE["model"], 0.5)
    assert (config.time_budget_s, config.class_weights, config.data.split) == (600, "none", "train")
    shapes = recipe_config(DataSpec(shapes=ShapesConfig(train_size=4, val_size=2, test_size=2)))
    assert shapes == replace(TrainConfig(), data=shapes.data)  # Shapes: exactly the quick-run defaults


def test_under_a_time_budget_the_lr_preview_runs_on_seconds():
    budgeted = RunPlan.check(quick_run_config(DataSpec()), train_images=400, num_classes=7)
    x_values, rates, title = budgeted.lr_preview()
    assert title == "seconds into the run" and x_values[-1] == pytest.approx(budgeted.config.time_budget_s, rel=0.01)
    assert budgeted.summary().startswith("At most ")
    plain = RunPlan.check(replace(budgeted.config, time_budget_s=None), train_images=400, num_classes=7)
    steps, _, title = plain.lr_preview()
    assert title == "step" and steps[-1] == plain.total_steps - 1


@pytest.mark.parametrize("options", [{"unknown_option": 1}, {"batch_size": 0}, {"scale_min": 2.0, "scale_max": 1.0}])
def test_build_config_raises_config_error(options):
    with pytest.raises(ConfigError):
        build_config(DataSpec(), **options)


def test_quick_run_is_the_default_config_on_the_current_data_with_a_budget():
    data = DataSpec(kind="camvid", split="val", root="/data/camvid")
    config = quick_run_config(data)
    defaults = TrainConfig()
    assert config.data == data.with_split("train")
    assert config.time_budget_s == (defaults.time_budget_s or QUICK_RUN_SECONDS)
    assert {**config.to_dict(), "data": None, "time_budget_s": None} == {
        **defaults.to_dict(),
        "data": None,
        "time_budget_s": None,
    }


def test_plan_counts_steps_and_follows_the_schedule():
    config = build_config(
        DataSpec(), epochs=4, batch_size=10, lr=0.1, schedule="step", step_size=10, gamma=0.5, warmup_steps=0
    )
    plan = RunPlan.check(config, train_images=100, num_classes=7)
    assert (plan.steps_per_epoch, plan.total_steps) == (10, 40)
    steps, rates = plan.lr_curve()
    assert steps[0] == 0 and steps[-1] == 39
    assert rates[list(steps).index(9)] == pytest.approx(0.1)
    assert rates[list(steps).index(10)] == pytest.approx(0.05)  # the drop is drawn where it happens
    assert "40 steps = 4 epochs x 10 steps" in plan.summary()


def test_changing_schedule_or_lr_changes_the_curve():
    def curve(**options):
        return RunPlan.check(build_config(DataSpec(), **options), train_images=400, num_classes=7).lr_curve()[1]

    poly, cosine = curve(schedule="poly"), curve(schedule="cosine")
    assert not np.allclose(poly, cosine)
    assert np.allclose(curve(schedule="poly", lr=0.02), 5 * curve(schedule="poly", lr=0.004))
    warm = curve(schedule="constant", warmup_steps=50)
    assert warm[0] < warm[-1] == pytest.approx(TrainConfig().lr)
    slow = curve(schedule="constant", slow_start_steps=30, slow_start_lr=1e-5)
    assert slow[0] == pytest.approx(1e-5)


def test_plan_summary_mentions_the_time_budget():
    plan = RunPlan.check(quick_run_config(DataSpec()), train_images=400, num_classes=7)
    assert "budget" in plan.summary()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": "resnet9000"}, "unknown model"),
        ({"loss": "ce+wat"}, "unknown loss"),
        ({"loss": "ce+ce"}, "twice"),
        ({"optimizer": "adam", "nesterov": True}, "nesterov"),
        ({"optimizer": "lbfgs"}, "unknown optimizer"),
        ({"warmup_steps": 10_000}, "warmup_steps"),
        ({"schedule": "exp"}, "name must be one of"),
    ],
)
def test_plan_catches_what_would_fail_at_training_start(options, message):
    with pytest.raises(ConfigError, match=message):
        RunPlan.check(build_config(DataSpec(), **options), train_images=400, num_classes=7)


def test_plan_needs_training_images():
    with pytest.raises(ConfigError, match="no images"):
        RunPlan.check(build_config(DataSpec()), train_images=0, num_classes=7)


def test_the_trainer_builds_what_the_recipe_builds():
    """RunPlan checks a config with seglab.engine.recipe; the trainer must build its loss and optimiser with it too."""
    from seglab.engine.recipe import criterion_from_config, optimizer_from_config, schedule_from_config
    from seglab.engine.trainer import Trainer

    shapes = ShapesConfig(train_size=9, val_size=2, test_size=2, image_size=32)
    config = TrainConfig(
        model="tiny_unet_small",
        batch_size=4,
        crop_size=32,
        data=DataSpec(shapes=shapes),
        loss="ce+0.5*dice",
        optimizer="sgd",
        lr=0.02,
        momentum=0.8,
        nesterov=True,
        weight_decay=3e-4,
        focal_gamma=1.5,
        epochs=3,
    )
    trainer = Trainer(config)
    expected = criterion_from_config(config, num_classes=trainer.label_map.num_classes, ignore_index=255)
    assert repr(trainer.criterion) == repr(expected)
    assert (
        (trainer.criterion.names, trainer.criterion.weights, trainer.criterion.aux_weight)
        == (expected.names, expected.weights, expected.aux_weight)
        == (["ce", "dice"], [1.0, 0.5], config.aux_weight)
    )
    built = optimizer_from_config(config, [{"params": [p for p in trainer.model.parameters()]}])
    assert type(trainer.optimizer) is type(built)
    for key in ("lr", "momentum", "nesterov"):
        assert trainer.optimizer.defaults[key] == built.defaults[key]
    assert (built.defaults["lr"], built.defaults["momentum"], built.defaults["nesterov"]) == (0.02, 0.8, True)
    assert trainer.schedule == schedule_from_config(config, steps_per_epoch(9, 4))
    assert trainer.train_loader.drop_last is True and len(trainer.train_loader) == steps_per_epoch(9, 4) == 2


def test_loss_form_defaults_split_a_spec_into_the_forms_two_fields():
    assert run_plan.loss_form_defaults("ce") == ("ce", run_plan.NO_SECOND_LOSS, 1.0)
    assert run_plan.loss_form_defaults("cross_entropy+0.5*dice") == ("ce", "dice", 0.5)


@pytest.mark.parametrize("spec", ["ce", "ce+0.5*dice", "focal+2*iou"])
def test_form_loss_spec_inverts_loss_form_defaults(spec):
    first, second, weight = run_plan.loss_form_defaults(spec)
    assert run_plan.form_loss_spec(first, second, weight) == spec
    assert run_plan.form_loss_spec("ce", run_plan.NO_SECOND_LOSS, 3.0) == "ce"  # no second term: its weight is ignored


def test_hard_mining_starts_at_the_configs_share_or_a_quarter():
    assert run_plan.hard_mining_start_percent(TrainConfig(top_k_percent_pixels=1.0)) == 25
    assert run_plan.hard_mining_start_percent(TrainConfig(top_k_percent_pixels=0.1)) == 10


def test_describe_quick_run_names_its_recipe():
    config = replace(quick_run_config(DataSpec()), model="unet", loss="ce+dice", optimizer="sgd", time_budget_s=90.0)
    expected = "seglab's recommended recipe for this data: unet, ce+dice loss, sgd, for 90 s"
    assert run_plan.describe_quick_run(config) == expected
