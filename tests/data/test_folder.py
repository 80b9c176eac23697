"""Tests for seglab/data/folder.py: image+mask folders, list files, colour masks, and CamVid."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seglab.data.folder import CamVidDataset, FolderDataset, match_mask_names
from seglab.data.io import read_mask
from seglab.data.label_map import camvid_label_map
from seglab.data.spec import DataSpec, build_dataset
from seglab.errors import DatasetError
from tests.helpers.folders import (
    HEIGHT,
    PETS,
    WIDTH,
    mask_values,
    write_colour_mask,
    write_image,
    write_index_mask,
    write_mini_camvid,
)


@pytest.fixture
def index_layout(tmp_path) -> Path:
    """images/{b,a,c}.png with masks a.png, b_mask.png, c_L.png, plus d.jpg that has no mask."""
    for seed, (image, mask) in enumerate([("a.png", "a.png"), ("b.png", "b_mask.png"), ("c.png", "c_L.png")]):
        write_image(tmp_path / "images" / image, seed)
        write_index_mask(tmp_path / "masks" / mask, mask_values(seed))
    write_image(tmp_path / "images" / "d.jpg")
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    return tmp_path


# -- discovery by folder -------------------------------------------------------------------------------
def test_folder_pairs_by_stem_and_suffix_and_skips_unpaired(index_layout):
    dataset = FolderDataset(index_layout / "images", index_layout / "masks", label_map=PETS)
    assert dataset.kind == "folder" and dataset.split == "custom"
    assert dataset.ids == ["a", "b", "c"]
    assert [path.name for path in dataset.mask_paths] == ["a.png", "b_mask.png", "c_L.png"]
    assert dataset.unpaired == ["d.jpg"]
    assert "1 image(s) without a mask skipped (e.g. d.jpg" in dataset.describe()
    image, mask = dataset.load(2)
    assert image.shape == (HEIGHT, WIDTH, 3) and mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, mask_values(2))


def test_exact_mask_name_beats_suffixed_one():
    names = {"x.png", "x_L.png", "y_label.png", "y_label.bmp", "z.tif", "z.png", "notes.txt"}
    expected = {"x": "x.png", "y": "y_label.png", "y_label": "y_label.png", "x_L": "x_L.png", "z": "z.png"}
    assert match_mask_names(names) == expected


def test_masks_next_to_images_in_one_folder(tmp_path):
    write_image(tmp_path / "data" / "a.png")
    write_index_mask(tmp_path / "data" / "a_mask.png", mask_values(0))
    dataset = FolderDataset(tmp_path / "data", tmp_path / "data", label_map=PETS)
    assert dataset.ids == ["a"] and dataset.mask_paths[0].name == "a_mask.png"


def test_no_pairs_at_all_shows_both_namings(tmp_path):
    write_image(tmp_path / "images" / "frame_001.png")
    write_index_mask(tmp_path / "masks" / "frame_001_gtFine_labelIds.png", mask_values(0))
    with pytest.raises(DatasetError) as raised:
        FolderDataset(tmp_path / "images", tmp_path / "masks", label_map=PETS)
    message = str(raised.value)
    assert "no image in" in message and "frame_001.png" in message and "frame_001_gtFine_labelIds.png" in message


def test_missing_or_empty_folders(tmp_path):
    with pytest.raises(DatasetError, match=r"image folder .*nowhere does not exist; check --images"):
        FolderDataset(tmp_path / "nowhere", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no images .* in .*empty; check --images"):
        FolderDataset(tmp_path / "empty", tmp_path)
    with pytest.raises(DatasetError, match="mask format 'png' is not one of"):
        FolderDataset(tmp_path, tmp_path, mask_format="png")


def test_duplicate_stems_are_an_error(index_layout):
    write_image(index_layout / "images" / "a.jpg")
    with pytest.raises(DatasetError, match="several images are named a "):
        FolderDataset(index_layout / "images", index_layout / "masks", label_map=PETS)


def test_built_through_data_spec(index_layout):
    spec = DataSpec(kind="folder", images=str(index_layout / "images"), masks=str(index_layout / "masks"), split="val")
    dataset = build_dataset(spec)
    assert isinstance(dataset, FolderDataset) and dataset.split == "val" and len(dataset) == 3


def test_load_mask_is_the_mask_of_load_without_reading_the_image(index_layout, monkeypatch):
    """The dataset contract's mask-only path (statistics, Failures): same mask, image never decoded."""
    from seglab.data import folder
    from seglab.data.cache import MemoryCachedDataset
    from seglab.data.shapes import ShapesConfig, ShapesDataset

    layout = {"images": str(index_layout / "images"), "masks": str(index_layout / "masks")}
    dataset = build_dataset(DataSpec(kind="folder", **layout))
    expected = [dataset.load(index)[1] for index in range(len(dataset))]
    monkeypatch.setattr(folder, "read_image", lambda path: pytest.fail(f"read {path} for a mask"))
    assert all(np.array_equal(dataset.load_mask(index), mask) for index, mask in enumerate(expected))
    cached = MemoryCachedDataset(dataset)
    assert np.array_equal(cached.load_mask(1), expected[1])  # not cached yet: the wrapped fast path
    shapes = ShapesDataset("val", ShapesConfig(val_size=2, image_size=32))
    cached = MemoryCachedDataset(shapes)
    image, mask = cached.load(0)
    assert cached.load_mask(0) is mask and np.array_equal(shapes.load_mask(1), shapes.load(1)[1])


