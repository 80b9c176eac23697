"""Label quality: the labelled objects a trained model confidently disagrees with (annotation-error candidates)."""

import pandas as pd
import streamlit as st

from pages import hidden_split, ui
from pages.label_quality_views import OBJECT_FORMAT, SCORE_FORMAT, scoring_progress, show_image, validation_panel
from seglab.analysis.label_quality import DEFAULT_BAND

SAMPLE_KEY = "labels_sample"
RETRY_KEY = "labels_retry"
FIRST_WAIT_S = 2.5  # the longest the first render waits for the first scored images (a report on disk: ms)
FIRST_IMAGES = 8  # a first batch of the model (score_dataset's batch size) makes a partial ranking worth a look
METHOD = (
    "**How it works** (confident learning, Northcutt et al. 2021, per pixel): a pixel's *self-confidence* is the "
    "model's "
    "probability of its given label (void pixels never count), and the model *confidently* says class j where p(j) "
    "reaches class j's mean self-confidence over the split (at least 0.5). Each labelled object (a connected region of "
    "one class) gets a **score**: the soft IoU between the object and the model's probability of its class over the "
    "object and a band of N px around it; a wrong class, an eroded or a dilated outline all pull it down. "
    "Low scores are candidates to review: objects the model cannot segment score low too."
)

ui.start_page()
st.title("Label quality")
st.caption(METHOD)

path = ui.require_checkpoint()

spec = ui.current_spec().with_split(ui.current_split())
hidden_split.refuse_hidden_split(spec)
ui.require_probabilities(path, spec, "Label quality")
band = st.slider(
    "Band around each outline, N (px)",
    1,
    10,
    DEFAULT_BAND,
    help="Where an eroded label leaves the model's probability of the object's class; wider catches stronger erosion",
)


report, job = None, None
with ui.guard("Scoring the labels of this split"):
    data = ui.dataset(spec)
    job = ui.label_quality_job(path, spec, band, retry=st.session_state.pop(RETRY_KEY, False))
    job.wait_for_progress(FIRST_WAIT_S, FIRST_IMAGES)  # a report on disk: finished by now; else a first batch
    if not job.finished:
        scoring_progress(job)
        st.stop()
    report = job.result()
if job is not None and job.error is not None:
    st.button("Score again", on_click=lambda: st.session_state.update({RETRY_KEY: True}))
if report is None or not report.images:
    if report is not None:
        st.warning(f"{spec.describe()} has no images to score.")
    st.stop()
names, label_map = report.class_names, data.label_map
ranked_objects = report.ranked_objects()
thresholds = ", ".join(f"{names[i]} {t:.2f}" for i, t in enumerate(report.thresholds))
st.caption(
    f"{spec.describe()} · {len(report.images)} images · {len(ranked_objects)} objects of at least "
    f"{report.min_pixels} px"
    + (f" ({names[label_map.background_index]} is not an object)" if report.skip_classes else "")
    + f" · confident thresholds: {thresholds}"
)


images_tab, objects_tab = st.tabs(["Images, worst first", "Objects, worst first"], **ui.LAZY_TABS("labels_tab"))
if images_tab.open:  # only the open tab runs (ui.LAZY_TABS)
    with images_tab:
        table = pd.DataFrame(report.image_rows())
        event = st.dataframe(
            table,
            hide_index=True,
            height=240,
            column_config=SCORE_FORMAT,
            key="labels_table",
            on_select="rerun",
            selection_mode="single-row",
        )
        sample = st.session_state[SAMPLE_KEY] = ui.choose_sample(
            list(table["sample"]), event, SAMPLE_KEY, st.session_state.get(SAMPLE_KEY)
        )
        with ui.guard(f"Showing {sample}"):
            show_image(report, data, path, spec, sample)
if objects_tab.open:  # only the open tab runs (ui.LAZY_TABS)
    with objects_tab:
        st.caption(
            f"The {min(len(ranked_objects), 200)} lowest-scoring objects of the split (objects of "
            f"{report.min_pixels} px or more)"
        )
        st.dataframe(pd.DataFrame(report.ranked_object_rows(200)), hide_index=True, column_config=OBJECT_FORMAT)

if data.kind == "shapes" and data.config.label_noise > 0:
    st.subheader("Does it work? Checked against the labels Shapes corrupted")
    with ui.guard("Validating the ranking"):
        validation_panel(data, path, spec, band)
