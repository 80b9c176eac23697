"""Tests for seglab/sources/catalog.py: registering sources, the allowed roots, broken entries, model choices."""

from __future__ import annotations

import json

import pytest

from seglab.data.label_map import camvid_label_map, shapes_label_map
from seglab.data.shapes import ShapesConfig, ShapesDataset
from seglab.errors import SeglabError, SourceError
from seglab.sources import write_prediction_png
from seglab.sources.catalog import allowed_roots, list_sources, within_roots
from seglab.sources.choices import choice_description, fit_score, is_registered, mapping_rows, needs_mapping
from seglab.sources.registration import SourceForm, register_source, remove_source, validate_form


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """runs/ and data/ roots, a predictions folder in data/, and a folder outside both."""
    monkeypatch.delenv("SEGLAB_DATA_ROOTS", raising=False)
    runs, data, outside = tmp_path / "runs", tmp_path / "data", tmp_path / "outside"
    dataset = ShapesDataset("val", ShapesConfig(train_size=1, val_size=3, image_size=32, seed=2))
    for folder in (data / "preds", outside / "preds"):
        folder.mkdir(parents=True)
        for index, sample_id in enumerate(dataset.ids):
            write_prediction_png(dataset.load(index)[1], folder / f"{sample_id}.png")
    runs.mkdir()
    return runs, data, outside, allowed_roots(runs, data)


def register(runs, roots, **fields):
    description, problems = validate_form(SourceForm(**fields), roots)
    assert not problems, problems
    return register_source(runs, description, roots)


def test_a_registered_predictions_folder_is_listed_and_opens_as_a_choice(layout):
    runs, data, _, roots = layout
    entry = register(runs, roots, name="GT copy", kind="predictions", path=str(data / "preds"))
    assert entry.ok and entry.kind == "predictions" and entry.name == "GT copy"
    assert entry.file == runs / "sources" / "gt-copy.seglab.json"
    assert [e.name for e in list_sources(runs, roots)] == ["GT copy"]
    assert entry.where == str((data / "preds").resolve())
    assert is_registered(entry.file) and not is_registered(runs / "a" / "best.pt")
    assert choice_description(str(entry.file), roots).path == (data / "preds").resolve()
    # the entry stores the path relative to itself: it is a plain description file
    assert json.loads(entry.file.read_text())["path"].startswith("../")
    remove_source(runs, entry.file)
    assert list_sources(runs, roots) == []


def test_relative_paths_are_resolved_against_the_allowed_roots(layout):
    runs, _, _, roots = layout
    description, problems = validate_form(SourceForm(name="p", kind="predictions", path="preds"), roots)
    assert not problems and description.path.name == "preds"


def test_paths_outside_the_allowed_roots_are_refused_even_through_a_symlink(layout):
    runs, data, outside, roots = layout
    _, problems = validate_form(SourceForm(name="p", kind="predictions", path=str(outside / "preds")), roots)
    assert any("outside the folders sources may come from" in problem for problem in problems)
    (data / "link").symlink_to(outside / "preds")
    _, problems = validate_form(SourceForm(name="p", kind="predictions", path=str(data / "link")), roots)
    assert any("outside" in problem for problem in problems)
    _, problems = validate_form(SourceForm(name="p", kind="predictions", path="../outside/preds"), roots)
    assert any("outside" in problem for problem in problems)
    with pytest.raises(SourceError, match="outside"):
        within_roots("/etc/passwd", roots)


def test_an_entry_edited_to_point_outside_the_roots_is_listed_as_broken_and_cannot_be_chosen(layout):
    runs, data, outside, roots = layout
    entry = register(runs, roots, name="p", kind="predictions", path=str(data / "preds"))
    content = json.loads(entry.file.read_text())
    content["path"] = str(outside / "preds")
    entry.file.write_text(json.dumps(content))
    (listed,) = list_sources(runs, roots)
    assert not listed.ok and "outside" in listed.problem
    with pytest.raises(SourceError, match="outside"):
        choice_description(str(entry.file), roots)


