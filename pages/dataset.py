"""Dataset: browse samples with mask overlays, see the class imbalance, class weights and the trivial baseline."""

import streamlit as st

from pages import hidden_split, ui
from pages.sample_view import sample_view
from pages.shapes_knobs import shapes_knobs
from seglab import viz
from seglab.analysis import gallery
from seglab.analysis.stats import trivial_baseline

PER_PAGE, COLUMNS = 12, 6
SAMPLE_WIDGET = "dataset_sample"
WEIGHT_NOTES = (
    "**Inverse frequency**: weight ∝ 1 / (share of all labelled pixels), normalised to mean 1 over the classes "
    "present, so a class 100x rarer counts 100x more in the loss.",
    "**Median frequency** (Eigen & Fergus 2015): median(freq) / freq(c), with freq(c) = pixels of c / pixels of "
    "the images containing c: gentler, and it favours classes that are small *where they appear*.",
)


def choose_sample(sample_id: str) -> None:
    """Open button callback: show this sample in the detail view (and the URL)."""
    st.session_state[SAMPLE_WIDGET] = sample_id
    ui.set_sample(sample_id)


ui.start_page()
spec = ui.current_spec()
st.title("Dataset")
if spec.kind == "shapes":
    shapes_knobs(spec)
hidden_split.refuse_hidden_split(spec.with_split(ui.current_split()))
data = stats = None
with ui.guard("Loading the dataset"):
    split_spec = spec.with_split(ui.current_split())
    data, stats = ui.dataset(split_spec), ui.stats(split_spec)
if stats is None:
    st.stop()
label_map, names = data.label_map, stats.class_names
st.caption(data.describe().split("; ")[0])
if stats.unknown_colour_report():
    st.warning(stats.unknown_colour_report(), icon=":material/palette:")

with ui.guard("Trivial baseline"):
    baseline = trivial_baseline(stats)
    st.subheader(f"Trivial baseline: predict “{baseline.predicted_name}” everywhere")
    for column, card in zip(st.columns(4), baseline.cards()):
        column.metric(**card, border=True)
    st.markdown(baseline.verdict())
    st.caption(ui.METRIC_DEFINITION)

ids = []
st.subheader("Gallery")
with ui.guard("Gallery"):
    sorts = gallery.sort_choices(names)
    filter_column, sort_column, page_column, opacity_column, outline_column = st.columns(
        [3, 3, 2, 3, 2], vertical_alignment="bottom"
    )
    contains = filter_column.selectbox(
        "Images containing",
        ["all images", *names],
        key="dataset_filter",
        format_func=lambda choice: gallery.filter_label(stats, choice),
    )
    sort_label = sort_column.selectbox(
        "Sort by", list(sorts), key="dataset_sort", help="Rarity score: " + gallery.SORT_ORDERS["rarity"]
    )
    opacity = opacity_column.slider("Mask opacity", 0.0, 1.0, 0.5, 0.05, key="dataset_opacity")
    outlines = outline_column.toggle("Outlines", value=True, key="dataset_outlines")
    sort_by, sort_class = sorts[sort_label]
    order = gallery.order_samples(
        stats, contains=names.index(contains) if contains in names else None, sort_by=sort_by, class_id=sort_class
    )
    ids = [stats.ids[index] for index in order]
    if st.session_state.get(SAMPLE_WIDGET) not in ids:  # first visit, page switch or a new filter
        selection = gallery.open_at(ids, ui.current_sample(), PER_PAGE)
        st.session_state[SAMPLE_WIDGET], st.session_state["dataset_page"] = selection
    pages = gallery.page_count(len(order), PER_PAGE)
    st.session_state["dataset_page"] = min(st.session_state.get("dataset_page", 1), pages)
    page = page_column.number_input(
        f"Page (of {pages})", 1, pages, key="dataset_page", help=f"{len(order)} images, {PER_PAGE} per page"
    )
    st.caption(f"{len(order)} images · order: {gallery.SORT_ORDERS[sort_by]}")
    shown = gallery.page_items(order, page, PER_PAGE)
    pictures = ui.thumbnails(split_spec, shown, opacity=opacity, outlines=outlines)
    for start in range(0, len(shown), COLUMNS):
        for column, index, picture in zip(st.columns(COLUMNS), shown[start:], pictures[start:]):
            sample_id = stats.ids[index]
            column.image(picture, caption=gallery.sample_caption(stats, index, sort_by, sort_class), width="stretch")
            column.button(
                "Open",
                key=f"dataset_open_{sample_id}",
                on_click=choose_sample,
                args=(sample_id,),
                width="stretch",
                type="primary" if sample_id == st.session_state[SAMPLE_WIDGET] else "secondary",
            )

st.subheader("Sample")
with ui.guard("Sample"):
    if not ids:
        st.info("No image of this split contains that class.")
    else:
        sample_id = st.selectbox(
            "Sample", ids, key=SAMPLE_WIDGET, help="Also set by the Open buttons; kept in the URL (?sample=)"
        )
        if sample_id != ui.current_sample() or st.query_params.get("sample") != sample_id:
            ui.set_sample(sample_id)
        sample_view(data, stats, sample_id, opacity)

st.subheader("Class imbalance")
with ui.guard("Class imbalance"):
    pixels_column, sizes_column = st.columns(2)
    log_share = pixels_column.toggle(
        "Log scale",
        value=True,
        key="dataset_share_log",
        help="Log: rare classes stay visible. Linear: how lopsided the pixels really are.",
    )
    pixels_column.plotly_chart(
        ui.shared_figure(
            viz.class_distribution_figure,
            stats.pixel_fraction,
            stats.image_counts,
            names,
            label_map.colors,
            title="Pixel share per class (label: images containing it)",
            log_y=log_share,
        ),
        key="dataset_share_chart",
    )
    sizes_column.plotly_chart(
        ui.shared_figure(
            viz.object_size_figure,
            stats.object_class,
            stats.object_area,
            names,
            label_map.colors,
            title="Object size per class (connected components)",
        )
    )
    st.caption(
        f"Most / least frequent class: {stats.imbalance_ratio:,.0f}x pixels · "
        f"void: {stats.void_fraction:.1%} of all pixels, never a class."
    )

st.subheader("Class weights")
with ui.guard("Class weights"):
    number = st.column_config.NumberColumn
    st.dataframe(
        stats.table(),
        hide_index=True,
        height="content",
        column_config={
            "id": None,
            "pixel_fraction": number("pixel share", format="percent"),
            "images": "images with it",
            "inverse_weight": number("inverse-frequency weight", format="%.3f"),
            "median_freq_weight": number("median-frequency weight", format="%.3f"),
            "median_object_px": number("median object (px)", format="%.0f"),
        },
    )
    for note in WEIGHT_NOTES:
        st.markdown(note)
