"""Segmentation losses: thin ``nn.Module`` terms, a criterion that combines them, and a builder.

The math lives in :mod:`seglab.losses.functional`; the per-pixel views a loss inspector needs
(``per_pixel_loss``, ``focal_modulation``, ``hard_pixel_mask``, ``kept_fraction``) are
re-exported here.

Every term takes logits ``(N, K, H, W)`` and an int64 target ``(N, H, W)`` and returns a scalar.
Pixels equal to ``ignore_index`` (255 for VOC, 11 for CamVid) never contribute to the value or the
gradient, a batch may lack any class, and an all-ignore batch gives ``0`` with a zero gradient
instead of NaN. Terms compute in float32 even under autocast.

:class:`SegmentationCriterion` sums weighted terms, adds the auxiliary head (deep supervision) and
handles multi-scale logits by resizing labels with NEAREST; :func:`build_criterion` builds one from
a spec like ``"ce+0.5*dice"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from seglab.errors import ConfigError
from seglab.losses.functional import (
    ClassWeights,
    as_class_weights,
    check_logits_and_target,
    check_target_values,
    cross_entropy,
    focal_loss,
    focal_modulation,
    hard_pixel_cross_entropy,
    hard_pixel_mask,
    hausdorff_dt_loss,
    kept_fraction,
    per_pixel_loss,
    soft_overlap_loss,
)

__all__ = [
    "LOSS_EXPLANATIONS",
    "BoundaryLoss",
    "CrossEntropyLoss",
    "DiceLoss",
    "FocalLoss",
    "HardPixelCrossEntropy",
    "HausdorffDTLoss",
    "SegmentationCriterion",
    "SoftIoULoss",
    "available_losses",
    "build_criterion",
    "focal_modulation",
    "hard_pixel_mask",
    "kept_fraction",
    "per_pixel_loss",
]

LOSS_EXPLANATIONS: dict[str, str] = {
    "ce": "Cross-entropy: makes every labelled pixel's correct class more likely; with class "
    "weights (e.g. median frequency) mistakes on rare classes cost more, so they are not ignored.",
    "hard_ce": "Hard-pixel cross-entropy (DeepLab mining, 'OHEM'): learns only from the worst "
    "predicted pixels, so easy sky/road pixels stop dominating; helps thin and rare objects.",
    "focal": "Focal loss: cross-entropy that fades out pixels the model already gets right "
    "(by (1-p)^gamma), so training time goes to hard, confusing pixels.",
    "dice": "Soft Dice: rewards overlap between predicted and true regions per class, so a small "
    "class counts as much as a large one; helps heavy class imbalance, often added to ce.",
    "iou": "Soft IoU (Jaccard): like Dice but directly optimises a smooth version of the IoU "
    "metric you report; helps class imbalance, usually combined with ce.",
    "hd": "Hausdorff distance-transform loss: penalises mistakes more the farther they are from "
    "the true boundary, sharpening shapes; values grow with image size, so weight it down (ce+0.01*hd).",
}

# Accepted spellings in a spec -> canonical name (the key in LOSS_EXPLANATIONS and the terms dict).
_ALIASES: dict[str, str] = {
    "ce": "ce",
    "cross_entropy": "ce",
    "hard_ce": "hard_ce",
    "ohem": "hard_ce",
    "ohem_ce": "hard_ce",
    "focal": "focal",
    "dice": "dice",
    "iou": "iou",
    "soft_iou": "iou",
    "jaccard": "iou",
    "hd": "hd",
    "hausdorff": "hd",
}
_OVERLAP_CLASS_MODES = ("present", "all")


def available_losses() -> list[str]:
    """Canonical loss names accepted by :func:`build_criterion`, in display order."""
    return list(LOSS_EXPLANATIONS)


# --------------------------------------------------------------------------------------------
# Loss terms
# --------------------------------------------------------------------------------------------


class CrossEntropyLoss(nn.Module):
    """Weighted mean CE like ``F.cross_entropy``: ``sum(w_y * nll) / sum(w_y)`` over valid pixels."""

    class_weights: torch.Tensor | None  # a buffer: follows the module's device

    def __init__(self, ignore_index: int = 255, class_weights: ClassWeights | None = None):
        super().__init__()
        self.ignore_index = ignore_index
        self.register_buffer("class_weights", as_class_weights(class_weights), persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_logits_and_target(logits, target)
        return cross_entropy(logits, target, self.ignore_index, self.class_weights)


class HardPixelCrossEntropy(nn.Module):
    """DeepLab's hard pixel mining: CE over the hardest ``kept_fraction(step)`` of valid pixels.

    loss = sum(kept weighted losses) / count(kept losses != 0); see
    :func:`seglab.losses.functional.hard_pixel_cross_entropy` for why k counts valid pixels only.
    """

    class_weights: torch.Tensor | None  # a buffer: follows the module's device

    def __init__(
        self,
        ignore_index: int = 255,
        top_k_percent_pixels: float = 0.25,
        hard_example_mining_step: int = 0,
        class_weights: ClassWeights | None = None,
    ):
        super().__init__()
        if not 0.0 < top_k_percent_pixels <= 1.0:
            raise ConfigError(f"top_k_percent_pixels must be in (0, 1], got {top_k_percent_pixels}")
        if hard_example_mining_step < 0:
            raise ConfigError(f"hard_example_mining_step must be >= 0, got {hard_example_mining_step}")
        self.ignore_index = ignore_index
        self.top_k_percent_pixels = top_k_percent_pixels
        self.hard_example_mining_step = hard_example_mining_step
        self.step = 0
        self.register_buffer("class_weights", as_class_weights(class_weights), persistent=False)

    def set_step(self, step: int) -> None:
        """Set the training step that drives the mining schedule."""
        self.step = int(step)

    def kept_fraction(self, step: int | None = None) -> float:
        """Fraction of valid pixels kept at ``step`` (default: the current step)."""
        step = self.step if step is None else step
        return kept_fraction(step, self.top_k_percent_pixels, self.hard_example_mining_step)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_logits_and_target(logits, target)
        fraction = self.kept_fraction()
        return hard_pixel_cross_entropy(logits, target, self.ignore_index, fraction, self.class_weights)


class FocalLoss(nn.Module):
    """Focal loss ``-alpha_y (1 - p_y)^gamma log p_y`` normalised by ``sum(alpha_y)``.

    The normaliser matches weighted CE, so ``gamma=0`` is exactly :class:`CrossEntropyLoss` with
    ``class_weights=alpha`` (per-class weights; None = 1 for every class).
    """

    alpha: torch.Tensor | None  # a buffer: follows the module's device

    def __init__(self, gamma: float = 2.0, alpha: ClassWeights | None = None, ignore_index: int = 255):
        super().__init__()
        if gamma < 0:
            raise ConfigError(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = gamma
        self.ignore_index = ignore_index
        self.register_buffer("alpha", as_class_weights(alpha), persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_logits_and_target(logits, target)
        return focal_loss(logits, target, self.ignore_index, self.gamma, self.alpha)


class DiceLoss(nn.Module):
    """Soft Dice ``1 - mean_c (2|P∩G| + s) / (|P| + |G| + s)`` on softmax probabilities.

    Sums run over the whole batch; ``classes="present"`` averages over classes present in the
    batch target, ``"all"`` over all K (see :func:`seglab.losses.functional.soft_overlap_loss`).
    """

    uses_iou = False

    def __init__(self, ignore_index: int = 255, smooth: float = 1.0, classes: str = "present"):
        super().__init__()
        if classes not in _OVERLAP_CLASS_MODES:
            raise ConfigError(f"classes must be one of {_OVERLAP_CLASS_MODES}, got {classes!r}")
        if smooth < 0:
            raise ConfigError(f"smooth must be >= 0, got {smooth}")
        self.ignore_index, self.smooth, self.classes = ignore_index, smooth, classes

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_logits_and_target(logits, target)
        return soft_overlap_loss(logits, target, self.ignore_index, self.smooth, self.classes, self.uses_iou)


class SoftIoULoss(DiceLoss):
    """Soft IoU (Jaccard) ``1 - mean_c (|P∩G| + s) / (|P| + |G| - |P∩G| + s)``; classes as Dice."""

    uses_iou = True


class HausdorffDTLoss(nn.Module):
    """Hausdorff-distance loss via distance transforms (Karimi & Salcudean 2019).

    ``mean((p - g)^2 * (d_p^alpha + d_g^alpha))``: errors far from the true or predicted boundary
    cost more. Distances come from cv2 on the CPU (no gradient); values grow with image size.
    """

    def __init__(self, ignore_index: int = 255, alpha: float = 2.0):
        super().__init__()
        if alpha <= 0:
            raise ConfigError(f"Hausdorff alpha must be > 0, got {alpha}")
        self.ignore_index, self.alpha = ignore_index, alpha

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_logits_and_target(logits, target)
        return hausdorff_dt_loss(logits, target, self.ignore_index, self.alpha)


BoundaryLoss = HausdorffDTLoss


# --------------------------------------------------------------------------------------------
# Criterion: weighted terms + deep supervision + multi-scale
# --------------------------------------------------------------------------------------------

LogitsOutput = torch.Tensor | Sequence[torch.Tensor]


def _resize_target(target: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of labels: ids are never interpolated, so ignore stays ignore."""
    if tuple(target.shape[1:]) == tuple(size):
        return target
    resized = F.interpolate(target[:, None].float(), size=size, mode="nearest")
    return resized[:, 0].long()


