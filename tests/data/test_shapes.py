"""Tests for seglab/data/shapes.py: the synthetic Shapes generator."""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import pytest

from seglab.data.base import SegmentationDataset
from seglab.data.shapes import CORRUPTIONS, SHAPE_NAMES, SPLITS, ShapesConfig, ShapesConfigError, ShapesDataset
from seglab.data.spec import DataSpec, build_dataset
from seglab.errors import DatasetError, SeglabError

SMALL = dict(image_size=64, train_size=40, val_size=20, test_size=20)


def small_dataset(split: str = "train", **options) -> ShapesDataset:
    return ShapesDataset(split, ShapesConfig(**{**SMALL, **options}))


def class_shares(dataset: ShapesDataset, count: int) -> np.ndarray:
    """Share of each class among labelled (non-void) pixels over the first ``count`` samples."""
    totals = np.zeros(256, dtype=np.int64)
    for index in range(count):
        totals += np.bincount(dataset.load(index)[1].ravel(), minlength=256)
    labelled = totals[: dataset.num_classes]
    return labelled / labelled.sum()


def object_reach(dataset: ShapesDataset, index: int) -> np.ndarray:
    """Pixels where corrupted objects of sample ``index`` may change the mask (outline grown by the
    largest corruption plus the void band)."""
    import cv2

    objects = dataset.sample_objects(index)
    reach = np.zeros(dataset.load(index)[1].shape, dtype=np.uint8)
    for description in objects:
        if description["corrupted"]:
            x0, y0, x1, y1 = description["drawn_bbox"]
            reach[y0:y1, x0:x1] = 1
    margin = 4 + dataset.config.void_border + 1
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    return cv2.dilate(reach, kernel).astype(bool)


# -- interface -----------------------------------------------------------------------------------
def test_load_returns_uint8_image_and_mask_of_the_configured_size():
    dataset = small_dataset()
    image, mask = dataset.load(3)
    assert isinstance(dataset, SegmentationDataset)
    assert image.dtype == np.uint8 and image.shape == (64, 64, 3)
    assert mask.dtype == np.uint8 and mask.shape == (64, 64)
    assert dataset.kind == "shapes" and dataset.split == "train"
    assert dataset.class_names == ["background", *SHAPE_NAMES]
    assert dataset.ignore_index == 255
    pair = dataset[3]
    assert np.array_equal(pair[0], image) and np.array_equal(pair[1], mask)


def test_split_sizes_and_ids_follow_the_config():
    config = ShapesConfig(**SMALL)
    for split, expected in zip(SPLITS, (40, 20, 20)):
        dataset = ShapesDataset(split, config)
        assert len(dataset) == expected
        assert dataset.ids[0] == f"{split}-000000" and dataset.ids[-1] == f"{split}-{expected - 1:06d}"
    assert ShapesDataset("train").ids[42] == "train-000042"
    assert small_dataset().index_of("train-000007") == 7


def test_unknown_split_raises_dataset_error_listing_valid_splits():
    with pytest.raises(DatasetError, match="train, val, test"):
        ShapesDataset("validation")


def test_index_out_of_range_raises_index_error():
    dataset = small_dataset("val")
    with pytest.raises(IndexError):
        dataset.load(20)
    with pytest.raises(IndexError):
        dataset.sample_objects(-21)
    assert np.array_equal(dataset.load(-1)[0], dataset.load(19)[0])


def test_masks_hold_only_class_ids_and_void():
    dataset = small_dataset(label_noise=0.3, void_border=2)
    values = np.unique(np.concatenate([dataset.load(index)[1].ravel() for index in range(20)]))
    assert set(values.tolist()) <= {0, 1, 2, 3, 4, 5, 6, 255}
    assert {0, 255} <= set(values.tolist())


# -- determinism -----------------------------------------------------------------------------------
def test_same_seed_and_index_give_identical_arrays():
    first = small_dataset(seed=7)
    second = small_dataset(seed=7)
    for index in (0, 5, 39):
        image_a, mask_a = first.load(index)
        image_b, mask_b = second.load(index)
        assert np.array_equal(image_a, image_b) and np.array_equal(mask_a, mask_b)
    assert np.array_equal(first.load(5)[0], first.load(5)[0])


def test_different_seed_or_index_gives_different_samples():
    base = small_dataset(seed=0)
    other = small_dataset(seed=1)
    assert not np.array_equal(base.load(0)[0], other.load(0)[0])
    assert not np.array_equal(base.load(0)[0], base.load(1)[0])