# -- label maps ----------------------------------------------------------------------------------------
def test_without_label_map_a_generic_one_is_inferred_and_described(index_layout):
    dataset = FolderDataset(index_layout / "images", index_layout / "masks")
    assert dataset.label_map.names == ["class_0", "class_1", "class_2"]
    assert dataset.ignore_index == 255 and dataset.label_map.background_index is None
    assert "no label map given: using generic classes class_0..class_2" in dataset.describe()
    dataset.load(0)


def test_binary_0_255_masks_get_a_warning_in_describe(tmp_path):
    write_image(tmp_path / "images" / "a.png")
    write_index_mask(tmp_path / "masks" / "a.png", np.where(mask_values(0) > 0, 255, 0).astype(np.uint8))
    dataset = FolderDataset(tmp_path / "images", tmp_path / "masks")
    assert dataset.num_classes == 1
    assert "if 255 means foreground" in dataset.describe()


def test_colour_masks_without_label_map_are_an_error(tmp_path):
    write_image(tmp_path / "images" / "a.png")
    write_colour_mask(tmp_path / "masks" / "a.png", mask_values(0))
    with pytest.raises(DatasetError, match=r"a\.png is colour-coded \(RGB\).*give a label map JSON file.*--label-map"):
        FolderDataset(tmp_path / "images", tmp_path / "masks")
    with pytest.raises(DatasetError, match="label map giving each class colour is required"):
        FolderDataset(tmp_path / "images", tmp_path / "masks", mask_format="rgb")


def test_colour_masks_decode_and_unknown_colours_are_counted(tmp_path):
    for seed, name in enumerate(["a", "b"]):
        write_image(tmp_path / "images" / f"{name}.png", seed)
        colours = PETS.palette()[mask_values(seed)]
        if name == "b":
            colours[5, 5:] = (10, 200, 10)  # 3 pixels of a colour the label map does not know
        (tmp_path / "masks").mkdir(exist_ok=True)
        Image.fromarray(colours).save(tmp_path / "masks" / f"{name}.png")
    dataset = FolderDataset(tmp_path / "images", tmp_path / "masks", label_map=PETS, mask_format="rgb")
    _, mask_a = dataset.load(0)
    np.testing.assert_array_equal(mask_a, mask_values(0))
    _, mask_b = dataset.load(1)
    expected = mask_values(1)
    expected[5, 5:] = 255
    np.testing.assert_array_equal(mask_b, expected)
    assert dataset.unknown_colour_pixels == {"b": 3}
    assert "1 mask(s) had 3 pixels in colours not in label map 'pets', read as void (255): b (3)" in dataset.describe()
    assert dataset.unknown_colour_report().startswith("1 mask(s)")


