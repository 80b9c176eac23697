"""Label-quality hints: objects whose given label a trained model confidently disagrees with.

The method is confident learning (Northcutt, Jiang and Chuang, "Confident Learning: Estimating
Uncertainty in Dataset Labels", JAIR 2021; the idea behind cleanlab's label-quality scores),
applied per pixel and aggregated per labelled object, with numpy and OpenCV only:

1. Per pixel, the *self-confidence* is the model's probability of the given label, ``p(label)``.
   Void pixels have none and never count anywhere.
2. Per class ``j``, the *confident threshold* ``t_j`` is the mean self-confidence of the pixels
   labelled ``j`` over the split (at least 0.5). A pixel is *confidently* class ``j`` when
   ``p(j) >= t_j`` (the most probable such class wins); it is *suspicious* when that class is not
   its label.
3. Per object (a connected component of one class in the given mask), the score is the soft IoU
   between the object and the model's probability map of its class, counted over the object and
   a band of ``band`` px around it: ``sum_object p(c) / (|object| + sum_band p(c))``. A wrong
   class drives the numerator to ~0, a dilated outline inflates ``|object|``, an eroded one puts
   probability mass in the band: all three lower the score (1 = the model agrees everywhere).
4. Per image, the score is that of its worst object: one label error makes an image worth a look.

Low scores are *candidates*: a model also disagrees with correct labels of objects it cannot
segment (tiny, low contrast), so rankings are for a human to review, not to auto-correct labels.

The parts: :mod:`~seglab.analysis.label_quality.scores` (pixels and objects),
:mod:`~seglab.analysis.label_quality.dataset` (a whole split), :mod:`~seglab.analysis.label_quality.pictures`,
:mod:`~seglab.analysis.label_quality.validation` (Shapes label noise) and :mod:`~seglab.analysis.label_quality.cache`.
"""

from seglab.analysis.label_quality.dataset import LabelQualityReport, LabelScorer, score_dataset
from seglab.analysis.label_quality.pictures import (
    HIGHLIGHT_COLOR,
    place_labels,
    self_confidence_picture,
    suspicion_picture,
)
from seglab.analysis.label_quality.scores import (
    DEFAULT_BAND,
    DEFAULT_MIN_PIXELS,
    ImageLabelQuality,
    ObjectQuality,
    PixelQuality,
    class_thresholds,
    label_objects,
    pixel_quality,
    score_image,
    self_confidence,
    self_confidence_totals,
)
from seglab.analysis.label_quality.validation import ShapesValidation, validate_on_shapes

__all__ = [
    "DEFAULT_BAND",
    "DEFAULT_MIN_PIXELS",
    "ImageLabelQuality",
    "LabelQualityReport",
    "LabelScorer",
    "ObjectQuality",
    "PixelQuality",
    "ShapesValidation",
    "class_thresholds",
    "label_objects",
    "pixel_quality",
    "place_labels",
    "score_dataset",
    "score_image",
    "self_confidence",
    "self_confidence_picture",
    "self_confidence_totals",
    "suspicion_picture",
    "validate_on_shapes",
]
