"""Unit tests of the logic the pages share: the table/selectbox choice, split names, the warm-up import
list, and the label-quality store that many sessions share."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from seglab.data.discover import check_source, split_names
from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec
from seglab.gallery import table_choice

ROOT = Path(__file__).resolve().parents[1]


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
    for expected in ("pandas", "streamlit", "seglab.viz", "pages.ui", "pages.hidden_split", "seglab.failures"):
        assert expected in modules
    assert "pages.warmup" not in modules  # importing itself would deadlock the import lock


def test_label_quality_store_computes_a_key_once_for_concurrent_sessions() -> None:
    from pages.loaders import _ReportStore

    store, calls, start = _ReportStore(capacity=2), [], threading.Barrier(8)

    def compute():
        calls.append(1)
        time.sleep(0.2)
        return f"report {len(calls)}"

    results = []

    def session() -> None:
        start.wait()
        results.append(store.get_or_compute(("ckpt", 1), compute))

    threads = [threading.Thread(target=session) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and results == ["report 1"] * 8
    for key in range(3):  # the oldest entries are evicted beyond the capacity
        store.get_or_compute(("other", key), lambda: "x")
    assert len(store.reports) == 2 and ("ckpt", 1) not in store.reports
