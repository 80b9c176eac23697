"""Tests for seglab/progress.py: the one progress-callback type and the tqdm bar it drives."""

from __future__ import annotations

import seglab.analysis.label_quality.dataset
import seglab.analysis.stats
import seglab.engine.predict
from seglab.progress import ProgressCallback, progress_bar


def test_every_long_job_uses_the_one_callback_type():
    for module in (seglab.analysis.stats, seglab.engine.predict, seglab.analysis.label_quality.dataset):
        assert module.ProgressCallback is ProgressCallback


def test_progress_bar_follows_done_and_a_changing_total(monkeypatch):
    import tqdm

    bars = []

    class RecordedBar(tqdm.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(tqdm, "tqdm", RecordedBar)
    with progress_bar(4, "scoring") as update:
        update(1, 4)
        assert (bars[0].n, bars[0].total) == (1, 4)
        update(3, 6)  # a job may learn its real size late
        update(6, 6)
        assert (bars[0].n, bars[0].total) == (6, 6)
    assert bars[0].desc == "scoring" and bars[0].unit == "img"
