"""The Dataset page's Shapes generator panel: one-click lesson presets and every generator knob, applied to
every page through the shared data source."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from pages import ui
from seglab.data.lessons import LESSONS, matching_lesson
from seglab.data.shapes import SHAPE_NAMES, ShapesConfig
from seglab.data.spec import DataSpec

OPEN_KEY = "dataset_knobs_open"


def apply_shapes(spec: DataSpec, config: ShapesConfig) -> None:
    """Switch every page to the new Shapes data."""
    ui.set_spec(replace(spec, shapes=config))
    st.session_state[OPEN_KEY] = True  # keep the panel open to show which preset is now active
    st.rerun()


def shapes_knobs(spec: DataSpec) -> None:
    """One-click lesson presets and every generator knob, applied through the shared data source."""
    config, current = spec.shapes, matching_lesson(spec.shapes)
    with st.expander(
        "Shapes generator: lesson presets and knobs",
        icon=":material/tune:",
        expanded=st.session_state.get(OPEN_KEY, False),
    ):
        st.caption(f"Now: **{current.name}** · {current.lesson}" if current else "Now: custom settings.")
        with st.container(horizontal=True):
            for lesson in LESSONS:
                if st.button(
                    lesson.name,
                    help=lesson.lesson,
                    key=f"dataset_preset_{lesson.name}",
                    type="primary" if lesson is current else "secondary",
                ):
                    apply_shapes(spec, lesson.apply(config))
        with st.form("dataset_shapes_knobs", border=False):
            st.markdown("Relative frequency of each shape: the **imbalance** knob")
            frequencies = tuple(
                column.slider(name, 0.0, 1.0, float(value), 0.001, format="%.3f")
                for column, name, value in zip(st.columns(len(SHAPE_NAMES)), SHAPE_NAMES, config.class_frequencies)
            )
            left, middle, right, last = st.columns(4)
            scale = left.slider("Object scale", 0.2, max(3.0, config.object_scale), config.object_scale, 0.05)
            tiny = left.slider("Tiny-object probability", 0.0, 1.0, config.tiny_object_probability, 0.05)
            cue = left.slider(
                "Colour cue",
                0.0,
                1.0,
                config.class_color_probability,
                0.05,
                help="Chance an object takes its class's typical hue; 0 = only the outline tells the class",
            )
            similar = middle.slider(
                "Similar-colour objects",
                0.0,
                1.0,
                config.similar_color_probability,
                0.05,
                help="Chance an object is coloured like what lies behind it (low contrast)",
            )
            dull = middle.slider(
                "Background colourfulness",
                0.0,
                1.0,
                config.background_saturation,
                0.05,
                help="How saturated backgrounds may be; vivid objects stand out on dull ones",
            )
            blur = middle.slider("Boundary blur (px)", 0.0, max(6.0, config.boundary_blur), config.boundary_blur, 0.25)
            noise = middle.slider(
                "Label noise",
                0.0,
                1.0,
                config.label_noise,
                0.05,
                help="Share of objects whose label is flipped, eroded or dilated",
            )
            difficulty = right.slider(
                "Difficulty", 0.0, 1.0, config.difficulty, 0.05, help="Occlusion, texture, distractors"
            )
            void = right.slider(
                "Void border (px)", 0, 16, config.void_border, help="Ignored band around objects, VOC style"
            )
            objects = last.slider(
                "Objects per image", 0, max(12, config.max_objects), (config.min_objects, config.max_objects)
            )
            size = last.number_input("Image size (px)", 16, 1024, config.image_size, 16)
            counts = [
                column.number_input(f"{split.title()} images", 1, 100_000, getattr(config, f"{split}_size"))
                for column, split in zip(st.columns(4), ("train", "val", "test"))
            ]
            if st.form_submit_button("Apply", type="primary"):
                with ui.guard("Shapes settings"):
                    apply_shapes(
                        spec,
                        replace(
                            config,
                            class_frequencies=frequencies,
                            object_scale=scale,
                            tiny_object_probability=tiny,
                            class_color_probability=cue,
                            similar_color_probability=similar,
                            background_saturation=dull,
                            boundary_blur=blur,
                            label_noise=noise,
                            difficulty=difficulty,
                            void_border=void,
                            min_objects=objects[0],
                            max_objects=objects[1],
                            image_size=int(size),
                            train_size=int(counts[0]),
                            val_size=int(counts[1]),
                            test_size=int(counts[2]),
                        ),
                    )