def test_statistics_report_unknown_colours_also_from_the_cache(tmp_path, monkeypatch):
    from seglab.analysis.stats import compute_stats
    from seglab.cli.report import format_stats_report

    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(tmp_path / "cache"))
    for seed, name in enumerate(["a", "b", "c"]):
        write_image(tmp_path / "images" / f"{name}.png", seed)
        colours = PETS.palette()[mask_values(seed)]
        if name != "a":
            colours[2, : 2 + seed] = (10, 200, 10)  # b: 3 pixels, c: 4 pixels of an unknown colour
        (tmp_path / "masks").mkdir(exist_ok=True)
        Image.fromarray(colours).save(tmp_path / "masks" / f"{name}.png")
    for _ in range(2):  # the second call reads the cache and must still know
        dataset = FolderDataset(tmp_path / "images", tmp_path / "masks", label_map=PETS, mask_format="rgb")
        stats = compute_stats(dataset)
        assert stats.unknown_colour_pixels.tolist() == [0, 3, 4]
        assert (stats.ignore_pixels >= stats.unknown_colour_pixels).all()
        report = stats.unknown_colour_report()
        assert report.startswith("2 mask(s) hold 7 pixels in colours that are not in the label map")
        assert "c (4 px), b (3 px)" in report
        assert f"warning: {report}" in format_stats_report(stats, "title")


def test_auto_format_mixes_index_and_colour_masks(tmp_path):
    write_image(tmp_path / "images" / "a.png")
    write_image(tmp_path / "images" / "b.png")
    write_index_mask(tmp_path / "masks" / "a.png", mask_values(0))
    write_colour_mask(tmp_path / "masks" / "b.png", mask_values(1))
    dataset = FolderDataset(tmp_path / "images", tmp_path / "masks", label_map=PETS)
    np.testing.assert_array_equal(dataset.load(0)[1], mask_values(0))
    np.testing.assert_array_equal(dataset.load(1)[1], mask_values(1))
    assert dataset.unknown_colour_report() == ""


# -- list files ------------------------------------------------------------------------------------------
def test_list_file_with_foreign_absolute_paths_keeps_its_order(index_layout):
    list_file = index_layout / "train.txt"
    list_file.write_text(
        "# image mask\n"
        "/SegNet/data/images/c.png /SegNet/data/masks/c_L.png\n"
        "\n"
        "C:\\Users\\someone\\images\\a.png   C:\\Users\\someone\\masks\\a.png\n"
        "relative/folder/b.png\n"  # no mask column: paired by stem
    )
    dataset = FolderDataset(index_layout / "images", index_layout / "masks", list_file=list_file, label_map=PETS)
    assert dataset.ids == ["c", "a", "b"]
    assert [path.name for path in dataset.mask_paths] == ["c_L.png", "a.png", "b_mask.png"]
    assert dataset.unpaired == []
    np.testing.assert_array_equal(dataset.load(0)[1], mask_values(2))


def test_list_file_relative_paths_into_subfolders(tmp_path):
    write_image(tmp_path / "images" / "city1" / "x.png")
    write_index_mask(tmp_path / "masks" / "city1" / "x.png", mask_values(0))
    list_file = tmp_path / "list.txt"
    list_file.write_text("city1/x.png city1/x.png\n")
    dataset = FolderDataset(tmp_path / "images", tmp_path / "masks", list_file=list_file, label_map=PETS)
    assert dataset.image_paths == [tmp_path / "images" / "city1" / "x.png"]
    assert dataset.load(0)[1].shape == (HEIGHT, WIDTH)


def test_list_file_naming_images_without_masks_is_an_error(index_layout):
    list_file = index_layout / "list.txt"
    list_file.write_text("/x/a.png /y/a.png\n/x/d.jpg\n/x/b.png /y/gone.png\n")
    with pytest.raises(DatasetError) as raised:
        FolderDataset(index_layout / "images", index_layout / "masks", list_file=list_file, label_map=PETS)
    message = str(raised.value)
    assert "2 sample(s) in" in message and "line 2: d.jpg" in message and "line 3: gone.png" in message


