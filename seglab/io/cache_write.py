"""Writing to the disk cache is best effort: a read-only or full cache folder costs time, never the result."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

from seglab.errors import CacheWriteWarning
from seglab.io.output_paths import write_failure


def write_cache(what: str, path: str | os.PathLike, write: Callable[[], object]) -> bool:
    """Run ``write()``; on a write failure warn (:class:`CacheWriteWarning`) and return False instead of raising."""
    try:
        write()
    except OSError as error:
        warnings.warn(
            f"could not write the {what} cache {Path(path)}: {write_failure(error, path)}; the result is fine but will "
            "be recomputed next time (set SEGLAB_CACHE_DIR to a writable folder to keep it)",
            CacheWriteWarning,
            stacklevel=3,
        )
        return False
    return True
