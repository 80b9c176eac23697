"""Tests for seglab/sources/folder_source.py and evaluate_source on folders of predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from seglab.data.label_map import shapes_label_map
from seglab.data.shapes import ShapesConfig, ShapesDataset
from seglab.engine.evaluation import evaluate_checkpoint, evaluate_source, source_cache_path
from seglab.errors import SourceError
from seglab.sources import PredictionFolderSource, check_source, write_prediction_png
from seglab.sources.base import SourceLimits
from tests.helpers.checkpoints import write_tiny_checkpoint
from tests.helpers.predictions import write_masks

pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture
def dataset():
    return ShapesDataset("val", ShapesConfig(train_size=1, val_size=5, image_size=40, seed=3))


@pytest.fixture
def checkpoint(tmp_path):
    return write_tiny_checkpoint(tmp_path / "run" / "best.pt", seed=1)


def test_a_folder_identical_to_a_checkpoints_predictions_gives_exactly_its_metrics(tmp_path, dataset, checkpoint):
    reference = evaluate_checkpoint(checkpoint, dataset, use_cache=False)
    folder = tmp_path / "predictions"
    folder.mkdir()
    for result in reference.results:
        write_prediction_png(result.labels, folder / f"{result.sample_id}.png")
    evaluation = evaluate_source(PredictionFolderSource(folder), dataset, use_cache=False)
    assert evaluation.metrics.to_dict(dataset.class_names) == reference.metrics.to_dict(dataset.class_names)
    for ours, theirs in zip(evaluation.results, reference.results, strict=True):
        np.testing.assert_array_equal(ours.confusion, theirs.confusion)
        np.testing.assert_array_equal(ours.labels, theirs.labels)
        assert ours.miou == pytest.approx(theirs.miou, nan_ok=True)
    assert not evaluation.has_probabilities and evaluation.other_label is None
    assert any("labels only" in note for note in evaluation.notes)


def test_ground_truth_as_predictions_scores_one(tmp_path, dataset):
    evaluation = evaluate_source(PredictionFolderSource(write_masks(tmp_path / "gt", dataset)), dataset)
    assert evaluation.metrics.miou == pytest.approx(1.0) and evaluation.metrics.pixel_acc == pytest.approx(1.0)


def test_sixteen_bit_and_palette_pngs_and_seglab_predict_names_are_read(tmp_path, dataset):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for index, sample_id in enumerate(dataset.ids):
        mask = dataset.load(index)[1]
        if index == 0:
            Image.fromarray(mask.astype(np.uint16)).save(folder / f"{sample_id}.png")  # 16-bit
        elif index == 1:
            palette = Image.fromarray(mask, mode="P")
            palette.putpalette(shapes_label_map().palette().ravel().tolist())
            palette.save(folder / f"{sample_id}.png")
        else:
            write_prediction_png(mask, folder / f"{sample_id}_labels.png")  # what `seglab predict` writes
    assert Image.open(folder / f"{dataset.ids[0]}.png").mode.startswith("I")
    evaluation = evaluate_source(PredictionFolderSource(folder), dataset, use_cache=False)
    assert evaluation.metrics.pixel_acc == pytest.approx(1.0)


def test_colour_pngs_are_decoded_through_the_label_map(tmp_path, dataset):
    label_map = dataset.label_map
    folder = tmp_path / "colour"
    folder.mkdir()
    for index, sample_id in enumerate(dataset.ids):
        Image.fromarray(label_map.palette()[dataset.load(index)[1]]).save(folder / f"{sample_id}.png")
    source = PredictionFolderSource(folder, label_map=label_map, encoding="rgb")
    assert evaluate_source(source, dataset, use_cache=False).metrics.pixel_acc == pytest.approx(1.0)


def test_npz_probabilities_and_npy_logits_float16(tmp_path, dataset):
    folder = tmp_path / "scores"
    folder.mkdir()
    for index, sample_id in enumerate(dataset.ids):
        mask = dataset.load(index)[1]
        one_hot = np.eye(7, dtype=np.float32)[np.where(mask == 255, 0, mask)].transpose(2, 0, 1)
        if index % 2:
            probabilities = (0.9 * one_hot + 0.1 / 7).astype(np.float16)
            np.savez_compressed(folder / f"{sample_id}.npz", probabilities=probabilities)
        else:
            np.save(folder / f"{sample_id}.npy", (one_hot * 5.0 - 2.0).astype(np.float16))  # logits: sums are not 1
    source = PredictionFolderSource(folder)
    assert source.has_probabilities
    prediction = source.predict(dataset.ids[0], dataset.load(0)[0])
    np.testing.assert_allclose(prediction.probabilities.sum(axis=0), 1.0, atol=1e-5)  # softmaxed logits
    evaluation = evaluate_source(source, dataset, use_cache=False)
    assert evaluation.metrics.pixel_acc == pytest.approx(1.0) and evaluation.has_probabilities
    confidence = evaluation.results[1].confidence.astype(np.float32)
    assert confidence.max() == pytest.approx(0.9 + 0.1 / 7, abs=2e-3)


def test_a_prediction_of_another_size_is_refused_unless_resizing_is_asked_for(tmp_path, dataset):
    folder = tmp_path / "small"
    folder.mkdir()
    for index, sample_id in enumerate(dataset.ids):
        mask = dataset.load(index)[1]
        write_prediction_png(mask[::2, ::2], folder / f"{sample_id}.png")
    with pytest.raises(SourceError, match=r"is 20x20 but image .* is 40x40.*--resize-predictions"):
        evaluate_source(PredictionFolderSource(folder), dataset, use_cache=False)
    check = check_source(PredictionFolderSource(folder), dataset)
    assert not check.ok and "5 prediction(s) differ in size" in check.report()
    evaluation = evaluate_source(PredictionFolderSource(folder, resize=True), dataset, use_cache=False)
    assert any("resized (nearest neighbour), e.g. 20x20 -> 40x40" in note for note in evaluation.notes)
    assert evaluation.metrics.pixel_acc > 0.8


def test_missing_files_are_named_and_extra_files_listed(tmp_path, dataset):
    folder = write_masks(tmp_path / "partial", dataset)
    (folder / f"{dataset.ids[2]}.png").unlink()
    write_prediction_png(np.zeros((40, 40), np.uint8), folder / "stranger.png")
    check = check_source(PredictionFolderSource(folder), dataset)
    assert not check.ok
    assert f"1 of 5 samples have no prediction file, e.g. {dataset.ids[2]}" in check.report()
    assert "stranger.png" in check.report()
    with pytest.raises(SourceError, match=f"no prediction for sample '{dataset.ids[2]}'"):
        evaluate_source(PredictionFolderSource(folder), dataset, use_cache=False)


def test_class_ids_beyond_the_dataset_and_wrong_class_counts_are_refused(tmp_path, dataset):
    folder = write_masks(tmp_path / "ids", dataset, transform=lambda mask: np.where(mask == 255, 0, mask) + 3)
    with pytest.raises(SourceError, match=r"holds class ids \[7, 8.*class_names"):
        evaluate_source(PredictionFolderSource(folder), dataset, use_cache=False)
    scores = tmp_path / "scores"
    scores.mkdir()
    for sample_id in dataset.ids:
        np.save(scores / f"{sample_id}.npy", np.random.default_rng(0).random((4, 40, 40), dtype=np.float32))
    with pytest.raises(SourceError, match="predicts 4 classes but the data has 7"):
        evaluate_source(PredictionFolderSource(scores), dataset, use_cache=False)


def test_declared_classes_with_a_mapping_count_unmapped_ones_as_other(tmp_path, dataset):
    names = ["background", "circle", "square", "triangle", "ellipse", "star", "stripe", "cloud"]
    names = dataset.class_names + ["cloud"]
    folder = write_masks(tmp_path / "eight", dataset, transform=lambda mask: np.where(mask == 1, 7, mask))
    source = PredictionFolderSource(folder, class_names=names)
    evaluation = evaluate_source(source, dataset, use_cache=False)
    circle = dataset.class_names[1]
    assert evaluation.other_label == 7 and evaluation.prediction_names[-1] == "other"
    assert evaluation.metrics.confusion.shape == (7, 8)
    assert evaluation.metrics.recall[1] == 0.0 and np.isnan(evaluation.metrics.precision[1])
    assert evaluation.metrics.to_dict(dataset.class_names)["predicted_other"][circle] > 0
    assert any("cloud" in note for note in evaluation.notes)
    remapped = evaluate_source(source, dataset, mapping={"cloud": circle}, use_cache=False)
    assert remapped.metrics.pixel_acc == pytest.approx(1.0) and remapped.other_label is None


def test_the_cache_key_follows_files_and_mapping(tmp_path, dataset):
    folder = write_masks(tmp_path / "gt", dataset)
    source = PredictionFolderSource(folder)
    first = evaluate_source(source, dataset)
    path = source_cache_path(source, dataset)
    assert path.is_file()
    assert source_cache_path(source, dataset, {"circle": None}) != path
    again = evaluate_source(PredictionFolderSource(folder), dataset)
    assert again.metrics.to_dict() == first.metrics.to_dict() and again.source == first.source
    write_prediction_png(np.zeros((40, 40), np.uint8), folder / f"{dataset.ids[0]}.png")
    assert source_cache_path(PredictionFolderSource(folder), dataset) != path


def test_unsafe_or_oversized_arrays_are_refused_before_decoding(tmp_path, dataset):
    folder = tmp_path / "bad"
    folder.mkdir()
    np.save(folder / f"{dataset.ids[0]}.npy", np.array([{"x": 1}] * 4, dtype=object).reshape(2, 2), allow_pickle=True)
    with pytest.raises(SourceError, match="Python objects"):
        PredictionFolderSource(folder).predict(dataset.ids[0], dataset.load(0)[0])
    np.save(folder / f"{dataset.ids[0]}.npy", np.zeros((3, 40, 40), np.float32))
    limited = PredictionFolderSource(folder, limits=SourceLimits(max_pixels=100))
    with pytest.raises(SourceError, match="more than the 0 MP limit"):
        limited.predict(dataset.ids[0], dataset.load(0)[0])
    (folder / f"{dataset.ids[1]}.npz").write_bytes(b"not a zip")
    with pytest.raises(SourceError, match="corrupt or not a NumPy file"):
        PredictionFolderSource(folder).predict(dataset.ids[1], dataset.load(1)[0])


def test_an_empty_folder_and_two_files_for_one_sample_are_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="holds no prediction files"):
        PredictionFolderSource(tmp_path / "empty")
    (tmp_path / "twice").mkdir()
    write_prediction_png(np.zeros((4, 4), np.uint8), tmp_path / "twice" / "a.png")
    np.save(tmp_path / "twice" / "a.npy", np.zeros((4, 4), np.uint8))
    with pytest.raises(SourceError, match="several predictions for one sample: a.npy / a.png"):
        PredictionFolderSource(tmp_path / "twice")


def test_a_folder_cannot_predict_an_uploaded_image(tmp_path, dataset):
    source = PredictionFolderSource(write_masks(tmp_path / "gt", dataset))
    assert not source.can_predict_images
    with pytest.raises(SourceError, match="has none for an image that is not in the dataset"):
        source.predict(None, np.zeros((4, 4, 3), np.uint8))


def test_description_json_of_a_folder_round_trips(tmp_path, dataset):
    from seglab.sources import describe_target, load_description, save_description
    from seglab.sources.description import SourceDescription

    folder = write_masks(tmp_path / "gt", dataset)
    described = SourceDescription(kind="predictions", path=folder, class_names=tuple(dataset.class_names), resize=True)
    path = save_description(described, folder / "model.seglab.json")
    assert json.loads(path.read_text())["path"] == "."
    loaded = describe_target(folder)
    assert loaded == load_description(path) and loaded.resize and loaded.path == folder.resolve()


def test_colour_pngs_in_a_foreign_palette_are_decoded_through_the_described_label_map(tmp_path, dataset):
    from seglab.data.label_map import ClassInfo, LabelMap
    from seglab.sources import open_source

    names = [name.upper() for name in dataset.class_names]  # other spelling, other colours, other void colour
    colours = [(10 * i, 200 - 20 * i, 7) for i in range(len(names))]
    foreign = LabelMap(
        tuple(ClassInfo(i, n, c) for i, (n, c) in enumerate(zip(names, colours, strict=True))),
        ignore_index=255,
        ignore_color=(1, 2, 3),
        name="foreign",
    )
    folder = tmp_path / "painted"
    folder.mkdir()
    for index, sample_id in enumerate(dataset.ids):
        Image.fromarray(foreign.palette()[dataset.load(index)[1]]).save(folder / f"{sample_id}.png")
    foreign.save(tmp_path / "foreign.json")
    (folder / "model.seglab.json").write_text(
        json.dumps(
            {"kind": "predictions", "path": ".", "predictions": {"encoding": "rgb", "label_map": "../foreign.json"}}
        )
    )
    source, description = open_source(folder, label_map=dataset.label_map)
    assert description.label_map == (tmp_path / "foreign.json").resolve() and source.class_names == names
    evaluation = evaluate_source(source, dataset, use_cache=False)
    assert evaluation.metrics.pixel_acc == pytest.approx(1.0) and evaluation.other_label is None
    (folder / "model.seglab.json").write_text(
        json.dumps({"kind": "predictions", "path": ".", "predictions": {"label_map": "missing.json"}})
    )
    with pytest.raises(SourceError, match="predictions.label_map: label map .*missing.json does not exist"):
        open_source(folder)


def test_a_mapped_source_gives_dataset_class_probabilities_and_log_probabilities(tmp_path, dataset):
    from seglab.sources import MappedSource

    folder = tmp_path / "eight"
    folder.mkdir()
    names = [*dataset.class_names, "cloud"]
    rng = np.random.default_rng(5)
    for sample_id in dataset.ids:
        np.save(folder / f"{sample_id}.npy", rng.random((8, 40, 40), dtype=np.float32))  # logits of 8 classes
    mapped = MappedSource(PredictionFolderSource(folder, class_names=names), dataset.label_map)
    image = dataset.load(0)[0]
    prediction = mapped.predict(dataset.ids[0], image)
    assert prediction.probabilities.shape == (7, 40, 40) and prediction.other_probability.shape == (40, 40)
    np.testing.assert_allclose(prediction.probabilities.sum(0) + prediction.other_probability, 1.0, atol=1e-5)
    assert mapped.mapping().unmapped == ["cloud"]
    log_probabilities = mapped.log_probabilities(dataset.ids[0], image)
    np.testing.assert_allclose(np.exp(log_probabilities), prediction.probabilities, rtol=1e-5)
    labels_only = MappedSource(PredictionFolderSource(write_masks(tmp_path / "gt", dataset)), dataset.label_map)
    with pytest.raises(SourceError, match="gives labels only: loss and label-quality views need probabilities"):
        labels_only.log_probabilities(dataset.ids[0], image)
