"""Tests for seglab/engine/checkpoint.py: atomic saves, safe loading and one-line explanations of bad files."""

from __future__ import annotations

import ast
import os
import pickle
from pathlib import Path

import pytest
import torch

import seglab
from seglab.data.label_map import camvid_label_map, shapes_label_map
from seglab.engine.checkpoint import (
    FORMAT_VERSION,
    check_compatible,
    checkpoint_payload,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)
from seglab.engine.config import TrainConfig
from seglab.errors import CheckpointError
from seglab.models import build_model

SEGLAB_SOURCE = Path(seglab.__file__).parent


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_payload(step: int = 5, with_optimizer: bool = False) -> dict:
    torch.manual_seed(step)
    model = build_model("tiny_unet_small", shapes_label_map().num_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3) if with_optimizer else None
    if optimizer is not None:  # one step so the optimiser has state to save
        model(torch.zeros(1, 3, 32, 32))["out"].mean().backward()
        optimizer.step()
    return checkpoint_payload(
        model=model,
        config=TrainConfig(model="tiny_unet_small").to_dict(),
        label_map=shapes_label_map(),
        step=step,
        epoch=1,
        metrics={"miou": 0.5},
        optimizer=optimizer,
        extra={"best_value": 0.5},
    )


def test_save_then_load_round_trip_rebuilds_the_model(tmp_path):
    payload = small_payload(with_optimizer=True)
    path = save_checkpoint(payload, tmp_path / "run" / "last.pt")
    checkpoint = load_checkpoint(path)
    assert (checkpoint.model_name, checkpoint.num_classes, checkpoint.step, checkpoint.epoch) == (
        "tiny_unet_small",
        7,
        5,
        1,
    )
    assert checkpoint.label_map == shapes_label_map()
    assert checkpoint.metrics == {"miou": 0.5} and checkpoint.extra == {"best_value": 0.5}
    assert checkpoint.optimizer_state is not None and checkpoint.optimizer_state["state"]
    model = checkpoint.build_model()
    assert not model.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, payload["model_state"][name]), name
    assert TrainConfig.from_dict(checkpoint.config).model == "tiny_unet_small"
    assert "tiny_unet_small" in checkpoint.describe() and "0.500" in checkpoint.describe()
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_a_run_folder_loads_best_then_last(tmp_path):
    save_checkpoint(small_payload(step=1), tmp_path / "last.pt")
    assert load_checkpoint(tmp_path).step == 1
    save_checkpoint(small_payload(step=2), tmp_path / "best.pt")
    assert load_checkpoint(tmp_path).step == 2


def test_interrupted_save_keeps_the_previous_file_and_leaves_no_temp_files(tmp_path, monkeypatch):
    path = save_checkpoint(small_payload(step=1), tmp_path / "last.pt")
    before = path.read_bytes()
    real_save = torch.save

    def save_half_then_crash(payload, stream, *args, **kwargs):
        import io

        buffer = io.BytesIO()
        real_save(payload, buffer)
        stream.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", save_half_then_crash)
    with pytest.raises(CheckpointError, match="disk full.*the previous last.pt is unchanged"):
        save_checkpoint(small_payload(step=2), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path).step == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_keyboard_interrupt_during_save_also_cleans_up(tmp_path, monkeypatch):
    def interrupted(payload, stream, *args, **kwargs):
        stream.write(b"PK partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"format": "x"}, tmp_path / "best.pt")
    assert list(tmp_path.iterdir()) == []


def test_missing_file_is_explained(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_garbage_file_is_explained(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(os.urandom(2000))
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_checkpoint(path)


def test_truncated_file_is_explained(tmp_path):
    path = save_checkpoint(small_payload(), tmp_path / "last.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_truncated_tensor_data_inside_a_valid_zip_is_explained(tmp_path):
    """A zip whose central directory survived but whose tensor records are cut short."""
    import zipfile

    source = save_checkpoint(small_payload(), tmp_path / "good.pt")
    damaged = tmp_path / "damaged.pt"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(damaged, "w") as copy:
        for info in original.infolist():
            content = original.read(info)
            if "/data/" in info.filename and len(content) > 64:
                content = content[:16]
            copy.writestr(info, content)
    with pytest.raises(CheckpointError, match="truncated or damaged"):
        load_checkpoint(damaged)


def test_plain_state_dict_from_another_tool_is_explained(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save(build_model("tiny_unet_small", 7).state_dict(), path)
    with pytest.raises(CheckpointError, match="not a seglab checkpoint") as caught:
        load_checkpoint(path)
    assert "weights_path" in str(caught.value)  # says how to use such weights instead


class Exploit:
    """Unpickling this runs a shell command: what a tampered checkpoint would do."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_pickled_code_is_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "MARKER"
    path = tmp_path / "tampered.pt"
    payload = small_payload()
    payload["extra"] = {"hook": Exploit(f"touch {marker}")}
    torch.save(payload, path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert not marker.exists()
    message = str(caught.value)
    assert "nothing in it was executed" in message and "\n" not in message
    # Sanity check of the fixture itself: an unsafe load would have run it.
    assert pickle.loads(pickle.dumps(Exploit("true"))) == 0


def test_newer_format_and_missing_fields_are_explained(tmp_path):
    payload = small_payload()
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="newer seglab"):
        load_checkpoint(tmp_path / "newer.pt")
    payload = small_payload()
    del payload["model_state"]
    torch.save(payload, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="model_state"):
        load_checkpoint(tmp_path / "partial.pt")


def test_label_map_inconsistent_with_num_classes_is_explained(tmp_path):
    payload = small_payload()
    payload["num_classes"] = 5
    torch.save(payload, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="inconsistent"):
        load_checkpoint(tmp_path / "odd.pt")


def test_wrong_number_of_classes_is_explained(tmp_path):
    checkpoint = load_checkpoint(save_checkpoint(small_payload(), tmp_path / "best.pt"))
    other = build_model("tiny_unet_small", 11)
    with pytest.raises(CheckpointError, match="number of classes") as caught:
        load_model_state(other, checkpoint.model_state, source=str(checkpoint.path))
    assert "classifier" in str(caught.value) and "(7," in str(caught.value)
    with pytest.raises(CheckpointError, match="7 classes") as caught:
        check_compatible(checkpoint, camvid_label_map())
    assert "11" in str(caught.value)
    check_compatible(checkpoint, shapes_label_map())


def test_wrong_architecture_is_explained(tmp_path):
    checkpoint = load_checkpoint(save_checkpoint(small_payload(), tmp_path / "best.pt"))
    other = build_model("unet", 7, base_width=8, depth=2)
    with pytest.raises(CheckpointError, match="another architecture"):
        load_model_state(other, checkpoint.model_state, source="best.pt")


def torch_load_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "load"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "torch"
    ]


def test_every_torch_load_in_seglab_uses_weights_only():
    calls = 0
    for path in SEGLAB_SOURCE.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert "from torch import load" not in source, path
        for call in torch_load_calls(ast.parse(source)):
            calls += 1
            safe = any(
                k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in call.keywords
            )
            assert safe, f"{path}:{call.lineno}: torch.load without weights_only=True"
    assert calls >= 1  # the checkpoint loader itself
