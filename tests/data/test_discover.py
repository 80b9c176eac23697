"""Tests for seglab/data/discover.py's wording of a source check and the data-source form's spec."""

from __future__ import annotations

from seglab.data.discover import SourceReport, default_root, form_spec
from seglab.data.spec import DataSpec


def report(**fields) -> SourceReport:
    return SourceReport(spec=DataSpec(kind="folder"), **fields)


def test_a_loaded_source_is_summarised_in_one_line_with_its_classes():
    checked = report(splits={"train": 8, "val": 2}, class_names=["sky", "road"], ignore_index=255, sampled={"train": 4})
    assert checked.summary() == "2 classes · train: 8 images · val: 2 images"
    assert checked.classes_line() == "Classes: sky, road · void/ignore index: 255"
    assert checked.sample_warnings() == []
    assert checked.checked_note() == "4 sampled image/mask pairs read and checked: sizes and label values fit."
    assert report(splits={"train": 1}).checked_note() is None  # nothing sampled (Shapes): nothing to claim


def test_unusable_samples_are_listed_per_split_up_to_max_shown():
    bad = report(splits={"train": 8}, sampled={"train": 4}, sample_problems={"train": ["a", "b", "c", "d"]})
    (warning,) = bad.sample_warnings(max_shown=2)
    assert warning.startswith("**train**: 4 of 4 sampled image/mask pairs cannot be used")
    assert warning.endswith("\n\n- a\n- b")
    assert bad.checked_note() is None


def test_failure_names_every_split_that_did_not_load():
    broken = report(problems={"train": "no images", "val": "no masks"})
    assert not broken.ok
    assert broken.failure() == "This source cannot be loaded yet:\n\n- **train**: no images\n\n- **val**: no masks"


def test_form_spec_strips_fields_and_blank_means_unset():
    assert form_spec("camvid", root=" /data/camvid ", label_map="  ") == DataSpec(kind="camvid", root="/data/camvid")
    folder = form_spec("folder", images="imgs", masks="masks", list_file="", label_map="map.json")
    assert folder == DataSpec(kind="folder", split="custom", images="imgs", masks="masks", label_map="map.json")


def test_default_root_prefers_the_current_source_then_what_was_found():
    current = DataSpec(kind="camvid", root="/mine")
    assert default_root(current, "camvid", ["/found"]) == "/mine"
    assert default_root(current, "voc", ["/found/voc", "/other"]) == "/found/voc"
    assert default_root(DataSpec(), "voc", []) == ""
