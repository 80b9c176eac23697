"""AppTests: every page that starts from a model works on registered sources (issue 12).

One tiny Shapes run is trained, exported to ONNX and TorchScript with ``seglab.engine.export``, and its
predictions are written as a folder of label PNGs and a folder of .npy probabilities; all four are
registered in the sources catalog. Each page is then opened with each source picked in the sidebar.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from pages import ui
from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec, build_dataset
from seglab.sources import write_prediction_png
from seglab.sources.catalog import allowed_roots, list_sources
from seglab.sources.registration import SourceForm, register_source, validate_form
from tests.helpers.apptest import open_tab
from tests.helpers.paths import ROOT

SHAPES = DataSpec(shapes=ShapesConfig(train_size=16, val_size=8, test_size=8, image_size=64))
SOURCES = ("preds", "probs", "onnx", "torchscript")


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> dict:
    """runs/ with one trained checkpoint and four registered sources; models/ holds the sources' files."""
    from seglab.engine.config import TrainConfig
    from seglab.engine.evaluation import evaluate_checkpoint
    from seglab.engine.export import export_checkpoint
    from seglab.engine.trainer import train
    from seglab.sources.checkpoint_source import CheckpointSource

    root = tmp_path_factory.mktemp("sources_app")
    runs, models = root / "runs", root / "models"
    train(TrainConfig(model="tiny_unet_small", epochs=1, crop_size=64, data=SHAPES), out_dir=runs / "a")
    checkpoint = runs / "a" / "best.pt"
    (models / "preds").mkdir(parents=True)
    (models / "probs").mkdir(parents=True)
    for split in ("val", "test"):  # predictions folders cover both splits (Leaderboard scores test)
        data = build_dataset(SHAPES.with_split(split))
        for result in evaluate_checkpoint(checkpoint, data, use_cache=False).results:  # exactly its predictions
            write_prediction_png(result.labels, models / "preds" / f"{result.sample_id}.png")
        with CheckpointSource(checkpoint) as source:
            for index, sample_id in enumerate(data.ids):
                prediction = source.predict(sample_id, data.load(index)[0])
                np.save(models / "probs" / f"{sample_id}.npy", prediction.probabilities.astype(np.float16))
    data = build_dataset(SHAPES.with_split("val"))
    export_checkpoint(checkpoint, "onnx", models / "demo.onnx", dataset=data, parity_images=1)
    export_checkpoint(checkpoint, "torchscript", models / "demo.ts", dataset=data, parity_images=1)
    roots = allowed_roots(runs, models)
    paths = {
        "preds": models / "preds",
        "probs": models / "probs",
        "onnx": models / "demo.onnx",
        "torchscript": models / "demo.ts",
    }
    entries = {}
    names = ", ".join(data.class_names)
    forms = [
        SourceForm(name=name, kind=name if name in ("onnx", "torchscript") else "predictions", path=str(path))
        for name, path in paths.items()
    ]
    # the same predictions with "star" unmapped: its pixels count as "other" (an extra confusion column)
    forms.append(
        SourceForm(
            name="mapped", kind="predictions", path=str(paths["preds"]), class_names=names, mapping={"star": "other"}
        )
    )
    for form in forms:
        description, problems = validate_form(form, roots)
        assert not problems, problems
        entries[form.name] = str(register_source(runs, description, roots).file)
    return {"runs": runs, "models": models, "checkpoint": str(checkpoint), "entries": entries}


@pytest.fixture
def env(lab, monkeypatch):
    monkeypatch.setenv("SEGLAB_RUNS_DIR", str(lab["runs"]))
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(lab["runs"].parent / "cache"))
    monkeypatch.setenv("SEGLAB_DATA_ROOTS", str(lab["models"]))
    return lab