def test_splits_never_share_samples():
    digests = {}
    for split in SPLITS:
        dataset = small_dataset(split)
        digests[split] = {hashlib.sha256(dataset.load(i)[0].tobytes()).hexdigest() for i in range(len(dataset))}
        assert len(digests[split]) == len(dataset)
    assert not digests["train"] & digests["val"]
    assert not digests["train"] & digests["test"]
    assert not digests["val"] & digests["test"]


def test_growing_a_split_keeps_existing_samples():
    short = small_dataset(train_size=10)
    long = small_dataset(train_size=40)
    assert np.array_equal(short.load(9)[0], long.load(9)[0])


def test_fingerprint_tracks_config_and_split():
    dataset = small_dataset()
    assert dataset.fingerprint_parts()["config"] == dataset.config.to_dict()
    assert dataset.fingerprint_parts()["split"] == "train"
    assert dataset.fingerprint() == small_dataset().fingerprint()
    assert dataset.fingerprint() != small_dataset("val").fingerprint()
    assert dataset.fingerprint() != small_dataset(seed=3).fingerprint()


def test_dataset_keeps_its_own_copy_of_the_config():
    config = ShapesConfig(**SMALL)
    dataset = ShapesDataset("train", config)
    before = dataset.load(0)[0]
    config.seed = 99
    assert np.array_equal(dataset.load(0)[0], before)


def test_build_dataset_makes_shapes_from_a_data_spec():
    dataset = build_dataset(DataSpec(kind="shapes", split="val", shapes=ShapesConfig(**SMALL)))
    assert isinstance(dataset, ShapesDataset) and dataset.split == "val" and len(dataset) == 20


# -- content -----------------------------------------------------------------------------------
def test_void_border_present_iff_positive():
    with_band = small_dataset(void_border=1)
    without_band = small_dataset(void_border=0)
    assert any((with_band.load(i)[1] == 255).any() for i in range(5))
    assert not any((without_band.load(i)[1] == 255).any() for i in range(20))
    # the band lives on the mask only
    assert np.array_equal(with_band.load(0)[0], without_band.load(0)[0])


def test_void_band_straddles_object_edges():
    plain = small_dataset(void_border=0)
    banded = small_dataset(void_border=1)
    outside = inside = 0
    for index in range(10):
        void = banded.load(index)[1] == 255
        underneath = plain.load(index)[1][void]
        outside += int(np.count_nonzero(underneath == 0))
        inside += int(np.count_nonzero(underneath > 0))
    assert outside > 0 and inside > 0
    # a wider band covers more pixels
    wide = small_dataset(void_border=3)
    assert (wide.load(0)[1] == 255).sum() > (banded.load(0)[1] == 255).sum()


def test_void_band_never_erases_a_tiny_object():
    dataset = small_dataset(tiny_object_probability=1.0, void_border=4, min_objects=3, max_objects=6)
    checked = 0
    for index in range(20):
        mask = dataset.load(index)[1]
        plain = dataset.clean_mask(index)
        for description in dataset.sample_objects(index):
            if description["area"] == 0:
                continue
            x0, y0, x1, y1 = description["bbox"]
            assert (mask[y0:y1, x0:x1] == description["class_id"]).any(), (index, description)
            assert (plain[y0:y1, x0:x1] == description["class_id"]).any()
            checked += 1
    assert checked > 40


def test_sample_objects_areas_add_up_to_the_labelled_pixels():
    dataset = small_dataset(void_border=0)
    for index in range(10):
        objects = dataset.sample_objects(index)
        mask = dataset.load(index)[1]
        assert dataset.config.min_objects <= len(objects) <= dataset.config.max_objects
        assert sum(o["area"] for o in objects) == np.count_nonzero(mask)
        for description in objects:
            assert description["class_name"] == SHAPE_NAMES[description["class_id"] - 1]
            assert description["corrupted"] is False and description["corruption"] is None
            if description["area"]:
                x0, y0, x1, y1 = description["bbox"]
                assert (mask[y0:y1, x0:x1] == description["class_id"]).sum() >= 1


def test_later_objects_occlude_earlier_ones():
    dataset = small_dataset(void_border=0, min_objects=8, max_objects=8, difficulty=1.0)
    occluded = 0
    for index in range(20):
        objects = dataset.sample_objects(index)
        assert all(o["area"] <= o["drawn_area"] for o in objects)
        occluded += sum(o["area"] < o["drawn_area"] for o in objects[:-1])
        assert objects[-1]["area"] == objects[-1]["drawn_area"]  # nothing lies on top of the last one
    assert occluded > 0


