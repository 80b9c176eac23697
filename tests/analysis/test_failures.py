"""Tests for seglab/analysis/failures.py: confused classes, failure rankings, boundary band and cell rankings."""

from __future__ import annotations

import numpy as np
import pytest

from seglab.analysis.failures import (
    HIGHLIGHT_COLOR,
    boundary_band,
    cell_gallery,
    cell_mask,
    cell_picture,
    cell_ranking,
    class_failure_ranking,
    failure_ranking,
    image_class_table,
    image_miou,
    image_ranking,
    label_shares,
    predicted_shares_line,
    ranking_label,
    ranking_rows,
    region_mask,
    split_headline,
    top_confusions,
)
from seglab.data.base import SegmentationDataset
from seglab.data.label_map import shapes_label_map
from seglab.engine.predict import DatasetEvaluation, ImageResult
from seglab.errors import ConfigError
from seglab.metrics.confusion import SegmentationMetrics, per_image_metrics

NAMES = ["background", "car", "road"]
IGNORE = 255


def make_evaluation(preds: list[np.ndarray], targets: list[np.ndarray], names=NAMES) -> DatasetEvaluation:
    """A DatasetEvaluation built from hand-made predictions, as predict_dataset would return it."""
    scores = per_image_metrics(np.stack(preds), np.stack(targets), len(names), IGNORE)
    results = [
        ImageResult.from_scores(
            scores, i, index=i, sample_id=f"img{i}", labels=preds[i], confidence=np.ones(preds[i].shape, np.float16)
        )
        for i in range(len(preds))
    ]
    metrics = SegmentationMetrics.from_confusion(scores.confusion.sum(axis=0))
    return DatasetEvaluation(results=results, metrics=metrics, class_names=list(names))


# -- top confusions ---------------------------------------------------------------------------------
def test_top_confusions_lists_largest_off_diagonal_cells_with_shares():
    confusion = np.array([[900, 5, 0], [312, 600, 88], [0, 40, 1000]])
    found = top_confusions(confusion, NAMES, k=3)
    assert [(c.gt_class, c.pred_class, c.pixels) for c in found] == [(1, 0, 312), (1, 2, 88), (2, 1, 40)]
    assert found[0].share_of_gt == pytest.approx(312 / 1000)
    assert found[0].sentence() == "312 px of car predicted as background (31% of car)"


def test_top_confusions_never_lists_empty_cells_or_the_diagonal():
    confusion = np.diag([10, 20, 30])
    confusion[2, 0] = 1
    found = top_confusions(confusion, NAMES, k=5)
    assert [(c.gt_class, c.pred_class) for c in found] == [(2, 0)]
    with pytest.raises(ConfigError, match="confusion matrix"):
        top_confusions(np.zeros((2, 2)), NAMES)


# -- boundary band ----------------------------------------------------------------------------------
def test_boundary_band_marks_both_sides_of_an_edge_and_excludes_ignore():
    target = np.zeros((6, 8), dtype=np.uint8)
    target[:, 4:] = 1  # vertical edge between columns 3 and 4
    target[0, 3] = IGNORE
    band = boundary_band(target, 1, IGNORE)
    expected = np.zeros((6, 8), dtype=bool)
    expected[:, 3:5] = True
    # Pixels next to the void pixel count as boundary (void traces an edge), the void pixel does not.
    expected[0:2, 2] = True
    expected[0, 3] = False
    np.testing.assert_array_equal(band, expected)
    wide = boundary_band(target, 2, IGNORE)
    assert wide[3, 2:6].all() and not wide[3, 1] and not wide[3, 6]


def test_boundary_band_of_a_uniform_mask_is_empty_and_width_is_checked():
    assert not boundary_band(np.full((5, 5), 2, np.uint8), 3, IGNORE).any()
    with pytest.raises(ConfigError, match="at least 1"):
        boundary_band(np.zeros((3, 3), np.uint8), 0, IGNORE)


def test_regions_split_the_scored_pixels():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 3, (20, 20)).astype(np.uint8)
    target[:3] = IGNORE
    boundary = region_mask(target, "boundary", 2, IGNORE)
    interior = region_mask(target, "interior", 2, IGNORE)
    everything = region_mask(target, "all", 2, IGNORE)
    assert not (boundary & interior).any()
    np.testing.assert_array_equal(boundary | interior, everything)
    np.testing.assert_array_equal(everything, target != IGNORE)
    with pytest.raises(ConfigError, match="region"):
        region_mask(target, "edges", 2, IGNORE)


