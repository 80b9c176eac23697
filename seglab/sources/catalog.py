"""The sources catalog: model files and predictions folders registered once, then picked like checkpoints.

The catalog is a folder of description files (:mod:`seglab.sources.description`), one per source,
``<runs dir>/sources/<slug>.seglab.json``, so it lives beside the run folders and travels with them.
A *model choice* (what the app's sidebar stores, what its loaders take) is one path string: a seglab
checkpoint (``.pt``) or one of these description files; :func:`choice_description` reads either.

Registered paths come from strangers (a form in a class's shared app), so:

- every path (the model file or folder, a predictions label map) must resolve, symlinks followed,
  inside the *allowed roots* (the app passes its allow-list's roots, :mod:`seglab.io.allowed_paths`;
  :func:`allowed_roots` gives the runs folder, a data folder and ``$SEGLAB_DATA_ROOTS`` for the
  command line), checked when registering and again each time an entry is read;
- entries are small JSON files (at most :data:`MAX_ENTRY_BYTES`), never pickles; nothing is run to
  list them; a broken entry is listed with its problem instead of breaking the list;
- names are slugs, so an entry file can never land outside the catalog folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seglab.data.label_map import LabelMap
from seglab.errors import SeglabError, SourceError
from seglab.sources.description import (
    DESCRIPTION_SUFFIX,
    KINDS,
    SourceDescription,
    describe_target,
    infer_kind,
    load_description,
    parse_description,
    save_description,
)
from seglab.sources.mapping import OTHER, normalize_name

if TYPE_CHECKING:
    from seglab.data.base import SegmentationDataset
    from seglab.sources.mapped import MappedSource

CATALOG_FOLDER = "sources"
MAX_ENTRY_BYTES = 64 * 1024
MAX_ENTRIES = 200
REGISTERED_KINDS = tuple(kind for kind in KINDS if kind != "checkpoint")  # checkpoints are listed from run folders
ROOTS_VARIABLE = "SEGLAB_DATA_ROOTS"  # the app's allow-list variable (seglab.io.allowed_paths): one setting for both
_SLUG = re.compile(r"[^a-z0-9._-]+")


def catalog_dir(runs_dir: str | os.PathLike) -> Path:
    """The catalog folder of a runs folder."""
    return Path(runs_dir) / CATALOG_FOLDER


def allowed_roots(runs_dir: str | os.PathLike, data_root: str | os.PathLike | None = None) -> list[Path]:
    """Folders registered sources may live in: the runs folder, the data folder and ``$SEGLAB_DATA_ROOTS``
    (``os.pathsep``-separated), resolved (the command line's roots; the app uses its allow-list's)."""
    roots = [Path(runs_dir), *([Path(data_root)] if data_root else [])]
    roots += [Path(part) for part in os.environ.get(ROOTS_VARIABLE, "").split(os.pathsep) if part.strip()]
    unique: list[Path] = []
    for root in roots:
        resolved = root.expanduser().resolve()
        if resolved not in unique:
            unique.append(resolved)
    return unique


def within_roots(path: str | os.PathLike, roots: Sequence[Path], what: str = "path") -> Path:
    """``path`` resolved (symlinks followed); :class:`SourceError` unless it lies inside one of ``roots``."""
    resolved = Path(path).expanduser().resolve()
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        listed = ", ".join(str(root) for root in roots)
        raise SourceError(f"{what} {resolved} is outside the folders sources may come from ({listed})")
    return resolved


def slug(name: str) -> str:
    """The catalog file stem of a source name ("My ONNX model" -> "my-onnx-model")."""
    return _SLUG.sub("-", name.strip().casefold()).strip("-.")[:64]


@dataclass(frozen=True)
class CatalogEntry:
    """One registered source: its description, or the problem that makes it unusable."""

    file: Path
    name: str
    description: SourceDescription | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and self.description is not None

    @property
    def kind(self) -> str:
        return self.description.kind if self.description is not None else "?"


def read_entry(file: str | os.PathLike, roots: Sequence[Path]) -> CatalogEntry:
    """A catalog entry, checked (size, format, paths inside ``roots``); never raises for a faulty file."""
    file = Path(file)
    name = file.name.removesuffix(DESCRIPTION_SUFFIX)
    try:
        if file.is_symlink() or not file.is_file():
            raise SourceError(f"{file.name} is not a plain file")
        if file.stat().st_size > MAX_ENTRY_BYTES:
            raise SourceError(f"{file.name} is larger than {MAX_ENTRY_BYTES // 1024} KiB: not a description")
        description = load_description(file)
        within_roots(description.path, roots, "the source")
        if description.label_map is not None:
            within_roots(description.label_map, roots, "the predictions' label map")
        if description.kind not in REGISTERED_KINDS:
            raise SourceError(f"kind {description.kind!r} cannot be registered (one of {', '.join(REGISTERED_KINDS)})")
    except SeglabError as error:
        return CatalogEntry(file, name, None, str(error))
    return CatalogEntry(file, description.name or name, description)


def list_sources(runs_dir: str | os.PathLike, roots: Sequence[Path]) -> list[CatalogEntry]:
    """Every registered source by name, broken ones with their problem (at most :data:`MAX_ENTRIES`)."""
    folder = catalog_dir(runs_dir)
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*" + DESCRIPTION_SUFFIX))[:MAX_ENTRIES]
    return [read_entry(file, roots) for file in files]


@dataclass(frozen=True)
class SourceForm:
    """What the app's registration form (or a script) gives: everything as typed, validated by :func:`validate_form`."""

    name: str
    kind: str
    path: str
    class_names: str = ""  # comma- or newline-separated, the model's outputs in order; "" = undeclared
    mapping: Mapping[str, str | None] | None = None  # source class -> dataset class name, None/"other" = other
    mean: str = ""  # "0.485, 0.456, 0.406" in 0-1 units; "" = seglab's (ImageNet) recipe
    std: str = ""
    channel_order: str = "RGB"
    input_size: str = "any"  # "any", "512" or "512x1024" (height x width)
    fixed_size_mode: str = "resize"  # how a fixed-size model sees other sizes: resize | sliding
    size_divisor: int = 1
    output: str = ""  # "" = the first output; a dict key or ONNX output name (torchvision: "out")
    output_kind: str = "logits"
    resize_predictions: bool = False
    encoding: str = "auto"  # predictions PNGs: auto | index | rgb
    label_map: str = ""  # predictions painted in another palette: its label map JSON (inside the allowed roots)


