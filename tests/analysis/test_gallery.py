"""Tests for seglab.analysis.gallery (filter / sort / page / thumbnails), seglab.data.lessons (Shapes presets) and
viz.object_size_figure: a hand-made stats object whose orderings are worked out by hand, and small
Shapes datasets to check that each knob moves the data the way its lesson says."""

from __future__ import annotations

import numpy as np
import pytest

from seglab import viz
from seglab.analysis import gallery
from seglab.analysis.stats import DatasetStats, compute_stats
from seglab.data.label_map import shapes_label_map
from seglab.data.lessons import KEPT_FIELDS, LESSONS, lesson_by_name, matching_lesson
from seglab.data.shapes import SHAPE_NAMES, ShapesConfig, ShapesDataset
from seglab.errors import ConfigError

BACKGROUND, CAR, BIKE = 0, 1, 2


@pytest.fixture
def stats() -> DatasetStats:
    """Four 10x10 images: background + a few cars (common-ish) and bikes (rare, small).

    Labelled pixels: background 339, car 10, bike 51. Median-frequency weights follow from
    freq = pixels / pixels of the images containing the class: background 339/400, car 10/100,
    bike 51/200 -> median 0.255 -> weights 0.3009, 2.55, 1.0.
    """
    counts = np.array([[90, 10, 0], [50, 0, 50], [99, 0, 1], [100, 0, 0]], dtype=np.int64)
    # (class, area, image): one background object per image, car 10 px in image 0, bikes 30 + 20 in
    # image 1 and a 1-pixel bike in image 2.
    objects = np.array([[0, 90, 0], [1, 10, 0], [0, 50, 1], [2, 30, 1], [2, 20, 1], [0, 99, 2], [2, 1, 2], [0, 100, 3]])
    return DatasetStats(
        class_names=["background", "car", "bike"],
        ids=["a", "b", "c", "d"],
        ignore_index=255,
        background_index=BACKGROUND,
        per_image_counts=counts,
        ignore_pixels=np.array([0, 0, 0, 0], dtype=np.int64),
        image_sizes=np.full((4, 2), 10, dtype=np.int64),
        object_class=objects[:, 0],
        object_area=objects[:, 1],
        object_image=objects[:, 2],
    )


# -- filtering and sorting ---------------------------------------------------------------------------
def test_rarity_scores_match_the_formula(stats: DatasetStats) -> None:
    weights = np.array([0.255 / (339 / 400), 0.255 / 0.1, 1.0])
    expected = np.array(
        [
            0.9 * weights[0] + 0.1 * weights[1],
            0.5 * weights[0] + 0.5 * weights[2],
            0.99 * weights[0] + 0.01 * weights[2],
            weights[0],
        ]
    )
    assert np.allclose(gallery.rarity_scores(stats), expected)


@pytest.mark.parametrize(
    ("sort_by", "class_id", "expected"),
    [
        ("index", None, [0, 1, 2, 3]),
        ("rarity", None, [1, 0, 2, 3]),  # half bike beats 10% car; pure background is last
        ("share", BIKE, [1, 2, 0, 3]),  # 50%, 1%, then the ties (0%) in dataset order
        ("share", CAR, [0, 1, 2, 3]),
        ("smallest_object", None, [2, 0, 1, 3]),  # 1 px bike, 10 px car, 20 px bike, no object
    ],
)
def test_order_samples_sorts(stats: DatasetStats, sort_by: str, class_id: int | None, expected: list[int]) -> None:
    assert gallery.order_samples(stats, sort_by=sort_by, class_id=class_id).tolist() == expected


def test_filter_keeps_only_images_containing_the_class(stats: DatasetStats) -> None:
    assert gallery.order_samples(stats, contains=BIKE).tolist() == [1, 2]
    assert gallery.order_samples(stats, contains=CAR).tolist() == [0]
    assert gallery.order_samples(stats, contains=BIKE, sort_by="smallest_object").tolist() == [2, 1]
    assert gallery.order_samples(stats, contains=BACKGROUND, sort_by="rarity").tolist() == [1, 0, 2, 3]


