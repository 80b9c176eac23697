"""Progress reporting: the one callback type of long jobs, and tqdm bars driven by it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

ProgressCallback = Callable[[int, int], None]
"""``progress(done, total)``: called by long jobs (dataset scans, evaluations, scoring) after each item."""


@contextmanager
def progress_bar(total: int, description: str, unit: str = "img") -> Iterator[ProgressCallback]:
    """Yield an ``update(done, total)`` callback that moves a tqdm bar on stderr."""
    from tqdm import tqdm  # only the command line draws bars: the library does not need tqdm loaded

    bar = tqdm(total=total, desc=description, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)

    def update(done: int, new_total: int) -> None:
        if new_total != bar.total:
            bar.total = new_total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()
