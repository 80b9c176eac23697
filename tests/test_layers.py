"""The package layout of ARCHITECTURE.md holds: a layer imports only the layers above it in the table (apart
from the known exceptions listed there), nothing under seglab/ imports streamlit or is over 450 lines, every module
imports, and ``import seglab`` is light and free of process-wide side effects."""

from __future__ import annotations

import ast
import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import seglab

PACKAGE = Path(seglab.__file__).parent
MAX_MODULE_LINES = 450  # a longer module is split along its seams (ARCHITECTURE.md)
# ARCHITECTURE.md's layer table, top (imported by all) to bottom.
LAYERS = {
    "errors": 0,
    "options": 0,
    "progress": 0,
    "ranking": 0,
    "concurrency": 0,
    "io": 1,
    "data": 2,
    "models": 3,
    "losses": 4,
    "metrics": 5,
    "viz": 6,
    "engine": 7,
    "sources": 7,
    "analysis": 8,
    "cli": 9,
    "competition": 9,
}
# Imports that go against the table today (listed in ARCHITECTURE.md); a new one fails the test.
KNOWN_EXCEPTIONS = {
    ("seglab.io.allowed_paths", "data"),
    ("seglab.engine.evaluation", "analysis"),
    ("seglab.engine.trainer", "analysis"),
    ("seglab.sources.registration", "competition"),
    ("seglab.viz.diagnostics", "analysis"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST) -> list[str]:
    """Absolute imports of a module, at any depth, except those only for type checkers."""
    typing_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            typing_only.update(id(sub) for sub in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [f"seglab.{alias.name}" for alias in node.names] if node.module == "seglab" else [node.module]
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "seglab" and len(parts) > 1 and parts[1] in LAYERS else None


def _sources() -> list[tuple[str, ast.AST]]:
    return [(_module_name(path), ast.parse(path.read_text(encoding="utf-8"))) for path in sorted(PACKAGE.rglob("*.py"))]


def test_every_top_level_module_and_package_has_a_layer() -> None:
    names = {path.stem for path in PACKAGE.glob("*.py")} | {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert names - {"__init__", "__main__"} == set(LAYERS)


def test_no_layer_imports_a_layer_below_it() -> None:
    upward = set()
    for module, tree in _sources():
        source = _layer(module)
        for imported in _imports(tree):
            target = _layer(imported)
            if source and target and LAYERS[target] > LAYERS[source]:
                upward.add((module, target))
    assert upward - KNOWN_EXCEPTIONS == set(), "a layer imports one below it (see ARCHITECTURE.md)"
    assert KNOWN_EXCEPTIONS - upward == set(), "an exception is gone: remove it here and in ARCHITECTURE.md"


def test_no_module_is_over_the_line_limit() -> None:
    lines = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in PACKAGE.rglob("*.py")}
    offenders = sorted(
        f"{path.relative_to(PACKAGE.parent)}: {count}" for path, count in lines.items() if count > MAX_MODULE_LINES
    )
    assert offenders == [], f"modules over {MAX_MODULE_LINES} lines; split them along their seams: {offenders}"


def test_seglab_never_imports_streamlit() -> None:
    offenders = [module for module, tree in _sources() if any(name.startswith("streamlit") for name in _imports(tree))]
    assert offenders == []


def test_every_module_imports() -> None:
    names = [info.name for info in pkgutil.walk_packages(seglab.__path__, "seglab.") if "__main__" not in info.name]
    assert len(names) > 100
    for name in names:
        importlib.import_module(name)


def test_import_seglab_is_light_and_sets_nothing_process_wide() -> None:
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE.parent), env.get("PYTHONPATH", "")])
    script = (
        "import os, sys, seglab; "
        "print('torch' in sys.modules, 'OMP_WAIT_POLICY' in os.environ, sorted(set(seglab.__all__) - set(dir(seglab))))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.stdout.split("\n")[0] == "False False []", result.stderr


def test_the_public_api_resolves_to_the_defining_modules() -> None:
    from seglab.engine.trainer import Trainer
    from seglab.metrics.confusion import ConfusionMatrix

    assert seglab.Trainer is Trainer and seglab.ConfusionMatrix is ConfusionMatrix
    for name in seglab.__all__:
        assert getattr(seglab, name) is not None, name
