"""Tests for seglab/engine/run_dir.py: status file, events file and the incremental event reader."""

from __future__ import annotations

import json
import math

from seglab.engine.run_dir import FAILED, RUNNING, EventFollower, RunDirectory
from seglab.io.json_values import sanitize_for_json


def test_status_is_replaced_atomically_and_keeps_earlier_fields(tmp_path):
    run = RunDirectory(tmp_path)
    assert run.read_status() == {}
    run.write_status(RUNNING, pid=123, step=0)
    run.write_status(FAILED, error="boom", step=7)
    status = run.read_status()
    assert status["state"] == FAILED and status["pid"] == 123 and status["step"] == 7 and status["error"] == "boom"
    assert isinstance(status["updated"], float)
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp file left behind


def test_unreadable_status_reads_as_empty(tmp_path):
    run = RunDirectory(tmp_path)
    run.status_path.write_text("{half")
    assert run.read_status() == {}
    run.status_path.write_text("[1, 2]")
    assert run.read_status() == {}


def test_events_are_strict_json_lines_with_a_timestamp(tmp_path):
    run = RunDirectory(tmp_path)
    run.append_event({"type": "start", "step": 0})
    run.append_event(sanitize_for_json({"type": "eval", "metrics": {"miou": float("nan"), "iou": [0.5, math.inf]}}))
    lines = run.events_path.read_text().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["type"] == "start" and "time" in first
    assert second["metrics"] == {"miou": None, "iou": [0.5, None]}
    assert run.read_events() == [first, second]


def test_numpy_and_tensor_values_are_written_as_numbers(tmp_path):
    import numpy as np
    import torch

    run = RunDirectory(tmp_path)
    run.append_event({"type": "step", "loss": np.float32(0.5), "lr": torch.tensor(0.25), "iou": np.array([1.0, 0.0])})
    event = run.read_events()[0]
    assert event["loss"] == 0.5 and event["lr"] == 0.25 and event["iou"] == [1.0, 0.0]


def test_follower_returns_only_new_complete_events(tmp_path):
    path = tmp_path / "events.jsonl"
    follower = EventFollower(path)
    assert follower.poll() == []  # no file yet
    path.write_text('{"type": "start"}\n{"type": "step", "step": 1}\n')
    assert [e["type"] for e in follower.poll()] == ["start", "step"]
    assert follower.poll() == []
    with open(path, "a") as stream:  # a writer caught mid-line
        stream.write('{"type": "step", "st')
    assert follower.poll() == []
    with open(path, "a") as stream:
        stream.write('ep": 2}\n{"type": "end"}\n')
    new = follower.poll()
    assert new == [{"type": "step", "step": 2}, {"type": "end"}]
    assert len(follower.events) == 4


def test_follower_skips_a_damaged_line_without_losing_the_rest(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"type": "start"}\n{"type": "st\x00\xff\n[1, 2]\n{"type": "end"}\n')
    assert [e["type"] for e in EventFollower(path).poll()] == ["start", "end"]


def test_stop_request_and_latest_preview(tmp_path):
    run = RunDirectory(tmp_path)
    assert not run.stop_requested() and run.latest_preview() is None
    run.request_stop()
    assert run.stop_requested()
    run.previews_path.mkdir()
    for step in (5, 40, 120):
        (run.previews_path / f"eval_{step:07d}.png").write_bytes(b"")
    assert run.latest_preview().name == "eval_0000120.png"
    assert not run.exists()
    run.config_path.write_text("{}")
    assert run.exists() and run.name == tmp_path.name
