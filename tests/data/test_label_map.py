"""Tests for seglab/data/label_map.py: validation, JSON round trip, colour decoding, palettes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seglab.data.label_map import (
    ClassInfo,
    LabelMap,
    camvid_label_map,
    generic_label_map,
    shapes_label_map,
    voc_label_map,
)
from seglab.errors import LabelMapError


def two_classes(**options) -> LabelMap:
    return LabelMap(classes=(ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "cat", (200, 0, 0))), **options)


# -- validation --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("classes", "options", "expected"),
    [
        ((ClassInfo(0, "a", (1, 1, 1)), ClassInfo(2, "b", (2, 2, 2))), {}, "without gaps"),
        ((ClassInfo(0, "a", (1, 1, 1)), ClassInfo(1, "a", (2, 2, 2))), {}, "names must be unique, repeated: a"),
        ((ClassInfo(0, "a", (1, 1, 1)), ClassInfo(1, "b", (1, 1, 1))), {}, "colours must be unique"),
        ((ClassInfo(0, "a", (1, 1, 1)),), {"ignore_index": 0}, "ignore_index 0 is also a class id"),
        ((ClassInfo(0, "a", (1, 1, 1)),), {"ignore_index": 300}, "ignore_index must be 0-255"),
        ((ClassInfo(0, "a", (1, 1, 1)),), {"background_index": 3}, "background_index 3 is not a class id"),
        ((ClassInfo(0, "a", (300, 0, 0)),), {}, "three integers 0-255"),
        ((ClassInfo(0, "a", (1, 1, 1)),), {"ignore_color": (1, 1, 1)}, "also the colour of class 'a'"),
        ((), {}, "at least one class"),
    ],
)
def test_invalid_label_maps_raise_label_map_error(classes, options, expected):
    with pytest.raises(LabelMapError, match=expected):
        LabelMap(classes=classes, **options)


def test_more_than_255_classes_rejected():
    classes = tuple(ClassInfo(i, f"c{i}", (i % 256, i // 256, 7)) for i in range(256))
    with pytest.raises(LabelMapError, match="at most 255 classes"):
        LabelMap(classes=classes, ignore_index=255)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("nonsense", "expected an object with a 'classes' list"),
        ({"classes": []}, "non-empty list"),
        ({"classes": ["cat"]}, "class #0 must be an object"),
        ({"classes": [{"id": 0, "name": "a"}]}, "class #0 is missing color"),
        ({"classes": [{"id": True, "name": "a", "color": [1, 2, 3]}]}, "id must be an integer"),
        ({"classes": [{"id": 0, "name": "a", "color": [1, 2]}]}, "'a' color must be three integers"),
        (
            {"classes": [{"id": 0, "name": "a", "color": [1, 2, 3]}], "ignore_index": "x"},
            "ignore_index must be an integer",
        ),
        ({"classes": [{"id": 1, "name": "a", "color": [1, 2, 3]}]}, "class ids must be 0..0"),
    ],
)
def test_from_dict_errors_name_the_source(data, expected):
    with pytest.raises(LabelMapError, match=expected) as raised:
        LabelMap.from_dict(data, source="my_map.json")
    assert "my_map.json" in str(raised.value)


def test_from_dict_sorts_classes_and_guesses_background():
    data = [{"id": 1, "name": "cat", "color": [9, 9, 9]}, {"id": 0, "name": "Background", "color": [0, 0, 0]}]
    label_map = LabelMap.from_dict(data)
    assert label_map.names == ["Background", "cat"]
    assert label_map.background_index == 0
    assert label_map.ignore_index == 255


# -- JSON ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("factory", [voc_label_map, camvid_label_map, shapes_label_map, lambda: generic_label_map(5)])
def test_json_round_trip(tmp_path, factory):
    label_map = factory()
    path = tmp_path / "sub" / "label_map.json"
    label_map.save(path)
    loaded = LabelMap.load(path)
    assert loaded == label_map
    assert json.loads(path.read_text())["ignore_index"] == label_map.ignore_index
    assert [p.name for p in path.parent.iterdir()] == ["label_map.json"]  # no temporary left behind


def test_camvid_round_trip_keeps_ignore_11_and_no_background(tmp_path):
    path = tmp_path / "camvid.json"
    camvid_label_map().save(path)
    loaded = LabelMap.load(path)
    assert loaded.ignore_index == 11
    assert loaded.background_index is None
    assert loaded.foreground_ids() == list(range(11))


def test_load_missing_and_malformed_files(tmp_path):
    with pytest.raises(LabelMapError, match="does not exist"):
        LabelMap.load(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(LabelMapError, match="broken.json is not valid JSON"):
        LabelMap.load(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"classes": [{"id": 0, "name": "a", "color": [1, 2, 3, 4]}]}))
    with pytest.raises(LabelMapError, match="wrong.json: class 'a' color"):
        LabelMap.load(wrong)


# -- decoding --------------------------------------------------------------------------------------
def test_encode_rgb_maps_colours_and_counts_unknown_ones():
    label_map = two_classes(ignore_color=(255, 255, 255))
    rgb = np.array(
        [[[0, 0, 0], [200, 0, 0], [255, 255, 255]], [[1, 2, 3], [200, 0, 0], [1, 2, 3]]],
        dtype=np.uint8,
    )
    mask, unknown = label_map.encode_rgb(rgb)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, [[0, 1, 255], [255, 1, 255]])
    assert unknown == 2  # the ignore colour is void but not "unknown"


def test_encode_rgb_uses_the_label_maps_ignore_index_and_drops_alpha():
    label_map = camvid_label_map()
    rgb = np.zeros((2, 2, 4), dtype=np.uint8)
    rgb[0, 0, :3] = (128, 64, 128)  # Road
    rgb[0, 1, :3] = (10, 20, 30)  # unknown
    rgb[..., 3] = 255
    mask, unknown = label_map.encode_rgb(rgb)
    np.testing.assert_array_equal(mask, [[3, 11], [11, 11]])  # black is CamVid's void colour
    assert unknown == 1


def test_encode_rgb_rejects_non_colour_input():
    with pytest.raises(ValueError, match="expected an \\(H, W, 3\\) colour mask"):
        voc_label_map().encode_rgb(np.zeros((4, 4), dtype=np.uint8))


def test_invalid_values_lists_values_that_are_neither_class_nor_void():
    label_map = voc_label_map()
    mask = np.array([[0, 20, 21], [255, 254, 7]], dtype=np.uint8)
    assert label_map.invalid_values(mask) == [21, 254]
    assert camvid_label_map().invalid_values(np.array([0, 10, 11, 12, 255])) == [12, 255]
    assert label_map.invalid_values(np.array([-1, 3], dtype=np.int16)) == [-1]


# -- palettes and names ------------------------------------------------------------------------------
def test_palette_has_class_colours_void_colour_and_black_elsewhere():
    palette = voc_label_map().palette()
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    assert tuple(palette[255]) == (224, 224, 192)
    assert tuple(palette[100]) == (0, 0, 0)
    camvid_palette = camvid_label_map().palette()
    assert tuple(camvid_palette[3]) == (128, 64, 128)
    assert tuple(camvid_palette[11]) == (0, 0, 0)
    colourised = camvid_palette[np.array([[0, 11]], dtype=np.uint8)]
    assert colourised.shape == (1, 2, 3)


@pytest.mark.parametrize(
    ("class_id", "color"),
    [
        (0, (0, 0, 0)),
        (1, (128, 0, 0)),
        (2, (0, 128, 0)),
        (3, (128, 128, 0)),
        (4, (0, 0, 128)),
        (8, (64, 0, 0)),
        (12, (64, 0, 128)),
        (15, (192, 128, 128)),
        (20, (0, 64, 128)),
    ],
)
def test_voc_palette_matches_the_official_colour_map(class_id, color):
    label_map = voc_label_map()
    assert tuple(int(v) for v in label_map.colors[class_id]) == color


def test_voc_label_map_names():
    label_map = voc_label_map()
    assert label_map.num_classes == 21
    assert label_map.class_name(15) == "person"
    assert label_map.class_name(255) == "void"
    assert label_map.class_name(99) == "unknown(99)"
    assert 0 not in label_map.foreground_ids()


def test_generic_label_map_has_distinct_colours():
    label_map = generic_label_map(255)
    assert label_map.names[:2] == ["class_0", "class_1"]
    assert len({tuple(c) for c in label_map.colors.tolist()}) == 255
    assert label_map.background_index is None
