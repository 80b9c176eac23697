"""Running ``seglab`` commands in-process, as a test sees them: exit code, stdout, stderr."""

from __future__ import annotations

import pytest

from seglab.cli.commands import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """``seglab ARGV...`` in this process (arguments turned to strings); its exit code and captured output."""
    code = main([str(item) for item in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
