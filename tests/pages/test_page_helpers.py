"""Unit tests of the logic the pages share: the table/selectbox choice, split names, the warm-up import
list (the stores many sessions share are tested in test_concurrency.py)."""

from __future__ import annotations

import re

import pytest

from seglab.analysis.gallery import table_choice
from seglab.data.discover import check_source, split_names
from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec
from tests.helpers.paths import ROOT


def test_table_choice_prefers_a_new_click_then_the_current_then_the_first() -> None:
    ids = ["a", "b", "c"]
    assert table_choice(ids, [2], None, "a") == "c"  # a new click wins
    assert table_choice(ids, [2], [2], "a") == "a"  # the same selection seen before is not a new click
    assert table_choice(ids, [], [2], "b") == "b"
    assert table_choice(ids, [], None, "gone") == "a"  # a stale choice falls back to the first
    assert table_choice(ids, [7], None, "b") == "b"  # a row the table no longer has is ignored
    assert table_choice(ids, [], None, "b", new_ranking=True) == "a"  # another ranking starts at its first row
    assert table_choice(ids, [1], None, "c", new_ranking=True) == "b"  # ... unless a row was just clicked
    with pytest.raises(ValueError):
        table_choice([], [], None, None)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (DataSpec(), ("train", "val", "test")),
        (DataSpec(kind="camvid", root="/x"), ("train", "val", "test")),
        (DataSpec(kind="voc", root="/x"), ("train", "val", "trainval")),
        (DataSpec(kind="folder", split="custom", images="/x"), ("custom",)),
    ],
)
def test_split_names_per_kind(spec: DataSpec, expected: tuple[str, ...]) -> None:
    assert split_names(spec) == expected


def test_split_names_are_the_splits_check_source_tries() -> None:
    spec = DataSpec(shapes=ShapesConfig(image_size=16, train_size=2, val_size=2, test_size=2))
    assert tuple(check_source(spec).splits) == split_names(spec)


def test_warm_up_list_holds_every_module_the_pages_import() -> None:
    from pages.warmup import page_imports

    modules = page_imports(ROOT / "pages")
    for expected in ("pandas", "streamlit", "seglab.viz", "pages.ui", "pages.hidden_split", "seglab.analysis.failures"):
        assert expected in modules
    assert "pages.warmup" not in modules  # importing itself would deadlock the import lock


def test_warm_up_imports_the_modules_the_library_imports_lazily() -> None:
    from pages.warmup import WARMED, library_modules

    for lazily_imported in ("seglab.sources.checkpoint_source", "seglab.sources.mapped", "seglab.data.folder"):
        assert lazily_imported in library_modules() and lazily_imported in WARMED
    assert not {"seglab.__main__", "seglab.cli.commands"} & set(WARMED)  # entry points are not the app's


def test_warm_up_puts_the_start_up_heap_out_of_the_collectors_reach() -> None:
    """Streamlit collects garbage after every script run; with the imported modules frozen, each
    collection walks only what the sessions made since, not torch's, pandas' and plotly's objects."""
    import gc

    import pages.warmup  # noqa: F401

    assert gc.get_freeze_count() > 100_000  # 0 unless frozen; later objects (other tests') may stay unfrozen


def test_the_app_skips_streamlits_full_collection_after_every_run() -> None:
    """It held the GIL ~20 ms per session per page: a class of 8 waited for 8 of them on every page (issue 10)."""
    config = (ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8")  # (no tomllib on Python 3.10)
    runner = re.search(r"^\[runner\]\n(.*?)(?=^\[|\Z)", config, flags=re.MULTILINE | re.DOTALL)
    assert runner and re.search(r"^postScriptGC\s*=\s*false\s*$", runner.group(1), flags=re.MULTILINE)