def parse_class_names(text: str) -> list[str] | None:
    """Class names typed one per line or comma-separated; ``None`` when nothing was typed."""
    names = [part.strip() for part in re.split(r"[,\n]", text or "") if part.strip()]
    return names or None


def _numbers(text: str) -> list[float] | None:
    try:
        return [float(part) for part in re.split(r"[,\s]+", text.strip()) if part]
    except ValueError:
        return None


def _input_size(text: str) -> tuple[Any, list[str]]:
    text = (text or "any").strip().casefold()
    if text in ("", "any"):
        return "any", []
    match = re.fullmatch(r"(\d{1,5})\s*(?:[x×,]\s*(\d{1,5}))?", text)
    if not match:
        return "any", [f'input size must be "any", a side (512) or height x width (512x1024), got {text!r}']
    height = int(match.group(1))
    width = int(match.group(2) or height)
    return [height, width], []


def validate_form(
    form: SourceForm, roots: Sequence[Path], existing: Sequence[str] = ()
) -> tuple[SourceDescription | None, list[str]]:
    """``(description, problems)`` of a registration form; every problem named, nothing read outside ``roots``."""
    problems: list[str] = []
    name = form.name.strip()
    if not name or not slug(name):
        problems.append("give the source a name (letters or digits)")
    elif slug(name) in {slug(other) for other in existing}:
        problems.append(f"a source named {name!r} is already registered: pick another name or remove it first")
    if form.kind not in REGISTERED_KINDS:
        problems.append(f"kind must be one of {', '.join(REGISTERED_KINDS)}, got {form.kind!r}")
    path = None
    if not form.path.strip():
        problems.append("give the path of the model file or predictions folder")
    else:
        try:
            path = within_roots(_resolve_typed(form.path.strip(), roots), roots, "the path")
        except SourceError as error:
            problems.append(str(error))
    if path is not None and form.kind in REGISTERED_KINDS:
        problems += _kind_problems(path, form.kind)
    data: dict[str, Any] = {"kind": form.kind, "path": str(path) if path is not None else form.path, "name": name}
    class_names = parse_class_names(form.class_names)
    if class_names is not None:
        data["class_names"] = class_names
    if form.mapping:
        data["mapping"] = {
            source: (None if target in (None, "", OTHER) else target) for source, target in form.mapping.items()
        }
    if form.kind in ("torchscript", "onnx"):
        size, size_problems = _input_size(form.input_size)
        problems += size_problems
        preprocessing: dict[str, Any] = {
            "channel_order": form.channel_order,
            "input_size": size,
            "size_divisor": int(form.size_divisor),
            "fixed_size_mode": form.fixed_size_mode,
            "output": form.output.strip() or None,
            "output_kind": form.output_kind,
        }
        for key, text in (("mean", form.mean), ("std", form.std)):
            if text.strip():
                numbers = _numbers(text)
                if numbers is None:
                    problems.append(f"{key} must be 3 numbers such as 0.485, 0.456, 0.406, got {text!r}")
                else:
                    preprocessing[key] = numbers
        data["preprocessing"] = preprocessing
    if form.kind == "predictions":
        data["predictions"] = {"resize": bool(form.resize_predictions), "encoding": form.encoding}
        if form.label_map.strip():
            try:
                label_map = _resolve_typed(form.label_map.strip(), roots)
                data["predictions"]["label_map"] = str(within_roots(label_map, roots, "the label map"))
            except SourceError as error:
                problems.append(str(error))
    # parse_description's own checks too, so the user sees every problem at once (kind and path: checked above)
    description, more = parse_description(data, Path("/"), where="the form")
    problems += [problem for problem in more if not problem.startswith(("kind ", "path "))]
    return (None, problems) if problems else (description, [])


