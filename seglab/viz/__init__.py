"""Pictures and figures for debugging segmentation: colourised masks, overlays, outlines, error
maps, model-vs-model disagreement, confidence maps, Plotly figures and CLI composites.

Everything here is a pure function: numpy arrays in, ``uint8`` RGB arrays or Plotly figures out.
Masks are class-index arrays ``(H, W)``; images are ``uint8 (H, W, 3)`` RGB. The ignore index is
always passed in (it is not always 255: CamVid uses 11).

One module per kind of picture: :mod:`~seglab.viz.colors` (class colours, blending, confidence),
:mod:`~seglab.viz.masks` (overlays, boundaries, outlines), :mod:`~seglab.viz.maps` (error and
disagreement maps), :mod:`~seglab.viz.composites` (legends, grids for the CLI),
:mod:`~seglab.viz.confusion_figure` and :mod:`~seglab.viz.figures` (Plotly, imported inside each
function), :mod:`~seglab.viz.diagnostics` (the diagnostics' figures; import it by name). The names
below are the package's public surface: ``from seglab.viz import overlay``.
"""

from seglab.viz.colors import colorize_mask, confidence_map, to_hex
from seglab.viz.composites import class_legend, legend_image, make_grid, side_by_side
from seglab.viz.confusion_figure import (
    CELL_TEXT_WIDTH,
    CONFUSION_AXES_PX,
    MAX_CONFUSION_PX,
    NORMALIZATIONS,
    clickable_confusion_figure,
    confusion_geometry,
    confusion_matrix_figure,
)
from seglab.viz.figures import (
    MAX_HOVER_SIDE,
    class_distribution_figure,
    definitions_figure,
    image_figure,
    line_figure,
    lr_schedule_figure,
    object_size_figure,
    per_class_bar_figure,
    value_axis,
)
from seglab.viz.maps import (
    BOTH_RIGHT,
    BOTH_WRONG_DIFFERENT,
    BOTH_WRONG_SAME,
    BROKEN_BY_B,
    CORRECT,
    DISAGREEMENT_CATEGORIES,
    DISAGREEMENT_IGNORED,
    ERROR_CATEGORIES,
    FALSE_ALARM,
    FIXED_BY_B,
    IGNORED,
    MISSED,
    WRONG_CLASS,
    Category,
    disagreement_legend,
    disagreement_map,
    disagreement_rgb,
    error_categories,
    error_legend,
    error_map,
)
from seglab.viz.masks import boundary_mask, draw_outlines, overlay

__all__ = [
    "BOTH_RIGHT",
    "BOTH_WRONG_DIFFERENT",
    "BOTH_WRONG_SAME",
    "BROKEN_BY_B",
    "CORRECT",
    "Category",
    "DISAGREEMENT_CATEGORIES",
    "DISAGREEMENT_IGNORED",
    "ERROR_CATEGORIES",
    "FALSE_ALARM",
    "FIXED_BY_B",
    "IGNORED",
    "MISSED",
    "NORMALIZATIONS",
    "WRONG_CLASS",
    "boundary_mask",
    "class_distribution_figure",
    "class_legend",
    "clickable_confusion_figure",
    "colorize_mask",
    "confidence_map",
    "confusion_geometry",
    "confusion_matrix_figure",
    "definitions_figure",
    "disagreement_legend",
    "disagreement_map",
    "disagreement_rgb",
    "draw_outlines",
    "error_categories",
    "error_legend",
    "error_map",
    "image_figure",
    "legend_image",
    "line_figure",
    "lr_schedule_figure",
    "make_grid",
    "object_size_figure",
    "overlay",
    "per_class_bar_figure",
    "side_by_side",
    "to_hex",
    "value_axis",
]
