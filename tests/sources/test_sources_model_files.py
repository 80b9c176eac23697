"""Tests for TorchScript/ONNX prediction sources: preprocessing, the worker process, safety and descriptions."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

from seglab.data.shapes import ShapesConfig, ShapesDataset
from seglab.engine.evaluation import evaluate_checkpoint, evaluate_source
from seglab.engine.export import export_checkpoint
from seglab.errors import SourceError
from seglab.sources import ModelFileSource, Preprocessing, check_source, load_description, open_source
from seglab.sources.base import SourceLimits
from seglab.sources.runners import check_onnx_file
from tests.helpers.checkpoints import write_tiny_checkpoint

pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def dataset():
    return ShapesDataset("val", ShapesConfig(train_size=1, val_size=3, image_size=40, seed=4))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, dataset):
    """A tiny checkpoint and its ONNX and TorchScript exports (parity checked on the dataset)."""
    folder = tmp_path_factory.mktemp("exported")
    checkpoint = write_tiny_checkpoint(folder / "run" / "best.pt")
    reports = {
        fmt: export_checkpoint(checkpoint, fmt, folder / f"model.{'onnx' if fmt == 'onnx' else 'pt'}", dataset=dataset)
        for fmt in ("onnx", "torchscript")
    }
    return checkpoint, reports


def script(module: torch.nn.Module, folder, name: str):
    path = folder / name
    torch.jit.save(torch.jit.script(module), str(path))
    return path


class ChannelsAreClasses(torch.nn.Module):
    """Logits = the input's channels: class = the strongest channel (reveals channel order and normalisation)."""

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"aux": images * 0, "out": images}