def _resolve_typed(text: str, roots: Sequence[Path]) -> Path:
    """A typed path: absolute as is, relative to the first allowed root where it exists (else the first root)."""
    path = Path(text).expanduser()
    if path.is_absolute() or not roots:
        return path
    return next((root / path for root in roots if (root / path).exists()), roots[0] / path)


def _kind_problems(path: Path, kind: str) -> list[str]:
    """Whether the file or folder at ``path`` is what ``kind`` says (judged from names and headers only)."""
    if not path.exists():
        return [f"{path} does not exist"]
    try:
        found = infer_kind(path)
    except SourceError as error:
        return [str(error)]
    if found != kind:
        return [f"{path.name} looks like a {found} source, not {kind}: pick kind {found} or another path"]
    return []


UPLOAD_SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
UPLOADS_FOLDER = "files"


def save_upload(runs_dir: str | os.PathLike, name: str, kind: str, data: bytes, max_bytes: int) -> Path:
    """Store an upload in ``<catalog>/files/``: a model file as ``<slug>.onnx|.pt``, a zip of predictions
    extracted (checked entry by entry, see :mod:`seglab.competition.archive`) into ``<slug>/``.

    :class:`SourceError` for another kind, an empty or oversized file, a refused zip, or a name already used.
    """
    from seglab.io.atomic_files import write_bytes_atomic

    if kind not in (*UPLOAD_SUFFIXES, "predictions"):
        raise SourceError(f"only ONNX and TorchScript files or a zip of predictions can be uploaded, not {kind!r}")
    if not data:
        raise SourceError("the uploaded file is empty")
    if len(data) > max_bytes:
        raise SourceError(f"the uploaded file is {len(data) / 2**20:.0f} MB, over the {max_bytes / 2**20:.0f} MB limit")
    stem = slug(name)
    if not stem:
        raise SourceError("give the source a name (letters or digits) before uploading its file")
    path = catalog_dir(runs_dir) / UPLOADS_FOLDER / f"{stem}{UPLOAD_SUFFIXES.get(kind, '')}"
    if path.exists():
        raise SourceError(f"an uploaded file named {path.name} exists already: pick another name")
    if kind == "predictions":
        _extract_predictions(data, path)
    else:
        write_bytes_atomic(path, data)
    return path