class SegmentationCriterion(nn.Module):
    """Weighted sum of loss terms on the main output plus ``aux_weight`` times the same on ``aux``.

    Called as ``criterion(outputs, target) -> (total, terms)``. ``outputs`` is the model's dict
    ``{"out": logits, "aux": logits (optional)}``, or logits, or a list of logits (multi-scale: as
    in DeepLab, each scale's loss is added, labels resized with NEAREST to its size). ``terms``
    holds floats for logging: each term's unweighted value on the main output (summed over scales),
    ``"aux"`` (the weighted terms on the aux output before ``aux_weight``; 0.0 without aux) and
    ``"total"``, so ``total = sum(weight * terms[name]) + aux_weight * terms["aux"]``.
    """

    def __init__(
        self,
        terms: list[tuple[float, nn.Module, str]],
        aux_weight: float = 0.4,
        ignore_index: int | None = None,
    ):
        super().__init__()
        names = [name for _, _, name in terms]
        if not terms or len(set(names)) != len(names) or {"aux", "total"} & set(names):
            raise ConfigError(f"loss terms need unique names other than 'aux'/'total', got {names}")
        if aux_weight < 0:
            raise ConfigError(f"aux_weight must be >= 0, got {aux_weight}")
        self.weights = [float(weight) for weight, _, _ in terms]
        self.names = names
        self.losses = nn.ModuleList(module for _, module, _ in terms)
        self.aux_weight = aux_weight
        if ignore_index is None:
            found = {cast(int, module.ignore_index) for module in self.losses if hasattr(module, "ignore_index")}
            ignore_index = found.pop() if len(found) == 1 else None
        self.ignore_index = ignore_index

    def set_step(self, step: int) -> None:
        """Forward the training step to terms with a schedule (hard pixel mining)."""
        for module in self.losses:
            if hasattr(module, "set_step"):
                cast(Any, module).set_step(step)

    def _term_values(self, logits: LogitsOutput, target: torch.Tensor) -> list[torch.Tensor]:
        scales = [logits] if isinstance(logits, torch.Tensor) else list(logits)
        values: list[torch.Tensor] = []
        for logits_at_scale in scales:
            scaled_target = _resize_target(target, (logits_at_scale.shape[-2], logits_at_scale.shape[-1]))
            scale_values = [loss(logits_at_scale, scaled_target) for loss in self.losses]
            values = [a + b for a, b in zip(values, scale_values)] if values else scale_values
        return values

    def forward(
        self, outputs: Mapping[str, LogitsOutput] | LogitsOutput, target: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        if not isinstance(outputs, Mapping):
            outputs = {"out": outputs}
        main = outputs["out"]
        first = main if isinstance(main, torch.Tensor) else main[0]
        if self.ignore_index is not None:
            check_target_values(target, first.shape[1], self.ignore_index)
        values = self._term_values(main, target)
        total = _weighted_sum(self.weights, values)
        aux = torch.zeros((), device=first.device)
        if outputs.get("aux") is not None:
            aux_values = self._term_values(outputs["aux"], target)
            aux = _weighted_sum(self.weights, aux_values)
            total = total + self.aux_weight * aux
        logged = torch.stack([value.detach() for value in [*values, aux, total]]).tolist()  # one sync
        return total, dict(zip([*self.names, "aux", "total"], logged))


def _weighted_sum(weights: Sequence[float], values: Sequence[torch.Tensor]) -> torch.Tensor:
    """``sum(w * v)`` over the loss terms, as a tensor (the builtin ``sum`` starts from the int 0)."""
    return cast(torch.Tensor, sum(weight * value for weight, value in zip(weights, values)))


def _parse_spec(spec: str) -> list[tuple[float, str]]:
    """``"ce+0.5*dice"`` -> ``[(1.0, "ce"), (0.5, "dice")]`` with canonical names."""
    term_pattern = re.compile(r"^(?:(?P<weight>[0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*\*\s*)?(?P<name>[a-z_]+)$")
    valid_names = ", ".join(sorted(_ALIASES))
    parsed: list[tuple[float, str]] = []
    for part in spec.lower().split("+"):
        match = term_pattern.match(part.strip())
        if match is None:
            raise ConfigError(
                f"cannot parse loss term {part.strip()!r} in {spec!r}; write terms like "
                f"'ce+0.5*dice' using the names: {valid_names}"
            )
        name = match["name"]
        if name not in _ALIASES:
            raise ConfigError(f"unknown loss {name!r} in {spec!r}; valid names: {valid_names}")
        if _ALIASES[name] in {seen for _, seen in parsed}:
            raise ConfigError(
                f"loss {_ALIASES[name]!r} appears twice in {spec!r}; use one term with a weight, e.g. '2*ce'"
            )
        parsed.append((float(match["weight"] or 1.0), _ALIASES[name]))
    return parsed


def build_criterion(
    spec: str,
    *,
    num_classes: int,
    ignore_index: int,
    class_weights: ClassWeights | None = None,
    top_k_percent_pixels: float = 0.25,
    hard_example_mining_step: int = 0,
    focal_gamma: float = 2.0,
    dice_smooth: float = 1.0,
    dice_classes: str = "present",
    hd_alpha: float = 2.0,
    aux_weight: float = 0.4,
) -> SegmentationCriterion:
    """Build a criterion from a spec like ``"ce"``, ``"ce+0.5*dice"``, ``"ohem"``, ``"focal+iou"``.

    Names (aliases in brackets): ce [cross_entropy], hard_ce [ohem, ohem_ce], focal, dice,
    iou [soft_iou, jaccard], hd [hausdorff]. ``class_weights`` apply to ce, hard_ce and focal
    (as alpha). Raises ConfigError for unknown names, malformed terms or duplicates.
    """
    weights = as_class_weights(class_weights, num_classes)
    terms: list[tuple[float, nn.Module, str]] = []
    for weight, name in _parse_spec(spec):
        if name == "ce":
            module: nn.Module = CrossEntropyLoss(ignore_index, weights)
        elif name == "hard_ce":
            module = HardPixelCrossEntropy(ignore_index, top_k_percent_pixels, hard_example_mining_step, weights)
        elif name == "focal":
            module = FocalLoss(focal_gamma, weights, ignore_index)
        elif name == "dice":
            module = DiceLoss(ignore_index, dice_smooth, dice_classes)
        elif name == "iou":
            module = SoftIoULoss(ignore_index, dice_smooth, dice_classes)
        else:
            module = HausdorffDTLoss(ignore_index, hd_alpha)
        terms.append((weight, module, name))
    return SegmentationCriterion(terms, aux_weight=aux_weight, ignore_index=ignore_index)
