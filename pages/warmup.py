"""Import everything the pages need once, before any page runs, and cap torch's threads (seglab.concurrency).

app.py imports this module first. Python's import lock for this module makes every other session
wait here until the first one has imported torch, pandas, plotly, OpenCV and every seglab module a
page uses, so concurrent script threads never see a half-imported module (issue 10: "partially
initialized module 'pandas'"). The list of modules is read from the pages' own import statements,
so it stays complete as pages change, plus every seglab module (the library imports some lazily,
inside functions, and two sessions importing those at once could meet each other's half-done work).
"""

from __future__ import annotations

import ast
import gc
import importlib
import pkgutil
from pathlib import Path

import seglab
from seglab.concurrency import configure_torch_threads

PAGES_DIR = Path(__file__).resolve().parent
EXTRA_MODULES = ("numpy", "pandas", "plotly.graph_objects", "plotly.express", "cv2", "PIL.Image", "pyarrow")
# Command-line entry points: never used by the app (``seglab.__main__`` would even run the CLI).
ENTRY_POINTS = frozenset(
    {"seglab.__main__", "seglab.cli.commands", "seglab.cli.sources", "seglab.competition.cli", "seglab.sources.worker"}
)


def page_imports(folder: Path = PAGES_DIR) -> list[str]:
    """Every module the page scripts and their helpers import, in a stable order."""
    modules: set[str] = set()
    for source in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module)
                if node.module == "pages":  # ``from pages import ui``: the helper modules themselves
                    modules.update(f"pages.{alias.name}" for alias in node.names)
    return sorted(modules - {"pages.warmup"})


def library_modules() -> list[str]:
    """Every seglab module but the command-line entry points, in a stable order."""
    found = pkgutil.walk_packages(seglab.__path__, "seglab.")
    return sorted(module.name for module in found if module.name not in ENTRY_POINTS and "__main__" not in module.name)


def warm_up() -> list[str]:
    """Import the pages' and the library's modules (skipping optional absent ones); returns those imported."""
    imported = []
    for name in dict.fromkeys((*EXTRA_MODULES, *page_imports(), *library_modules())):
        if name.startswith("pages.") and not (PAGES_DIR / f"{name.split('.')[1]}.py").is_file():
            continue
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        imported.append(name)
    return imported


TORCH_THREADS = configure_torch_threads()  # before any session runs a model ($SEGLAB_TORCH_THREADS overrides)
WARMED = warm_up()
# A full garbage collection holds the GIL while it walks every object: ~0.2 s with torch, pandas and plotly
# loaded. Streamlit's own one after every script run is off (runner.postScriptGC in .streamlit/config.toml);
# Python's automatic ones remain. Moving the objects alive now (modules, never freed) out of the collector's
# reach makes each of those cheap. The import garbage is collected first: frozen, it would never be freed.
gc.collect()
gc.freeze()