def _extract_predictions(data: bytes, folder: Path) -> None:
    """Write the prediction files (.png/.npy/.npz) of a zip, flattened, into ``folder`` (removed on failure)."""
    import shutil
    import tempfile

    from seglab.competition.archive import check_zip, read_entries
    from seglab.competition.errors import SubmissionRejected
    from seglab.io.atomic_files import write_bytes_atomic
    from seglab.sources.folder_source import PREDICTION_EXTENSIONS

    with tempfile.NamedTemporaryFile(suffix=".zip") as archive:
        archive.write(data)
        archive.flush()
        try:
            entries = check_zip(archive.name)
            wanted = [entry for entry in entries if Path(entry.name).suffix.lower() in PREDICTION_EXTENSIONS]
            names = [Path(entry.name).name for entry in wanted]
            if not wanted:
                raise SourceError("the zip holds no prediction files (.png, .npy or .npz named after the sample ids)")
            if len(set(names)) != len(names):
                raise SourceError(f"the zip holds two files named {next(n for n in names if names.count(n) > 1)}")
            folder.mkdir(parents=True)
            for entry, content in read_entries(archive.name, wanted):
                write_bytes_atomic(folder / Path(entry.name).name, content)
        except SubmissionRejected as error:
            shutil.rmtree(folder, ignore_errors=True)
            raise SourceError(str(error)) from None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise


def register_checked(
    runs_dir: str | os.PathLike,
    form: SourceForm,
    roots: Sequence[Path],
    dataset: SegmentationDataset | None = None,
    upload: bytes | None = None,
) -> tuple[CatalogEntry | None, list[str], list[str]]:
    """Validate a form, try the source on ``dataset`` (a forward pass on one image for model files; count,
    size and stem matching for folders) and register it when nothing is wrong.

    ``upload``: the model file's bytes (or a zip of predictions), stored in the catalog (the form's
    path is then ignored) and deleted again when the source is not registered.
    Returns ``(entry or None, problems, facts)``: every problem found, and what the check learned.
    """
    stored = None
    if upload is not None:
        from seglab.sources.base import DEFAULT_LIMITS

        try:
            stored = save_upload(runs_dir, form.name, form.kind, upload, DEFAULT_LIMITS.max_file_bytes)
        except SeglabError as error:
            return None, [str(error)], []
        form = replace(form, path=str(stored))
    entry, problems, facts = _register_checked(runs_dir, form, roots, dataset)
    if entry is None and stored is not None:
        if stored.is_dir():
            import shutil

            shutil.rmtree(stored, ignore_errors=True)
        else:
            stored.unlink(missing_ok=True)
    return entry, problems, facts


def _register_checked(
    runs_dir: str | os.PathLike, form: SourceForm, roots: Sequence[Path], dataset: SegmentationDataset | None
) -> tuple[CatalogEntry | None, list[str], list[str]]:
    from seglab.sources.check import check_source

    existing = [entry.file.name.removesuffix(DESCRIPTION_SUFFIX) for entry in list_sources(runs_dir, roots)]
    description, problems = validate_form(form, roots, existing)
    if description is None:
        return None, problems, []
    try:
        source = description.open(label_map=dataset.label_map if dataset is not None else None)
        with source:
            check = check_source(source, dataset, mapping=description.mapping)
    except SeglabError as error:
        return None, [str(error)], []
    if not check.ok:
        return None, check.problems, check.facts
    try:
        entry = register_source(runs_dir, description, roots, name=form.name)
    except SeglabError as error:
        return None, [str(error)], check.facts
    return entry, [], check.facts


def register_source(
    runs_dir: str | os.PathLike, description: SourceDescription, roots: Sequence[Path], *, name: str | None = None
) -> CatalogEntry:
    """Write ``description`` into the catalog (atomically); :class:`SourceError` when a path leaves ``roots``
    or the name is taken."""
    name = (name or description.name or description.path.name).strip()
    stem = slug(name)
    if not stem:
        raise SourceError(f"cannot make a file name of the source name {name!r}: use letters or digits")
    within_roots(description.path, roots, "the source")
    if description.kind not in REGISTERED_KINDS:
        raise SourceError(f"kind {description.kind!r} cannot be registered (one of {', '.join(REGISTERED_KINDS)})")
    folder = catalog_dir(runs_dir)
    file = folder / f"{stem}{DESCRIPTION_SUFFIX}"
    if file.exists():
        raise SourceError(f"a source named {name!r} is already registered ({file.name}): remove it first")
    if folder.is_dir() and len(list(folder.glob("*" + DESCRIPTION_SUFFIX))) >= MAX_ENTRIES:
        raise SourceError(f"the catalog already holds {MAX_ENTRIES} sources: remove some first")
    save_description(replace(description, name=name, file=None), file)
    return read_entry(file, roots)