def test_order_samples_rejects_bad_options(stats: DatasetStats) -> None:
    with pytest.raises(ConfigError, match="unknown gallery sort"):
        gallery.order_samples(stats, sort_by="random")
    with pytest.raises(ConfigError, match="class to sort by"):
        gallery.order_samples(stats, sort_by="share")
    with pytest.raises(ConfigError, match="class filter"):
        gallery.order_samples(stats, contains=3)


def test_smallest_object_ignores_background(stats: DatasetStats) -> None:
    areas = gallery.smallest_object_areas(stats)
    assert areas[:3].tolist() == [10, 20, 1] and np.isinf(areas[3])


def test_paging() -> None:
    order = np.arange(25)
    assert gallery.page_count(0, 12) == 1 and gallery.page_count(24, 12) == 2 and gallery.page_count(25, 12) == 3
    assert gallery.page_items(order, 1, 12).tolist() == list(range(12))
    assert gallery.page_items(order, 3, 12).tolist() == [24]
    assert gallery.page_items(order, 99, 12).tolist() == [24]  # clamped to the last page
    assert gallery.page_items(np.arange(0), 1, 12).size == 0


def test_sort_choices_offer_the_fixed_orders_then_each_class(stats: DatasetStats) -> None:
    choices = gallery.sort_choices(["background", "circle"])
    assert choices == {
        "dataset order": ("index", None),
        "rarity score": ("rarity", None),
        "smallest object first": ("smallest_object", None),
        "share of background": ("share", 0),
        "share of circle": ("share", 1),
    }
    for sort_by, class_id in gallery.sort_choices(stats.class_names).values():
        assert sort_by in gallery.SORT_ORDERS
        gallery.order_samples(stats, sort_by=sort_by, class_id=class_id)  # every choice is a valid order


def test_filter_label_counts_the_images_holding_the_class(stats: DatasetStats) -> None:
    assert gallery.filter_label(stats, "bike") == "bike (2 images)"
    assert gallery.filter_label(stats, "car") == "car (1 images)"
    assert gallery.filter_label(stats, "all images") == "all images"


def test_open_at_shows_the_wanted_sample_on_its_page_else_the_first() -> None:
    ids = [f"s{i}" for i in range(30)]
    assert gallery.open_at(ids, "s25", 12) == ("s25", 3)
    assert gallery.open_at(ids, "s11", 12) == ("s11", 1)
    assert gallery.open_at(ids, "gone", 12) == ("s0", 1)  # filtered out or never chosen
    assert gallery.open_at(ids, None, 12) == ("s0", 1)
    assert gallery.open_at([], "s3", 12) == (None, 1)


def test_page_of_finds_the_page_showing_a_position() -> None:
    assert [gallery.page_of(position, 12) for position in (0, 11, 12, 25)] == [1, 1, 2, 3]
    order = np.arange(30)
    assert 25 in gallery.page_items(order, gallery.page_of(25, 12), 12)


def test_sample_class_table_lists_present_classes_by_pixels(stats: DatasetStats) -> None:
    rows = gallery.sample_class_table(stats, 1)
    assert [row["class"] for row in rows] == ["background", "bike"]  # tie: class order
    assert [row["pixels"] for row in rows] == [50, 50] and [row["objects"] for row in rows] == [1, 2]
    rows = gallery.sample_class_table(stats, 0)
    assert [(row["class"], row["share"]) for row in rows] == [("background", 0.9), ("car", 0.1)]


def test_sample_caption_shows_the_sort_value(stats: DatasetStats) -> None:
    assert gallery.sample_caption(stats, 1, "share", BIKE) == "b · bike 50.0%"
    assert gallery.sample_caption(stats, 2, "smallest_object") == "c · smallest object 1 px"
    assert gallery.sample_caption(stats, 3, "smallest_object") == "d · no objects"
    assert gallery.sample_caption(stats, 0) == "a · 2 classes"
    assert gallery.sample_caption(stats, 1, "rarity").startswith("b · rarity 0.6")


