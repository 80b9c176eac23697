"""Scoring: per-image confusion matrices per kind, public/private scores from the fixed assignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seglab.competition import scoring
from seglab.competition.competitions import CompetitionSettings, hidden_images, public_assignment
from seglab.competition.errors import ScoringError
from seglab.competition.scores import decode_confusions, encode_confusions, split_scores
from seglab.competition.scoring import register_model_file_scorer, score_submission
from seglab.data.shapes import ShapesDataset
from seglab.metrics.confusion import SegmentationMetrics
from tests.helpers.competition import (
    DEMO_CHECKPOINT,
    SMALL_SHAPES,
    SMALL_SPEC,
    ground_truth_masks,
    make_competition,
    mask_zip,
)


@pytest.fixture(scope="module")
def dataset() -> ShapesDataset:
    return ShapesDataset("test", SMALL_SHAPES)


def test_checkpoint_scoring_sums_to_the_usual_evaluation(dataset: ShapesDataset) -> None:
    from seglab.engine.checkpoint import load_checkpoint
    from seglab.engine.predict import evaluate_dataset

    confusions = score_submission("checkpoint", DEMO_CHECKPOINT, dataset)
    assert confusions.shape == (12, 7, 7) and confusions.dtype == np.int64
    expected = evaluate_dataset(load_checkpoint(DEMO_CHECKPOINT).build_model(), dataset).metrics
    assert np.array_equal(confusions.sum(axis=0), expected.confusion)


def test_masks_equal_to_the_ground_truth_score_one(dataset: ShapesDataset, tmp_path: Path) -> None:
    path = tmp_path / "perfect.zip"
    path.write_bytes(mask_zip(ground_truth_masks()))
    confusions = score_submission("masks_zip", path, dataset)
    off_diagonal = confusions.sum(axis=0) - np.diag(np.diag(confusions.sum(axis=0)))
    assert not off_diagonal.any()
    scores = split_scores(confusions, public_assignment(12, 0.3, 0), "miou", 0, dataset.class_names)
    assert scores.public == pytest.approx(1.0) and scores.private == pytest.approx(1.0)


def test_public_and_private_scores_use_only_their_images() -> None:
    names = ["background", "thing"]
    right = np.array([[50, 0], [0, 50]])  # a perfect image
    wrong = np.array([[0, 50], [50, 0]])  # everything swapped
    confusions = np.stack([right, wrong, right, wrong])
    is_public = np.array([True, True, False, False])
    scores = split_scores(confusions, is_public, "miou", 0, names)
    both = SegmentationMetrics.from_confusion(right + wrong, 0).miou
    assert scores.public == pytest.approx(both) and scores.private == pytest.approx(both)
    scores = split_scores(confusions, np.array([True, False, True, False]), "miou", 0, names)
    assert (scores.public, scores.private) == (pytest.approx(1.0), pytest.approx(0.0))
    assert scores.public_class_iou == {"background": pytest.approx(1.0), "thing": pytest.approx(1.0)}
    assert split_scores(confusions, np.array([True, False, True, False]), "pixel_acc", 0, names).private == 0.0


def test_confusions_round_trip_through_the_database_encoding() -> None:
    confusions = np.random.default_rng(0).integers(0, 10**9, size=(5, 7, 7))
    assert np.array_equal(decode_confusions(encode_confusions(confusions)), confusions)


def test_the_public_assignment_is_seeded_fixed_and_stored(tmp_path: Path) -> None:
    first = public_assignment(100, 0.3, seed=7)
    assert first.sum() == 30 and np.array_equal(first, public_assignment(100, 0.3, seed=7))
    assert not np.array_equal(first, public_assignment(100, 0.3, seed=8))
    assert public_assignment(2, 0.01, 0).sum() == 1 and public_assignment(3, 0.99, 0).sum() == 2  # both sides non-empty
    store, competition, _ = make_competition(tmp_path / "c", teams=(), split_seed=3)
    stored = np.array([image.is_public for image in hidden_images(store, competition)])
    assert np.array_equal(stored, public_assignment(12, 0.3, 3))
    assert [image.sample_id for image in hidden_images(store, competition)] == [f"test-{i:06d}" for i in range(12)]


@pytest.mark.parametrize("kind", ["onnx", "torchscript"])
@pytest.mark.slow
def test_exported_models_score_like_their_checkpoint(kind: str, dataset: ShapesDataset, tmp_path: Path) -> None:
    from seglab.engine.export import export_checkpoint

    model_file = tmp_path / ("model.onnx" if kind == "onnx" else "model.ts")
    export_checkpoint(DEMO_CHECKPOINT, kind, model_file, dataset=dataset, parity_images=1)
    model_file.with_name(model_file.name + ".seglab.json").unlink()  # an upload arrives without its description
    confusions = score_submission(kind, model_file, dataset)
    expected = score_submission("checkpoint", DEMO_CHECKPOINT, dataset)
    assert confusions.shape == expected.shape == (12, 7, 7)
    # Same network, another runtime: at most a handful of near-tie pixels may flip.
    assert np.abs(confusions - expected).sum() <= 0.001 * expected.sum()
    CompetitionSettings(name="x", spec=SMALL_SPEC, kinds=("checkpoint", kind)).validate()


def test_a_model_file_that_is_not_one_fails_with_a_reason(dataset: ShapesDataset, tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(ScoringError) as raised:
        score_submission("onnx", path, dataset)
    assert str(tmp_path) not in str(raised.value)  # the server's paths are not shown to the team


def test_a_plugged_model_file_scorer_is_used_and_checked(dataset: ShapesDataset, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(scoring, "_MODEL_FILE_SCORERS", {})
    calls = []

    def fake_onnx(path: Path, data) -> np.ndarray:
        calls.append(path)
        return np.ones((len(data), data.num_classes, data.num_classes), np.int64)

    register_model_file_scorer("onnx", fake_onnx)
    CompetitionSettings(name="x", spec=SMALL_SPEC, kinds=("onnx",)).validate()
    assert score_submission("onnx", tmp_path / "m.onnx", dataset).sum() == 12 * 49 and calls == [tmp_path / "m.onnx"]
    register_model_file_scorer("onnx", lambda path, data: np.ones((3, 3)))
    with pytest.raises(ScoringError, match="shape"):
        score_submission("onnx", tmp_path / "m.onnx", dataset)
    with pytest.raises(ValueError):
        register_model_file_scorer("checkpoint", fake_onnx)


def test_a_checkpoint_for_other_classes_fails_with_a_reason(dataset: ShapesDataset, tmp_path: Path) -> None:
    from tests.helpers.competition import checkpoint_bytes

    path = tmp_path / "other.pt"
    path.write_bytes(checkpoint_bytes(["a", "b", "c"]))
    with pytest.raises(ScoringError, match="predicts 3 classes"):
        score_submission("checkpoint", path, dataset)
