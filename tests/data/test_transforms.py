"""Tests for seglab/data transforms, presets, loading, normalization: label safety, geometry, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from seglab.data.base import SegmentationDataset
from seglab.data.label_map import shapes_label_map
from seglab.data.loading import AugmentedDataset
from seglab.data.normalization import IMAGENET_MEAN, IMAGENET_STD, denormalize
from seglab.data.presets import eval_transform, train_transform
from seglab.data.transforms import (
    ColorJitter,
    Compose,
    Normalize,
    PadToMultiple,
    RandomCrop,
    RandomHorizontalFlip,
    RandomScale,
    RandomVerticalFlip,
    Resize,
    ToTensor,
    crop_to_original,
)
from seglab.errors import ConfigError, DatasetError

PROPERTY = settings(max_examples=50, deadline=None, derandomize=True)
IGNORE_INDICES = (11, 255)


@st.composite
def samples(draw, max_side: int = 24) -> tuple[np.ndarray, np.ndarray, int]:
    """A small random (image, mask, seed); masks use a few class ids and sometimes void (11 or 255)."""
    height = draw(st.integers(1, max_side))
    width = draw(st.integers(1, max_side))
    labels = draw(st.lists(st.sampled_from([0, 1, 2, 3, 6, 11, 255]), min_size=1, max_size=4, unique=True))
    seed = draw(st.integers(0, 2**32 - 1))
    generator = np.random.default_rng(seed)
    image = generator.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = generator.choice(np.array(labels, dtype=np.uint8), size=(height, width))
    return image, mask, seed


def numpy_transforms(ignore_index: int) -> list:
    """One of every numpy-stage transform, configured with ``ignore_index``."""
    return [
        RandomScale(min_scale=0.5, max_scale=2.0, ignore_index=ignore_index),
        RandomCrop(size=9, ignore_index=ignore_index),
        RandomCrop(size=(7, 13), ignore_index=ignore_index, cat_max_ratio=0.75),
        RandomHorizontalFlip(p=0.5),
        RandomVerticalFlip(p=0.5),
        ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1),
        Resize(size=10, ignore_index=ignore_index),
        Resize(size=(5, 17), ignore_index=ignore_index),
        PadToMultiple(multiple=8, ignore_index=ignore_index),
    ]


TRANSFORM_CASES = [
    pytest.param(transform, ignore_index, id=f"{type(transform).__name__}-{position}-ignore{ignore_index}")
    for ignore_index in IGNORE_INDICES
    for position, transform in enumerate(numpy_transforms(ignore_index))
]


def values(mask: np.ndarray | torch.Tensor) -> set[int]:
    return {int(value) for value in np.unique(np.asarray(mask))}


# -- every transform: labels stay labels, sizes stay paired, inputs stay untouched ----------------
@pytest.mark.parametrize(("transform", "ignore_index"), TRANSFORM_CASES)
@PROPERTY
@given(sample=samples())
def test_every_transform_keeps_a_valid_label_set_and_paired_sizes(transform, ignore_index, sample) -> None:
    image, mask, seed = sample
    image_before, mask_before = image.copy(), mask.copy()
    out_image, out_mask = transform(image, mask, np.random.default_rng(seed))
    assert out_image.dtype == np.uint8 and out_mask.dtype == np.uint8
    assert out_image.ndim == 3 and out_image.shape[2] == 3
    assert out_image.shape[:2] == out_mask.shape
    assert values(out_mask) <= values(mask) | {ignore_index}
    np.testing.assert_array_equal(image, image_before)  # inputs are never modified in place
    np.testing.assert_array_equal(mask, mask_before)


@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
@PROPERTY
@given(sample=samples())
def test_scaling_is_nearest_and_never_invents_labels(ignore_index, sample) -> None:
    image, mask, seed = sample
    mask[:, ::2] = 1  # adjacent 1 / 3 columns: any interpolation would create a 2
    mask[:, 1::2] = 3
    for transform in (
        RandomScale(min_scale=0.3, max_scale=3.0, ignore_index=ignore_index),
        Resize(size=(31, 7), ignore_index=ignore_index),
    ):
        _, out_mask = transform(image, mask, np.random.default_rng(seed))
        assert values(out_mask) <= values(mask)


@PROPERTY
@given(sample=samples(), scale=st.floats(0.25, 3.0))
def test_random_scale_output_size_follows_the_drawn_factor(sample, scale) -> None:
    image, mask, seed = sample
    out_image, out_mask = RandomScale(min_scale=scale, max_scale=scale)(image, mask, np.random.default_rng(seed))
    assert out_mask.shape == (max(1, round(mask.shape[0] * scale)), max(1, round(mask.shape[1] * scale)))
    assert out_image.shape[:2] == out_mask.shape


def test_resize_int_sets_the_shorter_side() -> None:
    image = np.zeros((40, 100, 3), np.uint8)
    mask = np.zeros((40, 100), np.uint8)
    out_image, out_mask = Resize(size=20)(image, mask, np.random.default_rng(0))
    assert out_mask.shape == (20, 50) and out_image.shape == (20, 50, 3)


# -- crop and padding -------------------------------------------------------------------------------
@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
@PROPERTY
@given(sample=samples(max_side=12), crop_height=st.integers(1, 16), crop_width=st.integers(1, 16))
def test_crop_has_exactly_the_crop_size_even_for_tiny_inputs(ignore_index, sample, crop_height, crop_width) -> None:
    image, mask, seed = sample
    crop = RandomCrop(size=(crop_height, crop_width), ignore_index=ignore_index)
    out_image, out_mask = crop(image, mask, np.random.default_rng(seed))
    assert out_mask.shape == (crop_height, crop_width)
    assert out_image.shape == (crop_height, crop_width, 3)


@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
def test_crop_pads_bottom_right_with_ignore_index_and_image_fill(ignore_index) -> None:
    image = np.full((2, 3, 3), 7, np.uint8)
    mask = np.array([[0, 1, 2], [3, 4, 5]], np.uint8)
    crop = RandomCrop(size=8, ignore_index=ignore_index, image_fill=(124, 116, 104))
    out_image, out_mask = crop(image, mask, np.random.default_rng(0))
    np.testing.assert_array_equal(out_mask[:2, :3], mask)  # smaller than the crop: the crop is the padded canvas
    assert (out_mask[2:, :] == ignore_index).all() and (out_mask[:, 3:] == ignore_index).all()
    assert (out_mask == ignore_index).sum() == 64 - 6
    assert (out_image[:2, :3] == 7).all()
    np.testing.assert_array_equal(out_image[5, 5], [124, 116, 104])


def test_crop_only_pads_the_short_side() -> None:
    image = np.zeros((4, 30, 3), np.uint8)
    mask = np.zeros((4, 30), np.uint8)
    for seed in range(20):
        _, out_mask = RandomCrop(size=10, ignore_index=11)(image, mask, np.random.default_rng(seed))
        assert (out_mask[:4] == 0).all() and (out_mask[4:] == 11).all()


def test_cat_max_ratio_prefers_crops_where_no_class_dominates() -> None:
    mask = np.zeros((64, 64), np.uint8)
    mask[:16, :16] = 1  # a small object in a sea of background
    image = np.zeros((64, 64, 3), np.uint8)

    def balanced_crops(crop: RandomCrop) -> int:
        balanced = 0
        for seed in range(200):
            _, out_mask = crop(image, mask, np.random.default_rng(seed))
            counts = np.bincount(out_mask.ravel(), minlength=2)
            balanced += counts.max() / counts.sum() < 0.75
        return balanced

    plain = balanced_crops(RandomCrop(size=24, ignore_index=255))
    retried = balanced_crops(RandomCrop(size=24, ignore_index=255, cat_max_ratio=0.75))
    assert retried > 2 * plain > 0


def rare_object_scene() -> tuple[np.ndarray, np.ndarray]:
    """A 3x3 object of class 2 in a corner of a 96x96 scene of classes 0 and 1 (void stripe on the right)."""
    mask = np.zeros((96, 96), np.uint8)
    mask[48:] = 1
    mask[:, 90:] = 255
    mask[85:88, 3:6] = 2
    image = np.dstack([mask, mask, mask]).astype(np.uint8)
    return image, mask


def test_rare_class_crops_centre_on_rare_pixels_in_the_requested_share() -> None:
    image, mask = rare_object_scene()
    focus = [0.1, 0.1, 5.0]  # class 2 is drawn 50x as often as 0 or 1 when present

    def crops_with_rare_class(probability: float) -> int:
        crop = RandomCrop(size=24, ignore_index=255, class_focus=focus, focus_probability=probability)
        found = 0
        for seed in range(200):
            out_image, out_mask = crop(image, mask, np.random.default_rng(seed))
            assert out_mask.shape == (24, 24) and (out_image[..., 0] == out_mask).all()  # image and mask stay paired
            found += bool((out_mask == 2).any())
        return found

    uniform, half, always = crops_with_rare_class(0.0), crops_with_rare_class(0.5), crops_with_rare_class(1.0)
    assert uniform < 30  # a 24 px crop rarely covers a 3x3 object in a corner
    assert always >= 190  # the class weight 50x the others': nearly every focused crop is on it
    assert uniform + 50 < half < always


def test_rare_class_crops_never_pick_void_or_absent_classes_and_are_deterministic() -> None:
    image, mask = rare_object_scene()
    mask[mask == 2] = 0  # the rare class is absent now: crops fall back to the other classes' weights
    crop = RandomCrop(size=24, ignore_index=255, class_focus=[0.0, 1.0, 9.0], focus_probability=1.0)
    for seed in range(50):
        _, out_mask = crop(image, mask, np.random.default_rng(seed))
        assert (out_mask == 1).any()  # centred on class 1, the only present class with weight > 0
        again = crop(image, mask, np.random.default_rng(seed))[1]
        assert (again == out_mask).all()
    only_void = np.full((96, 96), 255, np.uint8)
    _, out_mask = crop(image, only_void, np.random.default_rng(0))  # nothing to focus on: a plain random crop
    assert out_mask.shape == (24, 24)


@pytest.mark.parametrize("focus", [[1.0, -1.0], [np.nan, 1.0], [[1.0]]])
def test_rare_class_crop_weights_must_be_finite_and_non_negative(focus) -> None:
    with pytest.raises(ConfigError, match="class_focus"):
        RandomCrop(size=8, ignore_index=255, class_focus=focus, focus_probability=0.5)


@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
@PROPERTY
@given(sample=samples(max_side=40), multiple=st.sampled_from([1, 4, 8, 16, 32]))
def test_pad_to_multiple_pads_bottom_right_with_ignore(ignore_index, sample, multiple) -> None:
    image, mask, seed = sample
    height, width = mask.shape
    out_image, out_mask = PadToMultiple(multiple=multiple, ignore_index=ignore_index)(
        image, mask, np.random.default_rng(seed)
    )
    assert out_mask.shape[0] % multiple == 0 and out_mask.shape[1] % multiple == 0
    assert height <= out_mask.shape[0] < height + multiple and width <= out_mask.shape[1] < width + multiple
    np.testing.assert_array_equal(crop_to_original(out_mask, mask.shape), mask)
    np.testing.assert_array_equal(out_image[:height, :width], image)
    assert (out_mask[height:] == ignore_index).all() and (out_mask[:, width:] == ignore_index).all()


# -- flips ------------------------------------------------------------------------------------------
@PROPERTY
@given(sample=samples())
def test_flips_are_exact(sample) -> None:
    image, mask, seed = sample
    rng = np.random.default_rng(seed)
    flipped_image, flipped_mask = RandomHorizontalFlip(p=1.0)(image, mask, rng)
    np.testing.assert_array_equal(flipped_image, image[:, ::-1])
    np.testing.assert_array_equal(flipped_mask, mask[:, ::-1])
    flipped_image, flipped_mask = RandomVerticalFlip(p=1.0)(image, mask, rng)
    np.testing.assert_array_equal(flipped_image, image[::-1])
    np.testing.assert_array_equal(flipped_mask, mask[::-1])
    for never in (RandomHorizontalFlip(p=0.0), RandomVerticalFlip(p=0.0)):
        same_image, same_mask = never(image, mask, rng)
        np.testing.assert_array_equal(same_image, image)
        np.testing.assert_array_equal(same_mask, mask)


@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
@PROPERTY
@given(sample=samples())
def test_geometry_is_applied_jointly(ignore_index, sample) -> None:
    """The red channel is a copy of the mask, so it must still equal the mask after crop + flips."""
    image, mask, seed = sample
    image[..., 0] = mask
    pipeline = Compose(
        [
            RandomCrop(size=(10, 14), ignore_index=ignore_index, image_fill=(ignore_index, 0, 0)),
            RandomHorizontalFlip(p=0.5),
            RandomVerticalFlip(p=0.5),
            PadToMultiple(multiple=8, ignore_index=ignore_index, image_fill=(ignore_index, 0, 0)),
        ]
    )
    out_image, out_mask = pipeline(image, mask, np.random.default_rng(seed))
    np.testing.assert_array_equal(out_image[..., 0], out_mask)


def test_flips_happen_about_p_of_the_time() -> None:
    image = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    mask = np.array([[0, 1]], np.uint8)
    flips = sum(
        RandomHorizontalFlip(p=0.3)(image, mask, np.random.default_rng(seed))[1][0, 0] == 1 for seed in range(1000)
    )
    assert 240 < flips < 360


# -- colour -----------------------------------------------------------------------------------------
@PROPERTY
@given(sample=samples())
def test_color_jitter_never_touches_the_mask(sample) -> None:
    image, mask, seed = sample
    jitter = ColorJitter(brightness=0.8, contrast=0.8, saturation=0.8, hue=0.5)
    out_image, out_mask = jitter(image, mask, np.random.default_rng(seed))
    assert out_mask is mask
    assert out_image.shape == image.shape and out_image.dtype == np.uint8


def test_color_jitter_changes_colours_and_zero_jitter_is_identity() -> None:
    image = np.random.default_rng(0).integers(30, 220, (16, 16, 3), dtype=np.uint8)
    mask = np.zeros((16, 16), np.uint8)
    for option in ("brightness", "contrast", "saturation", "hue"):
        jitter = ColorJitter(**{option: 0.5 if option != "hue" else 0.2})
        changed = [not np.array_equal(jitter(image, mask, np.random.default_rng(seed))[0], image) for seed in range(5)]
        assert any(changed), option
    same, _ = ColorJitter()(image, mask, np.random.default_rng(0))
    np.testing.assert_array_equal(same, image)


def test_brightness_scales_pixels() -> None:
    image = np.full((4, 4, 3), 100, np.uint8)
    mask = np.zeros((4, 4), np.uint8)
    rng = np.random.default_rng(3)
    factor = np.random.default_rng(3).uniform(0.5, 1.5)
    out_image, _ = ColorJitter(brightness=0.5)(image, mask, rng)
    assert abs(int(out_image[0, 0, 0]) - 100 * factor) <= 1


# -- tensors ----------------------------------------------------------------------------------------
def test_to_tensor_dtypes_shapes_and_values() -> None:
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    mask = np.full((5, 7), 11, np.uint8)
    image_tensor, mask_tensor = ToTensor()(image, mask, np.random.default_rng(0))
    assert image_tensor.dtype == torch.float32 and image_tensor.shape == (3, 5, 7) and image_tensor.is_contiguous()
    assert mask_tensor.dtype == torch.int64 and mask_tensor.shape == (5, 7)
    torch.testing.assert_close(image_tensor, torch.from_numpy(image).permute(2, 0, 1).float() / 255)
    assert (mask_tensor == 11).all()


@PROPERTY
@given(sample=samples(), mean=st.sampled_from([IMAGENET_MEAN, (0.5, 0.5, 0.5)]))
def test_normalize_denormalize_round_trip_within_one_grey_level(sample, mean) -> None:
    image, mask, seed = sample
    std = IMAGENET_STD if mean == IMAGENET_MEAN else (0.25, 0.5, 1.0)
    pipeline = Compose([ToTensor(), Normalize(mean=mean, std=std)])
    image_tensor, _ = pipeline(image, mask, np.random.default_rng(seed))
    restored = denormalize(image_tensor, mean, std)
    assert restored.dtype == np.uint8 and restored.shape == image.shape
    assert np.abs(restored.astype(int) - image.astype(int)).max() <= 1


def test_normalize_uses_mean_and_std() -> None:
    image = np.full((2, 2, 3), 255, np.uint8)
    image_tensor, _ = Compose([ToTensor(), Normalize()])(image, np.zeros((2, 2), np.uint8), np.random.default_rng(0))
    expected = torch.tensor([(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])
    torch.testing.assert_close(image_tensor[:, 0, 0], expected)


# -- pipelines --------------------------------------------------------------------------------------
@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
@PROPERTY
@given(sample=samples(max_side=40))
def test_train_pipeline_gives_crop_sized_tensors_with_valid_labels(ignore_index, sample) -> None:
    image, mask, seed = sample
    pipeline = train_transform(crop_size=16, vflip=0.5, color_jitter=0.4, cat_max_ratio=0.75, ignore_index=ignore_index)
    image_tensor, mask_tensor = pipeline(image, mask, np.random.default_rng(seed))
    assert image_tensor.shape == (3, 16, 16) and image_tensor.dtype == torch.float32
    assert mask_tensor.shape == (16, 16) and mask_tensor.dtype == torch.int64
    assert values(mask_tensor) <= values(mask) | {ignore_index}


@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
def test_train_pipeline_pads_with_ignore_and_mean_colour(ignore_index) -> None:
    image = np.full((5, 5, 3), 200, np.uint8)
    mask = np.zeros((5, 5), np.uint8)
    pipeline = train_transform(crop_size=12, scale_range=(1.0, 1.0), hflip=0.0, ignore_index=ignore_index)
    image_tensor, mask_tensor = pipeline(image, mask, np.random.default_rng(0))
    assert (mask_tensor[:5, :5] == 0).all() and (mask_tensor[5:] == ignore_index).all()
    assert image_tensor[:, 5:].abs().max() < 0.01  # the mean colour normalises to ~0


def test_train_pipeline_is_deterministic_given_the_seed() -> None:
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    mask = np.random.default_rng(1).integers(0, 4, (40, 50), dtype=np.uint8)
    pipeline = train_transform(crop_size=24, vflip=0.5, color_jitter=0.5)
    first = pipeline(image, mask, np.random.default_rng(42))
    again = pipeline(image, mask, np.random.default_rng(42))
    other = pipeline(image, mask, np.random.default_rng(43))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
@PROPERTY
@given(sample=samples(max_side=40), multiple=st.sampled_from([8, 16, 32]))
def test_eval_pipeline_pads_to_multiples_and_crops_back_exactly(ignore_index, sample, multiple) -> None:
    image, mask, seed = sample
    pipeline = eval_transform(pad_multiple=multiple, ignore_index=ignore_index)
    image_tensor, mask_tensor = pipeline(image, mask, np.random.default_rng(seed))
    assert image_tensor.shape[1] % multiple == 0 and image_tensor.shape[2] % multiple == 0
    assert mask_tensor.shape == image_tensor.shape[1:]
    np.testing.assert_array_equal(crop_to_original(mask_tensor, mask.shape).numpy(), mask)
    restored = denormalize(crop_to_original(image_tensor, mask.shape))
    assert np.abs(restored.astype(int) - image.astype(int)).max() <= 1
    height, width = mask.shape
    assert (mask_tensor[height:] == ignore_index).all() and (mask_tensor[:, width:] == ignore_index).all()


def test_eval_pipeline_resize_and_no_padding() -> None:
    image = np.zeros((30, 45, 3), np.uint8)
    mask = np.zeros((30, 45), np.uint8)
    image_tensor, mask_tensor = eval_transform(resize=(20, 25), pad_multiple=8)(image, mask, np.random.default_rng(0))
    assert image_tensor.shape == (3, 24, 32) and mask_tensor.shape == (24, 32)
    image_tensor, _ = eval_transform(pad_multiple=0)(image, mask, np.random.default_rng(0))
    assert image_tensor.shape == (3, 30, 45)


def test_crop_to_original_works_on_batches_and_rejects_smaller_predictions() -> None:
    logits = torch.zeros(2, 5, 16, 32)
    assert crop_to_original(logits, (10, 30)).shape == (2, 5, 10, 30)
    with pytest.raises(ValueError, match="smaller"):
        crop_to_original(logits, (17, 30))


# -- errors and repr ------------------------------------------------------------------------------
def test_bad_options_raise_config_error() -> None:
    with pytest.raises(ConfigError):
        RandomCrop(size=0, ignore_index=255)
    with pytest.raises(ConfigError, match="ignore_index"):
        PadToMultiple(multiple=16, ignore_index=300)
    with pytest.raises(ConfigError):
        RandomScale(min_scale=2.0, max_scale=1.0)
    with pytest.raises(ConfigError):
        RandomHorizontalFlip(p=1.5)
    with pytest.raises(ConfigError, match="hue"):
        ColorJitter(hue=0.7)
    with pytest.raises(ConfigError):
        Normalize(std=(0.0, 1.0, 1.0))


def test_wrong_order_and_mismatched_pairs_are_clear_errors() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ConfigError, match="ToTensor"):
        Compose([Normalize(), ToTensor()])(image, np.zeros((4, 4), np.uint8), np.random.default_rng(0))
    with pytest.raises(DatasetError, match="4x4.*4x5"):
        Compose([ToTensor()])(image, np.zeros((4, 5), np.uint8), np.random.default_rng(0))


def test_repr_shows_options() -> None:
    assert repr(RandomCrop(size=96, ignore_index=11)) == (
        "RandomCrop(size=(96, 96), ignore_index=11, image_fill=(124, 116, 104), cat_max_ratio=None, "
        "focus_probability=0.0, class_focus=None)"
    )
    pipeline_text = repr(train_transform(ignore_index=11, color_jitter=0.4))
    assert "RandomScale(min_scale=0.5, max_scale=2.0, ignore_index=11)" in pipeline_text
    assert "ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)" in pipeline_text
    assert "Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))" in pipeline_text


# -- AugmentedDataset -------------------------------------------------------------------------------
class FakeDataset(SegmentationDataset):
    """Six deterministic random samples with Shapes classes; no files."""

    kind = "fake"

    def __init__(self, size: int = 6) -> None:
        self.label_map = shapes_label_map()
        self.ids = [f"sample-{index}" for index in range(size)]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        generator = np.random.default_rng(index)
        image = generator.integers(0, 256, (20 + index, 30, 3), dtype=np.uint8)
        mask = generator.integers(0, self.label_map.num_classes, (20 + index, 30), dtype=np.uint8)
        return image, mask

    def fingerprint_parts(self) -> list[str]:
        return self.ids


def augmented(seed: int = 0, **options) -> AugmentedDataset:
    return AugmentedDataset(
        FakeDataset(), train_transform(crop_size=16, vflip=0.5, color_jitter=0.3), seed=seed, **options
    )


def test_augmented_dataset_is_deterministic_per_seed_and_epoch() -> None:
    first, second = augmented(seed=5), augmented(seed=5)
    for index in range(len(first)):
        image_a, mask_a = first[index]
        image_b, mask_b = second[index]
        assert torch.equal(image_a, image_b) and torch.equal(mask_a, mask_b)
    before = first[2]
    first.set_epoch(1)
    assert not torch.equal(first[2][0], before[0])
    first.set_epoch(0)
    assert torch.equal(first[2][0], before[0])
    assert not torch.equal(augmented(seed=6)[2][0], before[0])


def test_augmented_dataset_does_not_depend_on_worker_scheduling() -> None:
    dataset = augmented(seed=3, return_index=True)
    dataset.set_epoch(2)
    expected = {index: dataset[index] for index in range(len(dataset))}
    loader = DataLoader(dataset, batch_size=2, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(0))
    seen = 0
    for images, masks, indices in loader:
        for image, mask, index in zip(images, masks, indices.tolist()):
            assert torch.equal(image, expected[index][0]) and torch.equal(mask, expected[index][1])
            seen += 1
    assert seen == len(dataset)


def test_augmented_dataset_passes_through_dataset_description() -> None:
    base = FakeDataset()
    dataset = AugmentedDataset(base, eval_transform(), return_index=True)
    assert dataset.label_map is base.label_map
    assert dataset.ignore_index == 255 and dataset.num_classes == 7
    assert dataset.ids == base.ids and len(dataset) == 6
    image, mask, index = dataset[-1]
    assert index == 5 and image.shape == (3, 32, 32) and mask.shape == (32, 32)
    with pytest.raises(IndexError):
        dataset[6]
    with pytest.raises(ConfigError):
        dataset.set_epoch(-1)
    with pytest.raises(ConfigError):
        AugmentedDataset(base, eval_transform(), seed=-1)


def test_pipeline_options_are_validated() -> None:
    with pytest.raises(ConfigError):
        train_transform(hflip=-0.5)
    with pytest.raises(ConfigError):
        train_transform(color_jitter=-1.0)
