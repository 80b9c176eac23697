"""Which server paths a browser may make the app read: the data-root allow-list.

A shared link (``?data=folder&images=...&label_map=...``, ``?data=camvid&root=...``) or a form on a
page served to a class names paths on the server. Every such path is resolved (``~``, ``..``, symlinks
followed) and must lie inside one of the allowed roots, else it is refused with a message naming the
setting to change. The roots are:

- the data folder (``$SEGLAB_DATA_ROOT``, default ``../shared/data`` beside the project), ``data/`` in
  the project, and the real location of every dataset the app discovers in the data folder (a
  symlinked ``camvid`` keeps working);
- the runs folder (checkpoints);
- ``$SEGLAB_DATA_ROOTS`` (paths separated by ``os.pathsep``) and ``data_roots = [...]`` under
  ``[app]`` in ``seglab.toml`` in the project folder (or the file ``$SEGLAB_CONFIG`` names);
- what the app adds while it runs (folders a user on the server machine itself chose on Home).

The rule is :meth:`AllowList.check`; :func:`check_spec_paths` applies it to every path of a
:class:`~seglab.data.spec.DataSpec`. The command line reads what its user types and is not limited.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from seglab.data.spec import DataSpec
from seglab.errors import ConfigError, PathNotAllowedError
from seglab.io.names import display_name

ROOTS_VARIABLE = "SEGLAB_DATA_ROOTS"
DATA_ROOT_VARIABLE = "SEGLAB_DATA_ROOT"
CONFIG_VARIABLE = "SEGLAB_CONFIG"
CONFIG_NAME = "seglab.toml"
SPEC_PATH_FIELDS = ("root", "images", "masks", "list_file", "label_map")
MAX_LISTED_ROOTS = 4


def resolve(path: str | os.PathLike) -> Path:
    """``path`` absolute, ``~`` expanded, ``..`` and every symlink resolved (it need not exist)."""
    return Path(os.path.realpath(Path(path).expanduser()))


def data_root(project_root: str | os.PathLike) -> Path:
    """The data folder: ``$SEGLAB_DATA_ROOT``, else ``shared/data`` beside the project folder."""
    return Path(os.environ.get(DATA_ROOT_VARIABLE) or Path(project_root).parent / "shared" / "data")


def config_file(project_root: str | os.PathLike) -> Path:
    """The seglab config file: ``$SEGLAB_CONFIG``, else ``seglab.toml`` in the project folder."""
    return Path(os.environ.get(CONFIG_VARIABLE) or Path(project_root) / CONFIG_NAME)


def configured_roots(project_root: str | os.PathLike) -> list[Path]:
    """The roots a person added: ``$SEGLAB_DATA_ROOTS`` and ``[app] data_roots`` of the config file."""
    roots = [Path(part) for part in os.environ.get(ROOTS_VARIABLE, "").split(os.pathsep) if part.strip()]
    path = config_file(project_root)
    if path.is_file():
        roots += [Path(entry) for entry in _config_data_roots(path)]
    return roots


def _config_data_roots(path: Path) -> list[str]:
    data = _read_toml(path)
    entries = data.get("app", {}).get("data_roots", []) if isinstance(data.get("app"), dict) else []
    if not isinstance(entries, list) or not all(isinstance(entry, str) for entry in entries):
        raise ConfigError(f'{path}: [app] data_roots must be a list of paths, e.g. data_roots = ["/data/voc"]')
    return entries


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib

        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"cannot read {path}: {error}; fix or remove it") from None
    raise ConfigError(f"reading {path} needs Python 3.11 (tomllib); on 3.10 set ${ROOTS_VARIABLE} instead")


@dataclass(frozen=True)
class AllowList:
    """Resolved roots a path must lie in (a root that is a file allows that file only).

    ``discover_under``: folders searched for VOC/CamVid layouts only when a path is outside every
    root, so a dataset symlinked into the data folder is allowed at its real location.
    """

    roots: tuple[Path, ...]
    config: Path
    discover_under: tuple[Path, ...] = field(default=())
    problem: str | None = None  # why the config file's roots are missing (it could not be read)

    def with_roots(self, extra: Iterable[str | os.PathLike]) -> AllowList:
        """The same list with ``extra`` roots added."""
        added = tuple(resolve(root) for root in extra)
        return replace(self, roots=_unique(self.roots + added))

    def allows(self, path: str | os.PathLike) -> bool:
        """Whether ``path``, resolved, is one of the roots or inside one (never a path that cannot be resolved)."""
        try:
            resolved = resolve(path)
        except (ValueError, OSError):  # an embedded NUL byte, a symlink loop on some systems
            return False
        if _inside(resolved, self.roots):
            return True
        return bool(self.discover_under) and _inside(resolved, self._discovered())

    def check(self, path: str | os.PathLike, what: str = "path") -> Path:
        """``path`` resolved; :class:`PathNotAllowedError` naming the setting to change when it is outside."""
        if self.allows(path):
            return resolve(path)
        path = repr(path) if "\x00" in str(path) else path
        listed = ", ".join(str(root) for root in self.roots[:MAX_LISTED_ROOTS])
        if len(self.roots) > MAX_LISTED_ROOTS:
            listed += f" and {len(self.roots) - MAX_LISTED_ROOTS} more"
        message = (
            f"{what} {path} is outside the folders this app may read for a link or a form ({listed}); "
            f"to allow it, add its folder to data_roots under [app] in {self.config} (read at once) or to "
            f"${ROOTS_VARIABLE} (then restart the app); on the server machine itself, choosing it on Home allows it"
        )
        if self.problem:
            message += f" (and fix the config file: {self.problem})"
        raise PathNotAllowedError(display_name(message))

    def _discovered(self) -> tuple[Path, ...]:
        from seglab.data.discover import discover_datasets

        found = [spec.root for folder in self.discover_under for spec in discover_datasets(folder) if spec.root]
        return tuple(resolve(root) for root in found)


def allow_list(
    project_root: str | os.PathLike,
    runs_dir: str | os.PathLike,
    extra: Iterable[str | os.PathLike] = (),
) -> AllowList:
    """The app's allow-list: data folder, project ``data/``, runs folder, configured roots, ``extra``.

    Never raises: a config file that cannot be read leaves its roots out and is named in ``problem``.
    """
    data = data_root(project_root)
    problem = None
    try:
        configured = configured_roots(project_root)
    except ConfigError as error:  # a broken config file must not take the app down: its roots are left out
        problem = str(error)
        configured = [Path(part) for part in os.environ.get(ROOTS_VARIABLE, "").split(os.pathsep) if part.strip()]
    roots = [data, Path(project_root) / "data", Path(runs_dir), *configured, *extra]
    return AllowList(
        roots=_unique(tuple(resolve(root) for root in roots)),
        config=config_file(project_root),
        discover_under=(data,),
        problem=problem,
    )


def check_spec_paths(spec: DataSpec, allowed: AllowList) -> DataSpec:
    """``spec`` unchanged if every path it names is allowed; else :class:`PathNotAllowedError` for the first."""
    for name in SPEC_PATH_FIELDS:
        value = getattr(spec, name)
        if value:
            allowed.check(value, what=_FIELD_WORDS[name])
    return spec


def spec_paths(spec: DataSpec) -> list[str]:
    """Every path a spec names (data folders, list file, label map)."""
    return [getattr(spec, name) for name in SPEC_PATH_FIELDS if getattr(spec, name)]


_FIELD_WORDS = {
    "root": "dataset folder",
    "images": "image folder",
    "masks": "mask folder",
    "list_file": "list file",
    "label_map": "label map",
}


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _unique(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    return tuple(dict.fromkeys(paths))
