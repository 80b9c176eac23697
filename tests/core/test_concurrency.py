"""Many sessions in one process: the torch thread cap, the inference slots, one computation per key.

Real threads released together by a barrier; "at the same time" is made certain with events, never
with timings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from seglab import concurrency
from seglab.concurrency import InferenceGate, SharedComputations

SESSIONS = 8


def run_together(target: Callable[[int], object], count: int = SESSIONS) -> list[object]:
    """``target(i)`` in ``count`` threads released at once; their results (a raised error is re-raised)."""
    start, results, errors = threading.Barrier(count), [None] * count, []

    def session(index: int) -> None:
        start.wait()
        try:
            results[index] = target(index)
        except BaseException as error:  # noqa: B036  the test thread reports whatever a session raised
            errors.append(error)

    threads = [threading.Thread(target=session, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a session is stuck (deadlock?)"
    if errors:
        raise errors[0]
    return results


def test_torch_threads_default_to_half_the_cores_and_respect_the_override(monkeypatch) -> None:
    monkeypatch.delenv(concurrency.THREADS_ENV, raising=False)
    monkeypatch.setattr(concurrency.os, "cpu_count", lambda: 16)
    assert concurrency.torch_threads() == 8
    monkeypatch.setattr(concurrency.os, "cpu_count", lambda: 1)
    assert concurrency.torch_threads() == 1
    monkeypatch.setenv(concurrency.THREADS_ENV, "3")
    assert concurrency.torch_threads() == 3
    for bad in ("0", "-2", "many"):  # a bad override is ignored, never an error at start-up
        monkeypatch.setenv(concurrency.THREADS_ENV, bad)
        assert concurrency.torch_threads() == 1


def test_configure_torch_threads_sets_torch(monkeypatch) -> None:
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv(concurrency.THREADS_ENV, "1")
        assert concurrency.configure_torch_threads() == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_inference_slots_default_and_override(monkeypatch) -> None:
    monkeypatch.delenv(concurrency.THREADS_ENV, raising=False)
    monkeypatch.delenv(concurrency.SLOTS_ENV, raising=False)
    monkeypatch.setattr(concurrency.os, "cpu_count", lambda: 2)
    assert concurrency.inference_slots() == 1
    monkeypatch.setenv(concurrency.THREADS_ENV, "2")
    monkeypatch.setattr(concurrency.os, "cpu_count", lambda: 16)
    assert concurrency.inference_slots() == 4  # 16 cores, 2 threads per pass: 4 passes fill half of them
    monkeypatch.setenv(concurrency.SLOTS_ENV, "2")
    assert concurrency.inference_slots() == 2


@pytest.mark.parametrize("slots", [1, 2])
def test_inference_gate_never_lets_more_passes_run_than_slots(slots: int) -> None:
    gate, inside, lock, over = InferenceGate(slots), [0], threading.Lock(), []

    def session(_: int) -> None:
        for _ in range(5):
            with gate.slot():
                with lock:
                    inside[0] += 1
                    over.append(inside[0] > slots)
                threading.Event().wait(0.002)  # a short pass: lets other threads try to enter
                with lock:
                    inside[0] -= 1

    run_together(session)
    assert not any(over) and gate.peak == slots and gate.running == 0


def test_inference_gate_is_reentrant_within_a_thread() -> None:
    gate = InferenceGate(1)
    finished = []

    def nested(_: int) -> None:  # a prediction whose helper predicts again: one slot, no deadlock
        with gate.slot(), gate.slot():
            finished.append(True)

    run_together(nested, count=3)
    assert finished == [True] * 3 and gate.running == 0
    with pytest.raises(ValueError):
        InferenceGate(0)


def test_seglab_predictions_hold_the_process_wide_slot(monkeypatch) -> None:
    from seglab.engine.predict import predict, predict_logits
    from seglab.models import build_model

    gate = InferenceGate(1)
    monkeypatch.setattr(concurrency, "INFERENCE", gate)
    model = build_model("tiny_unet_small", num_classes=3).eval()
    seen = []

    class Watched(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
            seen.append(gate.running)  # a forward pass runs only while holding the slot
            return self.inner(batch)

    image = np.zeros((32, 32, 3), np.uint8)
    predict(Watched(), image)
    predict_logits(Watched(), image)
    assert seen == [1, 1] and gate.running == 0


def until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Wait for ``condition()`` (polled), failing the test if it never holds."""
    stop = threading.Event()
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        stop.wait(0.01)
    pytest.fail("the other sessions never waited for the first one (each computed on its own?)")


