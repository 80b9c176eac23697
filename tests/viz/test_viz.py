"""Tests for seglab.viz: small hand-made arrays whose expected pictures are known exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seglab import viz
from seglab.data.label_map import LabelMap, camvid_label_map, shapes_label_map
from seglab.viz import confusion_figure


@pytest.fixture
def label_map() -> LabelMap:
    return shapes_label_map()  # background 0 .. stripe 6, ignore 255


def _image(height: int = 4, width: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# -- colours -----------------------------------------------------------------------------------
def test_colorize_uses_palette_and_ignore_colour(label_map: LabelMap) -> None:
    mask = np.array([[0, 1, 2], [255, 6, 3]], dtype=np.uint8)
    rgb = viz.colorize_mask(mask, label_map)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 1]) == label_map.classes[1].color
    assert tuple(rgb[1, 1]) == label_map.classes[6].color
    assert tuple(rgb[1, 0]) == label_map.ignore_color


def test_colorize_unknown_and_out_of_range_values_are_black(label_map: LabelMap) -> None:
    mask = np.array([[7, 300, -1, 2]], dtype=np.int64)
    rgb = viz.colorize_mask(mask, label_map)
    assert (rgb[0, :3] == 0).all()
    assert tuple(rgb[0, 3]) == label_map.classes[2].color


def test_colorize_camvid_ignore_index_is_not_255() -> None:
    camvid = camvid_label_map()
    rgb = viz.colorize_mask(np.array([[11, 3]], dtype=np.uint8), camvid)
    assert tuple(rgb[0, 0]) == camvid.ignore_color
    assert tuple(rgb[0, 1]) == camvid.classes[3].color


def test_to_hex() -> None:
    assert viz.to_hex((255, 0, 16)) == "#ff0010"
    assert viz.to_hex(np.array([1, 2, 3], dtype=np.uint8)) == "#010203"


# -- overlay -----------------------------------------------------------------------------------
def test_overlay_alpha_zero_is_image_and_one_is_colour_mask(label_map: LabelMap) -> None:
    image = _image()
    mask = np.array([[0, 1, 2, 3, 255]] * 4, dtype=np.uint8)
    colors = viz.colorize_mask(mask, label_map)
    assert np.array_equal(viz.overlay(image, mask, label_map, alpha=0.0), image)
    full = viz.overlay(image, mask, label_map, alpha=1.0)
    blended = mask != 255
    assert np.array_equal(full[blended], colors[blended])
    assert np.array_equal(full[~blended], image[~blended])  # void left unblended by default


def test_overlay_half_alpha_mixes_and_skip_background(label_map: LabelMap) -> None:
    image = np.full((1, 2, 3), 100, dtype=np.uint8)
    mask = np.array([[0, 1]], dtype=np.uint8)
    half = viz.overlay(image, mask, label_map, alpha=0.5)
    expected = np.rint((100 + np.array(label_map.classes[1].color)) / 2)
    assert np.abs(half[0, 1].astype(int) - expected).max() <= 1
    skipped = viz.overlay(image, mask, label_map, alpha=1.0, skip_background=True)
    assert np.array_equal(skipped[0, 0], image[0, 0])
    assert tuple(skipped[0, 1]) == label_map.classes[1].color


def test_overlay_accepts_colour_mask_and_rejects_bad_input(label_map: LabelMap) -> None:
    image = _image()
    colors = _image(seed=1)
    assert np.array_equal(viz.overlay(image, colors, alpha=1.0), colors)
    with pytest.raises(ValueError, match="label_map"):
        viz.overlay(image, np.zeros((4, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match="4x5"):
        viz.overlay(image, np.zeros((3, 5), dtype=np.uint8), label_map)
    with pytest.raises(ValueError, match="alpha"):
        viz.overlay(image, np.zeros((4, 5), dtype=np.uint8), label_map, alpha=1.5)


# -- boundaries --------------------------------------------------------------------------------
def test_boundary_mask_on_a_square() -> None:
    mask = np.zeros((7, 7), dtype=np.uint8)
    mask[2:5, 2:5] = 1
    expected = np.zeros((7, 7), dtype=bool)
    expected[1:6, 1:6] = True
    expected[3, 3] = False  # the square's centre: all neighbours are square too
    assert np.array_equal(viz.boundary_mask(mask), expected)
    # Same answer for int64 predictions and for labels beyond uint16.
    assert np.array_equal(viz.boundary_mask(mask.astype(np.int64)), expected)
    assert np.array_equal(viz.boundary_mask(mask.astype(np.int64) * 100_000), expected)
    big = np.zeros((11, 11), dtype=np.uint8)
    big[3:8, 3:8] = 4
    expected_wide = np.zeros((11, 11), dtype=bool)
    expected_wide[1:10, 1:10] = True
    expected_wide[5, 5] = False  # the only pixel more than 2 away from any other label
    assert np.array_equal(viz.boundary_mask(big, width=2), expected_wide)
    assert not viz.boundary_mask(np.full((5, 5), 3, dtype=np.uint8)).any()  # border is no edge


def test_draw_outlines_fixed_and_label_colours(label_map: LabelMap) -> None:
    image = np.zeros((7, 7, 3), dtype=np.uint8)
    mask = np.zeros((7, 7), dtype=np.uint8)
    mask[2:5, 2:5] = 2
    edges = viz.boundary_mask(mask)
    red = viz.draw_outlines(image, mask, color=(255, 0, 0))
    assert (red[edges] == (255, 0, 0)).all() and (red[~edges] == 0).all()
    coloured = viz.draw_outlines(image, mask, label_map)
    assert tuple(coloured[2, 2]) == label_map.classes[2].color  # inside edge: square colour
    assert tuple(coloured[1, 1]) == label_map.classes[0].color  # outside edge: background colour
    assert (image == 0).all()  # input untouched


# -- error map ---------------------------------------------------------------------------------
IGNORE = 255

# target / pred with background 0; one pixel per interesting case.
TARGET_3X3 = np.array([[0, 1, 2], [1, 0, 2], [IGNORE, 1, 0]], dtype=np.uint8)
PRED_3X3 = np.array([[0, 1, 1], [0, 2, 2], [1, 1, 0]], dtype=np.uint8)


def test_error_categories_hand_example() -> None:
    categories = viz.error_categories(PRED_3X3, TARGET_3X3, IGNORE, background_index=0)
    c, w, m, f, i = viz.CORRECT, viz.WRONG_CLASS, viz.MISSED, viz.FALSE_ALARM, viz.IGNORED
    expected = np.array([[c, c, w], [m, f, c], [i, c, c]], dtype=np.uint8)
    assert categories.dtype == np.uint8
    assert np.array_equal(categories, expected)


def test_error_categories_without_background_every_error_is_wrong_class() -> None:
    categories = viz.error_categories(PRED_3X3, TARGET_3X3, IGNORE, background_index=None)
    c, w, i = viz.CORRECT, viz.WRONG_CLASS, viz.IGNORED
    expected = np.array([[c, c, w], [w, w, c], [i, c, c]], dtype=np.uint8)
    assert np.array_equal(categories, expected)


def test_error_categories_respect_non_255_ignore_index() -> None:
    target = np.array([[11, 3]], dtype=np.uint8)
    pred = np.array([[11, 3]], dtype=np.int64)
    assert viz.error_categories(pred, target, 11).tolist() == [[viz.IGNORED, viz.CORRECT]]


def test_error_category_table_and_legend() -> None:
    assert [c.id for c in viz.ERROR_CATEGORIES] == [0, 1, 2, 3, 4]
    assert len({c.color for c in viz.ERROR_CATEGORIES}) == 5
    assert [row["name"] for row in viz.error_legend()] == ["correct", "wrong class", "missed", "false alarm", "ignored"]
    assert [row["id"] for row in viz.error_legend(has_background=False)] == [viz.CORRECT, viz.WRONG_CLASS, viz.IGNORED]
    assert viz.error_legend()[1]["color"] == viz.to_hex(viz.ERROR_CATEGORIES[1].color)


def test_error_map_colours_and_dimmed_image() -> None:
    rgb = viz.error_map(PRED_3X3, TARGET_3X3, IGNORE, background_index=0)
    assert tuple(rgb[0, 2]) == viz.ERROR_CATEGORIES[viz.WRONG_CLASS].color
    assert tuple(rgb[1, 0]) == viz.ERROR_CATEGORIES[viz.MISSED].color
    assert tuple(rgb[1, 1]) == viz.ERROR_CATEGORIES[viz.FALSE_ALARM].color
    image = np.full((3, 3, 3), 200, dtype=np.uint8)
    on_image = viz.error_map(PRED_3X3, TARGET_3X3, IGNORE, background_index=0, image=image, alpha=1.0, dim=0.5)
    assert tuple(on_image[0, 0]) == (100, 100, 100)  # correct: grey image at half brightness
    assert tuple(on_image[1, 0]) == viz.ERROR_CATEGORIES[viz.MISSED].color


# -- disagreement ------------------------------------------------------------------------------
def test_disagreement_map_hand_example() -> None:
    target = np.array([[1, 1, 1], [1, 1, IGNORE]], dtype=np.uint8)
    pred_a = np.array([[1, 0, 1], [2, 2, 0]], dtype=np.uint8)
    pred_b = np.array([[1, 1, 0], [2, 3, 1]], dtype=np.uint8)
    categories = viz.disagreement_map(pred_a, pred_b, target, IGNORE)
    expected = np.array(
        [
            [viz.BOTH_RIGHT, viz.FIXED_BY_B, viz.BROKEN_BY_B],
            [viz.BOTH_WRONG_SAME, viz.BOTH_WRONG_DIFFERENT, viz.DISAGREEMENT_IGNORED],
        ],
        dtype=np.uint8,
    )
    assert np.array_equal(categories, expected)
    rgb = viz.disagreement_rgb(pred_a, pred_b, target, IGNORE)
    assert tuple(rgb[0, 1]) == viz.DISAGREEMENT_CATEGORIES[viz.FIXED_BY_B].color
    assert tuple(rgb[0, 2]) == viz.DISAGREEMENT_CATEGORIES[viz.BROKEN_BY_B].color
    assert [row["id"] for row in viz.disagreement_legend()] == list(range(6))


def test_shape_mismatch_is_reported() -> None:
    with pytest.raises(ValueError, match="resize"):
        viz.error_categories(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8), IGNORE)


# -- confidence --------------------------------------------------------------------------------
def test_confidence_map_is_viridis_ordered() -> None:
    confidence = np.array([[0.0, 0.5, 1.0, np.nan, 2.0]], dtype=np.float32)
    rgb = viz.confidence_map(confidence)
    assert rgb.shape == (1, 5, 3) and rgb.dtype == np.uint8
    low, high = rgb[0, 0].astype(int), rgb[0, 2].astype(int)
    assert low[2] > low[1] and high[0] > 200 and high[1] > 200 and high[2] < 100  # purple -> yellow
    assert np.array_equal(rgb[0, 3], rgb[0, 0]) and np.array_equal(rgb[0, 4], rgb[0, 2])


# -- Plotly figures ----------------------------------------------------------------------------
MATRIX = np.array([[8, 2, 0], [0, 0, 0], [1, 3, 6]], dtype=np.int64)  # class "b" has no GT
NAMES = ["a", "b", "c"]


def test_confusion_matrix_figure_recall_rows_sum_to_one() -> None:
    z = np.asarray(viz.confusion_matrix_figure(MATRIX, NAMES, normalize="recall").data[0].z, dtype=float)
    assert np.isnan(z[1]).all()  # no ground truth for "b": blank row
    assert np.allclose(np.nansum(z, axis=1)[[0, 2]], 1.0)
    assert z[0, 0] == pytest.approx(0.8)


def test_confusion_matrix_figure_precision_columns_sum_to_one() -> None:
    z = np.asarray(viz.confusion_matrix_figure(MATRIX, NAMES, normalize="precision").data[0].z, dtype=float)
    assert np.allclose(z.sum(axis=0), 1.0)
    assert z[2, 1] == pytest.approx(0.6)


def test_confusion_matrix_figure_counts_hover_and_text() -> None:
    figure = viz.confusion_matrix_figure(MATRIX * 1000, NAMES, title="val")
    heatmap = figure.data[0]
    assert np.array_equal(np.asarray(heatmap.z), MATRIX * 1000)
    assert list(heatmap.x) == NAMES and list(heatmap.y) == NAMES
    assert "GT: %{y}" in heatmap.hovertemplate and "Pred: %{x}" in heatmap.hovertemplate
    customdata = np.asarray(heatmap.customdata, dtype=float)
    assert customdata.shape == (3, 3, 3) and customdata[2, 1, 0] == 3000
    assert heatmap.text[0][0] == "8k" and figure.layout.yaxis.autorange == "reversed"
    big = viz.confusion_matrix_figure(np.eye(30), [str(i) for i in range(30)])
    assert big.data[0].text is None  # too many classes to annotate
    with pytest.raises(ValueError, match="normalize"):
        viz.confusion_matrix_figure(MATRIX, NAMES, normalize="rows")
    with pytest.raises(ValueError, match="class names"):
        viz.confusion_matrix_figure(MATRIX, ["a", "b"])


def test_confusion_matrix_figure_draws_an_other_column_never_drops_it() -> None:
    from seglab.viz import clickable_confusion_figure

    with_other = np.concatenate([MATRIX, np.array([[5], [0], [1]])], axis=1)  # a mapped source's "other" predictions
    figure = clickable_confusion_figure(with_other, NAMES, normalize="recall")
    heatmap, markers = figure.data
    assert list(heatmap.x) == [*NAMES, "other"] and list(heatmap.y) == NAMES
    z = np.asarray(heatmap.z, dtype=float)
    assert z.shape == (3, 4) and z[0, 3] == pytest.approx(5 / 15) and np.allclose(np.nansum(z, axis=1)[[0, 2]], 1.0)
    assert len(markers.x) == 12 and list(markers.x[:4]) == [*NAMES, "other"]
    with pytest.raises(ValueError, match=r"\(K, K\) or \(K, K \+ 1\)"):
        viz.confusion_matrix_figure(np.zeros((3, 5)), NAMES)


def test_per_class_bar_figure_groups_series() -> None:
    figure = viz.per_class_bar_figure(
        {"run1": [0.1, 0.2, 0.3], "run2": np.array([0.3, np.nan, 0.1])},
        NAMES,
        title="IoU",
        yaxis_title="IoU",
        log_y=True,
    )
    assert [trace.name for trace in figure.data] == ["run1", "run2"]
    assert figure.layout.barmode == "group" and figure.layout.yaxis.type == "log"
    single = viz.per_class_bar_figure([1, 2, 3], NAMES, yaxis_title="pixels")
    assert len(single.data) == 1 and list(single.data[0].x) == NAMES
    with pytest.raises(ValueError):
        viz.per_class_bar_figure([1, 2], NAMES)


def test_class_distribution_figure(label_map: LabelMap) -> None:
    fraction = np.array([0.9, 0.1, 0.0, 0, 0, 0, 0])
    counts = np.array([10, 4, 0, 0, 0, 0, 0])
    figure = viz.class_distribution_figure(fraction, counts, label_map.names, label_map.colors)
    bar = figure.data[0]
    assert figure.layout.yaxis.type == "log"
    assert list(bar.marker.color)[1] == viz.to_hex(label_map.classes[1].color)
    assert np.isnan(np.asarray(bar.y, dtype=float)[2])  # 0 cannot sit on a log axis
    assert list(bar.text)[:2] == ["10 img", "4 img"]


def test_object_size_figure_sends_quartiles_per_class(label_map: LabelMap) -> None:
    classes = np.array([1, 1, 1, 1, 3, 0])
    areas = np.array([10, 20, 30, 1000, 7, 5000])
    figure = viz.object_size_figure(classes, areas, label_map.names, label_map.colors)
    assert [box.name for box in figure.data] == [
        label_map.names[0],
        label_map.names[1],
        label_map.names[3],
    ]  # classes with objects
    circle = figure.data[1]
    assert (circle.median[0], circle.q1[0], circle.q3[0]) == (25.0, 17.5, 272.5)
    assert (circle.lowerfence[0], circle.upperfence[0]) == (10, 1000)
    assert circle.fillcolor == viz.to_hex(label_map.classes[1].color)
    assert figure.layout.yaxis.type == "log" and list(figure.layout.xaxis.categoryarray) == list(label_map.names)
    with pytest.raises(ValueError, match="objects"):
        viz.object_size_figure([1, 2], [3], label_map.names, label_map.colors)


def test_image_figure_hover_customdata_is_3d_class_names(label_map: LabelMap) -> None:
    image = _image(6, 8)
    target = np.zeros((6, 8), dtype=np.uint8)
    target[:, 4:] = 2
    target[0, 0] = 255
    figure = viz.image_figure(image, target, label_map)
    assert figure.data[0].type == "image" and figure.data[0].source.startswith("data:image/png")
    heatmap = figure.data[1]
    customdata = np.asarray(heatmap.customdata)
    assert customdata.shape == (6, 8, 1)
    assert customdata[0, 0, 0] == "void" and customdata[3, 1, 0] == "background"
    assert customdata[3, 6, 0] == "square"
    assert "%{customdata[0]}" in heatmap.hovertemplate


def test_image_figure_downsamples_hover_layer_and_shows_several_layers(label_map: LabelMap) -> None:
    image = np.zeros((600, 1100, 3), dtype=np.uint8)
    target = np.zeros((600, 1100), dtype=np.uint8)
    target[:, 550:] = 1
    pred = np.full((600, 1100), 3, dtype=np.int64)
    figure = viz.image_figure(image, {"GT": target, "Pred": pred}, label_map)
    heatmap = figure.data[1]
    customdata = np.asarray(heatmap.customdata)
    assert customdata.ndim == 3 and customdata.shape[2] == 2
    assert max(customdata.shape[:2]) <= viz.MAX_HOVER_SIDE
    assert customdata[0, 0].tolist() == ["background", "triangle"]
    assert customdata[0, -1].tolist() == ["circle", "triangle"]
    # Cell centres stay in image pixel coordinates.
    assert float(np.max(heatmap.x)) < 1100 and float(np.max(heatmap.y)) < 600
    assert "GT: %{customdata[0]}" in heatmap.hovertemplate and "Pred: %{customdata[1]}" in heatmap.hovertemplate
    plain = viz.image_figure(image)
    assert len(plain.data) == 1


def test_line_and_lr_schedule_figures() -> None:
    figure = viz.line_figure(
        {"train": ([0, 1, 2], [1.0, 0.5, 0.4]), "val": ([0, 2], [1.1, 0.6])},
        title="loss",
        xaxis_title="epoch",
        yaxis_title="loss",
        log_y=True,
    )
    assert [trace.name for trace in figure.data] == ["train", "val"] and figure.layout.yaxis.type == "log"
    assert list(figure.data[1].y) == [1.1, 0.6]
    schedule = viz.lr_schedule_figure(np.arange(100), np.linspace(0.1, 0.0, 100))
    assert len(schedule.data) == 1 and len(schedule.data[0].x) == 100
    with pytest.raises(ValueError, match="x values"):
        viz.line_figure({"bad": ([0, 1], [1.0])})


# -- legends and composites --------------------------------------------------------------------
def test_class_legend_entries(label_map: LabelMap) -> None:
    entries = viz.class_legend(label_map)
    assert entries[0] == ("background", "#141414") and len(entries) == label_map.num_classes
    assert viz.class_legend(label_map, [2, 99]) == [("square", viz.to_hex(label_map.classes[2].color))]
    assert viz.class_legend(label_map, [1], include_ignore=True)[-1] == ("void", "#ffffff")


def test_legend_image_draws_swatches(label_map: LabelMap) -> None:
    entries = viz.class_legend(label_map, [1, 2])
    image = viz.legend_image(entries, swatch_size=12)
    assert image.dtype == np.uint8 and image.ndim == 3
    for _, color in entries:
        rgb = tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))
        assert (image == rgb).all(axis=2).sum() >= 50  # a 10x10 swatch interior at least
    two_columns = viz.legend_image(entries, columns=2)
    assert two_columns.shape[1] > image.shape[1] and two_columns.shape[0] < image.shape[0]
    rows = [(row["name"], row["color"]) for row in viz.error_legend()]
    assert viz.legend_image(rows).shape[0] > image.shape[0]


def test_side_by_side_and_grid_sizes() -> None:
    first, second = _image(10, 20), _image(6, 8)
    row = viz.side_by_side([first, second], gap=4)
    assert row.shape == (10, 32, 3)
    assert np.array_equal(row[:, :20], first) and np.array_equal(row[:6, 24:], second)
    assert (row[6:, 24:] == 255).all() and (row[:, 20:24] == 255).all()
    captioned = viz.side_by_side([first, second], captions=["image", "prediction"])
    assert captioned.shape[0] > 10 and captioned.shape[1] == 32
    grid = viz.make_grid([first] * 5, columns=2, gap=2)
    assert grid.shape == (3 * 10 + 2 * 2, 2 * 20 + 2, 3)
    assert np.array_equal(grid[24:34, 22:], np.full((10, 20, 3), 255))  # empty last cell
    gray = viz.make_grid([np.zeros((3, 3), np.uint8)], columns=4)
    assert gray.shape == (3, 3, 3)
    with pytest.raises(ValueError):
        viz.make_grid([], columns=2)


def test_viz_does_not_import_streamlit() -> None:
    modules = sorted(Path(viz.__file__).parent.glob("*.py"))
    assert len(modules) > 5
    for module in modules:
        source = module.read_text(encoding="utf-8")
        assert "import streamlit" not in source and "from streamlit" not in source, module.name


def test_image_figure_height_follows_the_image_aspect_so_no_empty_band_surrounds_it() -> None:
    camvid_like = np.zeros((360, 480, 3), dtype=np.uint8)
    assert viz.image_figure(camvid_like, display_width=600).layout.height == 450
    assert viz.image_figure(np.zeros((96, 96, 3), dtype=np.uint8), display_width=600).layout.height == 600
    assert (
        viz.image_figure(np.zeros((10, 400, 3), dtype=np.uint8)).layout.height == 240
    )  # a strip keeps a usable height
    assert viz.image_figure(camvid_like, title="t", display_width=600).layout.height == 490  # room for the title


def test_log_axes_label_only_what_fits_and_the_class_share_chart_has_a_linear_view() -> None:
    wide = viz.value_axis("share", True, [0.9, 0.05, 0.0001])  # four decades: powers of ten only
    assert wide["dtick"] == 1 and wide["minor"]["dtick"] == "D1"
    assert viz.value_axis("loss", True, [2.1, 0.4])["dtick"] == "D2"  # under two decades: 1, 2 and 5
    assert viz.value_axis("loss", False, [2.1, 0.4]) == {"title": {"text": "loss"}, "type": "linear"}
    shares, images, names = [0.76, 0.2, 0.039, 0.001], [10, 9, 5, 1], ["bg", "a", "b", "c"]
    colors = np.zeros((4, 3), np.uint8)
    log = viz.class_distribution_figure(shares, images, names, colors)
    linear = viz.class_distribution_figure(shares, images, names, colors, log_y=False)
    assert log.layout.yaxis.type == "log" and log.layout.yaxis.dtick == 1
    assert linear.layout.yaxis.type == "linear" and list(linear.data[0].y) == shares
    curves = viz.line_figure({"loss": ([1, 2, 3], [2.0, 0.5, 0.3])}, log_y=True)
    assert curves.layout.yaxis.dtick == "D2"


def test_confusion_cells_are_wide_enough_for_their_labels_or_carry_none() -> None:
    camvid_like = np.full((11, 11), 1_150_000) - np.arange(121).reshape(11, 11) * 9_000
    figure = viz.confusion_matrix_figure(camvid_like, [f"class {i}" for i in range(11)])
    labels = [label for row in figure.data[0].text for label in row]
    assert max(len(label) for label in labels) <= 4  # "1.1M", "93k", "9.7k"
    cell_px = (figure.layout.height - viz.CONFUSION_AXES_PX) / 11
    font = figure.data[0].textfont.size
    assert cell_px >= viz.CELL_TEXT_WIDTH * font * 4 + 10  # a four-character label fits its cell with padding
    compact = [confusion_figure._compact_count(v) for v in (8, 950, 9_720, 92_900, 1_150_000)]
    assert compact == ["8", "950", "9.7k", "93k", "1.1M"]
    height, _, annotate = viz.confusion_geometry(40, 4)
    assert height <= viz.MAX_CONFUSION_PX and not annotate  # too small for text: hover only
    assert viz.confusion_geometry(3, 4)[0] >= 360


def test_plotly_is_imported_only_by_seglab_viz() -> None:
    package = Path(viz.__file__).parents[1]
    importers = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "import plotly" in path.read_text(encoding="utf-8") and path.parent.name != "viz"
    ]
    assert importers == []