def test_list_file_format_errors(index_layout):
    list_file = index_layout / "list.txt"
    list_file.write_text("a.png a.png extra\n")
    with pytest.raises(DatasetError, match=r"list\.txt line 1 has 3 fields; expected IMAGE \[MASK\]"):
        FolderDataset(index_layout / "images", index_layout / "masks", list_file=list_file)
    with pytest.raises(DatasetError, match=r"list file .*absent\.txt does not exist"):
        FolderDataset(index_layout / "images", index_layout / "masks", list_file=index_layout / "absent.txt")
    list_file.write_text("# only a comment\n")
    with pytest.raises(DatasetError, match="names no samples"):
        FolderDataset(index_layout / "images", index_layout / "masks", list_file=list_file)


def test_list_file_missing_images_fail_when_loaded(index_layout):
    list_file = index_layout / "list.txt"
    list_file.write_text("a.png\nb.png\n")
    (index_layout / "images" / "b.png").unlink()
    dataset = FolderDataset(index_layout / "images", index_layout / "masks", list_file=list_file, label_map=PETS)
    assert [path.name for path in dataset.missing_files()] == ["b.png"]
    with pytest.raises(DatasetError, match=r"1 file\(s\) listed in .*list\.txt are missing .*images/b\.png"):
        dataset.check()
    dataset.load(0)
    with pytest.raises(DatasetError, match=r"image file .*b\.png does not exist"):
        dataset.load(1)
    (index_layout / "images" / "a.png").unlink()
    with pytest.raises(DatasetError, match=r"none of the 2 images named in .*list\.txt is in"):
        FolderDataset(index_layout / "images", index_layout / "masks", list_file=list_file, label_map=PETS)


# -- bad samples -----------------------------------------------------------------------------------------
def test_mask_size_mismatch_names_file_and_both_sizes(index_layout):
    write_index_mask(index_layout / "masks" / "a.png", np.zeros((HEIGHT * 2, WIDTH * 2), dtype=np.uint8))
    dataset = FolderDataset(index_layout / "images", index_layout / "masks", label_map=PETS)
    with pytest.raises(DatasetError) as raised:
        dataset.load(0)
    message = str(raised.value)
    assert str(index_layout / "masks" / "a.png") in message and str(index_layout / "images" / "a.png") in message
    assert "is 16x12 but image" in message and "is 8x6" in message


def test_invalid_label_values_name_file_values_and_label_map(index_layout):
    values = mask_values(1)
    values[3, 3] = 7
    values[3, 4] = 200
    write_index_mask(index_layout / "masks" / "b_mask.png", values)
    dataset = FolderDataset(index_layout / "images", index_layout / "masks", label_map=PETS)
    with pytest.raises(
        DatasetError, match=r"b_mask\.png holds label values 7, 200 that are not classes of label map 'pets'"
    ):
        dataset.load(1)