def test_shared_computations_compute_a_key_once_for_concurrent_callers() -> None:
    shared: SharedComputations[str] = SharedComputations()
    calls = []

    def compute() -> str:
        calls.append(1)
        until(lambda: shared.waiting("key") == SESSIONS - 1)  # every other session asked while this runs
        return f"result {len(calls)}"

    results = run_together(lambda _: shared.get("key", compute))
    assert len(calls) == 1 and shared.computations == 1
    assert results == ["result 1"] * SESSIONS
    assert shared.waiting() == 0


def test_shared_computations_run_different_keys_in_parallel() -> None:
    shared: SharedComputations[int] = SharedComputations()
    both_inside = threading.Barrier(2, timeout=10)

    def session(index: int) -> int:
        def compute() -> int:
            both_inside.wait()  # would time out if the second key waited for the first
            return index

        return shared.get(("split", index), compute)

    assert run_together(session, count=2) == [0, 1]


def test_shared_computations_share_an_error_and_keep_nothing_failed() -> None:
    shared: SharedComputations[str] = SharedComputations(capacity=4)
    calls = []

    def compute() -> str:
        calls.append(1)
        until(lambda: shared.waiting("key") == 3)
        raise ValueError("the checkpoint does not fit the data")

    def session(_: int) -> str:
        try:
            return shared.get("key", compute)
        except ValueError as error:
            return str(error)

    results = run_together(session, count=4)
    assert results == ["the checkpoint does not fit the data"] * 4
    assert len(calls) == 1 and "key" not in shared
    assert shared.get("key", lambda: "fixed") == "fixed"  # an error is never kept


def test_a_stopped_owner_hands_the_computation_to_a_waiter() -> None:
    class Stopped(BaseException):  # like Streamlit's StopException: not an error of the computation
        pass

    shared: SharedComputations[str] = SharedComputations()
    owner_inside = threading.Event()

    def stopped() -> str:
        owner_inside.set()
        until(lambda: shared.waiting("key") == 1)
        raise Stopped

    def session(index: int) -> str:
        if index == 0:
            try:
                return shared.get("key", stopped)
            except Stopped:
                return "stopped"
        owner_inside.wait(10)
        return shared.get("key", lambda: "computed by the waiter")

    assert run_together(session, count=2) == ["stopped", "computed by the waiter"]


def test_shared_computations_keep_the_latest_results() -> None:
    shared: SharedComputations[int] = SharedComputations(capacity=2)
    for key in range(3):
        shared.get(key, lambda key=key: key * 10)
    assert 0 not in shared and 1 in shared and 2 in shared
    assert shared.get(1, lambda: -1) == 10 and shared.computations == 3


def test_concurrent_evaluations_of_one_checkpoint_run_the_model_once(tmp_path: Path, monkeypatch) -> None:
    """Eight sessions asking for the same (uncached) evaluation: one evaluation, one result for all."""
    from seglab.data.shapes import ShapesConfig, ShapesDataset
    from seglab.engine import evaluation
    from tests.helpers.checkpoints import write_tiny_checkpoint

    data = ShapesDataset("val", ShapesConfig(val_size=4, image_size=32))
    path = write_tiny_checkpoint(tmp_path / "best.pt")
    evaluations, real = [], evaluation._evaluate

    def counted(*args, **kwargs):
        evaluations.append(1)
        until(lambda: evaluation.SHARED_EVALUATIONS.waiting() == SESSIONS - 1)  # all others asked meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "_evaluate", counted)
    results = run_together(lambda _: evaluation.evaluate_checkpoint(path, data, cache_dir=tmp_path / "cache"))
    assert len(evaluations) == 1
    assert all(result is results[0] for result in results)
