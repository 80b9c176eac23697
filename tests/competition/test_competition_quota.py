"""Quotas: N per rolling window with the reset time shown; failed and invalid uploads never count."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from seglab.competition import clock, quota, submissions
from seglab.competition.errors import SubmissionRejected
from seglab.competition.jobs import claim_next, fail
from seglab.competition.quota import quota_state
from seglab.competition.submissions import quota_for, submit
from tests.helpers.competition import constant_masks, make_competition, mask_zip


def test_rolling_window_counts_only_recent_submissions() -> None:
    state = quota_state([100.0, 1000.0, 3000.0, 3500.0], limit=3, window_s=3600, at=3700.0)
    assert (state.used, state.left) == (3, 0)  # 100 s is more than an hour before 3700 s
    assert state.next_slot_at == 1000.0 + 3600  # when the oldest counted one leaves the window
    assert "0 of 3 submission(s) left" in state.describe() and "next slot frees at" in state.describe()
    later = quota_state([100.0, 1000.0, 3000.0, 3500.0], limit=3, window_s=3600, at=4601.0)
    assert later.left == 1
    fresh = quota_state([], limit=5, window_s=3600, at=0.0)
    assert (fresh.left, fresh.next_slot_at) == (5, None) and "next slot" not in fresh.describe()


@pytest.fixture
def cup(tmp_path: Path):
    store, competition, issued = make_competition(tmp_path / "c", teams=("Alpha", "Beta"), quota_count=2)
    return store, competition, issued[0].team, issued[1].team


def test_the_quota_refuses_the_next_upload_and_says_when_a_slot_frees(cup) -> None:
    store, competition, alpha, beta = cup
    zip_data = mask_zip(constant_masks())
    for _ in range(2):
        submit(store, competition, alpha, zip_data, "preds.zip")
    with pytest.raises(SubmissionRejected, match="quota used up: 0 of 2.*next slot frees at"):
        submit(store, competition, alpha, zip_data, "preds.zip")
    assert submit(store, competition, beta, zip_data, "preds.zip").quota.left == 1  # per team


def test_failed_submissions_give_their_slot_back(cup) -> None:
    store, competition, alpha, _ = cup
    zip_data = mask_zip(constant_masks())
    submit(store, competition, alpha, zip_data, "a.zip")
    submit(store, competition, alpha, zip_data, "b.zip")
    job = claim_next(store, "test-worker")
    assert fail(store, job, "the model crashed")
    assert quota_for(store, competition, alpha).left == 1
    submit(store, competition, alpha, zip_data, "c.zip")


def test_invalid_uploads_do_not_count(cup) -> None:
    store, competition, alpha, _ = cup
    for _ in range(5):
        with pytest.raises(SubmissionRejected):
            submit(store, competition, alpha, b"not a zip", "preds.zip")
    assert quota_for(store, competition, alpha).left == 2
    with store.connect() as connection:
        assert connection.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 0


def test_slots_come_back_when_the_window_rolls_on(cup, monkeypatch: pytest.MonkeyPatch) -> None:
    store, competition, alpha, _ = cup
    moment = [1_000_000.0]
    for module in (clock, quota, submissions):
        monkeypatch.setattr(module, "now", lambda: moment[0], raising=False)
    zip_data = mask_zip(constant_masks())
    submit(store, competition, alpha, zip_data, "a.zip")
    moment[0] += 1800
    submit(store, competition, alpha, zip_data, "b.zip")
    state = quota_for(store, competition, alpha)
    assert state.left == 0 and state.next_slot_at == 1_000_000.0 + 3600
    moment[0] = 1_000_000.0 + 3601
    assert quota_for(store, competition, alpha).left == 1
    submit(store, competition, alpha, zip_data, "c.zip")


def test_simultaneous_uploads_cannot_both_take_the_last_slot(cup) -> None:
    store, competition, alpha, _ = cup
    zip_data = mask_zip(constant_masks())
    outcomes: list[str] = []

    def upload() -> None:
        try:
            submit(store, competition, alpha, zip_data, "preds.zip")
            outcomes.append("accepted")
        except SubmissionRejected as error:
            outcomes.append(str(error))

    threads = [threading.Thread(target=upload) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("accepted") == 2
    assert all("quota used up" in outcome for outcome in outcomes if outcome != "accepted")
    with store.connect() as connection:
        assert connection.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 2
