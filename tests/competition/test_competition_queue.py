"""The scoring queue: leases, exactly-once scores, crash isolation, and recovery after killing the worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from seglab.competition import admin, scoring
from seglab.competition.errors import CompetitionError
from seglab.competition.jobs import (
    MAX_ATTEMPTS,
    claim_next,
    complete,
    fail,
    queue_counts,
    queue_summary,
    release,
    renew_lease,
)
from seglab.competition.scoring import register_model_file_scorer
from seglab.competition.submissions import all_submissions, submit
from seglab.competition.worker import ScoringWorker, WorkerLock, worker_running, worker_status
from tests.helpers.competition import ROOT, constant_masks, make_competition, mask_zip


def _zeros(data) -> np.ndarray:
    confusions = np.zeros((len(data), data.num_classes, data.num_classes), np.int64)
    confusions[:, 0, 0] = 10
    return confusions


@pytest.fixture
def plugged(monkeypatch: pytest.MonkeyPatch):
    """An empty model-file scorer registry for this test (forked children inherit what a test registers)."""
    monkeypatch.setattr(scoring, "_MODEL_FILE_SCORERS", {})
    register_model_file_scorer("onnx", lambda path, data: _zeros(data))
    return register_model_file_scorer


@pytest.fixture
def cup(tmp_path: Path, plugged):
    store, competition, issued = make_competition(
        tmp_path / "c",
        teams=("Alpha", "Beta"),
        quota_count=10,
        kinds=("masks_zip", "onnx"),
        time_limit_s=20.0,
        memory_limit_mb=256,
    )
    return store, competition, issued[0].team, issued[1].team


def _submit_models(cup, names: list[str]) -> list[int]:
    store, competition, alpha, _ = cup
    return [submit(store, competition, alpha, f"model {name}".encode(), f"{name}.onnx").submission_id for name in names]


def _scores(store) -> dict[int, int]:
    with store.connect() as connection:
        return dict(connection.execute("SELECT submission_id, COUNT(*) FROM scores GROUP BY submission_id").fetchall())


# -- leases --------------------------------------------------------------------------------------------------
def test_claim_is_oldest_first_and_exclusive(cup) -> None:
    store, *_ = cup
    first, second = _submit_models(cup, ["a", "b"])
    job_a, job_b = claim_next(store, "w1"), claim_next(store, "w2")
    assert (job_a.submission_id, job_b.submission_id) == (first, second)
    assert claim_next(store, "w3") is None
    assert queue_counts(store) == {"queued": 0, "scoring": 2, "scored": 0, "failed": 0}


def test_an_expired_lease_moves_the_job_and_the_late_result_is_dropped(cup) -> None:
    store, competition, *_ = cup
    from seglab.competition.competitions import hidden_images

    (submission,) = _submit_models(cup, ["a"])
    images = hidden_images(store, competition)
    stale = claim_next(store, "hung-worker", lease_s=-1)  # its lease is already over
    fresh = claim_next(store, "new-worker")
    assert fresh.submission_id == submission and fresh.attempt == 2
    assert not renew_lease(store, stale)
    assert not complete(store, stale, competition, images, np.ones((12, 7, 7), np.int64), 1.0)
    assert not fail(store, stale, "late failure")
    assert complete(store, fresh, competition, images, np.ones((12, 7, 7), np.int64), 1.0)
    assert not complete(store, fresh, competition, images, np.ones((12, 7, 7), np.int64), 1.0)  # only once
    assert _scores(store) == {submission: 1}
    assert all_submissions(store, competition)[0].status == "scored"


def test_a_job_interrupted_too_often_fails_instead_of_looping(cup) -> None:
    store, competition, *_ = cup
    _submit_models(cup, ["a"])
    for _ in range(MAX_ATTEMPTS):
        assert claim_next(store, "dying-worker", lease_s=-1) is not None
    assert claim_next(store, "next-worker") is None
    (submission,) = all_submissions(store, competition)
    assert submission.status == "failed" and f"interrupted {MAX_ATTEMPTS} times" in submission.reason


def test_release_puts_the_job_back_without_holding_it_against_it(cup) -> None:
    store, competition, *_ = cup
    _submit_models(cup, ["a"])
    job = claim_next(store, "w")
    assert release(store, job)
    (submission,) = all_submissions(store, competition)
    assert (submission.status, submission.attempts) == ("queued", 0)


def test_rescore_queues_again_and_removes_the_old_score(cup) -> None:
    store, competition, *_ = cup
    from seglab.competition.competitions import hidden_images

    first, second = _submit_models(cup, ["a", "b"])
    job = claim_next(store, "w")
    complete(store, job, competition, hidden_images(store, competition), np.ones((12, 7, 7), np.int64), 1.0)
    with pytest.raises(CompetitionError, match="queued already"):
        admin.rescore(store, competition, [second])
    assert admin.rescore(store, competition, [first]) == 1
    assert _scores(store) == {}
    assert [s.status for s in all_submissions(store, competition)] == ["queued", "queued"]


# -- the worker, in this process (children forked from it inherit the test's scorers) ------------------------
def _run_worker(store) -> ScoringWorker:
    worker = ScoringWorker(store, poll_s=0.05, log=lambda message: None)
    worker.run(once=True)
    return worker


@pytest.mark.slow
def test_a_crash_a_memory_hog_a_slow_model_and_an_error_fail_only_themselves(cup, plugged) -> None:
    store, competition, alpha, beta = cup
    behaviours = {
        b"crash": lambda: os.abort(),
        b"hog": lambda: np.ones(2**33, dtype=np.uint8),  # 8 GB, far above the 256 MB allowance
        b"slow": lambda: time.sleep(60),
        b"error": lambda: (_ for _ in ()).throw(scoring.ScoringError("the model's output has 3 channels")),
    }

    def misbehaving(path: Path, data) -> np.ndarray:
        behaviours.get(path.read_bytes(), lambda: None)()
        return _zeros(data)

    plugged("onnx", misbehaving)
    with store.connect() as connection:
        connection.execute("UPDATE competitions SET time_limit_s = 3")
    from seglab.competition.competitions import get_competition

    competition = get_competition(store)
    ids = {name: submit(store, competition, alpha, name, f"{name.decode()}.onnx").submission_id for name in behaviours}
    good = submit(store, competition, beta, mask_zip(constant_masks()), "preds.zip").submission_id
    started = time.monotonic()
    _run_worker(store)
    assert time.monotonic() - started < 30  # the slow one was stopped at its limit
    outcome = {s.id: (s.status, s.reason or "") for s in all_submissions(store, competition)}
    assert outcome[ids[b"crash"]][0] == "failed" and "crashed (SIGABRT)" in outcome[ids[b"crash"]][1]
    assert outcome[ids[b"hog"]][0] == "failed" and "ran out of memory (limit: 256 MB)" in outcome[ids[b"hog"]][1]
    assert outcome[ids[b"slow"]][0] == "failed" and "longer than the 3 s time limit" in outcome[ids[b"slow"]][1]
    assert outcome[ids[b"error"]] == ("failed", "the model's output has 3 channels")
    assert outcome[good] == ("scored", "")
    assert _scores(store) == {good: 1}


def test_signal_handlers_are_restored_after_an_in_process_run(cup) -> None:
    store, *_ = cup
    before = signal.getsignal(signal.SIGINT)
    _run_worker(store)
    assert signal.getsignal(signal.SIGINT) is before


# -- the worker as its own process: kill it mid-scoring, restart, exactly one score ------------------------------
WORKER_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from seglab.competition.scoring import register_model_file_scorer

    def slow(path, data):
        with open(os.environ["SCORING_MARK"], "a") as mark:
            mark.write(f"{os.getpid()}\\n")
        time.sleep(float(os.environ["SCORING_DELAY"]))
        confusions = np.zeros((len(data), data.num_classes, data.num_classes), np.int64)
        confusions[:, 1, 1] = 5
        return confusions

    register_model_file_scorer("onnx", slow)
    from seglab.cli.commands import main
    sys.exit(main(["competition", "worker", "--poll-s", "0.1", *sys.argv[1:]]))
    """
)


