"""ImageNet backbone weights: the hub cache, the one-time download and its offline message. Nothing downloads.

The ``hub_cache`` fixture (conftest) points ``TORCH_HOME`` at an empty temporary cache and takes torch hub's
network away; "online" tests replace ``torch.hub.download_url_to_file`` with one that writes a fake file.
Fake checkpoints have the real torchvision keys and shapes, each tensor one value broadcast (a few KB on disk).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.hub
from torch import nn
from torchvision.models import MobileNet_V3_Large_Weights, ResNet18_Weights, mobilenet_v3_large, resnet18

from seglab.cli.commands import main
from seglab.engine.config import TrainConfig
from seglab.engine.run_dir import RunDirectory
from seglab.engine.run_folder import looks_like_run
from seglab.errors import ConfigError
from seglab.models import (
    build_model,
    cached_imagenet_weights,
    fetch_imagenet_weights,
    imagenet_models,
    imagenet_weights_note,
)
from seglab.models.pretrained import backbone_state, checkpoint_size
from seglab.models.registry import MODELS, ModelEntry

MOBILENET_FILE = "mobilenet_v3_large-8738ca79.pth"  # MobileNet_V3_Large_Weights.IMAGENET1K_V1
RESNET18_FILE = "resnet18-f37072fd.pth"
TINY_SHAPES = ["--shapes", "train_size=4", "--shapes", "val_size=2", "--shapes", "image_size=64"]
TINY_RUN = ["--data", "shapes", *TINY_SHAPES, "--epochs", "1", "--batch-size", "2", "--crop-size", "0"]
TINY_RUN += ["--preview-images", "0", "--device", "cpu", "--threads", "1", "--quiet"]


def fake_state_dict(classifier: nn.Module) -> dict[str, torch.Tensor]:
    """``classifier.state_dict()``'s keys and shapes; tensor i holds the value i everywhere (a stride-0 view)."""
    return {
        key: torch.tensor(index, dtype=value.dtype).expand(value.shape)
        for index, (key, value) in enumerate(classifier.state_dict().items())
    }


def save_fake(path: Path, classifier: nn.Module) -> dict[str, torch.Tensor]:
    state = fake_state_dict(classifier)
    torch.save(state, path)
    assert path.stat().st_size < 200_000  # the fake file stays small
    return state


def assert_encoder_holds(model, state: dict[str, torch.Tensor]) -> None:
    """Every tensor of ``model``'s encoder equals the ImageNet checkpoint's (mapped like the loader maps it)."""
    expected = backbone_state(state, model.backbone_weights)
    loaded = model.encoder_module().state_dict()
    assert set(loaded) == set(expected)
    for key, value in loaded.items():
        assert torch.equal(value, expected[key].to(value.dtype)), key


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# --- which models have ImageNet weights -------------------------------------------------------------


def test_models_with_torchvision_encoders_have_imagenet_weights():
    own_encoders = ("tiny_unet", "unet", "res_unet")  # seglab's own encoders start from random weights
    assert set(imagenet_models()) == {name for name in MODELS if not name.startswith(own_encoders)}
    assert MODELS["lraspp_mobilenet_v3_large"].backbone_weights.weights is MobileNet_V3_Large_Weights
    assert MODELS["deeplabv3plus_resnet18"].backbone_weights.weights is ResNet18_Weights
    assert MODELS["tiny_unet"].backbone_weights is None and MODELS["res_unet"].backbone_weights is None


def test_a_new_model_gets_imagenet_weights_by_declaring_its_backbone_weights():
    from seglab.models.torchvision_models import LRASPP

    class Declared(LRASPP):  # any class whose constructor sets backbone_weights
        pass

    entry = ModelEntry(Declared, "a model registered later")
    assert entry.has_torchvision_backbone and entry.backbone_weights.weights is MobileNet_V3_Large_Weights


def test_imagenet_for_a_model_without_weights_names_the_models_that_have_them():
    with pytest.raises(ConfigError) as error:
        TrainConfig(model="tiny_unet", pretrained="imagenet")
    message = str(error.value)
    assert "'tiny_unet' has no ImageNet weights" in message and "--pretrained none" in message
    assert "deeplabv3_resnet18" in message and "lraspp_mobilenet_v3_large" in message
    with pytest.raises(ConfigError, match="pretrained must be one of none, imagenet"):
        TrainConfig(pretrained="yes")


