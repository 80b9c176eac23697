"""The ``seglab`` command line: sub-commands in :mod:`~seglab.cli.commands`, ``seglab train`` in
:mod:`~seglab.cli.train`, prediction sources and export in :mod:`~seglab.cli.sources`, flags shared by commands in
:mod:`~seglab.cli.arguments`, diagnostics options in :mod:`~seglab.cli.diagnostics`, plain-text tables in
:mod:`~seglab.cli.report`."""

from __future__ import annotations

import os
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``seglab`` console script and ``python -m seglab``; returns the exit code."""
    # On a small shared CPU (a 2-core laptop running the app, a browser and a training run), OpenMP
    # threads that spin while waiting stall torch for seconds whenever another process holds a core;
    # passive waiting keeps steps steady. Only a default: it must be set before torch is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from seglab.cli.commands import main as run

    return run(argv)
