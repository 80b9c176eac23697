"""Every bad upload is refused at once with its reason, nothing is stored and the quota is untouched."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from seglab.competition.archive import ZipLimits, check_zip, read_entries
from seglab.competition.errors import SubmissionRejected
from seglab.competition.submissions import all_submissions, quota_for, submit
from tests.helpers.competition import (
    DEMO_CHECKPOINT,
    SMALL_SHAPES,
    checkpoint_bytes,
    constant_masks,
    ground_truth_masks,
    make_competition,
    mask_zip,
    png_bytes,
    zip_bytes,
)


@pytest.fixture(scope="module")
def cup(tmp_path_factory):
    store, competition, issued = make_competition(
        tmp_path_factory.mktemp("validation") / "c", teams=("Alpha",), max_upload_mb=5.0
    )
    return store, competition, issued[0].team


def refused(cup, data: bytes, name: str, match: str, kind: str | None = None) -> None:
    store, competition, team = cup
    before = quota_for(store, competition, team).left
    with pytest.raises(SubmissionRejected, match=match):
        submit(store, competition, team, data, name, kind=kind)
    assert quota_for(store, competition, team).left == before
    assert not all_submissions(store, competition)
    assert not list((store.folder / "uploads").iterdir())  # staged file removed
    assert not list((store.folder / "files").iterdir())  # nothing kept


# -- accepted ------------------------------------------------------------------------------------------
def test_a_valid_mask_zip_and_checkpoint_are_accepted(tmp_path: Path) -> None:
    store, competition, issued = make_competition(tmp_path / "c", teams=("Alpha",))
    team = issued[0].team
    receipt = submit(store, competition, team, mask_zip(ground_truth_masks()), "preds.zip")
    assert "12 predicted masks" in receipt.description
    receipt = submit(store, competition, team, DEMO_CHECKPOINT.read_bytes(), "best.pt")
    assert "tiny_unet" in receipt.description
    assert [s.status for s in all_submissions(store, competition)] == ["queued", "queued"]


def test_masks_in_one_folder_and_zip_tool_clutter_are_accepted(tmp_path: Path) -> None:
    store, competition, issued = make_competition(tmp_path / "c", teams=("Alpha",))
    files = {f"preds/{i}.png": data for i, data in _mask_files().items()}
    files["__MACOSX/preds/._test-000000.png"] = b"apple double"
    files["preds/.DS_Store"] = b"finder"
    submit(store, competition, issued[0].team, zip_bytes(files), "preds.zip")


def _mask_files() -> dict[str, bytes]:
    return {sample_id: png_bytes(mask) for sample_id, mask in constant_masks().items()}


# -- generic checks --------------------------------------------------------------------------------------
def test_too_large(cup) -> None:
    refused(cup, b"x" * (6 * 2**20), "best.pt", "larger than the 5 MB")


def test_empty_file(cup) -> None:
    refused(cup, b"", "best.pt", "empty")


def test_kind_not_allowed(cup) -> None:
    refused(cup, b"onnx bytes", "model.onnx", "not allowed here")


# -- checkpoints ------------------------------------------------------------------------------------------
def test_not_a_checkpoint(cup) -> None:
    refused(cup, b"\x89PNG garbage", "best.pt", "not a PyTorch checkpoint")


def test_truncated_checkpoint(cup) -> None:
    refused(cup, DEMO_CHECKPOINT.read_bytes()[:200_000], "best.pt", "truncated|damaged|not a PyTorch")


def test_checkpoint_with_another_class_count(cup) -> None:
    refused(
        cup,
        checkpoint_bytes(["background", "car", "road"]),
        "best.pt",
        "predicts 3 classes but this competition has 7",
    )


def test_checkpoint_with_other_class_names(cup) -> None:
    names = ["background", "circle", "square", "triangle", "star", "ring", "CAR"]
    refused(cup, checkpoint_bytes(names), "best.pt", "classes .* differ")


def test_checkpoint_of_an_unknown_architecture(cup) -> None:
    names = ["background", "circle", "square", "triangle", "star", "ring", "stripe"]
    refused(cup, checkpoint_bytes(names, model_name="my_secret_net"), "best.pt", "not one this seglab knows")


def test_checkpoint_holding_pickled_code_is_refused_unexecuted(cup, tmp_path: Path) -> None:
    import pickle

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # a torch-like zip whose data.pkl runs code when unpickled
        archive.writestr("archive/data.pkl", pickle.dumps(Exploit(), protocol=2))
        archive.writestr("archive/version", "3\n")
    refused(cup, buffer.getvalue(), "best.pt", "safe loading refuses|truncated or damaged")
    assert not (tmp_path / "pwned").exists()


# -- mask zips: the archive itself ---------------------------------------------------------------------------
def test_not_a_zip(cup) -> None:
    refused(cup, b"PK but not really", "preds.zip", "not a zip file")


def _raw_zip(entries: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


def _with_extra(name: str, data: bytes = b"x", *, mode: int | None = None) -> bytes:
    files = _mask_files()
    entries = [(zipfile.ZipInfo(f"{sample_id}.png"), payload) for sample_id, payload in files.items()]
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    if mode is not None:
        info.external_attr = mode << 16
    return _raw_zip([*entries, (info, data)])


def test_path_traversal(cup) -> None:
    refused(cup, _with_extra("../../etc/cron.d/evil.png"), "preds.zip", "path traversal")


def test_absolute_paths(cup) -> None:
    refused(cup, _with_extra("/etc/passwd.png"), "preds.zip", "absolute path")
    refused(cup, _with_extra("C:/Windows/evil.png"), "preds.zip", "absolute path")


def test_backslash_paths(cup) -> None:
    refused(cup, _with_extra("..\\..\\evil.png"), "preds.zip", "backslashes")


def test_symlinks(cup) -> None:
    refused(cup, _with_extra("link.png", b"/etc/passwd", mode=stat.S_IFLNK | 0o777), "preds.zip", "symbolic link")


def test_special_files(cup) -> None:
    refused(cup, _with_extra("fifo.png", b"", mode=stat.S_IFIFO | 0o644), "preds.zip", "not a regular file")


def test_nested_archive_by_name(cup) -> None:
    refused(cup, _with_extra("more.zip", zip_bytes({"a.png": b"x"})), "preds.zip", "nested archives")
    refused(cup, _with_extra("more.tar.gz", b"\x1f\x8b..."), "preds.zip", "nested archives")


def test_nested_archive_disguised_as_a_mask(cup) -> None:
    def disguise(files: dict[str, bytes]) -> None:
        files["test-000003.png"] = zip_bytes({"inner.png": b"x" * 1000})

    refused(cup, mask_zip(constant_masks(), disguise), "preds.zip", "itself an archive")


def test_duplicate_names(cup) -> None:
    files = _mask_files()
    entries = [(zipfile.ZipInfo(f"{sample_id}.png"), payload) for sample_id, payload in files.items()]
    entries.append((zipfile.ZipInfo("test-000001.png"), files["test-000001"]))
    with pytest.warns(UserWarning, match="Duplicate name"):
        data = _raw_zip(entries)
    refused(cup, data, "preds.zip", "appears twice")


def test_duplicate_masks_for_one_image(cup) -> None:
    def twice(files: dict[str, bytes]) -> None:
        files["TEST-000001.PNG"] = files["test-000001.png"]

    refused(cup, mask_zip(constant_masks(), twice), "preds.zip", "appears twice|two masks")


def test_masks_spread_over_folders(cup) -> None:
    def spread(files: dict[str, bytes]) -> None:
        files["other/test-000001.png"] = files.pop("test-000001.png")

    refused(cup, mask_zip(constant_masks(), spread), "preds.zip", "several folders")


def test_too_many_entries(cup) -> None:
    def flood(files: dict[str, bytes]) -> None:
        for index in range(200):
            files[f"junk/{index}/"] = b""

    refused(cup, mask_zip(constant_masks(), flood), "preds.zip", "entries, more than")


def test_encrypted_entries(cup) -> None:
    data = bytearray(mask_zip(constant_masks()))
    # Set the "encrypted" flag bit in every central-directory record (signature PK\x01\x02, flags at +8).
    position = data.find(b"PK\x01\x02")
    while position != -1:
        flags = struct.unpack_from("<H", data, position + 8)[0]
        struct.pack_into("<H", data, position + 8, flags | 0x1)
        position = data.find(b"PK\x01\x02", position + 4)
    refused(cup, bytes(data), "preds.zip", "encrypted")


def test_decompression_bomb_by_declared_size(cup) -> None:
    refused(cup, _with_extra("bomb.png", b"\x00" * (40 * 2**20)), "preds.zip", "declares|decompression bomb")


def test_decompression_bomb_by_ratio(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    path.write_bytes(zip_bytes({"a.png": b"\x00" * (8 * 2**20)}))
    with pytest.raises(SubmissionRejected, match="expand .*-fold"):
        check_zip(path, ZipLimits(max_entry_bytes=2**30, max_total_bytes=2**31))


def test_entry_yielding_more_than_it_declares_is_stopped_while_streaming(tmp_path: Path) -> None:
    path = tmp_path / "liar.zip"
    path.write_bytes(zip_bytes({"a.png": b"\x01" * 100_000}, compression=zipfile.ZIP_STORED))
    entries = check_zip(path)
    lying = [type(entry)(name=entry.name, size=1000, info=entry.info) for entry in entries]  # as if declared 1000 bytes
    with pytest.raises(SubmissionRejected, match="beyond its declared"):
        list(read_entries(path, lying))


def test_a_damaged_zip(cup) -> None:
    data = bytearray(mask_zip(constant_masks()))
    data[40:400] = b"\x00" * 360  # inside the first entry's compressed data
    refused(cup, bytes(data), "preds.zip", "damaged|not a readable PNG|CRC")


# -- mask zips: the masks ------------------------------------------------------------------------------------
def test_missing_images(cup) -> None:
    refused(
        cup,
        mask_zip(constant_masks(), lambda files: files.pop("test-000005.png")),
        "preds.zip",
        "lacks masks for 1 of the 12 hidden images: test-000005",
    )


def test_images_not_in_the_hidden_split(cup) -> None:
    refused(
        cup,
        mask_zip(constant_masks(), lambda files: files.update({"train-000001.png": files["test-000001.png"]})),
        "preds.zip",
        "not in the hidden split: train-000001.png",
    )


def test_files_that_are_not_png(cup) -> None:
    refused(
        cup,
        mask_zip(constant_masks(), lambda files: files.update({"notes.txt": b"hello"})),
        "preds.zip",
        "not PNG masks: notes.txt",
    )


def test_wrong_mask_size(cup) -> None:
    masks = constant_masks()
    masks["test-000002"] = np.zeros((32, 64), np.uint8)
    refused(cup, mask_zip(masks), "preds.zip", "test-000002.png is 64x32 but its image is 64x64")


def test_labels_out_of_range(cup) -> None:
    masks = constant_masks()
    masks["test-000004"][3, 3] = 7
    masks["test-000004"][4, 4] = 255
    refused(cup, mask_zip(masks), "preds.zip", r"holds values 7, 255 outside the class ids 0\.\.6")


def test_colour_masks(cup) -> None:
    def colour(files: dict[str, bytes]) -> None:
        rgb = np.zeros((SMALL_SHAPES.image_size,) * 2 + (3,), np.uint8)
        rgb[..., 0] = 200
        files["test-000000.png"] = png_bytes(rgb)

    refused(cup, mask_zip(constant_masks(), colour), "preds.zip", "colour PNG")


def test_a_file_that_is_not_an_image(cup) -> None:
    refused(
        cup,
        mask_zip(constant_masks(), lambda files: files.update({"test-000000.png": b"GIF89a not png"})),
        "preds.zip",
        "not a readable PNG",
    )