def test_broken_entries_are_listed_with_their_problem(layout):
    runs, _, _, roots = layout
    folder = runs / "sources"
    folder.mkdir()
    (folder / "junk.seglab.json").write_text("{not json")
    (folder / "big.seglab.json").write_text(" " * 70_000)
    (folder / "pickle.seglab.json").write_bytes(b"\x80\x04\x95")
    entries = {entry.name: entry for entry in list_sources(runs, roots)}
    assert set(entries) == {"junk", "big", "pickle"}
    assert not any(entry.ok for entry in entries.values())
    assert "larger than" in entries["big"].problem
    assert entries["junk"].where == "junk.seglab.json"  # no description: the catalog file names it


def test_the_form_names_every_problem_at_once(layout):
    runs, data, _, roots = layout
    register(runs, roots, name="taken", kind="predictions", path=str(data / "preds"))
    form = SourceForm(
        name="Taken",
        kind="onnx",
        path=str(data / "preds"),
        class_names="a, b, a",
        input_size="12x",
        output_kind="x",
        mapping={"zzz": "circle"},
    )
    existing = [entry.name for entry in list_sources(runs, roots)]
    description, problems = validate_form(form, roots, existing)
    text = "\n".join(problems)
    assert description is None
    assert "already registered" in text
    assert "looks like a predictions source, not onnx" in text
    assert "input size" in text and "output_kind" in text and "repeat a name" in text
    assert "'zzz' is not one of class_names" in text
    _, problems = validate_form(SourceForm(name="", kind="bogus", path=""), roots)
    assert len(problems) == 3


def test_register_refuses_a_taken_name_and_a_path_outside(layout):
    runs, data, outside, roots = layout
    entry = register(runs, roots, name="p", kind="predictions", path=str(data / "preds"))
    with pytest.raises(SourceError, match="already registered"):
        register_source(runs, entry.description, roots, name="P")
    with pytest.raises(SourceError, match="outside"):
        from dataclasses import replace

        register_source(runs, replace(entry.description, path=outside / "preds"), roots, name="q")
    with pytest.raises(SourceError, match="not an entry"):
        remove_source(runs, data / "preds" / "x.seglab.json")


def test_mapping_rows_match_names_case_insensitively_and_fit_scores():
    camvid = camvid_label_map()
    rows = mapping_rows(["road", "SideWalk", "traffic_light", "person"], camvid)
    assert rows["road"] == "Road" and rows["traffic_light"] == "other" and rows["person"] == "other"
    shapes = shapes_label_map()
    assert fit_score(None, None, shapes) == 2
    assert not needs_mapping(None, shapes) and not needs_mapping([name.upper() for name in shapes.names], shapes)
    assert needs_mapping(["road", "sky"], shapes) and needs_mapping(list(shapes.names)[:-1], shapes)
    assert fit_score(list(shapes.names), None, shapes) == 2
    assert fit_score(["road", "sky"], None, shapes) == 0
    assert fit_score(["road", "sky"], {"road": shapes.names[1]}, shapes) == 1
    assert fit_score(["road", "Sky"], None, camvid) == 1


def test_choice_version_follows_the_predictions_files(layout):
    import os

    from seglab.sources.choices import choice_version

    runs, data, _, roots = layout
    entry = register(runs, roots, name="p", kind="predictions", path=str(data / "preds"))
    before = choice_version(str(entry.file), roots)
    assert choice_version(str(entry.file), roots) == before
    first = sorted((data / "preds").iterdir())[0]
    os.utime(first, ns=(1, 1))
    assert choice_version(str(entry.file), roots) != before


