"""Where things are: the repository root and the tests folder (one place instead of a ``__file__`` walk per module)."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