# -- thumbnails ----------------------------------------------------------------------------------------
def test_thumbnail_downscales_and_keeps_labels_exact() -> None:
    label_map = shapes_label_map()
    image = np.random.default_rng(0).integers(0, 256, (360, 480, 3), dtype=np.uint8)
    mask = np.zeros((360, 480), dtype=np.uint8)
    mask[100:200, 100:300] = 3
    mask[0:5] = 255
    small_image, small_mask = gallery.downscale_sample(image, mask, max_side=120)
    assert small_image.shape == (90, 120, 3) and small_mask.shape == (90, 120)
    assert set(np.unique(small_mask)) == {0, 3, 255}  # nearest: no invented label between 0 and 3
    plain = gallery.thumbnail(image, mask, label_map, opacity=0.0, outlines=False, max_side=120)
    assert np.array_equal(plain, small_image)
    outlined = gallery.thumbnail(image, mask, label_map, opacity=0.0, outlines=True, max_side=120)
    changed = (outlined != plain).any(axis=2)
    assert changed.any() and not changed[40:48, 40:70].any()  # only along the square's edges
    colored = gallery.thumbnail(image, mask, label_map, opacity=1.0, outlines=False, max_side=120)
    assert tuple(colored[40, 50]) == label_map.classes[3].color
    assert np.array_equal(colored[60:], small_image[60:])  # background left as it is by default
    tinted = gallery.thumbnail(image, mask, label_map, opacity=1.0, outlines=False, skip_background=False, max_side=120)
    assert tuple(tinted[80, 10]) == label_map.classes[0].color


def test_thumbnail_keeps_small_images_at_their_size() -> None:
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    thumb = gallery.thumbnail(image, np.zeros((64, 64), dtype=np.uint8), shapes_label_map(), max_side=192)
    assert thumb.shape == (64, 64, 3)


# -- object size figure --------------------------------------------------------------------------------
def test_object_size_figure_has_one_box_per_class_with_objects(stats: DatasetStats) -> None:
    label_map = shapes_label_map()
    figure = viz.object_size_figure(stats.object_class, stats.object_area, stats.class_names, label_map.colors[:3])
    assert [trace.type for trace in figure.data] == ["box", "box", "box"]
    assert [trace.name for trace in figure.data] == ["background", "car", "bike"]
    bike = figure.data[2]
    assert bike.median[0] == 20 and bike.lowerfence[0] == 1 and bike.upperfence[0] == 30
    assert bike.fillcolor == viz.to_hex(label_map.colors[2])
    assert figure.layout.yaxis.type == "log"
    assert list(figure.layout.xaxis.categoryarray) == stats.class_names
    without_car = viz.object_size_figure([0, 2], [5, 7], stats.class_names, label_map.colors[:3])
    assert [trace.name for trace in without_car.data] == ["background", "bike"]  # car keeps its slot, no box
    with pytest.raises(ValueError, match="object_area"):
        viz.object_size_figure([0, 1], [5], stats.class_names, label_map.colors[:3])


# -- lesson presets --------------------------------------------------------------------------------------
SMALL = ShapesConfig(image_size=64, train_size=4, val_size=24, test_size=4, seed=3)


def test_presets_are_valid_named_and_keep_sizes() -> None:
    names = [lesson.name for lesson in LESSONS]
    assert len(set(names)) == len(names) >= 6
    for lesson in LESSONS:
        config = lesson.apply(SMALL)
        assert isinstance(config, ShapesConfig)
        config.validate()
        assert all(getattr(config, name) == getattr(SMALL, name) for name in KEPT_FIELDS)
        assert lesson.lesson and "\n" not in lesson.lesson and len(lesson.lesson) < 200
        assert matching_lesson(config) is lesson
        assert lesson_by_name(lesson.name) is lesson


def test_presets_do_not_pile_up() -> None:
    noisy = lesson_by_name("Noisy labels").apply(SMALL)
    tiny = lesson_by_name("Tiny objects").apply(noisy)
    assert noisy.label_noise > 0 and tiny.label_noise == 0
    assert matching_lesson(ShapesConfig(image_size=64, label_noise=0.05)) is None
    with pytest.raises(ConfigError, match="Default"):
        lesson_by_name("Nope")


