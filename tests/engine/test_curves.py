"""Events -> training curves: steps, values, evaluation points, loss terms, partial data, watching a folder."""

from __future__ import annotations

import json
import math

import pytest

from seglab.engine.curves import (
    METRIC_LABELS,
    Curve,
    RunWatcher,
    TrainingCurves,
    headline_numbers,
    no_points_note,
    preview_step,
    sync_watchers,
)
from seglab.engine.run_dir import RunDirectory


def step_event(step: int, loss: float, lr: float, **terms: float) -> dict:
    return {
        "type": "step",
        "step": step,
        "epoch": 0,
        "loss": loss,
        "lr": lr,
        "images_per_s": 10.0 + step,
        "grad_norm": 1.0,
        "terms": {**terms, "total": loss},
        "elapsed": step * 0.5,
    }


def eval_event(step: int, miou: float, best: bool = True, **extra) -> dict:
    metrics = {"miou": miou, "miou_no_background": miou / 2, "pixel_acc": 0.9, **extra}
    return {"type": "eval", "step": step, "epoch": 1, "metrics": metrics, "best": best, "elapsed": step * 0.5}


EVENTS = [
    {
        "type": "start",
        "step": 0,
        "epoch": 0,
        "train_images": 40,
        "val_images": 8,
        "steps_per_epoch": 5,
        "device": "cpu",
    },
    step_event(1, 2.0, 0.01, ce=1.5, dice=0.5, aux=0.0),
    step_event(2, 1.5, 0.008, ce=1.1, dice=0.4, aux=0.0),
    eval_event(2, 0.3),
    step_event(3, 1.0, 0.005, ce=0.7, dice=0.3, aux=0.0),
    eval_event(3, 0.25, best=False),
    {"type": "end", "state": "finished", "step": 3, "epoch": 2, "error": None, "elapsed": 2.0},
]


def test_step_events_become_loss_term_lr_and_throughput_series():
    curves = TrainingCurves.from_events(EVENTS)
    losses = curves.loss_series()
    assert losses["total"] == ([1.0, 2.0, 3.0], [2.0, 1.5, 1.0])
    assert losses["ce"] == ([1.0, 2.0, 3.0], [1.5, 1.1, 0.7])
    assert losses["dice"][1] == [0.5, 0.4, 0.3]
    assert "aux" not in losses  # always 0: a model without an aux head
    assert curves.lr_series() == {"learning rate": ([1.0, 2.0, 3.0], [0.01, 0.008, 0.005])}
    assert curves.throughput_series()["images/s"][1] == [11.0, 12.0, 13.0]
    assert curves.images_per_s.last == 13.0


def test_a_single_term_equal_to_the_total_is_not_drawn_twice():
    curves = TrainingCurves.from_events(
        [step_event(1, 2.0, 0.1, ce=2.0, aux=0.0), step_event(2, 1.0, 0.1, ce=1.0, aux=0.0)]
    )
    assert list(curves.loss_series()) == ["total"]
    with_aux = TrainingCurves.from_events([step_event(1, 2.4, 0.1, ce=2.0, aux=1.0)])
    assert set(with_aux.loss_series()) == {"total", "ce", "aux"}


def test_eval_events_become_metric_curves_with_best_and_latest():
    curves = TrainingCurves.from_events(EVENTS)
    metrics = curves.metric_series()
    assert set(metrics) == set(METRIC_LABELS.values())
    assert metrics["mIoU"] == ([2.0, 3.0], [0.3, 0.25])
    assert metrics["mIoU without background"][1] == [0.15, 0.125]
    assert curves.latest_metrics()["miou"] == 0.25
    assert curves.best_metric("miou") == 0.3
    assert curves.best_step == 2.0  # the second evaluation was not an improvement


def test_start_and_end_events_fill_run_facts():
    curves = TrainingCurves.from_events(EVENTS)
    assert (curves.steps_per_epoch, curves.train_images, curves.val_images, curves.device) == (5, 40, 8, "cpu")
    assert (curves.step, curves.epoch, curves.elapsed) == (3, 2, 2.0)
    assert curves.end_state == "finished" and curves.error is None