@pytest.mark.slow
def test_imbalance_with_default_settings_is_like_voc():
    shares = class_shares(ShapesDataset("train"), 300)
    assert shares[0] > 0.70, shares
    assert shares[1:].min() < 0.01, shares
    assert (shares[1:] > 0).all()


def test_class_frequencies_shift_pixel_shares():
    default = class_shares(small_dataset(), 40)
    more_stripes = class_shares(small_dataset(class_frequencies=(1, 1, 1, 1, 1, 10)), 40)
    no_circles = class_shares(small_dataset(class_frequencies=(0, 1, 1, 1, 1, 1)), 40)
    assert more_stripes[6] > 2 * default[6]
    assert no_circles[1] == 0 and default[1] > 0


def test_object_scale_grows_objects():
    small = class_shares(small_dataset(object_scale=0.6), 30)
    large = class_shares(small_dataset(object_scale=1.5), 30)
    assert large[0] < small[0]


def test_boundary_blur_changes_the_image_but_never_the_mask():
    sharp = small_dataset(boundary_blur=0.0)
    soft = small_dataset(boundary_blur=2.0)
    assert np.array_equal(sharp.load(2)[1], soft.load(2)[1])
    assert not np.array_equal(sharp.load(2)[0], soft.load(2)[0])


def test_difficulty_and_background_noise_roughen_the_background():
    calm = small_dataset(background_noise=0.0, difficulty=0.0)
    busy = small_dataset(background_noise=1.0, difficulty=1.0)

    def roughness(dataset: ShapesDataset) -> float:
        values = []
        for index in range(10):
            image, mask = dataset.load(index)
            step = np.abs(np.diff(image.astype(np.int16), axis=1)).sum(axis=2)
            values.append(step[mask[:, 1:] == 0].mean())
        return float(np.mean(values))

    assert roughness(busy) > 2 * roughness(calm)


def test_background_saturation_bounds_how_colourful_backgrounds_are():
    def saturation_of_background(dataset: ShapesDataset) -> np.ndarray:
        values = []
        for index in range(10):
            image, mask = dataset.load(index)
            pixels = image[mask == 0].astype(np.float32)
            brightest = pixels.max(axis=1)
            values.append((brightest - pixels.min(axis=1)) / np.maximum(brightest, 1.0))
        return np.concatenate(values)

    dull = saturation_of_background(small_dataset(background_saturation=0.25, background_noise=0.0))
    vivid = saturation_of_background(small_dataset(background_saturation=1.0, background_noise=0.0))
    assert np.quantile(dull, 0.99) <= 0.27  # the bound, plus rounding to uint8
    assert np.quantile(vivid, 0.9) > 0.4


# -- label noise -------------------------------------------------------------------------------
def test_no_label_noise_means_mask_equals_clean_mask():
    dataset = small_dataset(label_noise=0.0)
    for index in range(10):
        assert np.array_equal(dataset.load(index)[1], dataset.clean_mask(index))
        assert not any(o["corrupted"] for o in dataset.sample_objects(index))


def test_label_noise_never_changes_the_image_or_the_clean_mask():
    clean = small_dataset(label_noise=0.0)
    noisy = small_dataset(label_noise=0.5)
    for index in range(5):
        assert np.array_equal(clean.load(index)[0], noisy.load(index)[0])
        assert np.array_equal(clean.load(index)[1], noisy.clean_mask(index))


def test_label_noise_is_reported_and_confined_to_corrupted_objects():
    dataset = small_dataset(label_noise=0.5, void_border=1)
    kinds = set()
    corrupted_samples = 0
    for index in range(30):
        mask, clean = dataset.load(index)[1], dataset.clean_mask(index)
        objects = dataset.sample_objects(index)
        different = mask != clean
        corrupted = [o for o in objects if o["corrupted"]]
        if not corrupted:
            assert not different.any()
            continue
        corrupted_samples += 1
        assert different.any()
        assert not (different & ~object_reach(dataset, index)).any()
        for description in corrupted:
            assert description["corruption"] in CORRUPTIONS and description["changed_pixels"] > 0
            kinds.add(description["corruption"])
            if description["corruption"] == "flip":
                assert description["label_id"] != description["class_id"]
                assert 1 <= description["label_id"] <= 6
                x0, y0, x1, y1 = description["bbox"]
                assert (mask[y0:y1, x0:x1] == description["label_id"]).any()
            else:
                assert description["label_id"] == description["class_id"]
        for description in objects:
            if not description["corrupted"]:
                assert description["corruption"] is None and description["changed_pixels"] == 0
    assert corrupted_samples >= 10
    assert kinds == set(CORRUPTIONS)