def test_the_leaderboard_ranks_a_registered_folder_beside_checkpoints(layout, monkeypatch):
    from seglab.analysis.leaderboard import build_leaderboard, find_checkpoints
    from tests.helpers.checkpoints import write_tiny_checkpoint

    runs, data, _, roots = layout
    monkeypatch.setenv("SEGLAB_CACHE_DIR", str(runs.parent / "cache"))
    dataset = ShapesDataset("val", ShapesConfig(train_size=1, val_size=3, image_size=32, seed=2))
    write_tiny_checkpoint(runs / "loose.pt")
    register(runs, roots, name="ground truth", kind="predictions", path=str(data / "preds"))
    (runs / "sources" / "model.pt").write_bytes(b"not a checkpoint")  # the catalog folder is no run folder
    (runs / "sources" / "broken.seglab.json").write_text("{}")
    checkpoints = find_checkpoints(runs)
    assert [path.name for path in checkpoints] == ["loose.pt"]
    entries = list_sources(runs, roots)
    pending = build_leaderboard(checkpoints, dataset, cached_only=True, sources=entries)
    assert len(pending.pending) == 2 and not pending.rows
    board = build_leaderboard(checkpoints, dataset, sources=entries)
    assert [(row.run, row.file) for row in board.rows][0] == ("ground truth", "predictions")
    assert board.rows[0].miou == 1.0 and board.rows[1].file == "loose.pt"
    assert [skip.path.endswith("broken.seglab.json") for skip in board.skipped] == [True]
    again = build_leaderboard(checkpoints, dataset, cached_only=True, sources=list_sources(runs, roots))
    assert not again.pending and [row.run for row in again.rows] == [row.run for row in board.rows]


def test_label_quality_scores_a_probability_folder_and_refuses_labels_only(layout, tmp_path):
    import numpy as np

    from seglab.analysis.label_quality import score_dataset
    from seglab.sources.choices import open_choice

    runs, data, _, roots = layout
    dataset = ShapesDataset("val", ShapesConfig(train_size=1, val_size=3, image_size=32, seed=2))
    folder = data / "probs"
    folder.mkdir()
    for index, sample_id in enumerate(dataset.ids):
        mask = dataset.load(index)[1]
        onehot = np.eye(dataset.num_classes, dtype=np.float32)[np.where(mask == 255, 0, mask)].transpose(2, 0, 1)
        np.save(folder / f"{sample_id}.npy", (0.9 * onehot + 0.1 / dataset.num_classes).astype(np.float16))
    probs = register(runs, roots, name="probs", kind="predictions", path=str(folder))
    labels = register(runs, roots, name="labels", kind="predictions", path=str(data / "preds"))
    report = score_dataset(open_choice(probs.file, roots, dataset.label_map), dataset)
    assert len(report.images) == 3 and all(image.score > 0.5 for image in report.images)
    with pytest.raises(SeglabError, match="labels only"):
        score_dataset(open_choice(labels.file, roots, dataset.label_map), dataset)


@pytest.mark.slow  # checks the upload by running it in a worker subprocess that imports torch: ~12 s here
def test_an_uploaded_model_file_is_stored_checked_and_removed_again_when_refused(layout):
    from seglab.engine.export import export_checkpoint
    from seglab.sources.registration import register_checked
    from tests.helpers.checkpoints import write_tiny_checkpoint

    runs, data, _, roots = layout
    dataset = ShapesDataset("val", ShapesConfig(train_size=1, val_size=3, image_size=32, seed=2))
    files = runs / "sources" / "files"
    junk = SourceForm(name="junk", kind="torchscript", path="")
    entry, problems, _ = register_checked(runs, junk, roots, dataset, upload=b"PK\x03\x04 not a model")
    assert entry is None and problems and not list(files.glob("*"))
    entry, problems, _ = register_checked(runs, SourceForm(name="x", kind="huggingface", path=""), roots, upload=b"1")
    assert entry is None and "only ONNX and TorchScript files or a zip of predictions" in problems[0]
    checkpoint = write_tiny_checkpoint(data / "run" / "best.pt")
    model = export_checkpoint(checkpoint, "torchscript", data / "model.ts", dataset=dataset, parity_images=1).path
    form = SourceForm(name="Uploaded TS", kind="torchscript", path="ignored")
    entry, problems, facts = register_checked(runs, form, roots, dataset, upload=model.read_bytes())
    assert not problems and entry.ok and entry.description.path == files / "uploaded-ts.pt"
    assert any("predicted in" in fact for fact in facts)
    _, problems, _ = register_checked(runs, form, roots, dataset, upload=model.read_bytes())
    assert "exists already" in problems[0]