def test_failed_end_event_keeps_the_error():
    curves = TrainingCurves.from_events(
        [*EVENTS[:2], {"type": "end", "state": "failed", "error": "loss is nan", "step": 1}]
    )
    assert curves.end_state == "failed"
    assert curves.error == "loss is nan"


def test_extend_in_pieces_equals_all_at_once():
    pieces = TrainingCurves()
    for index in range(0, len(EVENTS), 2):
        pieces.extend(EVENTS[index : index + 2])
    whole = TrainingCurves.from_events(EVENTS)
    assert pieces.loss_series() == whole.loss_series()
    assert pieces.metric_series() == whole.metric_series()
    assert pieces.end_state == whole.end_state


def test_missing_and_malformed_fields_are_skipped_not_raised():
    events = [
        "not a dict",
        {"type": "mystery", "step": 5},
        {"type": "step", "step": 1, "terms": {"total": 3.0}},  # no "loss": falls back to terms["total"]; no lr
        {"type": "step", "step": 2, "loss": None, "lr": float("nan")},  # NaN written as null / NaN
        {"type": "step", "loss": 1.0, "lr": 0.1},  # no step: no point
        {"type": "step", "step": "7", "loss": 1.0},  # a string is not a step
        {"type": "step", "step": 3, "loss": 2.0, "terms": "oops", "lr": True},  # bool is not a number
        {"type": "eval", "step": 3, "metrics": {"miou": None, "pixel_acc": 0.5}},  # CamVid-like: no value
        {"type": "eval", "step": 4},  # no metrics at all
    ]
    curves = TrainingCurves.from_events(events)
    assert curves.loss_series() == {"total": ([1.0, 3.0], [3.0, 2.0])}
    assert curves.lr_series() == {}
    assert curves.metric_series() == {"pixel accuracy": ([3.0], [0.5])}
    assert curves.best_metric("miou") is None
    assert curves.latest_metrics() == {"pixel_acc": 0.5}


def test_no_events_give_empty_series():
    curves = TrainingCurves()
    assert curves.loss_series() == curves.metric_series() == curves.lr_series() == curves.throughput_series() == {}
    assert curves.images_per_s.last is None and curves.elapsed is None


def test_curve_append_rejects_infinite_values():
    curve = Curve()
    curve.append(1, math.inf)
    curve.append(2, 0.5)
    assert curve.as_series() == ([2.0], [0.5])


def test_a_resumed_run_clears_its_end_state():
    curves = TrainingCurves.from_events([*EVENTS, {"type": "start", "step": 3, "epoch": 2}])
    assert curves.end_state is None
    assert len(curves.losses["total"]) == 3  # earlier points stay


def test_preview_step_parses_the_file_name(tmp_path):
    assert preview_step(tmp_path / "previews" / "eval_0000120.png") == 120
    assert preview_step("eval_.png") is None


def write_lines(path, events, tail: str = "") -> None:
    with open(path, "a", encoding="utf-8") as stream:
        stream.write("".join(json.dumps(event) + "\n" for event in events) + tail)


