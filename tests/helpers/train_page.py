"""The Train page under AppTest: open it, read its texts, and run folders written by hand."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from pages import ui
from seglab.data.spec import DataSpec
from seglab.engine.config import TrainConfig
from seglab.io.atomic_files import write_json_atomic
from tests.helpers.paths import ROOT
from tests.helpers.trained_runs import TINY_SHAPES


def open_train(data: DataSpec | None = TINY_SHAPES) -> AppTest:
    """The app opened straight on the Train page with ``data`` chosen (None: the app's default data)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    if data is not None:
        at.session_state[ui.SPEC_KEY] = data.to_dict()
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    return at


def texts(elements: Iterable[Any]) -> str:
    """The values of AppTest elements (captions, infos...), one per line."""
    return "\n".join(str(element.value) for element in elements)


def write_run(runs: Path, name: str, state: str, started: float, error: str | None = None, **status: Any) -> Path:
    """A run folder written by hand, as the trainer would leave it."""
    path = runs / name
    path.mkdir(parents=True)
    write_json_atomic(path / "config.json", TrainConfig(model="tiny_unet_small", loss="ce+dice").to_dict())
    write_json_atomic(path / "status.json", {"state": state, "error": error, "started": started, "step": 3, **status})
    return path