def test_corrupt_image_and_truncated_mask_name_the_file(index_layout):
    (index_layout / "images" / "a.png").write_bytes(b"\x89PNG garbage garbage garbage")
    mask_path = index_layout / "masks" / "c_L.png"
    big = np.random.default_rng(0).integers(0, 3, (64, 64), dtype=np.uint8)
    write_index_mask(mask_path, big)
    mask_path.write_bytes(mask_path.read_bytes()[: mask_path.stat().st_size // 2])
    dataset = FolderDataset(index_layout / "images", index_layout / "masks", label_map=PETS)
    with pytest.raises(DatasetError, match=r"cannot read image file .*images/a\.png"):
        dataset.load(0)
    with pytest.raises(DatasetError, match=r"cannot read mask file .*c_L\.png.*truncated"):
        dataset.load(2)


# -- fingerprint -----------------------------------------------------------------------------------------
def test_fingerprint_changes_with_mtime_size_and_membership(index_layout):
    def build() -> FolderDataset:
        return FolderDataset(index_layout / "images", index_layout / "masks", label_map=PETS)

    parts = build().fingerprint_parts()
    assert [relative for relative, _, _ in parts] == sorted(
        ["images/a.png", "images/b.png", "images/c.png", "masks/a.png", "masks/b_mask.png", "masks/c_L.png"]
    )
    first = build().fingerprint()
    assert build().fingerprint() == first
    image_path = index_layout / "images" / "b.png"
    stat = image_path.stat()
    os.utime(image_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    touched = build().fingerprint()
    assert touched != first
    mask_path = index_layout / "masks" / "a.png"
    mtime = mask_path.stat().st_mtime_ns
    with open(mask_path, "ab") as stream:
        stream.write(b"\0")  # size changes even if mtime happens to be equal
    os.utime(mask_path, ns=(mtime, mtime))
    resized = build().fingerprint()
    assert resized not in {first, touched}
    write_index_mask(index_layout / "masks" / "d.png", mask_values(0))  # d.jpg gains a mask
    assert build().fingerprint() != resized
    other_labels = FolderDataset(index_layout / "images", index_layout / "masks", label_map=camvid_label_map())
    assert other_labels.fingerprint() != build().fingerprint()


# -- CamVid ------------------------------------------------------------------------------------------------
def test_mini_camvid_layout_and_errors(tmp_path):
    root = write_mini_camvid(tmp_path / "SegNet" / "CamVid")
    dataset = CamVidDataset(tmp_path / "SegNet", split="val")  # a parent holding CamVid/ works too
    assert dataset.kind == "camvid" and dataset.root == root
    assert dataset.ids == ["0001TP_002", "0001TP_001", "0001TP_000"]  # list order
    assert dataset.ignore_index == 11
    assert dataset.load(0)[1].max() == 11
    with pytest.raises(
        DatasetError, match=r"no CamVid split 'test' under .*expected test/ and testannot/; found splits: train, val"
    ):
        CamVidDataset(root, split="test")
    with pytest.raises(DatasetError, match="no CamVid layout under"):
        CamVidDataset(tmp_path / "SegNet" / "CamVid" / "train")
    with pytest.raises(DatasetError, match="does not exist"):
        CamVidDataset(tmp_path / "nothing")
    (root / "train.txt").unlink()  # without a list file the folders are paired by name, sorted
    assert CamVidDataset(root).ids == ["0001TP_000", "0001TP_001", "0001TP_002"]


@pytest.mark.camvid
def test_camvid_splits_sizes_ids_and_labels(camvid_root):
    train = CamVidDataset(camvid_root, split="train")
    val = CamVidDataset(camvid_root, split="val")
    assert (len(train), len(val)) == (367, 101)
    assert train.label_map == camvid_label_map() and train.ignore_index == 11
    lines = (camvid_root / "train.txt").read_text().splitlines()
    listed = [Path(line.split()[0]).stem for line in lines if line.strip()]
    assert train.ids == listed
    assert not train.missing_files() and not val.missing_files()
    for dataset in (train, val):  # every mask: cheap, masks are small
        for mask_path in dataset.mask_paths:
            mask, unknown = read_mask(mask_path, dataset.label_map)
            assert mask.shape == (360, 480) and unknown == 0
            assert int(mask.max()) <= 11
    for index in range(0, len(val), 25):  # full loads, validation included, on a spread of samples
        image, mask = val.load(index)
        assert image.shape == (360, 480, 3) and image.dtype == np.uint8
        assert mask.shape == (360, 480) and mask.dtype == np.uint8


@pytest.mark.camvid
def test_camvid_fingerprint_is_stable_and_cheap(camvid_root):
    start = time.perf_counter()
    first = CamVidDataset(camvid_root, split="train").fingerprint()
    elapsed = time.perf_counter() - start
    assert CamVidDataset(camvid_root, split="train").fingerprint() == first
    assert CamVidDataset(camvid_root, split="val").fingerprint() != first
    assert elapsed < 5  # stat only, no image reads
    parts = CamVidDataset(camvid_root, split="val").fingerprint_parts()
    assert len(parts) == 1 + 2 * 101 and parts[0][0] == "val.txt"
    assert all(relative.startswith(("val/", "valannot/", "val.txt")) for relative, _, _ in parts)
