"""Tests for seglab/sources/mapping.py and the "other" column in seglab/metrics/confusion.py."""

from __future__ import annotations

import numpy as np
import pytest

from seglab.data.label_map import camvid_label_map, shapes_label_map
from seglab.errors import LabelError, SourceError
from seglab.metrics.confusion import SegmentationMetrics, image_confusions
from seglab.sources.mapping import ClassMapping, resolve_mapping, unassigned_label


def test_same_names_in_another_case_are_the_identity():
    label_map = shapes_label_map()
    mapping = resolve_mapping([name.upper() for name in label_map.names], None, label_map)
    assert mapping.is_identity and not mapping.has_other and mapping.summary() == []


def test_other_names_are_matched_by_name_and_the_rest_is_other():
    label_map = camvid_label_map()
    mapping = resolve_mapping(["road", "sky", "traffic_light", "car", "building"], None, label_map)
    assert mapping.how == "by name"
    assert mapping.targets == (
        label_map.names.index("Road"),
        label_map.names.index("Sky"),
        None,
        label_map.names.index("Car"),
        label_map.names.index("Building"),
    )
    assert mapping.unmapped == ["traffic_light"]
    assert "Pedestrian" in mapping.unpredictable
    assert any("traffic_light" in line for line in mapping.summary())


def test_a_declared_mapping_wins_and_names_every_bad_entry():
    label_map = camvid_label_map()
    names = ["road", "sidewalk", "vegetation", "terrain"]
    mapping = resolve_mapping(names, None, label_map, {"sidewalk": "Pavement", "vegetation": 5, "terrain": None})
    assert mapping.targets == (3, 4, 5, None) and mapping.how == "declared"
    with pytest.raises(SourceError) as error:
        resolve_mapping(names, None, label_map, {"sidewalk": "Footpath", "lake": "Sky", "road": 99})
    message = str(error.value)
    assert "'Footpath'" in message and "'lake' is not a class" in message and "99" in message


def test_undeclared_classes_of_another_count_are_refused_with_advice():
    with pytest.raises(SourceError, match="predicts 19 classes but the data has 7.*class_names"):
        resolve_mapping(None, 19, shapes_label_map())


def test_no_common_name_and_another_count_asks_for_a_mapping():
    with pytest.raises(SourceError, match="no class of .* matches a dataset class"):
        resolve_mapping(["a", "b"], None, shapes_label_map())


def test_declared_names_must_match_the_model_output_count():
    with pytest.raises(SourceError, match="outputs 5 classes but its description names 7"):
        resolve_mapping(shapes_label_map().names, 5, shapes_label_map())


def test_apply_maps_labels_and_sums_probabilities_into_dataset_classes():
    label_map = shapes_label_map()  # 7 classes, ignore 255
    names = ["background", "circle", "disc", "sky"]  # disc -> circle by declaration, sky -> other
    mapping = resolve_mapping(names, None, label_map, {"disc": "circle"})
    probabilities = np.array([[[0.1]], [[0.2]], [[0.3]], [[0.4]]], dtype=np.float32)
    mapped = mapping.apply(np.array([[3]]), probabilities)
    assert mapped.labels[0, 0] == unassigned_label(7, 255) == 7
    assert mapped.probabilities[1, 0, 0] == pytest.approx(0.5)  # circle + disc
    assert mapped.other_probability[0, 0] == pytest.approx(0.4)
    assert mapped.confidence[0, 0] == pytest.approx(0.4)  # the chosen label is other
    assert mapping.apply(np.array([[2]]), probabilities).labels[0, 0] == 1


def test_apply_refuses_class_ids_beyond_the_source_classes():
    mapping = ClassMapping.identity(shapes_label_map())
    with pytest.raises(SourceError, match=r"class ids \[9\]"):
        mapping.apply(np.array([[9]]), None)


def test_negative_labels_are_no_class_and_become_other():
    mapping = ClassMapping.identity(shapes_label_map())
    mapped = mapping.apply(np.array([[-1, 2]]), None)
    assert mapped.labels.tolist() == [[7, 2]] and mapped.confidence.tolist() == [[1.0, 1.0]]


def test_the_other_label_skips_camvids_void_index():
    assert unassigned_label(11, 11) == 12 and unassigned_label(7, 255) == 7


def test_other_predictions_are_misses_of_the_true_class_but_no_class_false_positive():
    target = np.array([[[0, 0, 1, 1, 255]]], dtype=np.uint8)
    pred = np.array([[[0, 7, 1, 7, 7]]], dtype=np.uint8)  # 7 = other for 7 classes
    confusion = image_confusions(pred, target, 7, 255, unassigned_label=7)
    assert confusion.shape == (1, 7, 8)
    assert confusion[0, 0].tolist() == [1, 0, 0, 0, 0, 0, 0, 1] and confusion[0, 1, 7] == 1
    metrics = SegmentationMetrics.from_confusion(confusion[0])
    assert metrics.iou[0] == pytest.approx(0.5) and metrics.recall[1] == pytest.approx(0.5)
    assert metrics.precision[0] == pytest.approx(1.0)  # other is not a false positive of class 0
    assert metrics.pixel_acc == pytest.approx(0.5) and metrics.has_other
    summary = metrics.to_dict(shapes_label_map().names)
    assert summary["predicted_other"]["background"] == 1


def test_counting_other_with_void_equal_to_the_class_count():
    target = np.array([[[0, 11, 10]]], dtype=np.uint8)  # CamVid: 11 classes, void 11
    pred = np.array([[[12, 12, 10]]], dtype=np.uint8)
    confusion = image_confusions(pred, target, 11, 11, unassigned_label=12)
    assert confusion.shape == (1, 11, 12) and confusion[0, 0, 11] == 1 and confusion[0, 10, 10] == 1
    assert confusion.sum() == 2  # the void pixel is not counted
    with pytest.raises(LabelError):
        image_confusions(pred, np.array([[[0, 11, 12]]], dtype=np.uint8), 11, 11, unassigned_label=12)


def test_a_target_value_equal_to_the_class_count_is_refused():
    with pytest.raises(LabelError, match=r"\[7\]"):
        image_confusions(np.zeros((1, 1, 2), np.uint8), np.array([[[0, 7]]], np.uint8), 7, 255, unassigned_label=7)


def test_failure_ranking_and_metric_definitions_read_the_other_column():
    from seglab.analysis.failures import top_confusions
    from seglab.metrics.definitions import compute_definitions

    confusion = np.array([[[5, 1, 4], [0, 6, 0]]])  # 2 classes + other: 4 px of class 0 predicted as other
    cells = top_confusions(confusion[0], ["road", "car"], k=3)
    assert [(cell.gt_name, cell.pred_name, cell.pixels) for cell in cells] == [("road", "other", 4), ("road", "car", 1)]
    rows = {row.key: row for row in compute_definitions(confusion, background_index=None)}
    dataset_level = SegmentationMetrics.from_confusion(confusion[0], background_index=None)
    assert rows["dataset_miou"].value == pytest.approx(dataset_level.miou)  # IoU(road) = 5 / 10, IoU(car) = 6 / 7
    assert dataset_level.miou == pytest.approx((5 / 10 + 6 / 7) / 2)
