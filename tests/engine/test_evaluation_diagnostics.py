"""Diagnostics come with every evaluation: same pass, cached with it, recomputed from older caches without the model."""

from __future__ import annotations

import json

import numpy as np
import pytest

import seglab.engine.evaluation as evaluation_module
from seglab.analysis.diagnostics import diagnostics_summary
from seglab.engine.evaluation import Protocol, evaluate_checkpoint, evaluation_cache_path, load_evaluation
from tests.helpers.checkpoints import write_tiny_checkpoint
from tests.helpers.predictions import write_masks

pytestmark = pytest.mark.usefixtures("one_torch_thread", "private_cache")


def _same(a, b) -> None:
    for name, value in a.to_arrays().items():
        np.testing.assert_array_equal(value, b.to_arrays()[name], err_msg=name)


def test_evaluation_carries_diagnostics_and_caches_them(tmp_path, dataset, monkeypatch):
    path = write_tiny_checkpoint(tmp_path / "best.pt")
    first = evaluate_checkpoint(path, dataset)
    diagnostics = first.diagnostics
    assert diagnostics is not None and diagnostics.bf.shape == (4, 7)
    # Every scored pixel is binned once for calibration.
    scored = sum(int(r.confusion.sum()) for r in first.results)
    assert diagnostics.calibration[..., 0].sum() == scored
    summary = diagnostics_summary(
        diagnostics,
        first.class_names,
        [r.sample_id for r in first.results],
        np.stack([r.confusion for r in first.results]),
    )
    json.dumps(summary, allow_nan=False)

    monkeypatch.setattr(evaluation_module, "load_checkpoint", lambda *a, **k: pytest.fail("cache not used"))
    _same(evaluate_checkpoint(path, dataset).diagnostics, diagnostics)


def test_an_older_cache_gets_its_diagnostics_from_the_stored_predictions(tmp_path, dataset, monkeypatch):
    path = write_tiny_checkpoint(tmp_path / "best.pt")
    fresh = evaluate_checkpoint(path, dataset)
    cache_file = evaluation_cache_path(path, dataset, Protocol())
    with np.load(cache_file) as archive:
        old = {name: archive[name] for name in archive.files if not name.startswith("diag_")}
    np.savez(cache_file, **old)  # as written before diagnostics existed
    assert load_evaluation(cache_file, dataset).diagnostics is None

    monkeypatch.setattr(evaluation_module, "load_checkpoint", lambda *a, **k: pytest.fail("the model ran again"))
    again = evaluate_checkpoint(path, dataset)
    _same(again.diagnostics, fresh.diagnostics)
    assert load_evaluation(cache_file, dataset).diagnostics is not None  # the cache was rewritten with them


def test_a_failing_diagnostic_surfaces_as_the_evaluation_s_error(tmp_path, dataset, monkeypatch):
    from seglab.analysis.diagnostics.accumulator import DiagnosticsAccumulator

    def broken(*args, **kwargs):
        raise RuntimeError("diagnostics broke")

    monkeypatch.setattr(DiagnosticsAccumulator, "add", broken)
    with pytest.raises(RuntimeError, match="diagnostics broke"):
        evaluate_checkpoint(write_tiny_checkpoint(tmp_path / "best.pt"), dataset, batch_size=1)
    assert not (tmp_path / "cache" / "evaluations").exists() or not any((tmp_path / "cache" / "evaluations").iterdir())


def test_ground_truth_as_predictions_finds_every_object_with_perfect_outlines(tmp_path):
    from seglab.analysis.diagnostics.report import summarise_evaluation
    from seglab.data.shapes import ShapesConfig, ShapesDataset
    from seglab.engine.evaluation import evaluate_source
    from seglab.sources import PredictionFolderSource

    shapes = ShapesDataset("val", ShapesConfig(train_size=1, val_size=5, image_size=40, seed=3))
    evaluation = evaluate_source(PredictionFolderSource(write_masks(tmp_path / "gt", shapes)), shapes)
    summary = summarise_evaluation(evaluation)
    objects, boundary = summary["objects"], summary["boundary"]
    assert objects["objects"] > 0 and objects["recall"] == 1.0 and objects["lesion_dice"] == 1.0
    assert objects["false_blobs"] == 0
    assert boundary["mean_boundary_iou"] == 1.0 and boundary["mean_bf_score"] == 1.0
    assert not summary["calibration"]["available"] and summary["calibration"]["ece"] is None  # labels only
