"""Tests for seglab/engine/config.py: TrainConfig defaults, JSON round trip, validation and help texts."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec
from seglab.engine.config import TrainConfig
from seglab.errors import ConfigError, SeglabError


def test_defaults_validate_and_are_the_quick_shapes_run():
    config = TrainConfig()
    config.validate()
    assert config.data.kind == "shapes" and config.data.split == "train"
    assert config.val_split == "val"
    assert config.model == "tiny_unet" and config.loss == "ce+dice"


def test_round_trip_keeps_nested_data_spec_and_shapes_config():
    shapes = ShapesConfig(
        train_size=16, val_size=8, image_size=64, class_frequencies=(1, 2, 0, 0, 0, 1), difficulty=0.2
    )
    config = TrainConfig(
        data=DataSpec(kind="shapes", shapes=shapes),
        model="unet",
        model_options={"base_width": 8, "aux": True},
        loss="ce+0.5*dice",
        time_budget_s=12.5,
        grad_clip=1.0,
        epochs=3,
    )
    as_json = json.dumps(config.to_dict())  # config.json must be plain JSON
    rebuilt = TrainConfig.from_dict(json.loads(as_json))
    assert rebuilt == config
    assert isinstance(rebuilt.data, DataSpec) and isinstance(rebuilt.data.shapes, ShapesConfig)
    assert rebuilt.data.shapes.class_frequencies == (1.0, 2.0, 0.0, 0.0, 0.0, 1.0)
    assert rebuilt.model_options == {"base_width": 8, "aux": True}


def test_round_trip_of_a_folder_data_spec():
    spec = DataSpec(kind="camvid", split="train", root="/data/camvid", label_map="labels.json")
    config = TrainConfig(data=spec)
    data = config.to_dict()
    assert "shapes" not in data["data"]  # only Shapes data carries generator options
    assert TrainConfig.from_dict(data).data == spec


def test_data_given_as_a_dict_becomes_a_data_spec():
    config = TrainConfig(data={"kind": "shapes", "split": "train", "shapes": {"image_size": 32}})
    assert isinstance(config.data, DataSpec) and config.data.shapes.image_size == 32


def test_partial_dict_takes_defaults_for_the_rest():
    config = TrainConfig.from_dict({"epochs": 2, "lr": 0.01})
    assert config.epochs == 2 and config.lr == 0.01 and config.batch_size == TrainConfig().batch_size


def test_unknown_keys_raise_config_error_naming_them():
    with pytest.raises(ConfigError, match="learning_rate"):
        TrainConfig.from_dict({"learning_rate": 0.1, "epochs": 2})


def test_unknown_nested_data_key_raises_a_seglab_error():
    with pytest.raises(SeglabError, match="bogus"):
        TrainConfig.from_dict({"data": {"kind": "shapes", "bogus": 1}})


@pytest.mark.parametrize(
    "options, named",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"epochs": 0}, "epochs"),
        ({"lr": -1.0}, "lr"),
        ({"scale_min": 2.0, "scale_max": 1.0}, "scale_min"),
        ({"hflip": 1.5}, "flip"),
        ({"class_weights": "sqrt"}, "class_weights"),
        ({"time_budget_s": 0.0}, "time_budget_s"),
        ({"grad_clip": -1.0}, "grad_clip"),
        ({"top_k_percent_pixels": 0.0}, "top_k_percent_pixels"),
    ],
)
def test_invalid_values_raise_config_error_naming_the_option(options, named):
    with pytest.raises(ConfigError, match=named):  # on construction: nothing invalid gets as far as training
        TrainConfig.from_dict(options)
    config = TrainConfig()
    for name, value in options.items():
        setattr(config, name, value)
    with pytest.raises(ConfigError, match=named):  # and again after fields were set one by one (the CLI's way)
        config.validate()


@pytest.mark.parametrize(
    "options, named",
    [
        ({"epochs": "ten"}, "epochs"),
        ({"amp": 1}, "amp"),
        ({"lr": True}, "lr"),
        ({"time_budget_s": "1m"}, "time_budget_s"),
    ],
)
def test_wrong_types_from_a_hand_edited_file_raise_config_error(options, named):
    with pytest.raises(ConfigError, match=named):
        TrainConfig.from_dict(options).validate()


def test_load_reads_a_run_config_and_explains_bad_files(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(TrainConfig(epochs=7).to_dict()))
    assert TrainConfig.load(path).epochs == 7
    with pytest.raises(ConfigError, match="does not exist"):
        TrainConfig.load(tmp_path / "missing.json")
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.load(path)


def test_option_help_has_a_text_for_every_field():
    help_texts = TrainConfig.option_help()
    for item in fields(TrainConfig):
        assert help_texts.get(item.name, "").strip(), f"no help text for {item.name}"
    assert "seconds" in help_texts["time_budget_s"]


def test_option_help_comes_from_field_metadata_not_source_comments(monkeypatch):
    # Help must survive running without sources (zipapp, .pyc only): nothing may parse the source.
    import inspect

    def no_source(*_args, **_kwargs):
        raise OSError("no source available")

    monkeypatch.setattr(inspect, "getsource", no_source)
    help_texts = TrainConfig.option_help()
    for item in fields(TrainConfig):
        assert help_texts[item.name] == item.metadata["help"]
    assert "random crop side" in help_texts["crop_size"]
