"""Label quality without a pass of its own: scored in the training evaluation that writes best.pt, and
progressively (partial reports, one shared computation per key) for a model nobody evaluated yet."""

from __future__ import annotations

import threading

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
    events: list[dict] = []
    gatherers = best_checkpoint_gatherers(best, cache)
    Trainer(_config(), out_dir=tmp_path / "run", callbacks=[events.append], eval_consumer=gatherers).fit()
    assert sum(event["best"] for event in events if event["type"] == "eval") >= 2  # best.pt was replaced
    data = build_dataset(SPEC.with_split("val"))  # as the page builds it
    source = CheckpointSource(best)
    path = label_quality_cache_path(source, data, DEFAULT_BAND, DEFAULT_MIN_PIXELS, cache)
    stored = read_label_quality(path, data)
    assert stored is not None  # the page's first render is a cache read
    assert list((cache / "label_quality").iterdir()) == [path]  # the reports of replaced best.pt files are gone
    direct = score_dataset(source, data)
    assert np.allclose(stored.thresholds, direct.thresholds, atol=1e-5)
    assert [row["sample"] for row in stored.image_rows()] == [row["sample"] for row in direct.image_rows()]
    assert np.allclose(
        [item.score for image in stored.images for item in image.objects],
        [item.score for image in direct.images for item in image.objects],
        atol=1e-4,
    )


# -- a model nobody evaluated yet: a background job the page watches ------------------------------------------
def test_a_job_shows_partial_results_then_the_result_and_callers_of_its_key_join_it():
    from seglab.concurrency import BackgroundComputations

    release = threading.Event()
    store: BackgroundComputations[list[int]] = BackgroundComputations(capacity=2)

    def compute(job) -> list[int]:
        seen: list[int] = []
        job.set_peek(lambda: list(seen) or None)
        for item in range(4):
            if item == 2:
                assert release.wait(30)
            seen.append(item)
            job.progress(item + 1, 4)
        return seen

    job = store.start("a", compute)
    assert job.wait_for_progress(30) and job.done >= 1
    while job.done < 2:
        job.wait(0.01)
    assert job.partial() == [0, 1] and not job.finished and job.total == 4
    with pytest.raises(RuntimeError, match="still running"):
        job.result()
    assert store.start("a", compute) is job and store.computations == 1  # another session joins the same job
    assert not store.wait_all(0.05)  # still held
    release.set()
    assert store.wait_all(30) and job.result() == [0, 1, 2, 3] and job.partial() == [0, 1, 2, 3]
    assert store.start("a", compute) is job and store.computations == 1  # kept: no second computation
    assert store.running() == 0
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("seglab-job-")]  # no leak


def test_a_failed_job_hands_its_error_to_every_watcher_until_a_retry():
    from seglab.concurrency import BackgroundComputations
    from seglab.errors import ConfigError

    store: BackgroundComputations[int] = BackgroundComputations()
    attempts = []

    def compute(job) -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConfigError("the checkpoint predicts 7 classes but the data has 11")
        return 42

    job = store.start("k", compute)
    assert job.wait(30) and isinstance(job.error, ConfigError) and job.partial() is None
    with pytest.raises(ConfigError, match="7 classes"):
        job.result()
    assert store.start("k", compute) is job and len(attempts) == 1  # watchers see the error, nothing reruns
    again = store.start("k", compute, retry=True)
    assert again is not job and again.wait(30) and again.result() == 42


def test_score_dataset_hands_out_partial_reports_while_it_scores():
    from seglab.models import build_model

    torch.manual_seed(0)
    data = build_dataset(SPEC.with_split("val"))
    model = build_model("tiny_unet_small", data.num_classes).eval()
    seen: list[tuple[int, int]] = []
    scorers = []

    def progress(done: int, total: int) -> None:
        partial = scorers[0].report()  # from the scoring thread, as a page would from its own
        seen.append((len(partial.images), total))

    report = score_dataset(model, data, batch_size=2, progress=progress, watch=scorers.append)
    assert seen == [(done, 6) for done in range(1, 7)]
    assert scorers[0].report().image_rows() == report.image_rows()
