"""``seglab competition ...``: the teacher's whole day from the command line, and its errors (exit 2)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from seglab.cli.commands import main
from tests.helpers.competition import DEMO_CHECKPOINT, constant_masks, mask_zip

CREATE = [
    "competition",
    "create",
    "--name",
    "cup",
    "--data",
    "shapes",
    "--split",
    "test",
    "--shapes",
    "test_size=12",
    "--shapes",
    "image_size=64",
    "--quota",
    "3",
    "--quota-window",
    "30m",
]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def tokens_from(text: str) -> dict[str, str]:
    return {match.group(1): match.group(2) for match in re.finditer(r"^(\S.*?)\s{3,}(T\d+-\S+)$", text, re.MULTILINE)}


def test_every_action_has_help_with_an_example(capsys) -> None:
    for action in (
        "create",
        "teams",
        "submit",
        "worker",
        "status",
        "freeze",
        "reveal",
        "rescore",
        "disqualify",
        "export",
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["competition", action, "--help"])
        assert exit_info.value.code == 0
        assert "example:" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["competition", "--help"])
    assert "seglab competition create --name" in capsys.readouterr().out


@pytest.mark.slow
def test_a_competition_from_creation_to_export(capsys, tmp_path: Path) -> None:
    folder = str(tmp_path / "comp")
    code, out, err = run(
        capsys,
        *CREATE,
        "--dir",
        folder,
        "--team",
        "Alpha",
        "--team",
        "Beta",
        "--tokens-out",
        str(tmp_path / "tokens.csv"),
    )
    assert code == 0 and "12 hidden images (4 public, 8 private)" in err
    tokens = tokens_from(out)
    assert set(tokens) == {"Alpha", "Beta"}
    assert (tmp_path / "tokens.csv").stat().st_mode & 0o077 == 0  # readable by the teacher only

    code, out, _ = run(capsys, "competition", "teams", "--dir", folder, "--add", "Gamma")
    tokens.update(tokens_from(out))
    assert code == 0 and "Gamma" in tokens
    assert run(capsys, "competition", "teams", "--dir", folder)[1].split() == ["Alpha", "Beta", "Gamma"]

    code, out, _ = run(
        capsys, "competition", "submit", "--dir", folder, "--token", tokens["Alpha"], str(DEMO_CHECKPOINT)
    )
    assert code == 0 and "submission #1 queued for Alpha" in out and "2 of 3 submission(s) left" in out
    broken = tmp_path / "preds.zip"
    broken.write_bytes(mask_zip(constant_masks(), lambda files: files.pop("test-000003.png")))
    code, _, err = run(capsys, "competition", "submit", "--dir", folder, "--token", tokens["Beta"], str(broken))
    assert code == 2 and "lacks masks for 1 of the 12 hidden images" in err
    good = tmp_path / "good.zip"
    good.write_bytes(mask_zip(constant_masks()))
    assert run(capsys, "competition", "submit", "--dir", folder, "--token", tokens["Beta"], str(good))[0] == 0

    code, _, err = run(capsys, "competition", "worker", "--dir", folder, "--once")
    assert code == 0 and "after 2 submission(s)" in err
    code, out, _ = run(capsys, "competition", "status", "--dir", folder)
    assert code == 0 and "0 queued, 0 scoring, 2 scored, 0 failed" in out
    assert re.search(r"1\s+Alpha\s+0\.\d{4}", out) and re.search(r"2\s+Beta", out)
    assert "not ranked yet: Gamma" in out and "private leaderboard" not in out

    assert run(capsys, "competition", "freeze", "--dir", folder)[0] == 0
    assert run(capsys, "competition", "rescore", "--dir", folder, "--submission", "2")[1].startswith("1 submission")
    assert run(capsys, "competition", "disqualify", "--dir", folder, "--submission", "1", "--reason", "late")[0] == 0
    code, _, err = run(capsys, "competition", "reveal", "--dir", folder)
    assert code == 2 and "--yes" in err
    assert run(capsys, "competition", "reveal", "--dir", folder, "--yes")[0] == 0
    code, _, err = run(capsys, "competition", "submit", "--dir", folder, "--token", tokens["Gamma"], str(good))
    assert code == 2 and "is over" in err

    code, out, _ = run(capsys, "competition", "export", "--dir", folder, "--out", str(tmp_path / "results"))
    assert code == 0
    names = {Path(line).name for line in out.split()}
    assert names >= {
        "teams.csv",
        "submissions.csv",
        "leaderboard_public.csv",
        "leaderboard_private.csv",
        "admin_actions.csv",
    }
    with open(tmp_path / "results" / "admin_actions.csv") as stream:
        actions = [row["action"] for row in csv.DictReader(stream)]
    assert actions == ["create", "add teams", "add teams", "freeze", "rescore", "disqualify", "reveal"]
    from seglab.competition.audit import action_log
    from seglab.competition.store import CompetitionStore

    assert action_log(CompetitionStore(folder), 1)[-1].action == "export"  # logged once the files are written
    with open(tmp_path / "results" / "submissions.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert [(row["team"], row["status"], row["disqualified"]) for row in rows] == [
        ("Alpha", "scored", "late"),
        ("Beta", "queued", ""),
    ]


def test_errors_are_one_line_and_exit_2(capsys, tmp_path: Path) -> None:
    folder = str(tmp_path / "comp")
    code, _, err = run(capsys, "competition", "status", "--dir", folder)
    assert code == 2 and "no competition data" in err and "Traceback" not in err
    assert run(capsys, *CREATE, "--dir", folder)[0] == 0
    code, _, err = run(capsys, *CREATE, "--dir", folder)
    assert code == 2 and "already exists" in err
    code, _, err = run(capsys, *CREATE[:3], "other", *CREATE[4:], "--dir", folder, "--quota-window", "soon")
    assert code == 2 and "cannot read the duration" in err
    code, _, err = run(capsys, *CREATE[:3], "x", *CREATE[4:], "--dir", folder, "--kinds", "checkpoint,bogus")
    assert code == 2 and "unknown submission kind 'bogus'" in err
    code, _, err = run(capsys, "competition", "rescore", "--dir", folder)
    assert code == 2 and "--all" in err
    code, _, err = run(capsys, "competition", "status", "--dir", folder, "--competition", "nope")
    assert code == 2 and "no competition named 'nope'" in err


def test_a_kind_this_installation_cannot_score_is_refused_at_creation(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a)
    )
    code, _, err = run(capsys, *CREATE, "--dir", str(tmp_path / "comp"), "--kinds", "checkpoint,onnx")
    assert code == 2 and "cannot be scored by this seglab yet" in err and "Traceback" not in err
