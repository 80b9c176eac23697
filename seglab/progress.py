"""tqdm progress bars driven by seglab's ``progress(done, total)`` callbacks."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def progress_bar(total: int, description: str, unit: str = "img") -> Iterator[Callable[[int, int], None]]:
    """Yield an ``update(done, total)`` callback that moves a tqdm bar on stderr."""
    bar = tqdm(total=total, desc=description, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)

    def update(done: int, new_total: int) -> None:
        if new_total != bar.total:
            bar.total = new_total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()