def remove_source(runs_dir: str | os.PathLike, entry_file: str | os.PathLike) -> None:
    """Delete a catalog entry (the model or predictions it names are left alone)."""
    file = Path(entry_file)
    if file.resolve().parent != catalog_dir(runs_dir).resolve() or not file.name.endswith(DESCRIPTION_SUFFIX):
        raise SourceError(f"{file} is not an entry of the sources catalog")
    file.unlink(missing_ok=True)


# -- model choices: a checkpoint path or a catalog entry -------------------------------------------------
def is_registered(choice: str | os.PathLike) -> bool:
    """Whether a model choice names a catalog entry (else a seglab checkpoint)."""
    return str(choice).endswith(DESCRIPTION_SUFFIX)


def choice_description(choice: str | os.PathLike, roots: Sequence[Path]) -> SourceDescription:
    """The description of a model choice: a checkpoint's is inferred; an entry's is read and checked."""
    if not is_registered(choice):
        return describe_target(choice)
    entry = read_entry(choice, roots)
    if not entry.ok:
        raise SourceError(f"registered source {entry.name}: {entry.problem}")
    assert entry.description is not None
    return entry.description


def mapping_rows(source_names: Sequence[str], label_map: LabelMap) -> dict[str, str]:
    """``{source class: dataset class or "other"}`` pre-filled by matching names case-insensitively
    (also ignoring spaces, '_' and '-'): the editable table of the registration form."""
    by_name = {normalize_name(name): name for name in label_map.names}
    return {name: by_name.get(normalize_name(name), OTHER) for name in source_names}


def fit_score(class_names: Sequence[str] | None, mapping: Mapping[str, Any] | None, label_map: LabelMap) -> int:
    """How well a source's classes fit a dataset, judged without predicting: 2 the same classes (or
    undeclared), 1 some classes map (by name or by a declared mapping), 0 none."""
    if class_names is None:
        return 2
    dataset = [normalize_name(name) for name in label_map.names]
    if [normalize_name(name) for name in class_names] == dataset:
        return 2
    mapped = any(target not in (None, OTHER) for target in (mapping or {}).values())
    return 1 if mapped or {normalize_name(name) for name in class_names} & set(dataset) else 0


def choice_version(choice: str | os.PathLike, roots: Sequence[Path]) -> str:
    """A token that changes when a model choice's files change (memory-cache keys; the disk caches hash content):
    a checkpoint's mtime; an entry's mtime with its target's (a folder's: every prediction file's size and mtime)."""
    from seglab.data.io import stat_files

    path = Path(choice)
    if not is_registered(choice):
        return str(path.stat().st_mtime_ns)
    description = choice_description(choice, roots)
    target = description.path
    if target.is_dir():
        files = sorted(child for child in target.iterdir() if child.is_file())
        listing = json.dumps(stat_files(target, files))
    else:
        stat = target.stat()
        listing = f"{stat.st_size}:{stat.st_mtime_ns}"
    return hashlib.sha256(f"{path.stat().st_mtime_ns}|{listing}".encode()).hexdigest()[:16]


def open_choice(
    choice: str | os.PathLike, roots: Sequence[Path], label_map: LabelMap, device: str = "cpu"
) -> MappedSource:
    """A model choice as a :class:`~seglab.sources.mapped.MappedSource` in ``label_map``'s classes
    (a registered source under its declared mapping; model files in their worker process)."""
    from seglab.sources.mapped import MappedSource

    description = choice_description(choice, roots)
    source = description.open(device=device, label_map=label_map)
    return MappedSource(source, label_map, description.mapping)


def description_fit(description: SourceDescription, label_map: LabelMap, sample_ids: Sequence[str]) -> int:
    """:func:`fit_score` of a registered source on a dataset, and 0 for a predictions folder holding a file
    for none of ``sample_ids`` (judged from file names only)."""
    score = fit_score(description.class_names, description.mapping, label_map)
    if score and description.kind == "predictions" and sample_ids:
        from seglab.data.folder import MASK_SUFFIXES
        from seglab.sources.folder_source import PREDICTION_EXTENSIONS

        try:
            stems = {path.stem for path in description.path.iterdir() if path.suffix.lower() in PREDICTION_EXTENSIONS}
        except OSError:
            return 0
        wanted = {sample_id + suffix for sample_id in sample_ids for suffix in ("", *MASK_SUFFIXES)}
        return score if stems & wanted else 0
    return score
