"""Telling a diverging run from a noisy one: non-finite weights, and a loss that explodes.

A NaN loss is the obvious sign, but a run can diverge without one: with SGD the weights overflow
to infinity a step before the loss does, and with AdamW at an absurd learning rate the loss can
sit at 1e14 with every weight finite while every pixel is predicted as one class. The trainer
checks both after every step (:class:`DivergenceGuard`), and :func:`seglab.engine.checkpoint.save_checkpoint`
refuses to write weights that :func:`non_finite_tensors` flags, so the last good checkpoint survives.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch

from seglab.errors import TrainingDivergedError

# A loss more than EXPLOSION_FACTOR times the lowest loss the run has reached has diverged, provided
# it is also above EXPLOSION_FACTOR * LOSS_FLOOR: a well-fit loss of 1e-4 may jump to 0.5 on a hard
# batch, but no segmentation loss reaches 1000 nats per pixel while learning. The lowest loss, not a
# recent median: a diverging run's median climbs with it (SGD at lr 50 went 2.3 -> 812 -> 68100 -> 240000).
EXPLOSION_FACTOR = 1e3
LOSS_FLOOR = 1.0


def non_finite_tensors(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors that hold a NaN or an infinity (e.g. a checkpoint's model_state)."""
    named = [(name, tensor) for name, tensor in tensors.items() if tensor.is_floating_point()]
    if not named or all_finite(tensor for _, tensor in named):
        return []
    return [name for name, tensor in named if not bool(torch.isfinite(tensor).all())]


def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """True when no floating-point tensor holds NaN or inf.

    One sum per tensor (NaN or inf anywhere makes it non-finite) and one sync: about a tenth of a
    forward pass over the weights. A sum of huge finite values can overflow, so a non-finite sum is
    confirmed element-wise before it counts.
    """
    floating = [tensor.detach() for tensor in tensors if tensor.is_floating_point()]
    if not floating:
        return True
    sums = torch.stack([tensor.sum(dtype=torch.float32) for tensor in floating])
    if bool(torch.isfinite(sums).all()):
        return True
    return all(bool(torch.isfinite(tensor).all()) for tensor in floating)


class DivergenceGuard:
    """Remembers the lowest loss of a run; says why a new loss or the current weights mean divergence."""

    def __init__(self, factor: float = EXPLOSION_FACTOR, floor: float = LOSS_FLOOR):
        self.factor = factor
        self.floor = floor
        self.lowest: float | None = None
        self.steps = 0

    def loss_problem(self, loss: float) -> str | None:
        """Why ``loss`` shows divergence (NaN, inf, or orders of magnitude above the run's lowest), else None."""
        if not math.isfinite(loss):
            return f"loss is {loss}"
        if self.lowest is not None and loss > self.factor * max(self.lowest, self.floor):
            return (
                f"loss exploded to {loss:.3g}, more than {self.factor:g}x the lowest loss of the previous "
                f"{self.steps} step(s) ({self.lowest:.3g})"
            )
        self.lowest = loss if self.lowest is None else min(self.lowest, loss)
        self.steps += 1
        return None

    @staticmethod
    def weights_problem(model: torch.nn.Module) -> str | None:
        """Why the model's weights show divergence (NaN or inf in a parameter or buffer), else None."""
        tensors = [*model.parameters(), *model.buffers()]
        if all_finite(tensors):
            return None
        state = {name: tensor for name, tensor in [*model.named_parameters(), *model.named_buffers()]}
        bad = non_finite_tensors(state)
        return f"{len(bad)} weight tensor(s) became NaN or infinite (e.g. {bad[0]})" if bad else None


def diverged_error(
    problem: str, *, step: int, epoch: int, saved_steps: Mapping[str, int] | None
) -> TrainingDivergedError:
    """The error that ends a diverged run: what happened, where, what to do, and which checkpoints remain.

    ``saved_steps`` maps "best"/"last" to the step of the checkpoint on disk; None for a run that keeps none.
    """
    if saved_steps is None:
        kept = ""
    elif saved_steps:
        kept = " and ".join(f"{which}.pt (step {step})" for which, step in sorted(saved_steps.items()))
        kept = f" The last good checkpoints are kept: {kept}."
    else:
        kept = " No checkpoint was written: it diverged before the first evaluation."
    return TrainingDivergedError(
        f"{problem} at step {step} (epoch {epoch}): the training diverged; lower --lr or enable --grad-clip.{kept}"
    )