def open_page(page: str, choice: str | None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state[ui.SPEC_KEY] = SHAPES.to_dict()
    if choice is not None:
        at.session_state[ui.CHECKPOINT_KEY] = choice
    at.run()  # Home, the default page
    if page != "pages/home.py":
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def text_of(at: AppTest) -> str:
    return "\n".join(str(e.value) for e in [*at.markdown, *at.caption, *at.info, *at.warning, *at.error, *at.success])


def test_the_sidebar_lists_checkpoints_and_registered_sources_in_one_picker(env):
    at = open_page("pages/home.py", None)
    picker = next(box for box in at.sidebar.selectbox if box.label == "Model / predictions")
    assert picker.options[0].startswith("a")  # the checkpoint: it fits the data's classes, and is newest
    assert {f"{name} · {kind}" for name, kind in [("preds", "predictions"), ("onnx", "onnx")]} <= set(picker.options)
    assert at.session_state[ui.CHECKPOINT_KEY] == env["checkpoint"]
    # (AppTest reruns after a sidebar click skip app.py's sidebar, so the choice is set as the picker sets it)
    at = open_page("pages/home.py", env["entries"]["onnx"])
    picker = next(box for box in at.sidebar.selectbox if box.label == "Model / predictions")
    assert picker.value == "onnx · onnx"


def test_a_shared_link_names_a_registered_source(env):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state[ui.SPEC_KEY] = SHAPES.to_dict()
    at.query_params["source"] = "torchscript"
    at.run()
    assert at.session_state[ui.CHECKPOINT_KEY] == env["entries"]["torchscript"]


@pytest.mark.parametrize("name", [*SOURCES, "mapped"])
def test_inspect_ranks_the_images_of_any_source(env, name):
    at = open_page("pages/failures.py", env["entries"][name])
    table = at.dataframe[0].value
    assert len(table) == 8 and table["mIoU"].is_monotonic_increasing
    text = text_of(at)
    if name in ("preds", "mapped"):
        assert "No confidence map: this source gives labels only" in text
        assert "A folder of predictions only knows the images it has files for" in text_of(
            open_tab(at, "inspect_tab", "Your own image")
        )
    else:
        assert "Mean confidence" in [metric.label for metric in at.metric]
        assert "No confidence map" not in text
    if name == "mapped":
        assert "count as 'other'" in text and "star" in text  # the mapping is reported, never silent


def test_a_predictions_folder_of_a_checkpoint_scores_exactly_like_it_on_inspect(env):
    def split_miou(choice: str) -> str:
        caption = next(c.value for c in open_page("pages/failures.py", choice).caption if "split mIoU" in c.value)
        return caption.split("split mIoU **")[1].split("**")[0]

    assert split_miou(env["entries"]["preds"]) == split_miou(env["checkpoint"])


@pytest.mark.parametrize(("a", "b"), [("onnx", "preds"), ("torchscript", "checkpoint"), ("mapped", "preds")])
def test_compare_compares_any_two_models(env, a, b):
    at = open_page("pages/compare.py", env["entries"][a])
    box = at.multiselect[0]
    labels = {label.split(" · ")[0]: label for label in box.options}
    chosen = [labels[a], labels["a" if b == "checkpoint" else b]]
    box.set_value(chosen).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table.columns[:2]) == [label.split(" · ")[0] for label in chosen]
    assert "Not trained by seglab, so no curves" in text_of(open_tab(at, "compare_tab", "Training curves"))
    assert "What B fixed and what it broke" in [
        header.value for header in open_tab(at, "compare_tab", "A vs B").subheader
    ]


@pytest.mark.slow
def test_the_leaderboard_ranks_sources_beside_the_checkpoint(env):
    at = open_page("pages/leaderboard.py", None)
    button = next(button for button in at.button if button.label.startswith("Score "))
    assert button.label == "Score 6 entries"
    button.click().run()
    assert not at.exception, at.exception
    frame = at.dataframe[0].value
    assert set(frame["run"]) == {"a", "preds", "probs", "onnx", "torchscript", "mapped"}
    scores = dict(zip(frame["run"], frame["miou"], strict=True))
    assert scores["preds"] == scores["a"]  # the checkpoint's own predictions: exactly its score
    assert abs(scores["probs"] - scores["a"]) < 0.01  # float16 probabilities: argmax ties may flip
    assert scores["mapped"] < scores["preds"]  # star pixels are misses now
    assert abs(scores["onnx"] - scores["a"]) < 0.01 and abs(scores["torchscript"] - scores["a"]) < 0.01


@pytest.mark.parametrize("name", SOURCES)
def test_label_quality_needs_probabilities(env, name):
    at = open_page("pages/label_quality.py", env["entries"][name])
    if name == "preds":
        assert "Label quality needs per-class probabilities, and this source gives labels only" in text_of(at)
        assert not at.dataframe
    else:
        assert len(at.dataframe[0].value) == 8


@pytest.mark.parametrize("name", [*SOURCES, "mapped"])
def test_metric_definitions_score_any_source(env, name):
    at = open_page("pages/metrics_explorer.py", env["entries"][name])
    assert "This app's mIoU" in [metric.label for metric in at.metric]


@pytest.mark.parametrize("name", SOURCES)
def test_the_loss_inspector_needs_logits_or_probabilities(env, name):
    at = open_page("pages/loss_inspector.py", env["entries"][name])
    if name == "preds":
        assert "The loss inspector needs per-class probabilities" in text_of(at)
    else:
        assert "Kept by mining" in [metric.label for metric in at.metric]


def test_home_registers_a_folder_and_names_every_problem(env, tmp_path):
    at = open_page("pages/home.py", None)

    def fill(name: str, path: str) -> None:
        next(r for r in at.radio if r.label == "Kind").set_value("predictions")
        next(t for t in at.text_input if t.label == "Name").input(name)
        next(t for t in at.text_input if t.label == "Path").input(path)
        next(b for b in at.button if b.label == "Check and register").click()
        at.run()
        assert not at.exception, at.exception

    fill("preds", "/etc")
    errors = "\n".join(error.value for error in at.error)
    assert "already registered" in errors and "outside the folders sources may come from" in errors
    fill("copy of preds", str(env["models"] / "preds"))
    assert any("Registered **copy of preds**" in success.value for success in at.success)
    assert any("every one of the 8 samples has a prediction file" in caption.value for caption in at.caption)
    entries = {entry.name for entry in list_sources(env["runs"], allowed_roots(env["runs"], env["models"]))}
    assert "copy of preds" in entries
    at.run()
    assert any("copy of preds" in str(m.value) for m in at.markdown)
    next(b for b in at.button if b.key == "remove_copy-of-preds.seglab.json").click().run()
    assert not (env["runs"] / "sources" / "copy-of-preds.seglab.json").exists()


