"""Pure loss math for :mod:`seglab.losses.criterion`: functions of logits, target and options, no state.

Conventions shared by every function: logits ``(N, K, H, W)`` (any float dtype, computed in
float32), target ``(N, H, W)`` integer class ids; pixels equal to ``ignore_index`` contribute
neither value nor gradient; an all-ignore batch gives 0 with a zero gradient, never NaN.
The per-pixel views (:func:`per_pixel_loss`, :func:`focal_modulation`, :func:`hard_pixel_mask`)
are what a loss inspector shows.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from seglab.errors import ConfigError, LabelMapError

ClassWeights = Sequence[float] | np.ndarray | torch.Tensor


# --------------------------------------------------------------------------------------------
# Input checks and shared pieces
# --------------------------------------------------------------------------------------------


def check_logits_and_target(logits: torch.Tensor, target: torch.Tensor) -> None:
    """Raise ValueError unless logits are ``(N, K, H, W)`` and target ``(N, H, W)`` integers."""
    if logits.dim() != 4 or target.dim() != 3:
        raise ValueError(
            f"expected logits (N, K, H, W) and target (N, H, W), got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    if logits.shape[0] != target.shape[0] or logits.shape[2:] != target.shape[1:]:
        raise ValueError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in batch or "
            "spatial size; SegmentationCriterion resizes labels for multi-scale outputs"
        )
    if target.is_floating_point():
        raise ValueError(f"target must hold integer class ids, got dtype {target.dtype}")


def check_target_values(target: torch.Tensor, num_classes: int, ignore_index: int) -> None:
    """Raise LabelMapError when a non-ignored pixel is outside ``0..num_classes-1``."""
    invalid = (target != ignore_index) & ((target < 0) | (target >= num_classes))
    if bool(invalid.any()):
        values = torch.unique(target[invalid])[:10].tolist()
        raise LabelMapError(
            f"target contains class ids {values} outside 0..{num_classes - 1} that are not the "
            f"ignore_index {ignore_index}; check that the label map matches the model's "
            "num_classes and that void pixels use the label map's ignore_index"
        )


def as_class_weights(class_weights: ClassWeights | None, num_classes: int | None = None) -> torch.Tensor | None:
    """Validate per-class weights into a float32 tensor (or None); ConfigError when unusable."""
    if class_weights is None:
        return None
    if isinstance(class_weights, torch.Tensor):
        weights = class_weights.detach().float().flatten()
    else:
        weights = torch.as_tensor(np.asarray(class_weights, dtype=np.float32)).flatten()
    if num_classes is not None and weights.numel() != num_classes:
        raise ConfigError(
            f"class_weights has {weights.numel()} values but there are {num_classes} classes; "
            "give one weight per class (e.g. from median-frequency statistics)"
        )
    if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
        raise ConfigError(f"class_weights must be finite and >= 0, got {weights.tolist()}")
    return weights


def _valid_and_safe_target(target: torch.Tensor, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(valid (N,H,W) bool, int64 target with ignored pixels set to class 0)``.

    The safe target lets gather/one_hot run on every pixel; results at ignored pixels are then
    multiplied by ``valid``, so their value and gradient are exactly zero.
    """
    valid = target != ignore_index
    return valid, torch.where(valid, target, torch.zeros_like(target)).long()


def _pixel_weights(
    safe_target: torch.Tensor, valid: torch.Tensor, class_weights: torch.Tensor | None, num_classes: int
) -> torch.Tensor:
    """Weight ``w_y`` per pixel, 0 at ignored pixels: ``(N, H, W)`` float32."""
    if class_weights is None:
        return valid.float()
    if class_weights.numel() != num_classes:
        raise ConfigError(
            f"class_weights has {class_weights.numel()} values but the logits have {num_classes} "
            "classes; give one weight per class"
        )
    return class_weights.to(safe_target.device)[safe_target] * valid


def _safe_divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """``numerator / denominator``, or the (zero) numerator when nothing was counted."""
    return numerator / torch.where(denominator > 0, denominator, torch.ones_like(denominator))


def _pixel_nll(logits: torch.Tensor, safe_target: torch.Tensor) -> torch.Tensor:
    """``-log softmax(logits)[y]`` per pixel: ``(N, H, W)`` float32."""
    log_probs = F.log_softmax(logits.float(), dim=1)
    return -log_probs.gather(1, safe_target[:, None]).squeeze(1)


def _focal_factor(nll: torch.Tensor, gamma: float) -> torch.Tensor:
    # 1 - p computed as -expm1(-nll) stays accurate near p = 1; the clamp keeps the gradient of
    # x ** gamma finite at x = 0 when gamma < 1.
    return (-torch.expm1(-nll)).clamp_min(1e-12) ** gamma


