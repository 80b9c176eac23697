"""Rewrite references to seglab's old flat modules (before the layer packages) in the given files.

For a branch that started before the move: after ``git merge main``, run it on the files written
against the old layout (they still import ``seglab.train``, ``seglab.config``, ``seglab.viz_diagnostics``,
...: not on files already in the new layout, where ``seglab.metrics`` is a package) and, with
``--conflicts``, on conflicted files: a hunk of import lines becomes both sides rewritten (the usual
import-line conflicts), other hunks stay conflicts with both sides rewritten, for a person to decide.
Then ``ruff check --fix`` merges and sorts the imports. Usage::

    python tools/relayout_imports.py FILE...             # rewrite in place, prints what changed
    python tools/relayout_imports.py --conflicts FILE...  # rewrite both sides of each conflict hunk

The mapping is also in ARCHITECTURE.md; new code imports the new paths directly.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

MOVES = {
    "atomic_files": "io.atomic_files",
    "cache_write": "io.cache_write",
    "json_values": "io.json_values",
    "allowed_paths": "io.allowed_paths",
    "output_paths": "io.output_paths",
    "names": "io.names",
    "loss_functions": "losses.functional",
    "losses": "losses.criterion",
    "metrics": "metrics.confusion",
    "metric_definitions": "metrics.definitions",
    "config": "engine.config",
    "optim": "engine.optim",
    "recipe": "engine.recipe",
    "train": "engine.trainer",
    "checkpoint": "engine.checkpoint",
    "run_dir": "engine.run_dir",
    "run_folder": "engine.run_folder",
    "runs": "engine.runs",
    "run_plan": "engine.run_plan",
    "distributed": "engine.distributed",
    "divergence": "engine.divergence",
    "curves": "engine.curves",
    "predict": "engine.predict",
    "evaluation": "engine.evaluation",
    "export": "engine.export",
    "stats": "analysis.stats",
    "components": "analysis.components",
    "failures": "analysis.failures",
    "compare": "analysis.compare",
    "leaderboard": "analysis.leaderboard",
    "label_quality": "analysis.label_quality",
    "label_quality_cache": "analysis.label_quality.cache",
    "loss_inspector": "analysis.loss_inspector",
    "gallery": "analysis.gallery",
    "lessons": "data.lessons",
    "viz_diagnostics": "viz.diagnostics",
    "cli": "cli.commands",
    "cli_sources": "cli.sources",
    "cli_diagnostics": "cli.diagnostics",
    "report": "cli.report",
    "diagnostics": "analysis.diagnostics",
}
# Names that left their module in a later split (module -> where they went).
MOVED_NAMES = {
    ("analysis.failures", "clickable_confusion_figure"): "viz",
    ("metrics.definitions", "definitions_figure"): "viz",
    ("data.transforms", "AugmentedDataset"): "data.loading",
    ("data.transforms", "pad_collate"): "data.loading",
    ("data.transforms", "train_transform"): "data.presets",
    ("data.transforms", "eval_transform"): "data.presets",
    ("data.transforms", "IMAGENET_MEAN"): "data.normalization",
    ("data.transforms", "IMAGENET_STD"): "data.normalization",
    ("data.transforms", "image_to_float"): "data.normalization",
    ("data.transforms", "normalize_image"): "data.normalization",
    ("data.transforms", "denormalize"): "data.normalization",
    ("metrics.definitions", "per_class_breakdown"): "metrics.class_breakdown",
    ("metrics.definitions", "ClassBreakdown"): "metrics.class_breakdown",
    ("metrics.definitions", "AGREEMENT_TOLERANCE"): "metrics.class_breakdown",
    ("cli.commands", "add_data_arguments"): "cli.arguments",
    ("cli.commands", "data_spec_from_args"): "cli.arguments",
    ("cli.commands", "_parse_key_values"): "cli.arguments (parse_key_values)",
    ("cli.commands", "train_config_from_args"): "cli.train",
    ("cli.commands", "add_train_arguments"): "cli.train",
    ("cli.commands", "apply_data_recipe"): "cli.train",
    ("cli.commands", "command_train"): "cli.train",
    ("cli.commands", "TrainProgress"): "cli.train",
    ("engine.trainer", "StopTraining"): "engine.stopping",
    ("engine.trainer", "cpu_has_native_bf16"): "engine.precision",
}

# Old module names that are new package names too: their new submodules are left alone (idempotent).
_NEW = r"(?:confusion|definitions|functional|criterion|commands|sources|diagnostics|report)\b"
_NEW_SUBMODULES = rf"(?!\.{_NEW})(?! import {_NEW})"
_DOTTED = re.compile(r"\bseglab\.(" + "|".join(sorted(MOVES, key=len, reverse=True)) + r")(?![\w])" + _NEW_SUBMODULES)
_FROM_SEGLAB = re.compile(r"^(\s*)from seglab import ([\w, ]+)$", re.M)
_CONFLICT = re.compile(
    r"^<<<<<<< [^\n]*\n(.*?)^(?:\|\|\|\|\|\|\| [^\n]*\n.*?)?^=======\n(.*?)^>>>>>>> [^\n]*\n", re.M | re.S
)


def _from_seglab(match: re.Match[str]) -> str:
    indent, imported = match.groups()
    kept, lines = [], []
    for item in (part.strip() for part in imported.split(",")):
        name, _, alias = item.partition(" as ")
        new = MOVES.get(name.strip())
        if new is None:
            kept.append(item)
            continue
        parent, leaf = ("seglab." + new).rsplit(".", 1)
        local = alias.strip() or name.strip()
        lines.append(f"{indent}from {parent} import {leaf}" + (f" as {local}" if leaf != local else ""))
    if kept:
        lines.insert(0, f"{indent}from seglab import {', '.join(kept)}")
    return "\n".join(lines)


def rewrite(text: str) -> str:
    """``text`` with every old seglab module path replaced by its new one (run once per text)."""
    out = []
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("from seglab import "):
            out.append(_FROM_SEGLAB.sub(_from_seglab, line))
        else:
            out.append(_DOTTED.sub(lambda m: "seglab." + MOVES[m.group(1)], line))
    return "".join(out)


def _is_import_block(text: str) -> bool:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return bool(lines) and all(line.startswith(("import ", "from ")) and "(" not in line for line in lines)


def _resolve(match: re.Match[str]) -> str:
    ours, theirs = rewrite(match.group(1)), rewrite(match.group(2))
    if _is_import_block(ours) and _is_import_block(theirs):
        # Import lines move when their module is renamed (isort order): keep both sides, sorted out by ruff.
        return "".join(dict.fromkeys([*ours.splitlines(keepends=True), *theirs.splitlines(keepends=True)]))
    return f"<<<<<<< ours (rewritten)\n{ours}=======\n{theirs}>>>>>>> theirs (rewritten)\n"


def resolve_conflicts(text: str) -> str:
    """Hunks of import lines only: both sides rewritten to the new paths and kept (``ruff check --fix`` then
    merges them and drops the unused ones). Other hunks stay conflicts, each side rewritten, for a person."""
    return _CONFLICT.sub(_resolve, text)


def main(argv: list[str] | None = None) -> int:
    """Rewrite the files named on the command line; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conflicts", action="store_true", help="resolve conflict hunks with the incoming side")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for path in args.files:
        text = path.read_text(encoding="utf-8")
        new = resolve_conflicts(text) if args.conflicts else rewrite(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
