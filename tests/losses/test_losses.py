"""Tests for seglab.losses.criterion and the math in seglab.losses.functional.

Expected values are computed by hand with ``math`` / numpy on tiny tensors written out in full,
never by calling the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seglab.errors import ConfigError, LabelMapError
from seglab.losses.criterion import (
    LOSS_EXPLANATIONS,
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    HardPixelCrossEntropy,
    HausdorffDTLoss,
    SegmentationCriterion,
    SoftIoULoss,
    _resize_target,
    available_losses,
    build_criterion,
    focal_modulation,
    hard_pixel_mask,
    kept_fraction,
    per_pixel_loss,
)
from seglab.losses.functional import boundary_distance_fields

IGNORE_INDICES = [255, 11]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def softmax(row: list[float]) -> list[float]:
    exps = [math.exp(value) for value in row]
    return [value / sum(exps) for value in exps]


def nll(row: list[float], label: int) -> float:
    return -math.log(softmax(row)[label])


def logits_from_pixels(pixels: list[list[float]], height: int = 1) -> torch.Tensor:
    """Per-pixel class scores (row-major) -> logits (1, K, height, width)."""
    width = len(pixels) // height
    return torch.tensor(pixels, dtype=torch.float32).T.reshape(1, -1, height, width)


# Two pixels, two classes: pixel A scores (2, 0) labelled 0, pixel B scores (0, 1) labelled 1.
TWO_PIXELS = [[2.0, 0.0], [0.0, 1.0]]
TWO_TARGETS = torch.tensor([[[0, 1]]])


def all_loss_modules(ignore_index: int) -> dict[str, torch.nn.Module]:
    return {
        "ce": CrossEntropyLoss(ignore_index, class_weights=[1.0, 2.0, 0.5, 1.5]),
        "hard_ce": HardPixelCrossEntropy(ignore_index, top_k_percent_pixels=0.3),
        "focal": FocalLoss(gamma=2.0, alpha=[1.0, 2.0, 0.5, 1.5], ignore_index=ignore_index),
        "dice_present": DiceLoss(ignore_index, classes="present"),
        "dice_all": DiceLoss(ignore_index, classes="all"),
        "iou": SoftIoULoss(ignore_index),
        "hd": HausdorffDTLoss(ignore_index),
    }


def random_batch(ignore_index: int, num_classes: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, num_classes, 6, 7, generator=generator) * 2
    target = torch.randint(0, num_classes, (2, 6, 7), generator=generator)
    target[:, :2, :3] = ignore_index
    target[1, 4:, :] = ignore_index
    return logits, target


# ---------------------------------------------------------------- cross-entropy


def test_cross_entropy_hand_value_and_class_weights() -> None:
    logits = logits_from_pixels(TWO_PIXELS)
    loss_a, loss_b = math.log(1 + math.exp(-2)), math.log(1 + math.exp(-1))
    unweighted = CrossEntropyLoss(ignore_index=255)(logits, TWO_TARGETS)
    weighted = CrossEntropyLoss(ignore_index=255, class_weights=[1.0, 3.0])(logits, TWO_TARGETS)
    assert unweighted.item() == pytest.approx((loss_a + loss_b) / 2, rel=1e-6)
    assert weighted.item() == pytest.approx((loss_a + 3 * loss_b) / 4, rel=1e-6)
    # the weight on class 1 pulls the mean towards pixel B's loss
    assert weighted.item() > unweighted.item()


@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
def test_cross_entropy_skips_ignored_pixels(ignore_index: int) -> None:
    pixels = [[1.0, 0.0, -1.0], [5.0, -5.0, 9.0], [0.5, 0.2, 2.0], [0.0, 3.0, 0.0]]
    logits = logits_from_pixels(pixels, height=2)
    target = torch.tensor([[[0, ignore_index], [2, 1]]])
    expected = (nll(pixels[0], 0) + nll(pixels[2], 2) + nll(pixels[3], 1)) / 3
    assert CrossEntropyLoss(ignore_index)(logits, target).item() == pytest.approx(expected, rel=1e-6)
    reference = F.cross_entropy(logits, target, ignore_index=ignore_index)
    assert CrossEntropyLoss(ignore_index)(logits, target).item() == pytest.approx(reference.item(), rel=1e-6)


def test_per_pixel_loss_is_weighted_nll_with_zero_at_ignore() -> None:
    logits = logits_from_pixels([[2.0, 0.0], [0.0, 1.0], [4.0, 4.0]])
    target = torch.tensor([[[0, 1, 11]]])
    losses = per_pixel_loss(logits, target, ignore_index=11, class_weights=[1.0, 3.0])
    assert losses.shape == (1, 1, 3)
    expected = [math.log(1 + math.exp(-2)), 3 * math.log(1 + math.exp(-1)), 0.0]
    assert losses.flatten().tolist() == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- hard pixel mining


def test_kept_fraction_follows_deeplab_schedule() -> None:
    assert kept_fraction(0, 0.25, 100) == pytest.approx(1.0)
    assert kept_fraction(50, 0.25, 100) == pytest.approx(0.625)
    assert kept_fraction(100, 0.25, 100) == pytest.approx(0.25)
    assert kept_fraction(400, 0.25, 100) == pytest.approx(0.25)
    assert kept_fraction(0, 0.25, 0) == pytest.approx(0.25)  # no schedule: top-k from the start
    module = HardPixelCrossEntropy(255, top_k_percent_pixels=0.25, hard_example_mining_step=100)
    module.set_step(50)
    assert module.kept_fraction() == pytest.approx(0.625)
    assert module.kept_fraction(100) == pytest.approx(0.25)


def test_hard_pixel_mask_keeps_largest_valid_losses() -> None:
    # 8 valid pixels with distinct losses, 4 ignored pixels (loss 0).
    losses = torch.tensor([[[0.1, 0.8, 0.0, 0.3], [0.7, 0.0, 0.2, 0.5], [0.0, 0.4, 0.6, 0.0]]])
    valid = torch.tensor([[[1, 1, 0, 1], [1, 0, 1, 1], [0, 1, 1, 0]]], dtype=torch.bool)
    for fraction, count in [(1.0, 8), (0.625, 5), (0.25, 2)]:
        mask = hard_pixel_mask(losses, fraction, valid)
        assert int(mask.sum()) == count
        assert not bool((mask & ~valid).any())
        threshold = sorted(losses[valid].tolist(), reverse=True)[count - 1]
        assert torch.equal(mask, valid & (losses >= threshold))
    # k counts valid pixels only: 50% of 8 valid is 4 (DeepLab's all-pixel count would give 6)
    assert int(hard_pixel_mask(losses, 0.5, valid).sum()) == 4


def test_hard_pixel_cross_entropy_mean_of_top_k_per_schedule() -> None:
    # Pixel i has scores (x_i, 0) and label 0, so its loss is log(1 + exp(-x_i)).
    scores = [3.0, 2.0, 1.0, 0.0, -1.0, -2.0, -3.0, -4.0]
    pixels = [[x, 0.0] for x in scores] + [[-9.0, 0.0]] * 2
    logits = logits_from_pixels(pixels)
    target = torch.tensor([[[0] * 8 + [11, 11]]])
    losses = sorted((math.log(1 + math.exp(-x)) for x in scores), reverse=True)
    module = HardPixelCrossEntropy(11, top_k_percent_pixels=0.25, hard_example_mining_step=100)
    for step, kept in [(0, 8), (50, 5), (100, 2), (1000, 2)]:
        module.set_step(step)
        assert module(logits, target).item() == pytest.approx(sum(losses[:kept]) / kept, rel=1e-6)


def test_hard_pixel_cross_entropy_divides_by_nonzero_kept_losses() -> None:
    # Class 1 has weight 0, so its pixels keep a zero loss and do not count in the normaliser.
    pixels = [[1.0, 0.0], [0.0, 0.0], [-1.0, 0.0], [-2.0, 0.0], [0.0, 3.0], [0.0, 1.0]]
    logits = logits_from_pixels(pixels)
    target = torch.tensor([[[0, 0, 0, 0, 1, 1]]])
    module = HardPixelCrossEntropy(255, top_k_percent_pixels=1.0, class_weights=[2.0, 0.0])
    weighted = [2 * nll(row, 0) for row in pixels[:4]]
    assert module(logits, target).item() == pytest.approx(sum(weighted) / 4, rel=1e-6)
    # weighted-mean CE would divide by the summed weights (8) instead
    weighted_mean = CrossEntropyLoss(255, [2.0, 0.0])(logits, target).item()
    assert weighted_mean == pytest.approx(sum(weighted) / 8, rel=1e-6)


# ---------------------------------------------------------------- focal


def test_focal_hand_value_with_alpha() -> None:
    logits = logits_from_pixels(TWO_PIXELS)
    p_a, p_b = sigmoid(2.0), sigmoid(1.0)
    focal_a = (1 - p_a) ** 2 * -math.log(p_a)
    focal_b = (1 - p_b) ** 2 * -math.log(p_b)
    assert FocalLoss(2.0, ignore_index=255)(logits, TWO_TARGETS).item() == pytest.approx(
        (focal_a + focal_b) / 2, rel=1e-5
    )
    assert FocalLoss(2.0, alpha=[1.0, 3.0], ignore_index=255)(logits, TWO_TARGETS).item() == pytest.approx(
        (focal_a + 3 * focal_b) / 4, rel=1e-5
    )


@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
@pytest.mark.parametrize("weights", [None, [1.0, 2.0, 0.5, 1.5]])
def test_focal_with_gamma_zero_equals_cross_entropy(ignore_index: int, weights: list[float] | None) -> None:
    logits, target = random_batch(ignore_index)
    focal = FocalLoss(0.0, alpha=weights, ignore_index=ignore_index)(logits, target)
    ce = CrossEntropyLoss(ignore_index, class_weights=weights)(logits, target)
    assert focal.item() == pytest.approx(ce.item(), rel=1e-6)
    assert FocalLoss(2.0, alpha=weights, ignore_index=ignore_index)(logits, target).item() < ce.item()


def test_focal_modulation_values_and_ignore() -> None:
    logits = logits_from_pixels(TWO_PIXELS + [[0.0, 0.0]])
    target = torch.tensor([[[0, 1, 255]]])
    modulation = focal_modulation(logits, target, gamma=2.0, ignore_index=255)
    expected = [(1 - sigmoid(2.0)) ** 2, (1 - sigmoid(1.0)) ** 2, 0.0]
    assert modulation.flatten().tolist() == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------- Dice and IoU

# Three classes, class 2 absent from the target.
THREE_CLASS_PIXELS = [[2.0, 0.0, 0.5], [0.0, 1.0, -1.0]]


def overlap_by_hand(iou: bool) -> tuple[float, float]:
    """(loss over present classes, loss over all classes) for THREE_CLASS_PIXELS, smooth=1."""
    probs = [softmax(row) for row in THREE_CLASS_PIXELS]
    one_hot = [[1, 0, 0], [0, 1, 0]]
    scores = []
    for class_id in range(3):
        intersection = sum(probs[i][class_id] * one_hot[i][class_id] for i in range(2))
        predicted = sum(probs[i][class_id] for i in range(2))
        labelled = sum(one_hot[i][class_id] for i in range(2))
        if iou:
            scores.append((intersection + 1) / (predicted + labelled - intersection + 1))
        else:
            scores.append((2 * intersection + 1) / (predicted + labelled + 1))
    return 1 - (scores[0] + scores[1]) / 2, 1 - sum(scores) / 3


@pytest.mark.parametrize("loss_class, iou", [(DiceLoss, False), (SoftIoULoss, True)])
def test_overlap_losses_hand_value_present_and_all(loss_class: type, iou: bool) -> None:
    logits = logits_from_pixels(THREE_CLASS_PIXELS)
    present, every_class = overlap_by_hand(iou)
    assert loss_class(255, classes="present")(logits, TWO_TARGETS).item() == pytest.approx(present, rel=1e-5)
    assert loss_class(255, classes="all")(logits, TWO_TARGETS).item() == pytest.approx(every_class, rel=1e-5)


@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
def test_perfect_prediction_gives_near_zero(ignore_index: int) -> None:
    _, target = random_batch(ignore_index)
    target[target == 3] = 2  # class 3 absent: "all" must not punish it when predicted at 0
    safe = torch.where(target == ignore_index, torch.zeros_like(target), target)
    logits = F.one_hot(safe, 4).permute(0, 3, 1, 2).float() * 40.0
    for name, module in all_loss_modules(ignore_index).items():
        assert module(logits, target).item() == pytest.approx(0.0, abs=1e-4), name


# ---------------------------------------------------------------- Hausdorff distance transform


def test_boundary_distance_fields_match_brute_force() -> None:
    labels = np.array([[[0, 0, 1, 1, 1], [0, 2, 2, 1, 1], [0, 2, 2, -1, 1], [0, 0, 0, 0, 1]]])
    fields = boundary_distance_fields(labels, num_classes=4)
    coordinates = np.stack(np.meshgrid(range(4), range(5), indexing="ij"), axis=-1).reshape(-1, 1, 2)
    pairwise = np.sqrt(((coordinates - coordinates.reshape(1, -1, 2)) ** 2).sum(-1))
    for class_id in range(3):
        mask = (labels[0] == class_id).reshape(-1)
        # distance to the nearest pixel on the other side of the boundary
        expected = np.where(mask, pairwise[:, ~mask].min(1), pairwise[:, mask].min(1)).reshape(4, 5)
        np.testing.assert_allclose(fields[0, class_id], expected, rtol=1e-5)
    assert not fields[0, 3].any()  # absent class: no boundary, zero field


def test_hausdorff_loss_hand_value() -> None:
    # Target 0 0 1 1; scores (a, 0) predict 0 1 1 1. For both classes the distance fields are
    # d_target = [2, 1, 1, 2] and d_pred = [1, 1, 2, 3], so d_pred^2 + d_target^2 = [5, 2, 5, 13].
    scores = [2.0, -1.0, -2.0, -3.0]
    logits = logits_from_pixels([[a, 0.0] for a in scores])
    target = torch.tensor([[[0, 0, 1, 1]]])
    combined = [5, 2, 5, 13]
    is_class_0 = [1, 1, 0, 0]
    # (p1 - g1)^2 equals (p0 - g0)^2, so both classes contribute the same sum
    per_class = sum((sigmoid(a) - g) ** 2 * d for a, g, d in zip(scores, is_class_0, combined))
    expected = 2 * per_class / (4 * 2)
    assert HausdorffDTLoss(255, alpha=2.0)(logits, target).item() == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------- all losses: ignore, gradients


@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
def test_ignored_pixels_change_neither_loss_nor_gradient(ignore_index: int) -> None:
    logits, target = random_batch(ignore_index)
    ignored = (target == ignore_index)[:, None].expand_as(logits)
    changed = torch.where(ignored, torch.randn_like(logits) * 50, logits)
    for name, module in all_loss_modules(ignore_index).items():
        results = []
        for values in (logits, changed):
            values = values.clone().requires_grad_(True)
            loss = module(values, target)
            loss.backward()
            results.append((loss.item(), values.grad))
        assert results[0][0] == pytest.approx(results[1][0], rel=1e-6), name
        torch.testing.assert_close(results[0][1], results[1][1], msg=name)
        assert not bool(results[0][1][ignored].any()), name


@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
@pytest.mark.parametrize("case", ["all_ignore", "lacking_classes", "confident", "bfloat16"])
def test_gradients_finite_for_every_loss(ignore_index: int, case: str) -> None:
    logits, target = random_batch(ignore_index, seed=3)
    if case == "all_ignore":
        target[:] = ignore_index
    elif case == "lacking_classes":
        target = torch.where(target == ignore_index, target, target % 2)  # only classes 0 and 1
    elif case == "confident":
        logits = logits * 40
    elif case == "bfloat16":
        logits = logits.bfloat16()
    for name, module in all_loss_modules(ignore_index).items():
        values = logits.clone().requires_grad_(True)
        loss = module(values, target)
        loss.backward()
        assert loss.dtype == torch.float32, name
        assert torch.isfinite(loss), name
        assert bool(torch.isfinite(values.grad.float()).all()), name
        if case == "all_ignore":
            assert loss.item() == 0.0, name
            assert not bool(values.grad.any()), name


def test_lacking_classes_dice_averages_present_classes_only() -> None:
    # Same two pixels as the hand example, padded with two absent classes at -inf-ish scores.
    logits = logits_from_pixels([row + [-30.0, -30.0] for row in THREE_CLASS_PIXELS])
    logits_three = logits_from_pixels(THREE_CLASS_PIXELS)
    five_class = DiceLoss(255, classes="present")(logits, TWO_TARGETS).item()
    three_class = DiceLoss(255, classes="present")(logits_three, TWO_TARGETS).item()
    assert five_class == pytest.approx(three_class, rel=1e-5)


# ---------------------------------------------------------------- criterion


@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
def test_resize_target_uses_nearest_and_keeps_ignore(ignore_index: int) -> None:
    target = torch.randint(0, 4, (2, 8, 9))
    target[:, ::3, :] = ignore_index
    resized = _resize_target(target, (4, 3))
    assert resized.dtype == torch.int64
    rows, columns = [0, 2, 4, 6], [0, 3, 6]  # torch nearest: source = floor(dst * in / out)
    assert torch.equal(resized, target[:, rows][:, :, columns])
    assert set(resized.unique().tolist()) <= set(target.unique().tolist())
    assert bool((resized == ignore_index).any())


@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
def test_criterion_multi_scale_and_aux(ignore_index: int) -> None:
    generator = torch.Generator().manual_seed(1)
    target = torch.randint(0, 4, (2, 8, 8), generator=generator)
    target[:, :, :2] = ignore_index
    out = torch.randn(2, 4, 8, 8, generator=generator)
    aux = torch.randn(2, 4, 4, 4, generator=generator)
    half_target = target[:, ::2, ::2]

    def reference_ce(logits: torch.Tensor, labels: torch.Tensor) -> float:
        return F.cross_entropy(logits, labels, ignore_index=ignore_index).item()

    criterion = build_criterion("ce", num_classes=4, ignore_index=ignore_index, aux_weight=0.4)
    total, terms = criterion({"out": out, "aux": aux}, target)
    expected_aux = reference_ce(aux, half_target)
    assert terms["ce"] == pytest.approx(reference_ce(out, target), rel=1e-5)
    assert terms["aux"] == pytest.approx(expected_aux, rel=1e-5)
    assert total.item() == pytest.approx(terms["ce"] + 0.4 * expected_aux, rel=1e-5)
    assert terms["total"] == pytest.approx(total.item(), rel=1e-6)

    # a list of logits is DeepLab's multi-scale loss: one loss per scale, summed
    total, terms = criterion([out, aux], target)
    assert total.item() == pytest.approx(reference_ce(out, target) + expected_aux, rel=1e-5)
    assert terms["aux"] == 0.0


def test_criterion_terms_dict_and_weights() -> None:
    logits, target = random_batch(255)
    criterion = build_criterion("ce+0.5*dice", num_classes=4, ignore_index=255, aux_weight=0.25)
    total, terms = criterion({"out": logits, "aux": logits[:, :, ::2, ::2]}, target)
    assert set(terms) == {"ce", "dice", "aux", "total"}
    assert all(isinstance(value, float) for value in terms.values())
    ce = CrossEntropyLoss(255)(logits, target).item()
    dice = DiceLoss(255)(logits, target).item()
    assert terms["ce"] == pytest.approx(ce, rel=1e-5)
    assert terms["dice"] == pytest.approx(dice, rel=1e-5)
    assert terms["total"] == pytest.approx(ce + 0.5 * dice + 0.25 * terms["aux"], rel=1e-5)
    # plain logits (no dict) and no aux head
    total, terms = criterion(logits, target)
    assert terms["aux"] == 0.0 and total.item() == pytest.approx(ce + 0.5 * dice, rel=1e-5)


def test_criterion_rejects_labels_outside_the_label_map() -> None:
    logits, target = random_batch(11)
    target[0, 5, 5] = 7
    criterion = build_criterion("ce", num_classes=4, ignore_index=11)
    with pytest.raises(LabelMapError, match=r"\[7\].*ignore_index 11"):
        criterion({"out": logits}, target)


def test_criterion_rejects_duplicate_or_reserved_names() -> None:
    with pytest.raises(ConfigError):
        SegmentationCriterion([(1.0, CrossEntropyLoss(), "ce"), (1.0, DiceLoss(), "ce")])
    with pytest.raises(ConfigError):
        SegmentationCriterion([(1.0, CrossEntropyLoss(), "total")])


# ---------------------------------------------------------------- build_criterion


def test_build_criterion_parses_names_weights_and_aliases() -> None:
    criterion = build_criterion(" CE + 0.5 * Dice+2e-2*hausdorff ", num_classes=4, ignore_index=11)
    assert criterion.names == ["ce", "dice", "hd"]
    assert criterion.weights == [1.0, 0.5, 0.02]
    assert [type(module) for module in criterion.losses] == [CrossEntropyLoss, DiceLoss, HausdorffDTLoss]
    assert all(module.ignore_index == 11 for module in criterion.losses)
    for alias in ["ohem", "hard_ce", "ohem_ce"]:
        assert build_criterion(alias, num_classes=4, ignore_index=255).names == ["hard_ce"]
    assert build_criterion("focal+jaccard", num_classes=4, ignore_index=255).names == ["focal", "iou"]


def test_build_criterion_passes_options_to_terms() -> None:
    criterion = build_criterion(
        "ohem+focal+dice",
        num_classes=3,
        ignore_index=255,
        class_weights=[1.0, 2.0, 3.0],
        top_k_percent_pixels=0.5,
        hard_example_mining_step=10,
        focal_gamma=1.5,
        dice_classes="all",
        aux_weight=0.5,
    )
    mining, focal, dice = criterion.losses
    assert mining.class_weights.tolist() == [1.0, 2.0, 3.0]
    assert focal.alpha.tolist() == [1.0, 2.0, 3.0] and focal.gamma == 1.5
    assert dice.classes == "all" and criterion.aux_weight == 0.5
    criterion.set_step(5)
    assert mining.kept_fraction() == pytest.approx(0.75)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("lovasz", "valid names: .*dice"),
        ("ce+tversky", "unknown loss 'tversky'"),
        ("ce+", "cannot parse"),
        ("0.5*", "cannot parse"),
        ("ce*0.5", "cannot parse"),
        ("", "cannot parse"),
        ("ce+2*cross_entropy", "appears twice"),
    ],
)
def test_build_criterion_rejects_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_criterion(spec, num_classes=4, ignore_index=255)


def test_build_criterion_rejects_bad_options() -> None:
    with pytest.raises(ConfigError, match="3 values but there are 4 classes"):
        build_criterion("ce", num_classes=4, ignore_index=255, class_weights=[1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="finite and >= 0"):
        build_criterion("ce", num_classes=2, ignore_index=255, class_weights=[1.0, -1.0])
    with pytest.raises(ConfigError, match="top_k_percent_pixels"):
        build_criterion("ohem", num_classes=2, ignore_index=255, top_k_percent_pixels=0.0)
    with pytest.raises(ConfigError, match="classes must be one of"):
        build_criterion("dice", num_classes=2, ignore_index=255, dice_classes="some")


def test_every_loss_is_explained_and_buildable() -> None:
    assert available_losses() == list(LOSS_EXPLANATIONS)
    logits, target = random_batch(255)
    for name in available_losses():
        text = LOSS_EXPLANATIONS[name]
        assert text and "\n" not in text and len(text) < 200
        total, terms = build_criterion(name, num_classes=4, ignore_index=255)({"out": logits}, target)
        assert set(terms) == {name, "aux", "total"} and torch.isfinite(total)
