"""Per-pixel views of the training losses: where each loss puts its weight, class by class.

From a model's logits and the ground truth of a few images, :func:`loss_breakdown` computes the
per-pixel cross-entropy with and without class weights, the focal factor ``(1 - p_y)^gamma``, the
pixels DeepLab's top-k hard pixel mining keeps at a step of its schedule, and for each loss the
share of its total that every class contributes. That share, next to the class's share of the
pixels, is what makes the point of weighted CE, focal loss and mining visible: a class with 1 % of
the pixels may carry 1 % of plain CE but 20 % of mined CE.

Every per-pixel quantity comes from :mod:`seglab.losses.functional` and every loss value from the
same functions training uses, so what the page shows is what training optimises. Class weights
apply to every loss at once, as in training (``TrainConfig.class_weights``: CE, hard-pixel CE and
focal loss as its ``alpha``), and mining ranks the (weighted) losses of the whole batch together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from seglab.errors import ConfigError
from seglab.losses.functional import (
    as_class_weights,
    cross_entropy,
    focal_loss,
    focal_modulation,
    hard_pixel_cross_entropy,
    hard_pixel_mask,
    kept_fraction,
    per_pixel_loss,
)
from seglab.viz import confidence_map, overlay

__all__ = [
    "LossBreakdown",
    "mining_progress_sentence",
    "focal_picture",
    "heatmap_scale",
    "kept_pixels_picture",
    "loss_breakdown",
    "loss_picture",
    "mining_schedule",
]

VOID_COLOR = np.array([220, 220, 220], dtype=np.uint8)  # as viz's "ignored" category
KEPT_COLOR = np.array([230, 159, 0], dtype=np.uint8)  # Okabe-Ito orange, as viz's "wrong class"
PLAIN, WEIGHTED, FOCAL, MINING = "plain CE", "weighted CE", "focal", "top-k mining"  # series names


@dataclass(frozen=True, eq=False)
class LossBreakdown:
    """Per-pixel losses of a batch and where each loss's total comes from, class by class.

    Maps are ``(N, H, W)`` over the padded batch (padding is void); :meth:`image` crops one back
    to its original size. Series names (keys of the per-class dicts) are ``"plain CE"``,
    ``"weighted CE"`` (only when class weights are given), ``"focal"`` (when ``focal_gamma`` is
    given) and ``"top-k mining"`` (when ``top_k_percent_pixels`` is given); focal and mining
    include the class weights when given, as in training.
    """

    valid: np.ndarray  # (N, H, W) bool: labelled pixels (not void, not padding)
    cross_entropy: np.ndarray  # (N, H, W) float32 -log p_y, 0 at void
    per_pixel: np.ndarray  # (N, H, W) float32 w_y * -log p_y (= cross_entropy without weights)
    focal_factor: np.ndarray | None  # (N, H, W) float32 (1 - p_y)^gamma, 0 at void
    kept_mask: np.ndarray  # (N, H, W) bool: pixels mining keeps (every valid pixel without mining)
    kept_fraction: float  # share of valid pixels kept at this step
    valid_pixels: int
    kept_pixels: int
    per_class_pixels: np.ndarray  # (K,) int64 labelled pixels per class
    per_class_loss_share: dict[str, np.ndarray]  # series -> (K,) share of that loss's sum per class
    effective_pixels: dict[str, np.ndarray]  # series -> (K,) sum of each pixel's multiplier vs plain CE
    loss_values: dict[str, float]  # series -> the scalar the training loss would return
    class_weights: np.ndarray | None  # (K,) weights used, None = all 1
    focal_gamma: float | None
    sizes: list[tuple[int, int]] = field(default_factory=list)  # original (H, W) of each image

    @property
    def num_classes(self) -> int:
        return len(self.per_class_pixels)

    @property
    def pixel_share(self) -> np.ndarray:
        """(K,) share of the batch's labelled pixels per class."""
        return self.per_class_pixels / max(int(self.per_class_pixels.sum()), 1)

    @property
    def series(self) -> list[str]:
        return list(self.per_class_loss_share)

    def image(self, name: str, index: int) -> np.ndarray:
        """One image's map ``name`` ("per_pixel", "cross_entropy", "focal_factor", "kept_mask", "valid"), cropped."""
        height, width = self.sizes[index]
        values = getattr(self, name)
        if values is None:
            raise ConfigError(f"{name} was not computed: pass focal_gamma to loss_breakdown")
        return values[index, :height, :width]

    def share_series(self, class_names: Sequence[str]) -> tuple[list[str], dict[str, np.ndarray]]:
        """``(names of the classes present, {"pixels": pixel shares, series: loss shares})`` for a grouped bar chart."""
        present = np.flatnonzero(self.per_class_pixels)
        shares = {"pixels": self.pixel_share[present]} | {
            name: self.per_class_loss_share[name][present] for name in self.series
        }
        return [class_names[class_id] for class_id in present.tolist()], shares

    def rarest_class_sentence(self, class_names: Sequence[str]) -> str:
        """What the shares show: the class carrying most of plain CE, then the rarest class's part of each loss."""
        present = np.flatnonzero(self.per_class_pixels)
        if present.size == 0:
            return "No labelled pixels in these images."
        rarest = int(present[np.argmin(self.per_class_pixels[present])])
        plain = self.per_class_loss_share[PLAIN]
        heaviest = int(present[np.argmax(plain[present])])
        lead = (
            f"**{class_names[heaviest]}** carries the most plain cross-entropy: {plain[heaviest]:.1%} of it, "
            f"with {self.pixel_share[heaviest]:.1%} of the labelled pixels."
        )
        if heaviest == rarest:
            return lead + " It is also the rarest class in these images."
        shares = ", ".join(f"{self.per_class_loss_share[name][rarest]:.1%} of {name}" for name in self.series)
        return (
            f"{lead} {class_names[rarest]}, the rarest class in these images, has {self.pixel_share[rarest]:.1%} of "
            f"the pixels and carries {shares}."
        )

    def class_rows(self, class_names: Sequence[str]) -> list[dict[str, Any]]:
        """One row per class present in the batch: pixels, pixel share, and each loss's share."""
        rows = []
        for class_id in np.flatnonzero(self.per_class_pixels).tolist():
            row = {
                "class": class_names[class_id],
                "pixels": int(self.per_class_pixels[class_id]),
                "share of pixels": float(self.pixel_share[class_id]),
            }
            if self.class_weights is not None:
                row["class weight"] = float(self.class_weights[class_id])
            for name in self.series:
                row[f"share of {name}"] = float(self.per_class_loss_share[name][class_id])
            for name in self.series:
                row[f"effective px ({name})"] = float(self.effective_pixels[name][class_id])
            rows.append(row)
        return rows