def _start_worker(store, tmp_path: Path, delay: float, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SCORING_MARK": str(tmp_path / "mark"), "SCORING_DELAY": str(delay)}
    log = open(tmp_path / f"worker-{time.monotonic_ns()}.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT, "--dir", str(store.folder), *extra],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (reaped later by init) counts as dead
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_killing_the_worker_mid_scoring_then_restarting_scores_each_submission_exactly_once(
    cup, tmp_path: Path
) -> None:
    store, competition, *_ = cup
    first, second = _submit_models(cup, ["a", "b"])
    worker = _start_worker(store, tmp_path, delay=60)
    try:
        _wait_for(lambda: (tmp_path / "mark").is_file(), 60, "the first scoring to start")
        child = int((tmp_path / "mark").read_text().split()[0])
        assert [s.status for s in all_submissions(store, competition)] == ["scoring", "queued"]
        os.kill(worker.pid, signal.SIGKILL)  # mid-scoring, no chance to clean up
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    _wait_for(lambda: not _alive(child), 10, "the scoring child to die with its worker")
    assert not worker_running(store)
    assert [s.status for s in all_submissions(store, competition)] == ["scoring", "queued"]  # the dead worker's lease
    assert _scores(store) == {}

    restarted = _start_worker(store, tmp_path, 0, "--once")
    assert restarted.wait(timeout=120) == 0
    submissions = all_submissions(store, competition)
    assert [(s.id, s.status, s.attempts) for s in submissions] == [(first, "scored", 2), (second, "scored", 1)]
    assert _scores(store) == {first: 1, second: 1}
    assert (tmp_path / "mark").read_text().count("\n") == 3  # a, then a again and b: nothing scored a third time


@pytest.mark.slow
def test_only_one_worker_runs_and_sigterm_requeues_its_job(cup, tmp_path: Path) -> None:
    store, competition, *_ = cup
    _submit_models(cup, ["a"])
    worker = _start_worker(store, tmp_path, delay=60)
    try:
        _wait_for(lambda: (tmp_path / "mark").is_file(), 60, "the scoring to start")
        assert worker_running(store) and worker_status(store).running
        with pytest.raises(CompetitionError, match="another scoring worker is running"):
            with WorkerLock(store):
                pass
        second = subprocess.run(
            [sys.executable, "-m", "seglab", "competition", "worker", "--dir", str(store.folder)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 2 and "another scoring worker is running" in second.stderr
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    (submission,) = all_submissions(store, competition)
    assert (submission.status, submission.attempts) == ("queued", 0)  # handed back, not held against it
    assert not worker_running(store)


@pytest.mark.slow
def test_a_worker_started_by_the_app_stops_with_the_app(cup, tmp_path: Path) -> None:
    store, *_ = cup
    app = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from seglab.competition.store import CompetitionStore; "
            "from seglab.competition.worker import ensure_worker; "
            "print(ensure_worker(CompetitionStore(sys.argv[1])), flush=True); time.sleep(float(sys.argv[2]))",
            str(store.folder),
            "8",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert app.stdout.readline().strip() == "True"
        _wait_for(lambda: worker_running(store), 60, "the worker to take its lock")
        assert app.wait(timeout=30) == 0
        _wait_for(lambda: not worker_running(store), 30, "the worker to stop after the app")
    finally:
        if app.poll() is None:
            app.kill()
    assert "parent process" in (store.folder / "worker.log").read_text()


def test_queue_summary_counts_each_status_and_names_the_worker_state() -> None:
    counts = {"queued": 2, "scoring": 1, "scored": 5, "failed": 0}
    assert queue_summary(counts, worker_running=True) == "2 queued · 1 scoring · 5 scored · 0 failed · worker running"
    assert queue_summary(counts, worker_running=False).endswith("· worker not running")