def test_an_uploaded_zip_of_predictions_is_extracted_checked_and_refused_zips_leave_nothing(layout):
    import io
    import zipfile

    from seglab.sources.registration import register_checked

    runs, data, _, roots = layout
    dataset = ShapesDataset("val", ShapesConfig(train_size=1, val_size=3, image_size=32, seed=2))

    def zipped(files: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, content in files.items():
                archive.writestr(name, content)
        return buffer.getvalue()

    pngs = {f"preds/{path.name}": path.read_bytes() for path in sorted((data / "preds").iterdir())}
    form = SourceForm(name="zipped", kind="predictions", path="")
    bad = [
        (b"not a zip", "zip"),
        (zipped({"../escape.png": b"x"}), ".."),
        (zipped({"readme.txt": b"x"}), "no prediction files"),
        (zipped({**pngs, "other/" + next(iter(pngs)).split("/")[1]: b"x"}), "two files named"),
        (zipped(dict(list(pngs.items())[:1])), "no prediction file"),  # 2 of 3 samples missing: the check refuses
    ]
    for upload, expected in bad:
        entry, problems, _ = register_checked(runs, form, roots, dataset, upload=upload)
        assert entry is None and expected in " ".join(problems), problems
        assert not (runs / "sources" / "files" / "zipped").exists()
    entry, problems, facts = register_checked(runs, form, roots, dataset, upload=zipped(pngs))
    assert not problems and entry.ok and entry.description.path == runs / "sources" / "files" / "zipped"
    assert "every one of the 3 samples has a prediction file" in facts


def test_a_predictions_folder_without_files_for_the_data_does_not_fit(layout):
    from seglab.sources.choices import description_fit

    runs, data, _, roots = layout
    entry = register(runs, roots, name="p", kind="predictions", path=str(data / "preds"))
    label_map = shapes_label_map()
    dataset = ShapesDataset("val", ShapesConfig(train_size=1, val_size=3, image_size=32, seed=2))
    assert description_fit(entry.description, label_map, dataset.ids) == 2
    assert description_fit(entry.description, label_map, ["0001TP_006690", "Seq05VD_f00000"]) == 0


def test_a_predictions_label_map_must_lie_inside_the_roots_and_is_recorded(layout):
    from seglab.data.label_map import shapes_label_map

    runs, data, outside, roots = layout
    shapes_label_map().save(data / "palette.json")
    shapes_label_map().save(outside / "palette.json")
    form = SourceForm(name="p", kind="predictions", path=str(data / "preds"), label_map=str(outside / "palette.json"))
    _, problems = validate_form(form, roots)
    assert any("the label map" in problem and "outside" in problem for problem in problems)
    form = SourceForm(name="p", kind="predictions", path=str(data / "preds"), label_map="palette.json", encoding="rgb")
    description, problems = validate_form(form, roots)
    assert not problems and description.label_map == data / "palette.json" and description.encoding == "rgb"


def test_the_sources_command_adds_lists_and_removes(layout, capsys, monkeypatch):
    from seglab.cli.commands import main

    runs, data, outside, _ = layout
    monkeypatch.setenv("SEGLAB_DATA_ROOTS", str(data))
    assert main(["sources", "add", "GT", str(data / "preds"), "--kind", "predictions", "--dir", str(runs)]) == 2
    assert "no prediction file" in capsys.readouterr().err  # default Shapes val ids: no file matches them
    assert main(["sources", "add", "far", str(outside / "preds"), "--kind", "predictions", "--dir", str(runs)]) == 2
    assert "outside the folders sources may come from" in capsys.readouterr().err
    from seglab.data.spec import DataSpec, build_dataset

    default = build_dataset(DataSpec().with_split("val"))  # what the command checks on without data flags
    (data / "gt").mkdir()
    for index, sample_id in enumerate(default.ids):
        write_prediction_png(default.load(index)[1], data / "gt" / f"{sample_id}.png")
    assert main(["sources", "add", "GT", str(data / "gt"), "--kind", "predictions", "--dir", str(runs)]) == 0
    assert "registered GT" in capsys.readouterr().out
    entry = list_sources(runs, allowed_roots(runs, data))[0]
    assert main(["sources", "list", "--dir", str(runs)]) == 0
    assert capsys.readouterr().out.startswith(f"GT\tpredictions\t{data / 'gt'}")
    assert main(["sources", "remove", "gt", "--dir", str(runs)]) == 0 and not entry.file.exists()
    assert main(["sources", "remove", "gt", "--dir", str(runs)]) == 2