class NeedsFixedSize(torch.nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        assert images.shape[2] == 32 and images.shape[3] == 48, "this model takes 32x48 inputs only"
        return images


class NeedsMultipleOf16(torch.nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        assert images.shape[2] % 16 == 0 and images.shape[3] % 16 == 0, "height and width must be multiples of 16"
        return torch.nn.functional.avg_pool2d(images, 4)  # output at 1/4 resolution, like SegFormer


class ArgmaxLabels(torch.nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.argmax(dim=1)


class Softmaxed(torch.nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images * 3).softmax(dim=1)


class Slow(torch.nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        total = images
        for _ in range(50_000_000):
            total = total + 0.0
        return total


RAW = Preprocessing(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
RED = np.zeros((40, 40, 3), np.uint8)
RED[..., 0] = 255


def test_exports_load_back_and_evaluate_like_the_checkpoint(exported, dataset):
    checkpoint, reports = exported
    reference = evaluate_checkpoint(checkpoint, dataset, use_cache=False)
    for report in reports.values():
        assert report.ok and report.max_logit_difference <= 1e-3 and report.label_agreement == 1.0
        source, description = open_source(report.path)
        assert description.kind == report.format and source.class_names == dataset.class_names
        with source:
            evaluation = evaluate_source(source, dataset, use_cache=False)
        assert evaluation.metrics.miou == pytest.approx(reference.metrics.miou, abs=1e-6)
        for ours, theirs in zip(evaluation.results, reference.results, strict=True):
            assert (ours.labels == theirs.labels).mean() > 0.999
        assert evaluation.has_probabilities and evaluation.notes == []


def test_the_class_count_comes_from_the_description(exported):
    source, _ = open_source(exported[1]["onnx"].path)
    assert source.num_classes == 7
    assert ModelFileSource(exported[1]["onnx"].path, "onnx").num_classes is None  # a symbolic class axis


def test_dict_outputs_and_channel_order(tmp_path):
    path = script(ChannelsAreClasses(), tmp_path, "channels.pt")
    rgb = ModelFileSource(path, "torchscript", preprocessing=RAW, isolated=False)
    assert (rgb.predict(None, RED).labels == 0).all()  # "out" is picked by default
    bgr = ModelFileSource(
        path,
        "torchscript",
        preprocessing=Preprocessing(mean=(0, 0, 0), std=(1, 1, 1), channel_order="BGR"),
        isolated=False,
    )
    assert (bgr.predict(None, RED).labels == 2).all()
    aux = ModelFileSource(
        path, "torchscript", preprocessing=Preprocessing(mean=(0, 0, 0), std=(1, 1, 1), output="aux"), isolated=False
    )
    assert aux.predict(None, RED).probabilities == pytest.approx(1 / 3)
    missing = ModelFileSource(path, "torchscript", preprocessing=Preprocessing(output="logits"), isolated=False)
    with pytest.raises(SourceError, match="no key 'logits'; it has aux, out"):
        missing.predict(None, RED)


def test_fixed_size_models_are_fed_by_resize_or_sliding_window(tmp_path):
    path = script(NeedsFixedSize(), tmp_path, "fixed.pt")
    image = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    with pytest.raises(SourceError, match="32x48 inputs only"):
        ModelFileSource(path, "torchscript", preprocessing=RAW, isolated=False).predict(None, image)
    for mode in ("resize", "sliding"):
        preprocessing = Preprocessing(mean=(0, 0, 0), std=(1, 1, 1), input_size=(32, 48), fixed_size_mode=mode)
        prediction = ModelFileSource(path, "torchscript", preprocessing=preprocessing, isolated=False).predict(
            None, image
        )
        assert prediction.labels.shape == (70, 90) and prediction.probabilities.shape == (3, 70, 90)
    # The sliding window sees the pixels themselves: an identity model gives back the image's own argmax.
    np.testing.assert_array_equal(prediction.labels, image.argmax(axis=2))
    small = ModelFileSource(path, "torchscript", preprocessing=preprocessing, isolated=False).predict(
        None, image[:20, :30]
    )
    np.testing.assert_array_equal(small.labels, image[:20, :30].argmax(axis=2))  # padded up to 32x48, cropped back


def test_a_size_divisor_pads_and_crops_and_low_resolution_outputs_are_upsampled(tmp_path):
    path = script(NeedsMultipleOf16(), tmp_path, "stride.pt")
    image = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    with pytest.raises(SourceError, match="multiples of 16"):
        ModelFileSource(path, "torchscript", preprocessing=RAW, isolated=False).predict(None, image)
    preprocessing = Preprocessing(mean=(0, 0, 0), std=(1, 1, 1), size_divisor=16)
    prediction = ModelFileSource(path, "torchscript", preprocessing=preprocessing, isolated=False).predict(None, image)
    assert prediction.labels.shape == (40, 50)


def test_probability_and_label_outputs(tmp_path):
    image = np.random.default_rng(2).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    softmaxed = ModelFileSource(
        script(Softmaxed(), tmp_path, "soft.pt"),
        "torchscript",
        isolated=False,
        preprocessing=Preprocessing(mean=(0, 0, 0), std=(1, 1, 1), output_kind="probabilities"),
    )
    prediction = softmaxed.predict(None, image)
    expected = torch.from_numpy(image / 255.0 * 3).permute(2, 0, 1).softmax(dim=0).numpy()
    np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-5)
    labelled = ModelFileSource(
        script(ArgmaxLabels(), tmp_path, "labels.pt"),
        "torchscript",
        isolated=False,
        preprocessing=Preprocessing(mean=(0, 0, 0), std=(1, 1, 1), output_kind="labels"),
    )
    prediction = labelled.predict(None, image)
    assert prediction.probabilities is None and not labelled.has_probabilities
    np.testing.assert_array_equal(prediction.labels, image.argmax(axis=2))


def test_a_model_that_takes_too_long_is_stopped_and_the_caller_survives(tmp_path):
    source = ModelFileSource(script(Slow(), tmp_path, "slow.pt"), "torchscript", limits=SourceLimits(timeout_s=1.0))
    started = time.monotonic()
    with pytest.raises(SourceError, match="no answer within the time limit while predicting"):
        source.predict(None, np.zeros((8, 8, 3), np.uint8))
    assert time.monotonic() - started < 20
    pid = source.runner().pid  # a fresh worker was started for the next call
    source.close()
    assert pid is None or not _alive(pid)


def test_a_worker_that_crashes_mid_image_is_reported_and_replaced(tmp_path, exported):
    source = ModelFileSource(script(Slow(), tmp_path, "slow.pt"), "torchscript")
    pid = source.runner().pid
    threading.Timer(1.0, os.kill, (pid, signal.SIGSEGV)).start()
    with pytest.raises(SourceError, match="crashed while predicting .*SIGSEGV"):
        source.predict(None, np.zeros((8, 8, 3), np.uint8))
    source.close()
    healthy = ModelFileSource(exported[1]["onnx"].path, "onnx")
    first = healthy.predict(None, RED)
    os.kill(healthy.runner().pid, signal.SIGKILL)
    time.sleep(0.2)
    np.testing.assert_array_equal(healthy.predict(None, RED).labels, first.labels)  # a new worker took over
    healthy.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_model_files_are_checked_before_loading(tmp_path, exported):
    checkpoint, reports = exported
    with pytest.raises(SourceError, match="more than the 0 MB limit"):
        ModelFileSource(reports["onnx"].path, "onnx", limits=SourceLimits(max_file_bytes=1000))
    with pytest.raises(SourceError, match="not a TorchScript archive"):
        ModelFileSource(checkpoint, "torchscript")
    (tmp_path / "junk.onnx").write_bytes(b"\x00\x01 not protobuf" * 10)
    with pytest.raises(SourceError, match="not a readable ONNX model"):
        ModelFileSource(tmp_path / "junk.onnx", "onnx")
    with pytest.raises(SourceError, match="does not exist"):
        ModelFileSource(tmp_path / "absent.onnx", "onnx")


def test_onnx_external_data_outside_the_folder_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [weight],
    )
    path = tmp_path / "sneaky.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(SourceError, match="outside its folder; refused"):
        check_onnx_file(path)


def test_a_fixed_size_onnx_model_runs_through_the_worker(tmp_path):
    model = NeedsFixedSize()
    path = tmp_path / "fixed.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 32, 48),), str(path), dynamo=False, input_names=["image"])
    preprocessing = Preprocessing(mean=(0, 0, 0), std=(1, 1, 1), input_size=(32, 48), fixed_size_mode="sliding")
    with ModelFileSource(path, "onnx", preprocessing=preprocessing) as source:
        assert source.num_classes == 3  # read from the graph's static output shape
        image = np.random.default_rng(3).integers(0, 256, (50, 60, 3), dtype=np.uint8)
        np.testing.assert_array_equal(source.predict(None, image).labels, image.argmax(axis=2))
    with ModelFileSource(path, "onnx") as source:  # undeclared: the graph's fixed size is used, by resizing
        assert source.predict(None, image).labels.shape == (50, 60)
        assert "takes 48x32 inputs only: images are resized" in source.notes()[0]


def test_description_problems_are_all_named(tmp_path, exported):
    path = tmp_path / "bad.seglab.json"
    path.write_text(
        json.dumps(
            {
                "kind": "onnx",
                "path": "missing.onnx",
                "colour": "blue",
                "class_names": ["a", "a"],
                "preprocessing": {
                    "mean": [123.7, 116.3, 103.5],
                    "std": [1, 1],
                    "channel_order": "GBR",
                    "input_size": "big",
                    "output_kind": "softmax",
                    "size_divisor": 0,
                },
            }
        )
    )
    with pytest.raises(SourceError) as error:
        load_description(path)
    message = str(error.value)
    for expected in (
        "unknown key 'colour'",
        "'missing.onnx' does not exist",
        "repeat a name",
        "0-255 units",
        "std must be 3 numbers",
        "RGB or BGR",
        "input_size",
        "output_kind",
        "size_divisor",
    ):
        assert expected in message, expected
    assert message.count("\n  - ") == 9


def test_a_description_declares_classes_and_mapping(tmp_path, exported, dataset):
    report = exported[1]["onnx"]
    description = json.loads(report.description.read_text())
    assert description["kind"] == "onnx" and description["path"] == "model.onnx"
    assert description["preprocessing"]["input_size"] == "any"
    names = list(dataset.class_names)
    names[1] = "disc"
    described = tmp_path / "renamed.seglab.json"
    described.write_text(
        json.dumps(
            {**description, "path": str(report.path), "class_names": names, "mapping": {"disc": dataset.class_names[1]}}
        )
    )
    source, loaded = open_source(described)
    with source:
        evaluation = evaluate_source(source, dataset, mapping=loaded.mapping, use_cache=False)
    assert evaluation.other_label is None and "disc->" in evaluation.notes[0]
    check = check_source(source, dataset, mapping=loaded.mapping)
    assert check.ok, check.report()
    wrong = ModelFileSource(report.path, "onnx", class_names=["a", "b", "c"])
    with wrong:
        check = check_source(wrong, dataset)
    assert not check.ok and "outputs 7 classes but its description names 3" in check.report()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_model_files_on_cuda_match_the_cpu(exported, dataset):
    image = dataset.load(0)[0]
    for report in exported[1].values():
        with (
            ModelFileSource(report.path, report.format) as cpu,
            ModelFileSource(report.path, report.format, device="cuda") as gpu,
        ):
            expected, found = cpu.predict(None, image), gpu.predict(None, image)
        np.testing.assert_allclose(found.probabilities, expected.probabilities, atol=1e-4)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("member", ["data.pkl", "constants.pkl"])
def test_a_torchscript_archive_with_a_malicious_pickle_runs_no_code(tmp_path, member):
    import pickle
    import zipfile

    good = script(ChannelsAreClasses(), tmp_path, "good.pt")
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(evil, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            target.writestr(
                item, pickle.dumps(_RunsCode(marker), protocol=2) if item.filename.endswith(member) else data
            )
    with pytest.raises(SourceError, match="evil.pt"):
        ModelFileSource(evil, "torchscript").predict(None, RED)
    assert not marker.exists()