# -- cell ranking -----------------------------------------------------------------------------------
def random_split(count: int = 5, size: int = 24, seed: int = 0):
    rng = np.random.default_rng(seed)
    targets, preds = [], []
    for _ in range(count):
        target = np.zeros((size, size), np.uint8)
        for _ in range(3):  # a few rectangles so there are real edges and interiors
            top, left = rng.integers(0, size - 6, 2)
            target[top : top + rng.integers(4, 12), left : left + rng.integers(4, 12)] = rng.integers(1, 3)
        target[rng.random((size, size)) < 0.03] = IGNORE
        pred = np.where(rng.random((size, size)) < 0.3, rng.integers(0, 3, (size, size)), target).astype(np.uint8)
        pred[pred == IGNORE] = 0
        targets.append(target)
        preds.append(pred)
    return preds, targets


def brute_force_count(pred, target, gt_class, pred_class, region, width):
    """Per-pixel Python loop, the obviously correct reference."""
    height, wide = target.shape
    count = 0
    for row in range(height):
        for column in range(wide):
            if target[row, column] != gt_class or pred[row, column] != pred_class:
                continue
            window = target[max(0, row - width) : row + width + 1, max(0, column - width) : column + width + 1]
            near_edge = bool((window != target[row, column]).any())
            if region == "all" or (region == "boundary") == near_edge:
                count += 1
    return count


@pytest.mark.parametrize("region", ["all", "boundary", "interior"])
def test_cell_ranking_counts_equal_a_brute_force_count(region):
    preds, targets = random_split()
    evaluation = make_evaluation(preds, targets)
    ranking = cell_ranking(evaluation.results, targets.__getitem__, 1, 0, region=region, width=2, ignore_index=IGNORE)
    expected = {f"img{i}": brute_force_count(preds[i], targets[i], 1, 0, region, 2) for i in range(len(preds))}
    assert {hit.sample_id: hit.pixels for hit in ranking.hits} == {k: v for k, v in expected.items() if v}
    counts = [hit.pixels for hit in ranking.hits]
    assert counts == sorted(counts, reverse=True)


def test_cell_ranking_boundary_plus_interior_is_the_whole_cell():
    preds, targets = random_split(seed=3)
    evaluation = make_evaluation(preds, targets)
    ranking = cell_ranking(evaluation.results, targets.__getitem__, 2, 1, region="all", width=1, ignore_index=IGNORE)
    assert ranking.total_pixels == int(evaluation.metrics.confusion[2, 1]) > 0
    for hit in ranking.hits:
        assert hit.boundary_pixels + hit.interior_pixels == hit.pixels == evaluation.results[hit.index].confusion[2, 1]
    boundary = cell_ranking(
        evaluation.results, targets.__getitem__, 2, 1, region="boundary", width=1, ignore_index=IGNORE
    )
    interior = cell_ranking(
        evaluation.results, targets.__getitem__, 2, 1, region="interior", width=1, ignore_index=IGNORE
    )
    assert sum(h.pixels for h in boundary.hits) + sum(h.pixels for h in interior.hits) == ranking.total_pixels
    assert boundary.boundary_pixels == ranking.boundary_pixels and 0 < ranking.boundary_share < 1


def test_cell_ranking_loads_only_images_holding_the_cell():
    preds, targets = random_split(count=4, seed=1)
    preds[2] = targets[2].copy()  # a perfect image: no pixel in any off-diagonal cell
    preds[2][preds[2] == IGNORE] = 0
    evaluation = make_evaluation(preds, targets)
    loaded = []
    cell_ranking(evaluation.results, lambda i: loaded.append(i) or targets[i], 1, 2, ignore_index=IGNORE)
    assert 2 not in loaded and loaded
    with pytest.raises(ConfigError, match="class id 7"):
        cell_ranking(evaluation.results, targets.__getitem__, 7, 0)


def test_cell_mask_and_picture_highlight_exactly_the_cell():
    target = np.array([[1, 1, 0], [1, 2, 0]], np.uint8)
    pred = np.array([[0, 1, 0], [0, 2, 1]], np.uint8)
    expected = np.array([[True, False, False], [True, False, False]])
    np.testing.assert_array_equal(cell_mask(pred, target, 1, 0), expected)
    image = np.full((2, 3, 3), 100, np.uint8)
    picture = cell_picture(image, pred, target, 1, 0, IGNORE, background_index=0)
    np.testing.assert_array_equal(np.all(picture == HIGHLIGHT_COLOR, axis=-1), expected)


