"""Tests for Hugging Face transformers folders as prediction sources (a tiny random SegFormer, no download)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from seglab.data.shapes import ShapesConfig, ShapesDataset
from seglab.engine.evaluation import evaluate_source
from seglab.errors import SourceError
from seglab.sources import HuggingFaceSource, open_source

transformers = pytest.importorskip("transformers", reason="transformers is not installed (pip install 'seglab[hf]')")

CLASSES = ["background", "circle", "cloud"]


@pytest.fixture(scope="module")
def segformer(tmp_path_factory):
    """A randomly initialised 3-class SegFormer with its image processor, saved like save_pretrained does."""
    folder = tmp_path_factory.mktemp("segformer")
    torch.manual_seed(0)
    config = transformers.SegformerConfig(
        num_encoder_blocks=2,
        depths=[1, 1],
        sr_ratios=[2, 1],
        hidden_sizes=[8, 16],
        patch_sizes=[7, 3],
        strides=[4, 2],
        num_attention_heads=[1, 1],
        mlp_ratios=[2, 2],
        decoder_hidden_size=16,
        num_labels=len(CLASSES),
        id2label=dict(enumerate(CLASSES)),
        label2id={name: i for i, name in enumerate(CLASSES)},
    )
    model = transformers.SegformerForSemanticSegmentation(config).eval()
    model.save_pretrained(folder)
    transformers.SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder, model


def test_a_saved_segformer_predicts_at_the_image_size(segformer):
    folder, model = segformer
    image = np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    with HuggingFaceSource(folder) as source:
        assert source.class_names == CLASSES
        prediction = source.predict(None, image)
    assert prediction.labels.shape == (45, 70) and prediction.probabilities.shape == (3, 45, 70)
    processor = transformers.AutoImageProcessor.from_pretrained(folder)
    with torch.no_grad():
        logits = model(**processor(images=image, return_tensors="pt")).logits
    assert logits.shape[-1] == 16  # 1/4 of the processed 64x64: upsampled by the source
    expected = torch.nn.functional.interpolate(logits, size=(45, 70), mode="bilinear", align_corners=False)[0].softmax(
        0
    )
    np.testing.assert_allclose(prediction.probabilities, expected.numpy(), atol=1e-5)


def test_a_segformer_is_evaluated_with_its_classes_mapped(segformer):
    folder, _ = segformer
    dataset = ShapesDataset("val", ShapesConfig(train_size=1, val_size=2, image_size=32, seed=1))
    source, description = open_source(folder)
    assert description.kind == "huggingface"
    with source:
        evaluation = evaluate_source(source, dataset, use_cache=False)
    assert evaluation.other_label == dataset.num_classes  # "cloud" is no Shapes class
    assert any("cloud" in note for note in evaluation.notes)
    assert evaluation.metrics.confusion.shape == (7, 8)


def test_pickled_weights_and_missing_files_are_refused(tmp_path, segformer):
    folder, model = segformer
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (pickled / name).write_bytes((folder / name).read_bytes())
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")
    with pytest.raises(SourceError, match=r"no .safetensors weights .*pickled weights"):
        HuggingFaceSource(tmp_path / "pickled")
    model.save_pretrained(tmp_path / "no_processor")
    with pytest.raises(SourceError, match="no preprocessor_config.json"):
        HuggingFaceSource(tmp_path / "no_processor")


def test_without_transformers_the_message_says_what_to_install(monkeypatch, segformer):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "transformers" else real(name, *args)
    )
    with pytest.raises(SourceError, match=r"pip install 'seglab\[hf\]'"):
        HuggingFaceSource(segformer[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_segformer_on_cuda_matches_the_cpu(segformer):
    image = np.random.default_rng(1).integers(0, 256, (33, 47, 3), dtype=np.uint8)
    with HuggingFaceSource(segformer[0]) as cpu, HuggingFaceSource(segformer[0], device="cuda") as gpu:
        np.testing.assert_allclose(
            gpu.predict(None, image).probabilities, cpu.predict(None, image).probabilities, atol=1e-4
        )
