"""Tests for seglab/data/voc.py on tiny VOC-2012 layouts written into tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seglab.data.label_map import voc_label_map
from seglab.data.spec import DataSpec, build_dataset
from seglab.data.voc import VOCDataset
from seglab.errors import DatasetError

HEIGHT, WIDTH = 6, 8


def mask_values(sample_id: str, seed: int = 0) -> np.ndarray:
    """A mask that differs per id (and per ``seed``, to tell SegmentationClass from Aug masks)."""
    seed += sum(map(ord, sample_id))
    values = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    values[1:4, 1 + seed % 3 : 5] = 15  # person
    values[0, :] = 255  # void border, as VOC draws it
    values[5, 0] = seed % 21
    return values


def write_voc(
    root: Path,
    splits: dict[str, list[str]],
    class_ids: list[str] | None = None,
    aug_ids: list[str] = (),
    aug_split: dict[str, list[str]] | None = None,
) -> Path:
    """A VOC2012 folder: JPEG images, palette masks for ``class_ids``, grayscale Aug masks for ``aug_ids``."""
    all_ids = sorted({sample_id for ids in [*splits.values(), *(aug_split or {}).values()] for sample_id in ids})
    class_ids = all_ids if class_ids is None else class_ids
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    palette = voc_label_map().palette().ravel().tolist()
    for position, sample_id in enumerate(all_ids):
        image = np.full((HEIGHT, WIDTH, 3), 40 * position % 256, dtype=np.uint8)
        Image.fromarray(image).save(root / "JPEGImages" / f"{sample_id}.jpg")
        if sample_id in class_ids:
            mask = Image.fromarray(mask_values(sample_id), mode="P")
            mask.putpalette(palette)
            mask.save(root / "SegmentationClass" / f"{sample_id}.png")
        if sample_id in aug_ids:
            (root / "SegmentationClassAug").mkdir(exist_ok=True)
            aug_mask = Image.fromarray(mask_values(sample_id, seed=1), mode="L")
            aug_mask.save(root / "SegmentationClassAug" / f"{sample_id}.png")
    for split, ids in splits.items():
        (root / "ImageSets/Segmentation" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    for split, ids in (aug_split or {}).items():
        (root / "ImageSets/SegmentationAug").mkdir(parents=True, exist_ok=True)
        lines = "".join(f"/JPEGImages/{i}.jpg /SegmentationClassAug/{i}.png\n" for i in ids)
        (root / "ImageSets/SegmentationAug" / f"{split}.txt").write_text(lines)
    return root


@pytest.fixture
def voc_root(tmp_path) -> Path:
    splits = {"train": ["2007_000032", "2007_000039", "2008_000002"], "val": ["2009_000001", "2007_000033"]}
    splits["trainval"] = splits["train"] + splits["val"]
    return write_voc(tmp_path / "VOCdevkit" / "VOC2012", splits)


def test_palette_masks_keep_raw_indices_including_void(voc_root):
    dataset = VOCDataset(voc_root, split="train")
    assert dataset.kind == "voc" and len(dataset) == 3
    assert dataset.ids == ["2007_000032", "2007_000039", "2008_000002"]
    image, mask = dataset.load(1)
    assert image.shape == (HEIGHT, WIDTH, 3) and image.dtype == np.uint8
    assert mask.shape == (HEIGHT, WIDTH) and mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, mask_values("2007_000039"))
    assert {0, 15, 255} <= set(np.unique(mask).tolist())
    assert dataset.ignore_index == 255 and dataset.num_classes == 21
    image_again, _ = dataset[1]
    np.testing.assert_array_equal(image, image_again)


def test_split_order_follows_the_split_file(voc_root):
    dataset = VOCDataset(voc_root, split="val")
    assert dataset.ids == ["2009_000001", "2007_000033"]  # file order, not sorted
    assert len(VOCDataset(voc_root, split="trainval")) == 5
    assert dataset.index_of("2007_000033") == 1


def test_root_may_be_the_parent_of_vocdevkit(voc_root):
    dataset = VOCDataset(voc_root.parent.parent, split="val")
    assert dataset.root == voc_root
    assert "masks from SegmentationClass" in dataset.describe()


def test_built_through_data_spec(voc_root):
    dataset = build_dataset(DataSpec(kind="voc", root=str(voc_root), split="val"))
    assert isinstance(dataset, VOCDataset) and len(dataset) == 2


def test_aug_grayscale_masks_used_when_segmentation_class_lacks_the_id(tmp_path):
    ids = ["a1", "a2", "a3"]
    root = write_voc(tmp_path / "VOC2012", {"train": ids}, class_ids=["a1"], aug_ids=["a1", "a2", "a3"])
    dataset = VOCDataset(root, split="train")
    assert [path.parent.name for path in dataset.mask_paths] == [
        "SegmentationClass",  # preferred when present
        "SegmentationClassAug",
        "SegmentationClassAug",
    ]
    _, mask = dataset.load(1)
    np.testing.assert_array_equal(mask, mask_values("a2", seed=1))  # the Aug mask
    _, mask = dataset.load(0)
    np.testing.assert_array_equal(mask, mask_values("a1"))


def test_split_file_from_segmentation_aug_folder_with_path_lines(tmp_path):
    root = write_voc(
        tmp_path / "VOC2012", {"val": ["b1"]}, class_ids=[], aug_ids=["b1", "b2"], aug_split={"train_aug": ["b2", "b1"]}
    )
    dataset = VOCDataset(root, split="train_aug")
    assert dataset.ids == ["b2", "b1"]
    assert dataset.list_file.parent.name == "SegmentationAug"
    assert dataset.load(0)[1].shape == (HEIGHT, WIDTH)


def test_missing_split_lists_the_splits_found(voc_root):
    (voc_root / "ImageSets/Segmentation/val.txt").unlink()
    with pytest.raises(DatasetError) as raised:
        VOCDataset(voc_root, split="val")
    message = str(raised.value)
    assert f"no ImageSets/Segmentation/val.txt under {voc_root}" in message
    assert "found splits: train, trainval" in message


def test_missing_jpeg_folder_says_where_to_point_root(voc_root):
    (voc_root / "JPEGImages").rename(voc_root / "Images")
    with pytest.raises(DatasetError, match=r"JPEGImages/ missing under .*VOC2012 — point --root at the VOC2012 folder"):
        VOCDataset(voc_root)


def test_root_without_voc_layout(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        VOCDataset(tmp_path / "absent")
    (tmp_path / "something").mkdir()
    with pytest.raises(DatasetError, match="no PASCAL VOC-2012 layout under .*point --root at the VOC2012 folder"):
        VOCDataset(tmp_path / "something")


def test_no_mask_folders(voc_root):
    for path in (voc_root / "SegmentationClass").iterdir():
        path.unlink()
    (voc_root / "SegmentationClass").rmdir()
    with pytest.raises(DatasetError, match="expected SegmentationClass/ or SegmentationClassAug/"):
        VOCDataset(voc_root)


def test_empty_split_file(voc_root):
    (voc_root / "ImageSets/Segmentation/train.txt").write_text("\n\n")
    with pytest.raises(DatasetError, match=r"train\.txt lists no image ids"):
        VOCDataset(voc_root)


def test_all_images_missing_is_an_error_at_construction(voc_root):
    for path in (voc_root / "JPEGImages").iterdir():
        path.unlink()
    with pytest.raises(DatasetError, match=r"none of the 3 images listed in .*train\.txt is in"):
        VOCDataset(voc_root)


def test_one_missing_file_is_reported_and_fails_only_when_loaded(voc_root):
    (voc_root / "JPEGImages" / "2007_000039.jpg").unlink()
    (voc_root / "SegmentationClass" / "2008_000002.png").unlink()
    dataset = VOCDataset(voc_root)
    assert [path.name for path in dataset.missing_files()] == ["2007_000039.jpg", "2008_000002.png"]
    with pytest.raises(
        DatasetError, match=r"2 file\(s\) listed in .*train\.txt are missing .*JPEGImages/2007_000039\.jpg"
    ):
        dataset.check()
    dataset.load(0)
    with pytest.raises(DatasetError, match=r"image file .*2007_000039\.jpg does not exist"):
        dataset.load(1)
    with pytest.raises(DatasetError, match=r"mask file .*SegmentationClass/2008_000002\.png does not exist"):
        dataset.load(2)


def test_corrupt_jpeg_names_the_file(voc_root):
    path = voc_root / "JPEGImages" / "2007_000032.jpg"
    path.write_bytes(path.read_bytes()[:100])
    dataset = VOCDataset(voc_root)
    with pytest.raises(DatasetError, match=r"cannot read image file .*2007_000032\.jpg"):
        dataset.load(0)


def test_mask_with_wrong_size_or_labels(voc_root):
    wide = Image.fromarray(np.zeros((HEIGHT, WIDTH + 2), dtype=np.uint8), mode="L")
    wide.save(voc_root / "SegmentationClass" / "2007_000032.png")
    bad_labels = mask_values("2007_000039")
    bad_labels[2, 2] = 40
    Image.fromarray(bad_labels, mode="L").save(voc_root / "SegmentationClass" / "2007_000039.png")
    dataset = VOCDataset(voc_root)
    with pytest.raises(DatasetError, match=r"2007_000032\.png is 10x6 but image .*2007_000032\.jpg is 8x6"):
        dataset.load(0)
    with pytest.raises(DatasetError, match=r"2007_000039\.png holds label values 40 .*label map 'voc'"):
        dataset.load(1)


def test_fingerprint_follows_file_changes(voc_root):
    first = VOCDataset(voc_root).fingerprint()
    assert VOCDataset(voc_root).fingerprint() == first
    mask_path = voc_root / "SegmentationClass" / "2007_000032.png"
    stat = mask_path.stat()
    os.utime(mask_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    touched = VOCDataset(voc_root).fingerprint()
    assert touched != first
    image_path = voc_root / "JPEGImages" / "2008_000002.jpg"
    with open(image_path, "ab") as stream:
        stream.write(b"\0")
    assert VOCDataset(voc_root).fingerprint() not in {first, touched}
    parts = VOCDataset(voc_root).fingerprint_parts()
    split_file = voc_root / "ImageSets/Segmentation/train.txt"
    assert parts[0][:2] == ("ImageSets/Segmentation/train.txt", split_file.stat().st_size)
    assert all(not Path(relative).is_absolute() for relative, _, _ in parts)


def test_custom_label_map_changes_validation(voc_root):
    from seglab.data.label_map import ClassInfo, LabelMap

    small = LabelMap(classes=(ClassInfo(0, "bg", (0, 0, 0)), ClassInfo(1, "thing", (9, 9, 9))), name="small")
    dataset = VOCDataset(voc_root, label_map=small)
    with pytest.raises(DatasetError, match="label map 'small'"):
        dataset.load(0)