def _as_tensor(values: Any, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.detach().to(dtype)
    # np.require copies read-only arrays (decoded masks): torch warns on non-writable memory.
    return torch.from_numpy(np.require(np.asarray(values), requirements=["C", "W"])).to(dtype)


def _stack(logits: Any, target: Any, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
    """Logits (N, K, H, W) and targets (N, H, W), padding images of different sizes with void.

    Padding with the ignore index is what training's pad_collate does: padded pixels count nowhere.
    """
    if isinstance(logits, (np.ndarray, torch.Tensor)) and np.ndim(logits) == 4:
        logits_tensor, target_tensor = _as_tensor(logits, torch.float32), _as_tensor(target, torch.int64)
        if (
            target_tensor.ndim != 3
            or target_tensor.shape[0] != logits_tensor.shape[0]
            or target_tensor.shape[1:] != logits_tensor.shape[2:]
        ):
            raise ConfigError(
                f"logits {tuple(logits_tensor.shape)} and target {tuple(target_tensor.shape)} do not match: "
                "expected (N, K, H, W) and (N, H, W)"
            )
        size = (target_tensor.shape[1], target_tensor.shape[2])
        return logits_tensor, target_tensor, [size] * target_tensor.shape[0]
    logits_list = [_as_tensor(item, torch.float32) for item in logits]
    target_list = [_as_tensor(item, torch.int64) for item in target]
    if not logits_list or len(logits_list) != len(target_list):
        raise ConfigError(
            f"need one target per logits map, got {len(logits_list)} logits and {len(target_list)} targets"
        )
    for item, mask in zip(logits_list, target_list):
        if item.ndim != 3 or mask.ndim != 2 or tuple(item.shape[1:]) != tuple(mask.shape):
            raise ConfigError(
                f"logits {tuple(item.shape)} and target {tuple(mask.shape)} do not match: expected (K, H, W) and (H, W)"
            )
    sizes = [(mask.shape[0], mask.shape[1]) for mask in target_list]
    height, width = max(size[0] for size in sizes), max(size[1] for size in sizes)
    stacked_logits = torch.zeros((len(sizes), logits_list[0].shape[0], height, width))
    stacked_target = torch.full((len(sizes), height, width), ignore_index, dtype=torch.int64)
    for index, (item, mask) in enumerate(zip(logits_list, target_list)):
        stacked_logits[index, :, : mask.shape[0], : mask.shape[1]] = item
        stacked_target[index, : mask.shape[0], : mask.shape[1]] = mask
    return stacked_logits, stacked_target, sizes


def _class_sums(target: np.ndarray, values: torch.Tensor, num_classes: int) -> np.ndarray:
    """(K,) sum of ``values`` (0 at void) over the pixels of each class: one weighted bincount."""
    sums = np.bincount(target.ravel(), weights=values.numpy().ravel().astype(np.float64), minlength=num_classes)
    return sums[:num_classes]


def _shares(sums: np.ndarray) -> np.ndarray:
    total = sums.sum()
    return sums / total if total > 0 else np.zeros_like(sums)


def loss_breakdown(
    logits: Any,
    target: Any,
    ignore_index: int,
    class_weights: Any = None,
    focal_gamma: float | None = None,
    top_k_percent_pixels: float | None = None,
    hard_example_mining_step: int = 0,
    step: int = 0,
) -> LossBreakdown:
    """Per-pixel losses and per-class loss shares of a batch under CE, weighted CE, focal and mining.

    Args:
        logits: (N, K, H, W) array/tensor, or a sequence of (K, H, W) maps of any sizes (padded).
        target: (N, H, W) class ids with ``ignore_index`` for void, or a sequence of (H, W) masks.
        ignore_index: void label (255 for VOC, 11 for CamVid).
        class_weights: (K,) weights applied to every loss (as in training), None = all 1.
        focal_gamma: focal-loss gamma; None leaves focal out.
        top_k_percent_pixels: DeepLab's final share of pixels mining keeps; None leaves mining out.
        hard_example_mining_step: steps over which the kept share falls from 1 to top-k (0 = at once).
        step: the training step at which to look at the schedule.
    """
    logits_tensor, target_tensor, sizes = _stack(logits, target, ignore_index)
    num_classes = logits_tensor.shape[1]
    weights = as_class_weights(class_weights, num_classes)
    if focal_gamma is not None and focal_gamma < 0:
        raise ConfigError(f"focal gamma must be >= 0, got {focal_gamma}")
    if top_k_percent_pixels is not None and not 0.0 < top_k_percent_pixels <= 1.0:
        raise ConfigError(f"top_k_percent_pixels must be in (0, 1], got {top_k_percent_pixels}")
    if hard_example_mining_step < 0 or step < 0:
        raise ConfigError(f"hard_example_mining_step and step must be >= 0, got {hard_example_mining_step} and {step}")

    valid = target_tensor != ignore_index
    plain = per_pixel_loss(logits_tensor, target_tensor, ignore_index)
    safe_target = torch.where(valid, target_tensor, 0)
    # w_y per pixel, 0 at void: per_pixel_loss(..., weights) is exactly plain * pixel_weights.
    pixel_weights = weights[safe_target] * valid if weights is not None else valid.float()
    weighted = plain * pixel_weights if weights is not None else plain
    contributions = {PLAIN: (plain, valid.float())}
    values = {PLAIN: float(cross_entropy(logits_tensor, target_tensor, ignore_index))}
    if weights is not None:
        contributions[WEIGHTED] = (weighted, pixel_weights)
        values[WEIGHTED] = float(cross_entropy(logits_tensor, target_tensor, ignore_index, weights))
    factor = None
    if focal_gamma is not None:
        factor = focal_modulation(logits_tensor, target_tensor, focal_gamma, ignore_index)
        contributions[FOCAL] = (factor * weighted, factor * pixel_weights)
        values[FOCAL] = float(focal_loss(logits_tensor, target_tensor, ignore_index, focal_gamma, weights))
    fraction, kept = 1.0, valid
    if top_k_percent_pixels is not None:
        fraction = kept_fraction(step, top_k_percent_pixels, hard_example_mining_step)
        # Mining ranks the weighted losses of the whole batch, as HardPixelCrossEntropy does.
        kept = hard_pixel_mask(weighted, fraction, valid)
        contributions[MINING] = (weighted * kept, pixel_weights * kept)
        values[MINING] = float(hard_pixel_cross_entropy(logits_tensor, target_tensor, ignore_index, fraction, weights))
    class_ids = safe_target.numpy()

    return LossBreakdown(
        valid=valid.numpy(),
        cross_entropy=plain.numpy(),
        per_pixel=weighted.numpy(),
        focal_factor=None if factor is None else factor.numpy(),
        kept_mask=kept.numpy(),
        kept_fraction=float(fraction),
        valid_pixels=int(valid.sum()),
        kept_pixels=int(kept.sum()),
        per_class_pixels=np.bincount(target_tensor[valid].numpy(), minlength=num_classes)[:num_classes].astype(
            np.int64
        ),
        per_class_loss_share={
            name: _shares(_class_sums(class_ids, loss, num_classes)) for name, (loss, _) in contributions.items()
        },
        effective_pixels={
            name: _class_sums(class_ids, multiplier, num_classes) for name, (_, multiplier) in contributions.items()
        },
        loss_values=values,
        class_weights=None if weights is None else weights.numpy(),
        focal_gamma=focal_gamma,
        sizes=sizes,
    )


def mining_progress_sentence(step: int, top_k_percent_pixels: float, hard_example_mining_step: int) -> str:
    """Why "kept by mining" differs from the top-k setting: where ``step`` sits on the ramp."""
    kept = kept_fraction(step, top_k_percent_pixels, hard_example_mining_step)
    if hard_example_mining_step == 0 or step >= hard_example_mining_step:
        hardest = f"the hardest {top_k_percent_pixels:.0%} of the labelled pixels"
        return f"At step {step:,} mining keeps {hardest} (end of the ramp)."
    ramp = step / hard_example_mining_step
    return (
        f"At step {step:,} of a {hard_example_mining_step:,}-step ramp ({ramp:.0%} of the way), mining keeps "
        f"{kept:.1%} of the labelled pixels: it goes from all of them at step 0 to the hardest "
        f"{top_k_percent_pixels:.0%} at step {hard_example_mining_step:,}."
    )


def mining_schedule(
    top_k_percent_pixels: float, hard_example_mining_step: int, last_step: int, points: int = 101
) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, kept fractions)`` of DeepLab's mining schedule from step 0 to ``last_step``, for a line plot."""
    steps = np.unique(np.linspace(0, max(last_step, 1), points).round().astype(np.int64))
    return steps, np.array([kept_fraction(int(step), top_k_percent_pixels, hard_example_mining_step) for step in steps])


# -- pictures ------------------------------------------------------------------------------------------
def heatmap_scale(*maps: np.ndarray, valid: np.ndarray | None = None, percentile: float = 99.0) -> float:
    """A shared top of the colour scale for loss maps: the ``percentile`` of their valid values.

    A percentile, not the max, so a handful of extreme pixels do not turn everything else dark.
    """
    values = [np.asarray(item)[valid] if valid is not None else np.asarray(item).ravel() for item in maps]
    joined = np.concatenate(values) if values else np.zeros(0)
    return max(float(np.percentile(joined, percentile)), 1e-6) if joined.size else 1.0


def _paint_void(picture: np.ndarray, valid: np.ndarray) -> np.ndarray:
    picture = picture.copy()
    picture[~valid] = VOID_COLOR
    return picture


def loss_picture(loss: np.ndarray, valid: np.ndarray, scale: float) -> np.ndarray:
    """Viridis picture of an (H, W) loss map: yellow = loss >= ``scale``, dark = 0, void light grey."""
    return _paint_void(confidence_map(np.asarray(loss, dtype=np.float32) / max(scale, 1e-12)), valid)


def focal_picture(factor: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Viridis picture of the focal factor (1 - p_y)^gamma: yellow = counts fully, dark = muted."""
    return _paint_void(confidence_map(factor), valid)


def kept_pixels_picture(image: np.ndarray, kept: np.ndarray, valid: np.ndarray, alpha: float = 0.7) -> np.ndarray:
    """The image dimmed, with the pixels mining keeps in orange and void in light grey."""
    image = np.asarray(image)
    if image.shape[:2] != kept.shape or kept.shape != valid.shape:
        raise ConfigError(
            f"image {image.shape[:2]}, kept mask {kept.shape} and valid mask {valid.shape} must have the same size"
        )
    dimmed = (image.astype(np.float32) * 0.35).astype(np.uint8)
    blended = (image.astype(np.float32) * (1 - alpha) + KEPT_COLOR * alpha).astype(np.uint8)
    return _paint_void(np.where(kept[..., None], blended, dimmed), valid)


def schedule_end(hard_example_mining_step: int) -> int:
    """The last training step a mining-schedule view shows: twice the ramp, at least 100."""
    return max(2 * hard_example_mining_step, 100)


def image_panels(
    breakdown: LossBreakdown,
    index: int,
    image: np.ndarray,
    mask: np.ndarray,
    label_map: Any,
    *,
    sample_id: str,
    scale: float,
    weighting: str | None,
    gamma: float,
    step: int,
) -> list[tuple[np.ndarray, str]]:
    """Image ``index`` of the batch as (picture, caption) pairs, left to right: its ground truth, CE per pixel, CE
    times the class weights (only when ``weighting``, their label, is given), the focal factor and the pixels kept
    by mining at ``step``. Loss maps share the colour ``scale``."""
    valid = breakdown.image("valid", index)
    panels = [
        (overlay(image, mask, label_map), f"{sample_id}: ground truth"),
        (loss_picture(breakdown.image("cross_entropy", index), valid, scale), "CE per pixel (no weights)"),
    ]
    if weighting is not None:
        panels.append((loss_picture(breakdown.image("per_pixel", index), valid, scale), f"CE × {weighting} weight"))
    return panels + [
        (focal_picture(breakdown.image("focal_factor", index), valid), f"focal factor, γ = {gamma:g}"),
        (kept_pixels_picture(image, breakdown.image("kept_mask", index), valid), f"kept by mining at step {step}"),
    ]
