"""Tests for seglab.analysis.loss_inspector (and seglab.engine.predict.predict_logits, which feeds it)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seglab.analysis.loss_inspector import (
    FOCAL,
    MINING,
    PLAIN,
    WEIGHTED,
    focal_picture,
    heatmap_scale,
    image_panels,
    kept_pixels_picture,
    loss_breakdown,
    loss_picture,
    schedule_end,
)
from seglab.errors import ConfigError
from seglab.losses.criterion import CrossEntropyLoss, FocalLoss, HardPixelCrossEntropy

VOID = 11  # CamVid's ignore index: not 255


def random_batch(
    seed: int = 0, classes: int = 4, size: tuple[int, int] = (12, 16)
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn((2, classes, *size), generator=generator) * 2
    target = torch.randint(0, classes, (2, *size), generator=generator)
    target[torch.rand((2, *size), generator=generator) < 0.2] = VOID
    return logits, target


def test_every_loss_share_sums_to_one_and_counts_only_labelled_pixels():
    logits, target = random_batch()
    breakdown = loss_breakdown(
        logits, target, VOID, class_weights=[0.5, 1.0, 2.0, 4.0], focal_gamma=2.0, top_k_percent_pixels=0.3
    )
    assert breakdown.series == [PLAIN, WEIGHTED, FOCAL, MINING]
    for name, shares in breakdown.per_class_loss_share.items():
        assert shares.sum() == pytest.approx(1.0), name
    valid = (target != VOID).numpy()
    assert breakdown.valid_pixels == valid.sum() and breakdown.per_class_pixels.sum() == valid.sum()
    np.testing.assert_array_equal(breakdown.per_class_pixels, np.bincount(target.numpy()[valid], minlength=4))
    assert (breakdown.per_pixel[~valid] == 0).all() and (breakdown.cross_entropy[~valid] == 0).all()
    assert (breakdown.focal_factor[~valid] == 0).all() and not breakdown.kept_mask[~valid].any()
    np.testing.assert_allclose(breakdown.effective_pixels[PLAIN], breakdown.per_class_pixels)
    np.testing.assert_allclose(breakdown.effective_pixels[WEIGHTED], breakdown.per_class_pixels * [0.5, 1.0, 2.0, 4.0])


def test_class_weights_move_the_loss_share_toward_the_rare_class():
    # One 1x10 image: 9 pixels of class 0, 1 pixel of class 1, and the same (uniform) prediction
    # everywhere, so every pixel's CE is log 2 and plain CE shares follow the pixel counts.
    target = torch.tensor([[[0] * 9 + [1]]])
    logits = torch.zeros((1, 2, 1, 10))
    plain = loss_breakdown(logits, target, VOID)
    assert plain.per_class_loss_share[PLAIN] == pytest.approx([0.9, 0.1])
    # Inverse-frequency weights normalised to mean 1: 1/0.9 and 1/0.1 scaled by 2 / (1/0.9 + 1/0.1).
    weights = np.array([1 / 0.9, 1 / 0.1]) * 2 / (1 / 0.9 + 1 / 0.1)
    weighted = loss_breakdown(logits, target, VOID, class_weights=weights)
    # weighted share of class 1 = 1 * w1 / (9 * w0 + 1 * w1) = 10 / (10 + 10) = 0.5
    assert weighted.per_class_loss_share[WEIGHTED] == pytest.approx([0.5, 0.5])
    assert weighted.per_class_loss_share[PLAIN] == pytest.approx([0.9, 0.1])  # the unweighted view stays
    assert weighted.per_pixel[0, 0, 9] == pytest.approx(math.log(2) * weights[1])


def test_mining_keeps_exactly_k_valid_pixels_with_the_largest_losses():
    logits, target = random_batch(seed=3)
    valid = (target != VOID).numpy()
    breakdown = loss_breakdown(logits, target, VOID, top_k_percent_pixels=0.25)
    k = int(0.25 * valid.sum())
    assert breakdown.kept_pixels == breakdown.kept_mask.sum() == k
    assert not (breakdown.kept_mask & ~valid).any()
    kept_losses = breakdown.per_pixel[breakdown.kept_mask]
    dropped_losses = breakdown.per_pixel[valid & ~breakdown.kept_mask]
    assert kept_losses.min() >= dropped_losses.max()
    assert breakdown.per_class_loss_share[MINING].sum() == pytest.approx(1.0)


@pytest.mark.parametrize(("step", "fraction"), [(0, 1.0), (50, 0.5 * 0.25 + 0.5), (100, 0.25), (1000, 0.25)])
def test_kept_fraction_follows_deeplabs_schedule(step, fraction):
    # DeepLab: ratio = min(1, step / hard_example_mining_step); kept = ratio * top_k + (1 - ratio).
    logits, target = random_batch(seed=4)
    valid = int((target != VOID).sum())
    breakdown = loss_breakdown(logits, target, VOID, top_k_percent_pixels=0.25, hard_example_mining_step=100, step=step)
    assert breakdown.kept_fraction == pytest.approx(fraction)
    assert breakdown.kept_pixels == int(fraction * valid + 1e-6)


def test_focal_modulation_values_by_hand():
    # Two classes, probabilities (0.9, 0.1) at every pixel; targets 0, 1 and void.
    logits = torch.log(torch.tensor([0.9, 0.1])).view(1, 2, 1, 1).expand(1, 2, 1, 3).clone()
    target = torch.tensor([[[0, 1, VOID]]])
    factor = loss_breakdown(logits, target, VOID, focal_gamma=2.0).focal_factor[0, 0]
    assert factor == pytest.approx([(1 - 0.9) ** 2, (1 - 0.1) ** 2, 0.0], abs=1e-6)  # 0.01, 0.81, void
    assert loss_breakdown(logits, target, VOID, focal_gamma=0.0).focal_factor[0, 0] == pytest.approx([1, 1, 0])
    focal = loss_breakdown(logits, target, VOID, focal_gamma=2.0)
    # focal share of the easy class-0 pixel: 0.01 * -log 0.9 against 0.81 * -log 0.1.
    easy, hard = 0.01 * -math.log(0.9), 0.81 * -math.log(0.1)
    assert focal.per_class_loss_share[FOCAL] == pytest.approx([easy / (easy + hard), hard / (easy + hard)], rel=1e-5)


def test_loss_values_are_what_the_training_losses_return():
    logits, target = random_batch(seed=5)
    weights = torch.tensor([0.2, 1.0, 3.0, 0.5])
    breakdown = loss_breakdown(
        logits,
        target,
        VOID,
        class_weights=weights,
        focal_gamma=1.5,
        top_k_percent_pixels=0.3,
        hard_example_mining_step=10,
        step=4,
    )
    mining = HardPixelCrossEntropy(VOID, top_k_percent_pixels=0.3, hard_example_mining_step=10, class_weights=weights)
    mining.set_step(4)
    expected = {
        PLAIN: CrossEntropyLoss(VOID)(logits, target),
        WEIGHTED: CrossEntropyLoss(VOID, class_weights=weights)(logits, target),
        FOCAL: FocalLoss(gamma=1.5, alpha=weights, ignore_index=VOID)(logits, target),
        MINING: mining(logits, target),
    }
    for name, value in expected.items():
        assert breakdown.loss_values[name] == pytest.approx(float(value), rel=1e-5), name
    assert breakdown.kept_fraction == pytest.approx(mining.kept_fraction())


def test_images_of_different_sizes_are_padded_with_void():
    logits, target = random_batch(seed=6)
    small_logits, small_target = logits[1, :, :5, :7], target[1, :5, :7]
    breakdown = loss_breakdown([logits[0], small_logits], [target[0], small_target], VOID, top_k_percent_pixels=0.5)
    assert breakdown.sizes == [(12, 16), (5, 7)] and breakdown.valid.shape == (2, 12, 16)
    assert not breakdown.valid[1, 5:].any() and not breakdown.valid[1, :, 7:].any()
    assert breakdown.image("per_pixel", 1).shape == (5, 7)
    alone = loss_breakdown(small_logits[None], small_target[None], VOID)
    np.testing.assert_allclose(breakdown.image("cross_entropy", 1), alone.cross_entropy[0], rtol=1e-6)
    assert breakdown.valid_pixels == int((target[0] != VOID).sum() + (small_target != VOID).sum())


def test_numpy_inputs_and_class_rows():
    logits, target = random_batch(seed=7)
    breakdown = loss_breakdown(logits.numpy(), target.numpy(), VOID, class_weights=np.ones(4), focal_gamma=2.0)
    rows = breakdown.class_rows(["a", "b", "c", "d"])
    assert [row["class"] for row in rows] == ["a", "b", "c", "d"]
    assert sum(row["share of pixels"] for row in rows) == pytest.approx(1.0)
    assert {"class weight", "share of plain CE", "share of weighted CE", "share of focal"} <= set(rows[0])
    with pytest.raises(ConfigError, match="focal_gamma"):
        loss_breakdown(logits, target, VOID).image("focal_factor", 0)


@pytest.mark.parametrize(
    "options",
    [
        {"class_weights": [1.0, 2.0]},
        {"focal_gamma": -1.0},
        {"top_k_percent_pixels": 0.0},
        {"top_k_percent_pixels": 0.5, "step": -1},
    ],
)
def test_bad_options_raise_config_error(options):
    logits, target = random_batch()
    with pytest.raises(ConfigError):
        loss_breakdown(logits, target, VOID, **options)


def test_mismatched_shapes_raise_config_error():
    logits, target = random_batch()
    with pytest.raises(ConfigError, match="do not match"):
        loss_breakdown(logits, target[:, :5], VOID)
    with pytest.raises(ConfigError, match="one target per"):
        loss_breakdown([logits[0]], [], VOID)


def test_pictures_paint_void_grey_and_kept_pixels_orange():
    loss = np.array([[0.0, 1.0, 5.0]], dtype=np.float32)
    valid = np.array([[True, True, False]])
    picture = loss_picture(loss, valid, scale=1.0)
    assert picture.shape == (1, 3, 3) and picture.dtype == np.uint8
    assert (picture[0, 2] == (220, 220, 220)).all() and picture[0, 1].sum() > picture[0, 0].sum()  # yellow vs purple
    assert focal_picture(np.ones((1, 3)), valid)[0, 0].tolist() == picture[0, 1].tolist()
    image = np.full((1, 3, 3), 200, dtype=np.uint8)
    kept = kept_pixels_picture(image, np.array([[True, False, False]]), valid)
    assert kept[0, 0, 0] > kept[0, 0, 2] and kept[0, 1].tolist() == [70, 70, 70] and kept[0, 2].tolist() == [220] * 3
    assert heatmap_scale(np.arange(101, dtype=float)) == pytest.approx(99.0)
    assert heatmap_scale(np.array([5.0, 0.0]), valid=np.array([False, True])) == pytest.approx(1e-6)


def test_image_panels_show_the_weighted_loss_only_with_class_weights():
    from seglab.data.label_map import ClassInfo, LabelMap

    logits, target = random_batch(classes=3)
    colours = [(0, 0, 0), (200, 0, 0), (0, 200, 0)]
    labels = LabelMap(tuple(ClassInfo(i, name, colours[i]) for i, name in enumerate("abc")), ignore_index=VOID)
    breakdown = loss_breakdown(logits, target, VOID, class_weights=[1.0, 2.0, 3.0], focal_gamma=2.0, step=5)
    image = np.full((12, 16, 3), 90, dtype=np.uint8)
    options = {"sample_id": "s7", "scale": 2.0, "gamma": 2.0, "step": 5}
    panels = image_panels(breakdown, 1, image, target[1].numpy(), labels, weighting="inverse-frequency", **options)
    assert [caption for _, caption in panels] == [
        "s7: ground truth",
        "CE per pixel (no weights)",
        "CE × inverse-frequency weight",
        "focal factor, γ = 2",
        "kept by mining at step 5",
    ]
    valid = breakdown.image("valid", 1)
    np.testing.assert_array_equal(panels[1][0], loss_picture(breakdown.image("cross_entropy", 1), valid, 2.0))
    np.testing.assert_array_equal(panels[2][0], loss_picture(breakdown.image("per_pixel", 1), valid, 2.0))
    assert all(picture.shape == (12, 16, 3) for picture, _ in panels)
    unweighted = image_panels(breakdown, 1, image, target[1].numpy(), labels, weighting=None, **options)
    assert [caption for _, caption in unweighted] == [caption for _, caption in panels if "× " not in caption]
    assert (schedule_end(0), schedule_end(30), schedule_end(1000)) == (100, 100, 2000)


def test_predict_logits_softmax_matches_predict_probabilities():
    from seglab.engine.predict import predict, predict_logits
    from seglab.models import build_model

    torch.manual_seed(0)
    model = build_model("tiny_unet_small", num_classes=3)
    image = np.random.default_rng(0).integers(0, 256, size=(20, 28, 3), dtype=np.uint8)
    logits = predict_logits(model, image)
    assert logits.shape == (3, 20, 28) and logits.dtype == torch.float32
    probabilities = predict(model, image, return_probabilities=True).probabilities
    np.testing.assert_allclose(logits.softmax(0).numpy(), probabilities, atol=1e-5)


def test_rarest_class_sentence_names_its_shares():
    target = torch.tensor([[[0] * 9 + [1]]])
    breakdown = loss_breakdown(
        torch.zeros((1, 3, 1, 10)), target, VOID, class_weights=[1.0, 9.0, 1.0], top_k_percent_pixels=0.1
    )
    sentence = breakdown.rarest_class_sentence(["road", "sign", "sky"])
    # Plain CE: 1 of 10 equal losses; weighted: 9 / (9 + 9); mining keeps the single largest (weighted) loss.
    # Equal logits: every pixel's CE is equal, so road (90% of the pixels) carries 90% of plain CE.
    assert sentence.startswith("**road** carries the most plain cross-entropy: 90.0% of it, with 90.0% of")
    assert "sign, the rarest class in these images, has 10.0% of the pixels" in sentence
    assert (
        "10.0% of plain CE" in sentence and "50.0% of weighted CE" in sentence and "100.0% of top-k mining" in sentence
    )


def test_the_headline_names_the_class_carrying_the_loss_even_when_it_is_the_rarest():
    target = torch.tensor([[[0] * 8 + [1] * 2]])
    logits = torch.zeros((1, 2, 1, 10))
    logits[0, 0, 0, 8:] = 9.0  # the two class-1 pixels are confidently wrong: they carry almost all of the CE
    sentence = loss_breakdown(logits, target, VOID).rarest_class_sentence(["road", "sign"])
    assert sentence.startswith("**sign** carries the most plain cross-entropy") and "also the rarest" in sentence


def test_share_series_and_mining_schedule():
    from seglab.analysis.loss_inspector import mining_schedule

    target = torch.tensor([[[0] * 9 + [2]]])  # class 1 absent
    names, series = loss_breakdown(torch.zeros((1, 3, 1, 10)), target, VOID, focal_gamma=2.0).share_series(
        ["a", "b", "c"]
    )
    assert names == ["a", "c"] and list(series) == ["pixels", PLAIN, FOCAL]
    assert series["pixels"] == pytest.approx([0.9, 0.1])
    steps, fractions = mining_schedule(0.25, 100, 200, points=5)
    assert steps.tolist() == [0, 50, 100, 150, 200] and fractions == pytest.approx([1.0, 0.625, 0.25, 0.25, 0.25])
