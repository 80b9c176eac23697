"""Tests for seglab/analysis/stats.py against a hand-counted 3-image dataset, the disk cache and CamVid."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

import seglab.analysis.stats as stats_module
from seglab.analysis.stats import compute_stats, load_stats, trivial_baseline
from seglab.data.base import SegmentationDataset
from seglab.data.folder import CamVidDataset, FolderDataset
from seglab.data.label_map import ClassInfo, LabelMap

V = 255  # void
# Three 4x5 masks; every count below was done by hand from these pictures.
MASKS = {
    "a": [
        [0, 0, 1, 1, V],
        [0, 0, 1, 1, V],
        [0, 2, 0, 0, 0],
        [0, 0, 0, 2, 2],
    ],  # class 1: one 4 px block; class 2: a 1 px dot and a 2 px bar
    "b": [
        [2, 0, 0, 0, 0],
        [0, 2, 0, 0, 0],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, V],
    ],  # class 2: two pixels touching only diagonally = ONE object (8-connectivity)
    "c": [[0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [V, V, V, V, V]],
}
PER_IMAGE = [[11, 4, 3], [16, 1, 2], [14, 1, 0]]  # labelled pixels of classes 0, 1, 2 in a, b, c
VOID = [2, 1, 5]
LABEL_MAP = LabelMap(
    classes=(ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "cat", (200, 0, 0)), ClassInfo(2, "dog", (0, 200, 0))),
    ignore_index=V,
)


@pytest.fixture(autouse=True)
def cache_dir(monkeypatch, tmp_path):
    path = tmp_path / "cache"
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(path))
    return path


@pytest.fixture
def hand_dataset(tmp_path) -> FolderDataset:
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for name, rows in MASKS.items():
        Image.fromarray(np.full((4, 5, 3), 90, np.uint8)).save(images / f"{name}.png")
        Image.fromarray(np.array(rows, np.uint8)).save(masks / f"{name}.png")
    return FolderDataset(images, masks, label_map=LABEL_MAP)


def test_pixel_counts_fractions_and_image_counts(hand_dataset):
    stats = compute_stats(hand_dataset)
    assert stats.class_names == ["background", "cat", "dog"] and stats.ids == ["a", "b", "c"]
    np.testing.assert_array_equal(stats.per_image_counts, PER_IMAGE)
    np.testing.assert_array_equal(stats.ignore_pixels, VOID)
    np.testing.assert_array_equal(stats.image_sizes, [[4, 5]] * 3)
    np.testing.assert_array_equal(stats.pixel_counts, [41, 6, 5])
    np.testing.assert_allclose(stats.pixel_fraction, [41 / 52, 6 / 52, 5 / 52])
    np.testing.assert_array_equal(stats.image_counts, [3, 3, 2])
    assert stats.labelled_pixels == 52
    assert stats.void_fraction == pytest.approx(8 / 60)
    assert stats.imbalance_ratio == pytest.approx(41 / 5)
    np.testing.assert_array_equal(stats.images_containing(2), [0, 1])
    np.testing.assert_allclose(stats.class_share_per_image(1), [4 / 18, 1 / 19, 1 / 15])
    np.testing.assert_array_equal(stats.rarity_order(), [2, 1, 0])


def test_void_is_never_counted_as_a_class(hand_dataset):
    stats = compute_stats(hand_dataset)
    assert stats.per_image_counts.shape == (3, 3)  # no column for 255
    assert stats.labelled_pixels + stats.ignore_pixels.sum() == 3 * 20
    assert all(row["class"] != "void" for row in stats.table())


def test_inverse_frequency_weights_by_hand(hand_dataset):
    weights = compute_stats(hand_dataset).inverse_frequency_weights()
    raw = np.array([1 / 41, 1 / 6, 1 / 5])
    np.testing.assert_allclose(weights, raw / raw.mean())
    assert weights.mean() == pytest.approx(1.0)


def test_median_frequency_weights_by_hand(hand_dataset):
    # freq(c) = pixels of c / labelled pixels of the images containing c (labelled: a 18, b 19, c 15)
    frequency = np.array([41 / (18 + 19 + 15), 6 / (18 + 19 + 15), 5 / (18 + 19)])
    median = 5 / 37  # median of (0.788, 0.115, 0.135)
    weights = compute_stats(hand_dataset).median_frequency_weights()
    np.testing.assert_allclose(weights, median / frequency)
    assert weights[2] == pytest.approx(1.0) and weights[1] > weights[2] > weights[0]
    np.testing.assert_allclose(compute_stats(hand_dataset).class_weights("median"), weights)
    np.testing.assert_allclose(compute_stats(hand_dataset).class_weights("none"), 1.0)
    softer = compute_stats(hand_dataset).class_weights("sqrt_median")
    np.testing.assert_allclose(softer, np.sqrt(median / frequency))  # same order, half the spread in log scale
    assert softer[1] > softer[2] > softer[0] and softer.max() / softer.min() < weights.max() / weights.min()
    with pytest.raises(ValueError, match="inverse, median, sqrt_median or none"):
        compute_stats(hand_dataset).class_weights("sqrt")


def test_object_sizes_use_8_connectivity(hand_dataset):
    stats = compute_stats(hand_dataset)
    assert sorted(stats.object_sizes(1).tolist()) == [1, 1, 4]
    assert sorted(stats.object_sizes(2).tolist()) == [1, 2, 2]  # b's diagonal pair is one object
    assert sorted(stats.object_sizes(0).tolist()) == [11, 14, 16]
    dog_images = stats.object_image[stats.object_class == 2]
    assert sorted(dog_images.tolist()) == [0, 0, 1]
    rows = {row["class"]: row for row in stats.table()}
    assert rows["dog"]["objects"] == 3 and rows["dog"]["median_object_px"] == 2.0
    assert rows["cat"]["pixels"] == 6 and rows["cat"]["images"] == 3


def test_absent_class_gets_zero_weight_and_no_division_by_zero(tmp_path):
    dataset = ArrayDataset([np.zeros((3, 3), np.uint8), np.ones((3, 3), np.uint8)], LABEL_MAP)
    stats = compute_stats(dataset, use_cache=False)
    np.testing.assert_array_equal(stats.pixel_counts, [9, 9, 0])
    assert stats.inverse_frequency_weights()[2] == 0 and stats.median_frequency_weights()[2] == 0
    assert stats.imbalance_ratio == 1.0


class ArrayDataset(SegmentationDataset):
    """Masks held in memory (images are grey): for label maps the folder fixture does not cover."""

    kind = "arrays"

    def __init__(self, masks: list[np.ndarray], label_map: LabelMap):
        self.masks, self.label_map = masks, label_map
        self.ids = [f"m{index}" for index in range(len(masks))]

    def load(self, index: int):
        mask = self.masks[index]
        return np.zeros((*mask.shape, 3), np.uint8), mask

    def fingerprint_parts(self):
        return [mask.tolist() for mask in self.masks]


def test_trivial_baseline_predicts_background(hand_dataset):
    baseline = trivial_baseline(compute_stats(hand_dataset))
    assert (baseline.predicted_class, baseline.predicted_name) == (0, "background")
    metrics = baseline.metrics
    assert metrics.pixel_acc == pytest.approx(41 / 52)  # the background share
    assert metrics.miou_no_background == 0.0
    assert metrics.miou == pytest.approx((41 / 52) / 3)
    np.testing.assert_allclose(metrics.iou, [41 / 52, 0, 0])
    cards = baseline.cards()
    assert [card["label"] for card in cards] == [
        "Pixel accuracy",
        "mIoU with background",
        "mIoU without background",
        "fwIoU",
    ]
    assert [card["value"] for card in cards[:3]] == [f"{41 / 52:.1%}", f"{41 / 52 / 3:.1%}", "0.0%"]
    assert cards[2]["delta"] == f"{-100 * 41 / 52:+.0f} pts vs pixel accuracy"
    verdict = baseline.verdict()
    assert f"**{41 / 52:.0%} pixel accuracy**" in verdict and "**0% mIoU without background**" in verdict
    assert "background-inclusive scores flatter" in verdict and "No background class" not in verdict


def test_trivial_baseline_without_background_predicts_the_most_frequent_class():
    camvid_like = LabelMap(
        classes=(ClassInfo(0, "sky", (1, 1, 1)), ClassInfo(1, "road", (2, 2, 2)), ClassInfo(2, "car", (3, 3, 3))),
        ignore_index=3,  # void right after the last class, as in CamVid (11)
        background_index=None,
    )
    masks = [np.array([[1, 1, 1, 0], [1, 1, 2, 3]], np.uint8), np.array([[1, 0, 3, 3], [1, 1, 2, 2]], np.uint8)]
    stats = compute_stats(ArrayDataset(masks, camvid_like), use_cache=False)
    np.testing.assert_array_equal(stats.pixel_counts, [2, 8, 3])
    np.testing.assert_array_equal(stats.ignore_pixels, [1, 2])
    baseline = trivial_baseline(stats)
    assert (baseline.predicted_class, baseline.predicted_name) == (1, "road")
    assert baseline.metrics.pixel_acc == pytest.approx(8 / 13)
    assert baseline.metrics.miou == pytest.approx((8 / 13) / 3)
    assert not baseline.has_background
    cards = baseline.cards()
    assert (cards[1]["label"], cards[2]["value"], cards[2]["delta"]) == ("mIoU", "n/a", None)
    assert cards[2]["help"] == "This dataset has no background class"
    verdict = baseline.verdict()
    assert f"**{8 / 13 / 3:.0%} mIoU**: pixel accuracy flatters" in verdict and "No background class here" in verdict


def test_second_call_reads_the_cache(hand_dataset, monkeypatch, cache_dir):
    first = compute_stats(hand_dataset)
    assert len(list((cache_dir / "stats").glob("*.npz"))) == 1

    def no_scan(*args, **kwargs):
        raise AssertionError("the cached statistics should have been used")

    monkeypatch.setattr(stats_module, "_scan", no_scan)
    progress = []
    second = compute_stats(hand_dataset, progress=lambda done, total: progress.append((done, total)))
    assert progress == [(3, 3)]
    np.testing.assert_array_equal(second.per_image_counts, first.per_image_counts)
    np.testing.assert_array_equal(second.object_area, first.object_area)
    assert (second.ids, second.class_names, second.background_index) == (first.ids, first.class_names, 0)
    assert second.fingerprint == hand_dataset.fingerprint()


def test_changed_data_is_scanned_again(hand_dataset, tmp_path):
    compute_stats(hand_dataset)
    rows = np.array(MASKS["c"], np.uint8)
    rows[0, 0] = 2
    Image.fromarray(rows).save(tmp_path / "masks" / "c.png")
    os.utime(tmp_path / "masks" / "c.png", ns=(1, 1))  # a different mtime even on a coarse clock
    changed = compute_stats(FolderDataset(tmp_path / "images", tmp_path / "masks", label_map=LABEL_MAP))
    np.testing.assert_array_equal(changed.pixel_counts, [40, 6, 6])


def test_corrupt_cache_file_is_recomputed(hand_dataset, cache_dir):
    expected = compute_stats(hand_dataset)
    (cache_file,) = (cache_dir / "stats").glob("*.npz")
    cache_file.write_bytes(os.urandom(300))
    assert load_stats(cache_file) is None
    again = compute_stats(hand_dataset)
    np.testing.assert_array_equal(again.per_image_counts, expected.per_image_counts)
    assert load_stats(cache_file) is not None  # rewritten


def test_cache_can_be_bypassed(hand_dataset, cache_dir):
    calls = []
    compute_stats(hand_dataset, use_cache=False, progress=lambda done, total: calls.append(done))
    assert calls[-1] == 3 and not cache_dir.exists()


@pytest.mark.slow
def test_camvid_val_split(camvid_root):
    dataset = CamVidDataset(camvid_root, split="val")
    stats = compute_stats(dataset)
    assert stats.num_classes == 11 and stats.num_images == 101 and stats.ignore_index == 11
    assert stats.void_fraction > 0
    shares = dict(zip(stats.class_names, stats.pixel_fraction))
    largest = sorted(shares, key=shares.get, reverse=True)
    assert set(largest[:2]) == {"Road", "Building"}
    assert 0.2 < shares["Road"] < 0.4 and 0.15 < shares["Building"] < 0.35
    assert all(shares[name] < 0.04 for name in ("Pole", "SignSymbol", "Pedestrian"))
    baseline = trivial_baseline(stats)
    assert baseline.predicted_name == "Road" and baseline.metrics.pixel_acc == pytest.approx(shares["Road"])