def _stats(config: ShapesConfig) -> DatasetStats:
    return compute_stats(ShapesDataset("val", config), use_cache=False)


def test_imbalance_presets_move_the_rare_classes() -> None:
    balanced = _stats(lesson_by_name("Balanced").apply(SMALL))
    extreme = _stats(lesson_by_name("Extreme imbalance (VOC-like)").apply(SMALL))
    rare = [SHAPE_NAMES.index("ring") + 1, SHAPE_NAMES.index("stripe") + 1]
    assert extreme.image_counts[rare].sum() < balanced.image_counts[rare].sum()
    assert extreme.pixel_fraction[rare].sum() < balanced.pixel_fraction[rare].sum()
    assert extreme.imbalance_ratio > balanced.imbalance_ratio


def test_tiny_objects_preset_shrinks_objects() -> None:
    default = _stats(lesson_by_name("Default").apply(SMALL))
    tiny = _stats(lesson_by_name("Tiny objects").apply(SMALL))
    assert np.median(tiny.object_area[tiny.object_class > 0]) < 0.5 * np.median(
        default.object_area[default.object_class > 0]
    )


def test_blur_preset_softens_images_not_masks() -> None:
    sharp = ShapesDataset("val", lesson_by_name("Default").apply(SMALL))
    blurry = ShapesDataset("val", lesson_by_name("Blurry boundaries").apply(SMALL))
    energy = {"sharp": 0.0, "blurry": 0.0}  # squared gradients: blur spreads each edge, lowering it
    for index in range(6):
        (sharp_image, sharp_mask), (blurry_image, blurry_mask) = sharp.load(index), blurry.load(index)
        assert np.array_equal(sharp_mask, blurry_mask)
        for name, image in (("sharp", sharp_image), ("blurry", blurry_image)):
            energy[name] += float((np.diff(image.astype(np.float32), axis=1) ** 2).sum())
    assert energy["blurry"] < 0.7 * energy["sharp"]


def test_noisy_labels_preset_corrupts_masks_only() -> None:
    clean = ShapesDataset("val", lesson_by_name("Default").apply(SMALL))
    noisy = ShapesDataset("val", lesson_by_name("Noisy labels").apply(SMALL))
    changed = 0
    for index in range(len(noisy)):
        (clean_image, clean_mask), (noisy_image, noisy_mask) = clean.load(index), noisy.load(index)
        assert np.array_equal(clean_image, noisy_image)
        changed += int((clean_mask != noisy_mask).any())
    assert changed >= 3


def _hue_spread(config: ShapesConfig, class_name: str) -> float:
    """Circular spread (0 = one hue, 1 = any hue) of the mean colour of each object of one class."""
    import colorsys

    data = ShapesDataset("val", config)
    class_id = SHAPE_NAMES.index(class_name) + 1
    angles = []
    for index in range(len(data)):
        image, mask = data.load(index)
        for item in data.sample_objects(index):
            if item["class_id"] == class_id and not item["tiny"] and not item["similar_color"] and item["area"] > 30:
                x0, y0, x1, y1 = item["bbox"]
                pixels = image[y0:y1, x0:x1][mask[y0:y1, x0:x1] == class_id]
                if len(pixels):
                    angles.append(2 * np.pi * colorsys.rgb_to_hsv(*(pixels.mean(axis=0) / 255.0))[0])
    assert len(angles) >= 5
    return 1.0 - float(np.abs(np.exp(1j * np.asarray(angles)).mean()))


@pytest.mark.slow
def test_shape_not_colour_preset_removes_the_colour_cue() -> None:
    typical = _hue_spread(lesson_by_name("Default").apply(SMALL), "circle")
    any_colour = _hue_spread(lesson_by_name("Shape, not colour").apply(SMALL), "circle")
    assert typical < 0.1 < 0.5 < any_colour


def test_encode_png_is_lossless() -> None:
    import cv2

    image = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    encoded = gallery.encode_png(image)
    assert encoded[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(decoded, image)