def test_watcher_reads_only_new_complete_lines(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.path.mkdir()
    watcher = RunWatcher(run.path)
    assert watcher.refresh() == 0  # no events file yet
    write_lines(run.events_path, EVENTS[:2], tail='{"type": "step", "st')  # writer mid-line
    assert watcher.refresh() == 2
    assert watcher.curves.loss_series()["total"] == ([1.0], [2.0])
    with open(run.events_path, "a", encoding="utf-8") as stream:
        stream.write('ep": 2, "loss": 1.5}\n')
    assert watcher.refresh() == 1
    assert watcher.refresh() == 0
    assert watcher.curves.loss_series()["total"] == ([1.0, 2.0], [2.0, 1.5])


def test_watcher_starts_over_when_the_folder_is_replaced(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.path.mkdir()
    write_lines(run.events_path, EVENTS)
    watcher = RunWatcher(run.path)
    watcher.refresh()
    run.events_path.unlink()
    write_lines(run.events_path, [step_event(1, 9.0, 0.1)])
    watcher.refresh()
    assert watcher.curves.loss_series()["total"] == ([1.0], [9.0])
    assert watcher.curves.end_state is None


def test_watcher_latest_preview(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.previews_path.mkdir(parents=True)
    watcher = RunWatcher(run.path)
    assert watcher.latest_preview() is None
    for step in (5, 40, 120):
        (run.previews_path / f"eval_{step:07d}.png").write_bytes(b"png")
    path, step = watcher.latest_preview()
    assert (path.name, step) == ("eval_0000120.png", 120)


@pytest.mark.slow
def test_curves_from_a_real_training_run(tmp_path):
    """The trainer's own events parse into the curves the live view plots."""
    from seglab.data.shapes import ShapesConfig
    from seglab.data.spec import DataSpec
    from seglab.engine.config import TrainConfig
    from seglab.engine.trainer import train

    shapes = ShapesConfig(train_size=8, val_size=4, test_size=4, image_size=48)
    config = TrainConfig(
        model="tiny_unet_small",
        epochs=2,
        crop_size=32,
        batch_size=4,
        log_every=1,
        loss="ce+dice",
        preview_images=2,
        data=DataSpec(shapes=shapes),
    )
    train(config, out_dir=tmp_path / "run")
    watcher = RunWatcher(tmp_path / "run")
    watcher.refresh()
    curves = watcher.curves
    assert curves.steps_per_epoch == 2 and curves.train_images == 8
    assert curves.loss_series()["total"][0] == [1.0, 2.0, 3.0, 4.0]
    assert {"ce", "dice"} <= set(curves.loss_series())
    assert curves.metric_series()["mIoU"][0] == [2.0, 4.0]
    assert curves.end_state == "finished"
    assert watcher.latest_preview()[1] == 4


def test_headline_numbers_show_progress_speed_and_miou_or_a_dash():
    assert headline_numbers(TrainingCurves()) == {
        "Step · epochs done": "0 · 0",
        "Elapsed": "-",
        "Images/s": "-",
        "Latest mIoU": "-",
        "Best mIoU": "-",
    }
    curves = TrainingCurves.from_events([step_event(4, 1.0, 0.1), eval_event(4, 0.6), eval_event(8, 0.4, best=False)])
    assert headline_numbers(curves) == {
        "Step · epochs done": "8 · 1",
        "Elapsed": "4 s",
        "Images/s": "14.0",
        "Latest mIoU": "0.400",
        "Best mIoU": "0.600",
    }


def test_no_points_note_explains_an_empty_run_until_it_logs():
    empty = TrainingCurves()
    assert no_points_note(empty, running=False) == "This run logged no step and no evaluation."
    assert no_points_note(empty, running=True).startswith("Waiting for the first logged step")
    starting = TrainingCurves.from_events([{"type": "note", "message": "downloading"}])
    assert no_points_note(starting, running=True) == "downloading"
    assert no_points_note(TrainingCurves.from_events([step_event(1, 1.0, 0.1)]), running=True) is None


def test_sync_watchers_follow_the_wanted_runs_and_keep_what_they_read(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        write_lines(RunDirectory(tmp_path / name).events_path, EVENTS)
    watchers: dict[str, RunWatcher] = {}
    assert sync_watchers(watchers, {"a": tmp_path / "a", "b": tmp_path / "b"}) is watchers
    first = watchers["a"]
    first.refresh()
    sync_watchers(watchers, {"a": tmp_path / "a"})
    assert list(watchers) == ["a"] and watchers["a"] is first  # kept: the next refresh reads only new events
    assert first.refresh() == 0
    sync_watchers(watchers, {"a": tmp_path / "b"})  # the name now points at another folder: start over there
    assert watchers["a"] is not first and watchers["a"].run.path == tmp_path / "b"
    assert watchers["a"].refresh() == len(EVENTS)
