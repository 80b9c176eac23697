"""Registering a source in the catalog: the app's form checked field by field, uploads stored, a dummy
forward pass before anything is written; removing an entry (paths are checked as in :mod:`seglab.sources.catalog`)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seglab.errors import SeglabError, SourceError
from seglab.sources.description import (
    DESCRIPTION_SUFFIX,
    SourceDescription,
    infer_kind,
    parse_description,
    save_description,
)
from seglab.sources.mapping import OTHER

if TYPE_CHECKING:
    from seglab.data.base import SegmentationDataset
from seglab.sources.catalog import (
    MAX_ENTRIES,
    REGISTERED_KINDS,
    CatalogEntry,
    catalog_dir,
    list_sources,
    read_entry,
    slug,
    within_roots,
)


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