def test_the_default_model_is_the_one_whose_classes_fit_the_data(env):
    from pages import loaders

    roots = allowed_roots(env["runs"], env["models"])
    form = SourceForm(name="city", kind="predictions", path=str(env["models"] / "preds"), class_names="road, sky")
    description, problems = validate_form(form, roots)
    assert not problems
    city = str(register_source(env["runs"], description, roots).file)
    try:
        options = {"city · predictions": city, "a": env["checkpoint"], "onnx · onnx": env["entries"]["onnx"]}
        assert loaders.best_fitting(options, SHAPES.with_split("val")) == "a"  # city's classes fit nothing here
        options = {"city · predictions": city, "onnx · onnx": env["entries"]["onnx"], "a": env["checkpoint"]}
        assert loaders.best_fitting(options, SHAPES.with_split("val")) == "onnx · onnx"  # equal fit: list order
        broken = DataSpec(kind="folder", split="custom", images="/nonexistent", masks="/nonexistent")
        assert loaders.best_fitting(options, broken) == "city · predictions"  # no data: the first, pages say why
    finally:
        Path(city).unlink()


def test_home_prefills_the_class_mapping_by_name_and_registers_it(env):
    from seglab.sources.catalog import read_entry

    at = open_page("pages/home.py", None)
    next(r for r in at.radio if r.label == "Kind").set_value("predictions")
    names = ["Background", "disc", "square", "triangle", "star", "ring", "stripe"]  # "circle" is called "disc"
    next(t for t in at.text_input if t.label == "Name").input("renamed")
    next(t for t in at.text_input if t.label == "Path").input(str(env["models"] / "preds"))
    next(t for t in at.text_area if t.label.startswith("Class names")).input(", ".join(names)).run()
    assert not at.exception, at.exception
    assert any("pre-filled by name" in caption.value for caption in at.caption)
    next(b for b in at.button if b.label == "Check and register").click().run()
    assert any("Registered **renamed**" in success.value for success in at.success), [e.value for e in at.error]
    entry = read_entry(env["runs"] / "sources" / "renamed.seglab.json", allowed_roots(env["runs"], env["models"]))
    try:
        assert entry.description.class_names == tuple(names)
        assert entry.description.mapping["disc"] is None  # no name matches: other, until the user picks a class
        assert entry.description.mapping["Background"] == "background"
    finally:
        entry.file.unlink()


def test_an_uploaded_image_is_predicted_by_a_model_file_in_the_datas_classes_but_not_by_a_folder(env):
    import io

    from PIL import Image

    from pages import loaders
    from seglab.errors import SourceError

    spec = SHAPES.with_split("val")
    image = build_dataset(spec).load(0)[0][:40, :50]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    shown, prediction, label_map = loaders.upload_prediction(env["entries"]["onnx"], spec, buffer.getvalue(), 10**6)
    assert shown.shape == (40, 50, 3) and prediction.labels.shape == (40, 50)
    assert prediction.confidence.shape == (40, 50) and label_map.names == build_dataset(spec).class_names
    with pytest.raises(SourceError, match="cannot predict a new image"):
        loaders.upload_prediction(env["entries"]["preds"], spec, buffer.getvalue(), 10**6)


def test_a_chosen_model_that_does_not_fit_the_data_gives_way_to_one_that_does(env):
    roots = allowed_roots(env["runs"], env["models"])
    form = SourceForm(name="city", kind="predictions", path=str(env["models"] / "preds"), class_names="road, sky")
    description, problems = validate_form(form, roots)
    assert not problems
    city = register_source(env["runs"], description, roots).file
    try:
        at = open_page("pages/home.py", str(city))
        assert at.session_state[ui.CHECKPOINT_KEY] == env["checkpoint"]
        assert any("does not fit this data's classes: switched to" in caption.value for caption in at.sidebar.caption)
        picker = next(box for box in at.sidebar.selectbox if box.label == "Model / predictions")
        marked = [option for option in picker.options if option.endswith("(other classes: cannot run on this data)")]
        assert marked == [
            "city · predictions (other classes: cannot run on this data)"
        ]  # the misfit is marked, only it
        at = open_page("pages/home.py", env["entries"]["onnx"])  # a choice that fits stays
        assert at.session_state[ui.CHECKPOINT_KEY] == env["entries"]["onnx"]
    finally:
        city.unlink()


@pytest.mark.parametrize("name", [*SOURCES, "mapped"])
def test_diagnostics_diagnose_any_source(env, name):
    at = open_page("pages/diagnostics.py", env["entries"][name])
    assert not at.error, [error.value for error in at.error]
    assert at.dataframe, "no diagnostics table"
