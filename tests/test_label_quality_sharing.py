"""Label quality without a pass of its own: scored in the training evaluation that writes best.pt, and
progressively (partial reports, one shared computation per key) for a model nobody evaluated yet."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seglab.analysis.label_quality import DEFAULT_BAND, DEFAULT_MIN_PIXELS, score_dataset
from seglab.analysis.label_quality.cache import best_checkpoint_gatherers, label_quality_cache_path, read_label_quality
from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec, build_dataset
from seglab.engine.config import TrainConfig
from seglab.engine.trainer import Trainer
from seglab.sources.checkpoint_source import CheckpointSource

SPEC = DataSpec(shapes=ShapesConfig(train_size=8, val_size=6, test_size=2, image_size=48, label_noise=0.3))


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _config(epochs: int = 3) -> TrainConfig:
    return TrainConfig(model="tiny_unet_small", epochs=epochs, crop_size=48, batch_size=4, eval_every=1, data=SPEC)


class _Recorder:
    """A consumer that records what the Trainer hands it."""

    log: list[str] = []

    def __init__(self, dataset) -> None:
        self.dataset, self.indices = dataset, []

    def add_batch(self, indices, probabilities, masks) -> None:
        for index, probability, mask in zip(indices, probabilities, masks, strict=True):
            assert probability.shape == (self.dataset.num_classes, *mask.shape)
            assert np.array_equal(mask, self.dataset.load(index)[1])
        self.indices += indices

    def finish(self) -> None:
        assert self.indices == list(range(len(self.dataset)))  # every image, in order
        _Recorder.log.append("finish")

    def close(self) -> None:
        _Recorder.log.append("close")


def test_the_trainer_finishes_the_consumer_only_for_evaluations_that_write_best_pt(tmp_path):
    _Recorder.log = []
    events: list[dict] = []
    trainer = Trainer(_config(), out_dir=tmp_path / "run", callbacks=[events.append], eval_consumer=_Recorder)
    trainer.fit()
    evals = [event for event in events if event["type"] == "eval"]
    improved = sum(event["best"] for event in evals)
    assert len(evals) == 3 and improved >= 1
    assert _Recorder.log.count("close") == 3 and _Recorder.log.count("finish") == improved
    # No run folder (nothing becomes best.pt): nothing is gathered.
    _Recorder.log = []
    Trainer(_config(epochs=1), eval_consumer=_Recorder).fit()
    assert _Recorder.log == []


def test_training_stores_the_label_quality_report_of_best_pt_as_score_dataset_gives_it(tmp_path):
    best = tmp_path / "run" / "best.pt"
    cache = tmp_path / "cache"
    trainer = Trainer(_config(), out_dir=tmp_path / "run", eval_consumer=best_checkpoint_gatherers(best, cache))
    trainer.fit()
    data = build_dataset(SPEC.with_split("val"))  # as the page builds it
    source = CheckpointSource(best)
    path = label_quality_cache_path(source, data, DEFAULT_BAND, DEFAULT_MIN_PIXELS, cache)
    stored = read_label_quality(path, data)
    assert stored is not None  # the page's first render is a cache read
    direct = score_dataset(source, data)
    assert np.allclose(stored.thresholds, direct.thresholds, atol=1e-5)
    assert [row["sample"] for row in stored.image_rows()] == [row["sample"] for row in direct.image_rows()]
    assert np.allclose(
        [item.score for image in stored.images for item in image.objects],
        [item.score for image in direct.images for item in image.objects],
        atol=1e-4,
    )