def test_label_noise_fraction_roughly_matches_the_setting():
    dataset = small_dataset(label_noise=0.3, tiny_object_probability=0.0, train_size=60)
    objects = [o for index in range(60) for o in dataset.sample_objects(index) if o["area"] > 50]
    fraction = np.mean([o["corrupted"] for o in objects])
    assert 0.15 < fraction < 0.45, fraction


# -- config ------------------------------------------------------------------------------------
def test_config_round_trips_through_json():
    config = ShapesConfig(image_size=96, seed=5, class_frequencies=(1, 2, 3, 4, 5, 6), label_noise=0.1)
    data = json.loads(json.dumps(config.to_dict()))
    assert data["class_frequencies"] == [1, 2, 3, 4, 5, 6]
    assert ShapesConfig.from_dict(data) == config
    assert ShapesConfig.from_dict(ShapesConfig().to_dict()) == ShapesConfig()


def test_config_accepts_a_list_of_frequencies():
    assert ShapesConfig(class_frequencies=[1, 1, 1, 1, 1, 1]).class_frequencies == (1.0,) * 6


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"image_size": 0}, "image_size"),
        ({"image_size": 64.5}, "image_size"),
        ({"train_size": 0}, "train_size"),
        ({"val_size": -3}, "val_size"),
        ({"seed": -1}, "seed"),
        ({"min_objects": 4, "max_objects": 2}, "max_objects"),
        ({"void_border": -1}, "void_border"),
        ({"class_frequencies": (1, 1, 1)}, "6 weights"),
        ({"class_frequencies": (1, 1, 1, 1, -1, 1)}, "non-negative"),
        ({"class_frequencies": (0, 0, 0, 0, 0, 0)}, "positive sum"),
        ({"tiny_object_probability": 1.5}, r"tiny_object_probability must be a number in \[0.0, 1.0\]"),
        ({"label_noise": -0.1}, "label_noise"),
        ({"similar_color_probability": 2}, "similar_color_probability"),
        ({"difficulty": "hard"}, "difficulty"),
        ({"object_scale": 0}, "object_scale"),
        ({"boundary_blur": -1}, "boundary_blur"),
    ],
)
def test_invalid_config_values_raise_errors_naming_the_option(options, message):
    with pytest.raises(DatasetError, match=message):
        ShapesConfig(**options)


def test_from_dict_rejects_unknown_options_and_bad_frequencies():
    with pytest.raises(DatasetError, match="unknown Shapes option.*colour"):
        ShapesConfig.from_dict({"colour": 1})
    with pytest.raises(DatasetError, match="class_frequencies"):
        ShapesConfig.from_dict({"class_frequencies": "many"})


def test_config_errors_are_dataset_errors_and_value_errors():
    with pytest.raises(ValueError, match="image_size"):
        ShapesConfig(image_size=-5)
    with pytest.raises(ShapesConfigError):
        ShapesConfig.from_dict({"nope": 1})


def test_from_dict_accepts_comma_separated_frequencies():
    config = ShapesConfig.from_dict({"class_frequencies": "1, 2,3,4,5,6"})
    assert config.class_frequencies == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)


def test_config_edited_after_creation_is_checked_by_the_dataset():
    config = ShapesConfig(**SMALL)
    config.label_noise = 3.0
    with pytest.raises(SeglabError, match="label_noise"):
        ShapesDataset("train", config)


# -- cache and speed -------------------------------------------------------------------------------
def test_cache_hands_out_copies_equal_to_fresh_generation():
    cached = small_dataset()
    uncached = ShapesDataset("train", ShapesConfig(**SMALL), cache_megabytes=0)
    image, mask = cached.load(4)
    image[:] = 0
    mask[:] = 9
    again_image, again_mask = cached.load(4)
    fresh_image, fresh_mask = uncached.load(4)
    assert np.array_equal(again_image, fresh_image) and np.array_equal(again_mask, fresh_mask)
    assert again_image.any()


# -- speed -------------------------------------------------------------------------------------
def test_generation_is_fast():
    dataset = ShapesDataset("train", ShapesConfig(train_size=100), cache_megabytes=0)
    dataset.load(0)
    start = time.process_time()
    for index in range(100):
        dataset.load(index)
    # ~0.2 s on an idle core; the bound only catches per-pixel Python loops (100x slower).
    assert time.process_time() - start < 3.0
