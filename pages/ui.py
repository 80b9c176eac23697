"""What a page needs from the app, in one import: ``from pages import ui``.

The helpers live in small modules by concern: :mod:`pages.state` (session and URL state),
:mod:`pages.loaders` (cached loaders shared by every session), :mod:`pages.widgets` (the sidebar, the
error guard, the "no checkpoint yet" stop, the sample picker), :mod:`pages.cell_gallery` (confusion cell
-> images) and :mod:`pages.navigation` (the page list and deep links).
"""

from __future__ import annotations

from pages.cell_gallery import (
    REGION_LABELS,
    cell_gallery_view,
    clicked_cell,
    largest_confusion,
    last_clicked_chart,
)
from pages.loaders import (
    abilities,
    best_fitting,
    cell_gallery,
    checkpoint_and_model,
    checkpoint_options,
    dataset,
    diagnostics,
    evaluation,
    image_probabilities,
    label_quality,
    loss_inputs,
    model_options,
    missed_objects,
    pixel_diff,
    registered_sources,
    shapes_validation,
    source_report,
    spec_key,
    stats,
    thumbnails,
    upload_prediction,
)
from pages.navigation import start_page
from pages.state import (
    CHECKPOINT_KEY,
    PROJECT_ROOT,
    SAMPLE_KEY,
    SPEC_KEY,
    SPLIT_KEY,
    allowed,
    check_form_spec,
    client_is_local,
    current_checkpoint,
    current_sample,
    current_spec,
    current_split,
    data_root,
    keep_allowed,
    runs_dir,
    set_sample,
    set_spec,
    source_roots,
)
from pages.widgets import (
    METRIC_DEFINITION,
    choose_sample,
    guard,
    require_checkpoint,
    require_evaluation,
    require_probabilities,
    sidebar,
)
from seglab.viz import NORMALIZATIONS

__all__ = [
    "abilities", "best_fitting", "model_options", "registered_sources", "require_probabilities", "source_roots",
    "CHECKPOINT_KEY", "METRIC_DEFINITION", "NORMALIZATIONS", "PROJECT_ROOT", "REGION_LABELS", "SAMPLE_KEY",
    "SPEC_KEY", "SPLIT_KEY", "allowed", "cell_gallery", "cell_gallery_view", "check_form_spec",
    "checkpoint_and_model", "checkpoint_options", "choose_sample", "clicked_cell", "client_is_local",
    "current_checkpoint", "current_sample", "current_spec", "current_split", "data_root", "dataset", "diagnostics",
    "evaluation", "guard", "image_probabilities", "keep_allowed", "label_quality", "largest_confusion",
    "last_clicked_chart", "loss_inputs", "missed_objects", "pixel_diff", "require_checkpoint", "require_evaluation",
    "runs_dir", "set_sample", "set_spec", "shapes_validation", "sidebar", "source_report", "spec_key", "start_page",
    "stats", "thumbnails", "upload_prediction",
]  # fmt: skip
