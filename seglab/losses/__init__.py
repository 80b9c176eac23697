"""Losses: pure loss maths (:mod:`~seglab.losses.functional`) and the ``nn.Module`` terms combined by
``build_criterion("ce+0.5*dice")`` (:mod:`~seglab.losses.criterion`)."""

from seglab.losses.criterion import LOSS_EXPLANATIONS, SegmentationCriterion, available_losses, build_criterion
