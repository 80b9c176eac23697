"""Tests for seglab/io/atomic_files.py: atomic replacement, permissions, cleanup and the .npz cache format."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from seglab.data.label_map import write_json_atomic as label_map_write_json_atomic
from seglab.io.atomic_files import (
    PRIVATE,
    atomic_path,
    atomic_write,
    load_npz,
    save_npz_atomic,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)


def test_write_json_atomic_makes_a_readable_file(tmp_path):
    path = tmp_path / "config.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert path.read_text().endswith("}\n")
    assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044  # group/other can read, unlike mkstemp's 0600


def test_label_map_module_reexports_the_one_implementation():
    assert label_map_write_json_atomic is write_json_atomic


def test_writes_create_the_folder_and_leave_no_temporary_file(tmp_path):
    target = tmp_path / "a" / "b" / "file.bin"
    write_bytes_atomic(target, b"one")
    write_text_atomic(tmp_path / "a" / "text.txt", "déjà")
    assert target.read_bytes() == b"one"
    assert (tmp_path / "a" / "text.txt").read_text(encoding="utf-8") == "déjà"
    assert [p.name for p in tmp_path.rglob("*.tmp")] == []


def test_private_permissions_for_secrets(tmp_path):
    path = tmp_path / "tokens.csv"
    write_text_atomic(path, "team,token\n", permissions=PRIVATE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("durable", [True, False])
def test_failure_inside_the_block_keeps_the_previous_file_and_removes_the_temporary(tmp_path, durable):
    path = tmp_path / "last.pt"
    path.write_bytes(b"good")
    with pytest.raises(RuntimeError, match="half"):
        with atomic_write(path, durable=durable) as stream:
            stream.write(b"partial")
            raise RuntimeError("half written")
    assert path.read_bytes() == b"good"
    assert os.listdir(tmp_path) == ["last.pt"]


def test_temporary_name_is_one_clean_temporary_files_recognises(tmp_path):
    from seglab.engine.run_folder import clean_temporary_files

    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "best.pt") as temporary:
            assert temporary.parent == tmp_path and temporary.name.startswith(".best.pt.")
            temporary.write_bytes(b"x")
            leftover = tmp_path / temporary.name.replace(".best", ".copy-of-best")
            leftover.write_bytes(b"x")  # what a killed process would leave behind
            raise KeyboardInterrupt
    assert not (tmp_path / "best.pt").exists()
    assert clean_temporary_files(tmp_path) == [leftover]


def test_atomic_write_refuses_append_mode(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "x", "ab"):
            pass


def test_npz_round_trip_and_unreadable_files_read_as_missing(tmp_path):
    path = tmp_path / "cache.npz"
    save_npz_atomic(path, {"version": 3, "ids": ["a"]}, {"counts": np.arange(4)})

    def read(meta, archive):
        return meta, archive["counts"]

    meta, counts = load_npz(path, read)
    assert meta == {"version": 3, "ids": ["a"]} and counts.tolist() == [0, 1, 2, 3]
    assert load_npz(tmp_path / "missing.npz", read) is None
    assert load_npz(path, lambda meta, archive: archive["absent"]) is None
    path.write_bytes(path.read_bytes()[:40])  # truncated
    assert load_npz(path, read) is None
    path.write_bytes(b"not a zip at all")
    assert load_npz(path, read) is None
