"""The README's first command (`pip install -r requirements.txt`) must give the app *and* the `seglab` command."""

from __future__ import annotations

import tomllib

from tests.helpers.paths import ROOT


def _requirement_lines(name: str) -> list[str]:
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def test_runtime_requirements_install_the_seglab_command() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"]["seglab"] == "seglab.cli:main"
    assert "-e ." in _requirement_lines("requirements.txt")


def test_runtime_requirements_cover_the_package_and_app_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["app"]
    listed = set(_requirement_lines("requirements.txt"))
    assert [dep for dep in wanted if dep not in listed] == []


def test_dev_requirements_include_the_runtime_ones_once() -> None:
    dev = _requirement_lines("requirements-dev.txt")
    assert "-r requirements.txt" in dev
    assert "-e ." not in dev  # already in requirements.txt: pip refuses a double requirement