# -- failure rankings -------------------------------------------------------------------------------
def test_class_failure_ranking_keeps_images_with_the_class_worst_first():
    target = np.zeros((4, 4), np.uint8)
    target[:2, :2] = 1  # 4 car pixels
    preds = [target.copy() for _ in range(4)]
    preds[0][0, 0] = 0  # car IoU 3/4
    preds[1][:2, :2] = 0  # car entirely missed: IoU 0
    preds[2][3, 3] = 2  # car perfect (1.0); road false alarm
    targets = [target, target, target, np.zeros((4, 4), np.uint8)]
    preds[3] = np.zeros((4, 4), np.uint8)  # no car anywhere: left out
    evaluation = make_evaluation(preds, targets)
    ranked = class_failure_ranking(evaluation, 1)
    assert [r.sample_id for r in ranked] == ["img1", "img0", "img2"]
    road = class_failure_ranking(evaluation, 2)
    assert [r.sample_id for r in road] == ["img2"] and road[0].iou[2] == 0
    rows = ranking_rows(ranked, NAMES, class_id=1, background_index=0)
    assert rows[0]["IoU car"] == 0 and rows[1]["IoU car"] == pytest.approx(0.75)
    assert rows[1]["car px (GT)"] == 4 and rows[1]["car px (pred)"] == 3
    with pytest.raises(ConfigError, match="class id 5"):
        class_failure_ranking(evaluation, 5)


def test_image_ranking_without_background_and_image_class_table():
    target = np.zeros((4, 4), np.uint8)
    target[:2, :2] = 1
    good_car = target.copy()
    good_car[3, :] = 2  # background badly hurt, car perfect
    bad_car = target.copy()
    bad_car[0, :2] = 2  # car half wrong, background perfect
    evaluation = make_evaluation([good_car, bad_car], [target, target])
    assert [r.sample_id for r in image_ranking(evaluation, exclude_class=0)] == ["img1", "img0"]
    assert image_miou(evaluation.results[0], exclude_class=0) == pytest.approx(0.5)  # car 1, road 0
    table = image_class_table(evaluation.results[1], NAMES)
    assert [row["class"] for row in table] == ["road", "car", "background"]
    car = table[1]
    assert (car["GT px"], car["predicted px"], car["correct px"]) == (4, 2, 2)
    assert car["mostly confused with"] == "road (2 px)"


def test_failure_ranking_picks_the_class_or_image_ranking_and_the_headline_words_it():
    target = np.zeros((4, 4), np.uint8)
    target[:2, :2] = 1
    road_on_background = target.copy()
    road_on_background[2:, :] = 2  # mIoU (1/3 + 1 + 0) / 3; without background (1 + 0) / 2
    car_missed = target.copy()
    car_missed[0, :2] = car_missed[1, 0] = 0  # mIoU (12/15 + 1/4) / 2; without background 1/4
    evaluation = make_evaluation([road_on_background, car_missed], [target, target])

    def ids(results):
        return [result.sample_id for result in results]

    assert ids(failure_ranking(evaluation)) == ids(image_ranking(evaluation)) == ["img0", "img1"]
    assert ids(failure_ranking(evaluation, exclude_class=0)) == ["img1", "img0"]  # without background: reversed
    assert ids(failure_ranking(evaluation, class_id=1)) == ids(class_failure_ranking(evaluation, 1))
    assert ranking_label(None, NAMES) == "all images, ranked by image mIoU"
    assert ranking_label(1, NAMES) == "images with car (GT or prediction), ranked by its IoU"
    metrics = evaluation.metrics
    assert split_headline(evaluation) == (
        f"2 images · split mIoU **{metrics.miou:.3f}** · pixel accuracy {metrics.pixel_acc:.3f}"
    )
    assert f"**{metrics.miou:.3f}** · without background {metrics.miou_no_background:.3f} ·" in split_headline(
        evaluation, background_index=0
    )


def test_label_shares_orders_predicted_classes():
    labels = np.array([[2, 2, 2], [0, 2, 0]], np.uint8)
    assert label_shares(labels, NAMES) == [("road", pytest.approx(4 / 6)), ("background", pytest.approx(2 / 6))]
    assert predicted_shares_line(labels, NAMES) == "Predicted: road 66.7%, background 33.3%"
    assert predicted_shares_line(labels, NAMES, limit=1) == "Predicted: road 66.7%"


class ArrayDataset(SegmentationDataset):
    """Images and masks held in memory, counting mask reads."""

    def __init__(self, targets):
        self.targets, self.label_map, self.ids, self.loads = (
            targets,
            shapes_label_map(),
            [f"img{i}" for i in range(len(targets))],
            0,
        )

    def load(self, index):
        self.loads += 1
        return np.full((*self.targets[index].shape, 3), 90, np.uint8), self.targets[index]

    def fingerprint_parts(self):
        return len(self.targets)


def test_cell_gallery_draws_the_first_images_small():
    preds, targets = random_split(count=5, size=40, seed=2)
    evaluation = make_evaluation(preds, targets)
    dataset = ArrayDataset(targets)
    ranking, pictures = cell_gallery(evaluation, dataset, 1, 0, limit=3, max_side=20)
    assert len(ranking.hits) > 3 and len(pictures) == 3
    assert all(picture.shape == (20, 20, 3) and picture.dtype == np.uint8 for picture in pictures)
    assert dataset.load_mask(1) is targets[1] and dataset.loads > 0  # the dataset contract's default reads both