def _probabilities_and_one_hot(
    logits: torch.Tensor, safe_target: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax and one-hot target, both ``(N, K, H, W)`` float32 and zero at ignored pixels."""
    mask = valid[:, None].float()
    probs = F.softmax(logits.float(), dim=1) * mask
    one_hot = F.one_hot(safe_target, logits.shape[1]).permute(0, 3, 1, 2).float() * mask
    return probs, one_hot


# --------------------------------------------------------------------------------------------
# Cross-entropy family
# --------------------------------------------------------------------------------------------


def per_pixel_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int, class_weights: ClassWeights | None = None
) -> torch.Tensor:
    """Weighted cross-entropy ``w_y * -log p_y`` per pixel, ``(N, H, W)``, 0 at ignored pixels."""
    check_logits_and_target(logits, target)
    check_target_values(target, logits.shape[1], ignore_index)
    valid, safe_target = _valid_and_safe_target(target, ignore_index)
    weights = _pixel_weights(safe_target, valid, as_class_weights(class_weights), logits.shape[1])
    return _pixel_nll(logits, safe_target) * weights


def cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int, class_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Weighted mean like ``F.cross_entropy``: ``sum(w_y * nll) / sum(w_y)`` over valid pixels."""
    valid, safe_target = _valid_and_safe_target(target, ignore_index)
    weights = _pixel_weights(safe_target, valid, class_weights, logits.shape[1])
    return _safe_divide((_pixel_nll(logits, safe_target) * weights).sum(), weights.sum())


def kept_fraction(step: int, top_k_percent_pixels: float, hard_example_mining_step: int) -> float:
    """Fraction of valid pixels that hard pixel mining keeps at ``step`` (DeepLab's schedule).

    Falls linearly from 1 (all pixels) at step 0 to ``top_k_percent_pixels`` at
    ``hard_example_mining_step``; with ``hard_example_mining_step == 0`` it is top-k from the start.
    """
    if hard_example_mining_step == 0:
        return float(top_k_percent_pixels)
    ratio = min(1.0, max(0.0, step / hard_example_mining_step))
    return ratio * top_k_percent_pixels + (1.0 - ratio)


def _keep_count(num_valid: int, fraction: float) -> int:
    # DeepLab truncates with int(); the 1e-6 stops float error turning 0.29 * 100 into 28. At least
    # one pixel is kept so tiny (aux / multi-scale) logits never lose their whole signal.
    if num_valid == 0:
        return 0
    return min(num_valid, max(1, int(fraction * num_valid + 1e-6)))


def hard_pixel_mask(
    pixel_losses: torch.Tensor, fraction: float, valid_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Bool mask (shape of ``pixel_losses``) of the pixels hard pixel mining keeps.

    Keeps the ``int(fraction * number of valid pixels)`` largest losses over the whole tensor (a
    batch is ranked together, as in DeepLab). Pass ``valid_mask = target != ignore_index`` to count
    like training does; without it every pixel counts as valid.
    """
    valid = torch.ones_like(pixel_losses, dtype=torch.bool) if valid_mask is None else valid_mask
    # Losses are >= 0, so -1 ranks ignored pixels last.
    ranked = torch.where(valid, pixel_losses.detach(), torch.full_like(pixel_losses, -1.0)).flatten()
    keep = _keep_count(int(valid.sum()), fraction)
    mask = torch.zeros_like(ranked, dtype=torch.bool)
    mask[ranked.topk(keep, sorted=False).indices] = True
    return mask.view_as(pixel_losses) & valid


def hard_pixel_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int,
    fraction: float,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """DeepLab's mined CE: ``sum(kept losses) / count(kept losses != 0)``.

    Unlike DeepLab, the kept count is a fraction of the *valid* pixels, not of all pixels: with
    many void pixels (VOC borders, crop padding) DeepLab's k can exceed the number of labelled
    pixels and mining then silently keeps everything; counting valid pixels makes "25%" mean 25%
    of what is labelled. The non-zero normaliser is DeepLab's: zero-weight pixels do not dilute.
    """
    valid, safe_target = _valid_and_safe_target(target, ignore_index)
    weights = _pixel_weights(safe_target, valid, class_weights, logits.shape[1])
    losses = _pixel_nll(logits, safe_target) * weights
    kept = hard_pixel_mask(losses, fraction, valid)
    return _safe_divide((losses * kept).sum(), (kept & (losses != 0)).sum().float())


def focal_modulation(
    logits: torch.Tensor, target: torch.Tensor, gamma: float, ignore_index: int | None = None
) -> torch.Tensor:
    """Focal factor ``(1 - p_y) ** gamma`` per pixel, ``(N, H, W)``; 0 at ``ignore_index`` pixels.

    Shows how much each pixel still counts under focal loss (1 = as in CE, near 0 = already easy).
    """
    check_logits_and_target(logits, target)
    ignore = -1 if ignore_index is None else ignore_index
    check_target_values(target, logits.shape[1], ignore)
    valid, safe_target = _valid_and_safe_target(target, ignore)
    return _focal_factor(_pixel_nll(logits, safe_target), gamma) * valid


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int,
    gamma: float,
    alpha: torch.Tensor | None = None,
) -> torch.Tensor:
    """``sum(alpha_y (1 - p_y)^gamma nll) / sum(alpha_y)``: with gamma=0 exactly weighted CE."""
    valid, safe_target = _valid_and_safe_target(target, ignore_index)
    weights = _pixel_weights(safe_target, valid, alpha, logits.shape[1])
    nll = _pixel_nll(logits, safe_target)
    return _safe_divide((_focal_factor(nll, gamma) * nll * weights).sum(), weights.sum())


# --------------------------------------------------------------------------------------------
# Region overlap (Dice, IoU) and boundary distance (Hausdorff)
# --------------------------------------------------------------------------------------------


def soft_overlap_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int, smooth: float, classes: str, iou: bool
) -> torch.Tensor:
    """``1 - mean_c score_c`` for soft Dice (``iou=False``) or soft IoU, sums over the whole batch.

    Batch-level sums (as in segmentation_models_pytorch) keep a class absent from one image well
    defined. ``classes="present"`` averages over classes with a valid target pixel in the batch,
    so absent classes neither reward nor dilute; ``"all"`` also pushes absent classes' probability
    mass to 0 (their score is ``smooth / (predicted mass + smooth)``).
    """
    valid, safe_target = _valid_and_safe_target(target, ignore_index)
    num_classes = logits.shape[1]
    probs = F.softmax(logits.float(), dim=1)
    valid_weight = valid.float()
    # Per-class sums without a one-hot tensor (3x faster on a CPU): p_y summed by class y, and y's pixel count.
    true_class_probability = probs.gather(1, safe_target[:, None]).squeeze(1) * valid_weight
    intersection = torch.zeros(num_classes, device=logits.device).index_add(
        0, safe_target.flatten(), true_class_probability.flatten()
    )
    target_mass = torch.bincount(safe_target[valid], minlength=num_classes)[:num_classes].float()
    total = (probs * valid_weight[:, None]).sum(dim=(0, 2, 3)) + target_mass
    numerator = intersection if iou else 2.0 * intersection
    denominator = total - intersection if iou else total
    score = (numerator + smooth) / (denominator + smooth).clamp_min(1e-12)
    selected = target_mass > 0 if classes == "present" else torch.ones_like(target_mass, dtype=torch.bool)
    return _safe_divide(((1.0 - score) * selected).sum(), selected.sum().float())


def boundary_distance_fields(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Distance from every pixel to the boundary of each class mask: ``(N, K, H, W)`` float32.

    ``labels`` is ``(N, H, W)`` int with -1 where no class counts (ignored pixels). For a class
    mask ``m`` the field is EDT(m) + EDT(not m), the distance to the nearest pixel on the other
    side (Karimi & Salcudean 2019). Empty and full masks have no boundary: their field stays 0.
    Loops only over (image, class present) pairs; each cv2 call is a vectorised C routine.
    """
    fields = np.zeros((labels.shape[0], num_classes, *labels.shape[1:]), dtype=np.float32)
    for image_index, image_labels in enumerate(labels):
        for class_id in np.unique(image_labels):
            mask = image_labels == class_id
            if class_id < 0 or mask.all():
                continue
            inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            outside = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            fields[image_index, class_id] = inside + outside
    return fields


def hausdorff_dt_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int, alpha: float) -> torch.Tensor:
    """Mean over valid pixels and involved classes of ``(p - g)^2 * (d_p^alpha + d_g^alpha)``.

    ``d_p`` uses the argmax prediction; distances carry no gradient. Ignored pixels belong to no
    class in either mask (so the prediction there cannot move a boundary) and are left out of the
    mean. Classes in neither target nor prediction contribute exactly 0 and are not counted.
    """
    num_classes, target = logits.shape[1], target.long()
    valid, safe_target = _valid_and_safe_target(target, ignore_index)
    probs, one_hot = _probabilities_and_one_hot(logits, safe_target, valid)
    with torch.no_grad():
        predicted = torch.where(valid, logits.argmax(dim=1), torch.full_like(target, -1))
        labelled = torch.where(valid, target, torch.full_like(target, -1))
        distance_pred = boundary_distance_fields(predicted.cpu().numpy(), num_classes)
        distance_target = boundary_distance_fields(labelled.cpu().numpy(), num_classes)
        distance = torch.from_numpy(distance_pred**alpha + distance_target**alpha).to(logits.device)
        involved = torch.zeros(num_classes + 1, dtype=torch.bool, device=logits.device)
        involved[predicted.flatten() + 1] = True  # slot 0 collects the -1 (ignored) pixels
        involved[labelled.flatten() + 1] = True
        normaliser = (valid.sum() * involved[1:].sum()).float()
    return _safe_divide(((probs - one_hot) ** 2 * distance).sum(), normaliser)