def test_config_round_trips_and_old_configs_load():
    config = TrainConfig(model="deeplabv3_resnet18", pretrained="imagenet")
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    old = config.to_dict()
    del old["pretrained"]  # a config.json written before the option existed
    assert TrainConfig.from_dict(old).pretrained == "none"
    assert TrainConfig().pretrained == "none" and not TrainConfig().starts_from_imagenet
    assert config.model_build_options() == {"pretrained_backbone": True}
    # The older spelling, a model option, means the same.
    legacy = TrainConfig(model="deeplabv3_resnet18", model_options={"pretrained_backbone": True})
    assert legacy.starts_from_imagenet


# --- the cache: used as it is, no network -------------------------------------------------------------


def test_cached_file_is_loaded_into_the_encoder_without_network(hub_cache, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("a cached file must not be downloaded again")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    assert cached_imagenet_weights("lraspp_mobilenet_v3_large") is None
    state = save_fake(hub_cache / MOBILENET_FILE, mobilenet_v3_large(weights=None))
    assert fetch_imagenet_weights("lraspp_mobilenet_v3_large") == hub_cache / MOBILENET_FILE
    assert cached_imagenet_weights("deeplabv3plus_mobilenet_v3_large") == hub_cache / MOBILENET_FILE
    model = build_model("lraspp_mobilenet_v3_large", 3, pretrained_backbone=True)
    assert_encoder_holds(model, state)
    assert MOBILENET_FILE in model.weights_source
    assert imagenet_weights_note("lraspp_mobilenet_v3_large").startswith("Already cached")


def test_resnet_checkpoint_loads_into_deeplabv3plus(hub_cache):
    state = save_fake(hub_cache / RESNET18_FILE, resnet18(weights=None))
    fetch_imagenet_weights("deeplabv3plus_resnet18")  # cached: returns at once
    assert_encoder_holds(build_model("deeplabv3plus_resnet18", 3, pretrained_backbone=True, aux=False), state)


# --- offline -------------------------------------------------------------------------------------------


def test_offline_error_names_file_size_url_and_folder_and_leaves_nothing(hub_cache):
    with pytest.raises(ConfigError) as error:
        fetch_imagenet_weights("deeplabv3_resnet18")
    message = str(error.value)
    for needle in (
        RESNET18_FILE,
        "44.7 MB",
        ResNet18_Weights.IMAGENET1K_V1.url,
        str(hub_cache),
        "TORCH_HOME",
        "--pretrained none",
        "offline",
    ):
        assert needle in message, needle
    assert files_in(hub_cache) == []  # torch hub's temporary .partial file was removed


def test_size_unknown_when_torchvision_does_not_say():
    assert checkpoint_size(SimpleNamespace(meta={})) == "size unknown"
    assert checkpoint_size(MobileNet_V3_Large_Weights.IMAGENET1K_V1) == "21.1 MB"


class Headers(dict):
    """Response headers as ``urlopen(...).info()`` gives them."""

    def get_all(self, name: str) -> list[str] | None:
        return [self[name]] if name in self else None


class Response(io.BytesIO):
    """A ``urlopen`` response serving ``data`` in small chunks, the connection breaking after ``fail_after`` bytes."""

    def __init__(self, data: bytes, fail_after: int | None = None):
        super().__init__(data)
        self.fail_after = fail_after
        self.served = 0  # bytes handed out

    def info(self) -> Headers:
        return Headers({"Content-Length": str(len(self.getvalue()))})

    def read(self, size: int | None = -1) -> bytes:
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        chunk = super().read(4096)
        self.served += len(chunk)
        return chunk


@pytest.mark.parametrize(
    ("fail_after", "said"),
    [(8192, "is this machine offline"), (None, "invalid hash value")],
    ids=["cut-mid-download", "wrong-checksum"],
)
def test_a_broken_download_leaves_no_file_that_could_load_later(hub_cache, monkeypatch, fail_after, said):
    """Through torch hub's real download: a cut connection or bytes failing the SHA-256 check keep nothing."""
    buffer = io.BytesIO()
    torch.save(resnet18(weights=None).state_dict(), buffer)  # a real file whose hash is not resnet18-f37072fd's
    served: list[Response] = []

    def serve(request) -> Response:
        served.append(Response(buffer.getvalue(), fail_after))
        return served[-1]

    monkeypatch.setattr(torch.hub, "urlopen", serve)
    with pytest.raises(ConfigError, match=said):
        fetch_imagenet_weights("deeplabv3_resnet18")
    assert served[0].served >= 8192  # the download did start
    assert files_in(hub_cache) == []  # neither the target nor torch hub's .partial file
    with pytest.raises(ConfigError, match="never downloads"):  # the next build still finds no file
        build_model("deeplabv3_resnet18", 3, pretrained_backbone=True)


# --- online (a fake download) -----------------------------------------------------------------------------


def fake_download(saved: dict, calls: list):
    def download(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        calls.append({"url": url, "dst": dst, "hash_prefix": hash_prefix, "progress": progress})
        torch.save(saved["state"], dst)

    return download


def test_missing_file_is_fetched_once_into_the_cache_with_progress(hub_cache, monkeypatch):
    saved = {"state": fake_state_dict(mobilenet_v3_large(weights=None))}
    calls: list[dict] = []
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download(saved, calls))
    messages: list[str] = []
    path = fetch_imagenet_weights("deeplabv3_mobilenet_v3_large", report=messages.append, progress_bar=True)
    assert path == hub_cache / MOBILENET_FILE and path.is_file()
    assert calls == [
        {
            "url": MobileNet_V3_Large_Weights.IMAGENET1K_V1.url,
            "dst": str(path),
            "hash_prefix": "8738ca79",  # torchvision's checksum check is on
            "progress": True,
        }
    ]
    assert len(messages) == 2
    assert MOBILENET_FILE in messages[0] and "21.1 MB" in messages[0] and str(hub_cache) in messages[0]
    assert messages[1].startswith("Downloaded")
    assert_encoder_holds(build_model("deeplabv3_mobilenet_v3_large", 3, pretrained_backbone=True), saved["state"])
    fetch_imagenet_weights("deeplabv3_mobilenet_v3_large", report=messages.append)  # now cached: no new download
    assert len(calls) == 1 and len(messages) == 2


# --- seglab train --pretrained -------------------------------------------------------------------------------


def test_cli_trains_from_the_cached_imagenet_encoder(hub_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(tmp_path / "cache"))
    save_fake(hub_cache / MOBILENET_FILE, mobilenet_v3_large(weights=None))
    out = tmp_path / "run"
    code = main(
        ["train", *TINY_RUN, "--model", "lraspp_mobilenet_v3_large", "--pretrained", "imagenet", "--out", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    run = RunDirectory(out)
    assert json.loads(run.config_path.read_text())["pretrained"] == "imagenet"
    start = next(event for event in run.read_events() if event["type"] == "start")
    assert start["weights"] == f"ImageNet backbone from {hub_cache / MOBILENET_FILE}"


def test_cli_offline_or_without_weights_is_one_clear_error(hub_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(tmp_path / "cache"))
    pretrained_run = ["train", *TINY_RUN, "--model", "lraspp_mobilenet_v3_large", "--pretrained", "imagenet"]
    code = main([*pretrained_run, "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert code == 2 and "seglab train: error: cannot download the ImageNet weights" in err
    assert MOBILENET_FILE in err and "21.1 MB" in err and str(hub_cache) in err and "--pretrained none" in err
    assert files_in(hub_cache) == []
    assert not looks_like_run(tmp_path / "a")  # the run never started: nothing in --out blocks the next try

    save_fake(hub_cache / MOBILENET_FILE, mobilenet_v3_large(weights=None))  # copied in by hand, as the error says
    assert main([*pretrained_run, "--out", str(tmp_path / "a")]) == 0, capsys.readouterr().err

    code = main(
        ["train", *TINY_RUN, "--model", "tiny_unet_small", "--pretrained", "imagenet", "--out", str(tmp_path / "b")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "'tiny_unet_small' has no ImageNet weights" in err
    assert not (tmp_path / "b").exists()  # refused before any work


def test_cli_help_lists_the_flag(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--pretrained PRETRAINED" in capsys.readouterr().out
