"""Tests for seglab/data/io.py: image/mask reading, mask formats, validation and file errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFile

from seglab.data.io import read_image, read_mask, read_mask_pixels, stat_files, validate_sample
from seglab.data.label_map import camvid_label_map, voc_label_map
from seglab.errors import DatasetError

HEIGHT, WIDTH = 6, 8


def index_values() -> np.ndarray:
    values = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    values[1:3, 2:5] = 15
    values[4, :] = 255
    values[5, 7] = 1
    return values


def save_palette_mask(path, values: np.ndarray) -> None:
    image = Image.fromarray(values, mode="P")
    image.putpalette(voc_label_map().palette().ravel().tolist())
    image.save(path)


# -- images ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "LA", "I;16", "CMYK"])
def test_read_image_always_returns_rgb_uint8(tmp_path, mode):
    rgb = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    if mode == "I;16":
        image = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
    else:
        image = Image.fromarray(rgb).convert(mode)
    path = tmp_path / ("x.tif" if mode in {"CMYK", "I;16"} else "x.png")
    image.save(path)
    loaded = read_image(path)
    assert loaded.shape == (HEIGHT, WIDTH, 3) and loaded.dtype == np.uint8
    if mode in {"RGB", "RGBA"}:
        np.testing.assert_array_equal(loaded, rgb)
    if mode == "I;16":  # 16-bit keeps its top byte
        np.testing.assert_array_equal(loaded[..., 1], rgb[..., 0])


def test_read_image_missing_file_names_path(tmp_path):
    with pytest.raises(DatasetError, match=r"image file .*nope\.jpg does not exist"):
        read_image(tmp_path / "nope.jpg")
    with pytest.raises(DatasetError, match="is a folder"):
        read_image(tmp_path)


def test_read_image_garbage_bytes(tmp_path):
    path = tmp_path / "garbage.png"
    path.write_bytes(b"this is not a png" * 10)
    with pytest.raises(
        DatasetError, match=r"cannot read image file .*garbage\.png.*corrupt, truncated or not an image"
    ):
        read_image(path)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_read_image_truncated_file(tmp_path, suffix):
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    full = tmp_path / f"full{suffix}"
    Image.fromarray(rgb).save(full)
    truncated = tmp_path / f"truncated{suffix}"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(DatasetError, match=rf"truncated{suffix}.*truncated"):
        read_image(truncated)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_read_image_decompression_bomb(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((40, 40, 3), dtype=np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1600 pixels > 2x the limit: Pillow refuses
    with pytest.raises(DatasetError, match=r"big\.png is too large to read safely"):
        read_image(path)


# -- masks -----------------------------------------------------------------------------------------
def test_palette_mask_read_as_raw_indices(tmp_path):
    path = tmp_path / "voc.png"
    save_palette_mask(path, index_values())
    with Image.open(path) as stored:
        assert stored.mode == "P"
    for mask_format in ("auto", "index"):
        mask, unknown = read_mask(path, voc_label_map(), mask_format)
        np.testing.assert_array_equal(mask, index_values())  # 15 and 255 survive, not colours
        assert unknown == 0


def test_palette_mask_as_rgb_decodes_through_its_palette(tmp_path):
    path = tmp_path / "voc.png"
    save_palette_mask(path, index_values())
    mask, unknown = read_mask(path, voc_label_map(), "rgb")
    np.testing.assert_array_equal(mask, index_values())  # palette colours are the VOC colours
    assert unknown == 0


def test_grayscale_mask_read_as_indices(tmp_path):
    path = tmp_path / "gray.png"
    Image.fromarray(index_values(), mode="L").save(path)
    mask, unknown = read_mask(path, voc_label_map())
    np.testing.assert_array_equal(mask, index_values())
    assert mask.dtype == np.uint8 and unknown == 0


def test_rgb_colour_mask_decoded_and_unknown_colours_counted(tmp_path):
    label_map = voc_label_map()
    colours = label_map.palette()[index_values()]
    colours[0, 0] = (1, 2, 3)  # not a VOC colour
    colours[0, 1] = (4, 5, 6)
    path = tmp_path / "colour.png"
    Image.fromarray(colours).save(path)
    expected = index_values()
    expected[0, :2] = 255
    for mask_format in ("auto", "rgb"):
        mask, unknown = read_mask(path, label_map, mask_format)
        np.testing.assert_array_equal(mask, expected)
        assert unknown == 2
    with pytest.raises(DatasetError, match="colour \\(RGB\\) image but mask format 'index'"):
        read_mask(path, label_map, "index")
    with pytest.raises(DatasetError, match="needs a label map"):
        read_mask(path, None, "auto")


def test_index_mask_saved_as_rgb_is_read_as_indices(tmp_path):
    path = tmp_path / "gray_rgb.png"
    Image.fromarray(np.repeat(index_values()[..., None], 3, axis=2)).save(path)
    mask, unknown = read_mask(path, voc_label_map(), "auto")
    np.testing.assert_array_equal(mask, index_values())
    assert unknown == 0
    assert read_mask_pixels(path).shape == (HEIGHT, WIDTH, 3)


def test_gray_colours_of_a_colour_mask_are_not_mistaken_for_indices(tmp_path):
    # A CamVid colour mask holding only Sky (128,128,128) and void (0,0,0) has equal channels.
    values = np.full((HEIGHT, WIDTH, 3), 128, dtype=np.uint8)
    values[0] = 0
    path = tmp_path / "sky.png"
    Image.fromarray(values).save(path)
    mask, unknown = read_mask(path, camvid_label_map(), "auto")
    assert set(np.unique(mask).tolist()) == {0, 11}
    assert mask[0, 0] == 11 and unknown == 0


def test_sixteen_bit_mask_with_large_values_is_rejected(tmp_path):
    path = tmp_path / "wide.png"
    values = index_values().astype(np.uint16)
    values[0, 0] = 1000
    Image.fromarray(values).save(path)
    with pytest.raises(DatasetError, match=r"wide\.png holds label values 1000 outside 0-255"):
        read_mask(path, voc_label_map())
    values[0, 0] = 3
    Image.fromarray(values).save(path)
    mask, _ = read_mask(path, voc_label_map())
    assert mask.dtype == np.uint8 and mask[0, 0] == 3


def test_read_mask_rejects_unknown_format_and_bad_files(tmp_path):
    path = tmp_path / "m.png"
    Image.fromarray(index_values()).save(path)
    with pytest.raises(DatasetError, match="mask format 'colour' is not one of auto, index, rgb"):
        read_mask(path, voc_label_map(), "colour")
    with pytest.raises(DatasetError, match=r"mask file .*missing\.png does not exist"):
        read_mask(tmp_path / "missing.png", voc_label_map())
    broken = tmp_path / "broken.png"
    broken.write_bytes(path.read_bytes()[:30])
    with pytest.raises(DatasetError, match=r"cannot read mask file .*broken\.png"):
        read_mask(broken, voc_label_map())


# -- validation ------------------------------------------------------------------------------------
def test_validate_sample_size_mismatch_names_files_and_sizes():
    image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    mask = np.zeros((HEIGHT + 1, WIDTH), dtype=np.uint8)
    with pytest.raises(DatasetError) as raised:
        validate_sample(image, mask, voc_label_map(), "img/a.jpg", "ann/a.png")
    message = str(raised.value)
    assert "ann/a.png is 8x7" in message and "img/a.jpg is 8x6" in message


def test_validate_sample_invalid_labels_lists_values_and_label_map():
    image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    mask = np.arange(HEIGHT * WIDTH, dtype=np.uint8).reshape(HEIGHT, WIDTH)  # 0..47
    with pytest.raises(DatasetError) as raised:
        validate_sample(image, mask, camvid_label_map(), "a.png", "a_mask.png")
    message = str(raised.value)
    assert "a_mask.png holds label values 12, 13" in message
    assert "20, 21, ... (36 values in all)" in message and "22" not in message
    assert "'camvid'" in message and "ignore index 11" in message


def test_validate_sample_accepts_classes_and_the_ignore_index():
    image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    validate_sample(image, index_values(), voc_label_map(), "a", "b")
    camvid_mask = np.full((HEIGHT, WIDTH), 11, dtype=np.uint8)
    camvid_mask[0] = 10
    validate_sample(image, camvid_mask, camvid_label_map(), "a", "b")
    with pytest.raises(DatasetError, match="label values 15, 255 "):
        validate_sample(image, index_values(), camvid_label_map(), "a", "b")  # 255 is not void in CamVid


def test_stat_files_marks_missing_files(tmp_path):
    (tmp_path / "a.png").write_bytes(b"123")
    parts = stat_files(tmp_path, [tmp_path / "b.png", tmp_path / "a.png"])
    assert parts[0][:2] == ("a.png", 3) and parts[0][2] > 0
    assert parts[1] == ("b.png", -1, -1)
