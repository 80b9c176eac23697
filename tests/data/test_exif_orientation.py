"""One EXIF-orientation rule (seglab.data.io.read_image): datasets keep the stored pixels (masks carry no
EXIF), a lone photo is shown upright, the same in `seglab predict` and the app's upload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seglab.cli.commands import main
from seglab.data.folder import FolderDataset
from seglab.data.io import read_image, read_image_bytes
from seglab.data.label_map import generic_label_map
from seglab.engine.checkpoint import checkpoint_payload, load_checkpoint, save_checkpoint
from seglab.engine.predict import predict
from seglab.models import build_model

ROTATE_90_CLOCKWISE = 6  # EXIF Orientation: the camera was turned; a viewer rotates the stored pixels


def rotated_jpeg(path: Path, height: int = 20, width: int = 30) -> np.ndarray:
    """A JPEG stored ``width`` x ``height`` whose EXIF says to show it rotated (``height`` x ``width``)."""
    stored = np.zeros((height, width, 3), np.uint8)
    stored[:, : width // 3] = (250, 10, 10)  # a red band on the stored left edge: the top once upright
    exif = Image.Exif()
    exif[0x0112] = ROTATE_90_CLOCKWISE
    Image.fromarray(stored).save(path, quality=95, exif=exif)
    return stored


def test_datasets_read_the_stored_pixels_and_photos_are_upright(tmp_path):
    path = tmp_path / "phone.jpg"
    rotated_jpeg(path)
    assert read_image(path).shape == (20, 30, 3)  # as stored: aligned with a mask drawn on these pixels
    upright = read_image(path, upright=True)
    assert upright.shape == (30, 20, 3)
    assert upright[0, :, 0].mean() > 200 and upright[-1, :, 0].mean() < 50  # the red band is on top
    np.testing.assert_array_equal(read_image_bytes(path.read_bytes(), max_pixels=10**6), upright)  # the app's upload


def test_a_folder_dataset_keeps_image_and_mask_aligned(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    rotated_jpeg(tmp_path / "images" / "a.jpg")
    mask = np.zeros((20, 30), np.uint8)
    mask[:, :10] = 1  # the red band, in stored orientation (annotation tools draw on the stored pixels)
    Image.fromarray(mask).save(tmp_path / "masks" / "a.png")
    dataset = FolderDataset(tmp_path / "images", tmp_path / "masks")
    image, loaded = dataset.load(0)
    assert image.shape[:2] == loaded.shape == (20, 30)
    assert image[loaded == 1, 0].mean() > 200  # red pixels are where the mask says


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    model = build_model("tiny_unet_small", 3)
    payload = checkpoint_payload(model=model, config={}, label_map=generic_label_map(3), step=0, epoch=0)
    return save_checkpoint(payload, tmp_path / "model.pt")


def test_seglab_predict_predicts_a_rotated_photo_upright_like_the_upload(capsys, tmp_path, checkpoint, monkeypatch):
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "phone.jpg"
    rotated_jpeg(path)
    assert main(["predict", "--checkpoint", str(checkpoint), str(path), "--out", str(tmp_path / "out")]) == 0
    labels = np.asarray(Image.open(tmp_path / "out" / "phone_labels.png"))
    assert labels.shape == (30, 20)  # upright, as the Inspect page's upload shows it (was sideways: 20 x 30)
    model = load_checkpoint(checkpoint).build_model()
    uploaded = predict(model, read_image_bytes(path.read_bytes(), max_pixels=10**6))
    np.testing.assert_array_equal(labels, uploaded.labels)
