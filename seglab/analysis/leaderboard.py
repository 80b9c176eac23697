"""The class competition: score every checkpoint on a held-out split with one fixed protocol.

Each checkpoint is evaluated with :func:`seglab.engine.evaluation.evaluate_checkpoint` (disk cache by
file SHA-256 + dataset fingerprint + protocol). On top of that a small JSON summary per
(checkpoint hash, dataset, protocol) keeps the scores, the model description and the reason a
checkpoint was refused, so rebuilding the board reads a few JSON files and loads no model.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from seglab.analysis.stats import default_cache_dir
from seglab.data.base import SegmentationDataset
from seglab.data.label_map import LabelMap, write_json_atomic
from seglab.engine.checkpoint import check_compatible, load_checkpoint
from seglab.engine.evaluation import Protocol, evaluate_checkpoint, evaluation_cache_path, file_sha256
from seglab.engine.run_dir import RunDirectory
from seglab.engine.run_folder import looks_like_run
from seglab.errors import CheckpointError, ConfigError, LabelMapError, SeglabError, SourceError
from seglab.io.cache_write import write_cache
from seglab.io.names import display_name
from seglab.sources.catalog import CATALOG_FOLDER, CatalogEntry
from seglab.sources.description import DESCRIPTION_SUFFIX

__all__ = [
    "LEADERBOARD_PROTOCOL",
    "Leaderboard",
    "LeaderboardProgress",
    "LeaderboardRow",
    "SkippedCheckpoint",
    "build_leaderboard",
    "entry_name",
    "find_checkpoints",
    "held_out_split",
    "run_problem_of_checkpoint",
    "to_csv",
]

SUMMARY_VERSION = 2  # 2: checkpoints with NaN/inf weights are refused (were ranked)
# One protocol for every entry, so scores are comparable: plain single-scale whole-image inference.
LEADERBOARD_PROTOCOL = Protocol()
SUMMARY_FIELDS = ("miou", "miou_no_background", "pixel_acc", "mean_acc")
LeaderboardProgress = Callable[[float, str], None]  # (fraction done 0..1, what is happening)


@dataclass(frozen=True)
class LeaderboardRow:
    """One scored checkpoint."""

    rank: int
    run: str  # the run folder's name (display-safe, like every name and path of a row)
    file: str  # the checkpoint file name (best.pt, last.pt, ...)
    path: str
    sha256: str
    model: str
    loss: str
    step: int
    miou: float
    miou_no_background: float
    pixel_acc: float
    mean_acc: float
    iou: dict[str, float]  # per class, NaN for a class absent from ground truth and prediction


@dataclass(frozen=True)
class SkippedCheckpoint:
    """A checkpoint left off the board, with the reason in words."""

    path: str  # display-safe (see seglab.io.names)
    reason: str


@dataclass
class Leaderboard:
    """Ranked rows (best mIoU first), skipped checkpoints, and what they were scored on."""

    rows: list[LeaderboardRow]
    skipped: list[SkippedCheckpoint]
    class_names: list[str]
    protocol: Protocol
    dataset: str  # dataset.describe()
    pending: list[str] = field(default_factory=list)  # not evaluated yet (only with cached_only=True)

    def records(self) -> list[dict[str, Any]]:
        """One flat dict per row, the columns of the table and of :func:`to_csv`."""
        records = []
        for row in self.rows:
            record: dict[str, Any] = {
                "rank": row.rank,
                "run": row.run,
                "file": row.file,
                "model": row.model,
                "loss": row.loss,
                "step": row.step,
                "miou": row.miou,
                "miou_no_background": row.miou_no_background,
                "pixel_acc": row.pixel_acc,
                "mean_acc": row.mean_acc,
            }
            for name in self.class_names:
                record[f"iou_{name}"] = row.iou.get(name, math.nan)
            record.update({"sha256": row.sha256, "dataset": self.dataset, "protocol": self.protocol.describe()})
            records.append(record)
        return records

    def skipped_records(self) -> list[dict[str, str]]:
        """One row per skipped entry: its short name (:func:`entry_name`) and the reason."""
        return [{"entry": entry_name(skip.path), "reason": skip.reason} for skip in self.skipped]


def entry_name(path: str) -> str:
    """An entry as a person names it: ``run/best.pt`` for a checkpoint, the file name of a registered source."""
    return Path(path).name if path.endswith(DESCRIPTION_SUFFIX) else f"{Path(path).parent.name}/{Path(path).name}"


def find_checkpoints(runs_dir: str | os.PathLike, include_last: bool = False) -> list[Path]:
    """Checkpoints under ``runs_dir``: each run folder's best.pt (else last.pt, or both with
    ``include_last``), plus any other ``*.pt`` file in a run folder or in ``runs_dir`` itself.
    Hidden files (temporary saves) are skipped. Sorted by path."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    found = [path for path in root.glob("*.pt") if path.is_file() and not path.name.startswith(".")]
    folders = (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != CATALOG_FOLDER)
    for folder in folders:
        files = {p.name: p for p in folder.glob("*.pt") if p.is_file() and not p.name.startswith(".")}
        if "best.pt" in files and "last.pt" in files and not include_last:
            files.pop("last.pt")
        found += files.values()
    return sorted(found)


def run_problem_of_checkpoint(path: str | os.PathLike) -> str | None:
    """Why the run folder holding checkpoint ``path`` is unusable, or None.

    A checkpoint in a run folder (one holding config.json, status.json, events.jsonl, best.pt or
    last.pt) is scored only if that run is usable by the definition every listing uses
    (:meth:`seglab.engine.run_dir.RunDirectory.config_problem`); its own file is checked by loading it. A
    loose ``.pt`` file beside the run folders is scored on its own.
    """
    path = Path(path)
    if not looks_like_run(path.parent):
        return None
    return RunDirectory(path.parent).config_problem()


def held_out_split(available: Iterable[str]) -> str | None:
    """The split a leaderboard should score: test when it exists (Shapes), else val (CamVid, VOC),
    else the first one available (a custom folder)."""
    splits = list(available)
    for preferred in ("test", "val"):
        if preferred in splits:
            return preferred
    return splits[0] if splits else None


def _summary_path(
    sha256: str, dataset: SegmentationDataset, protocol: Protocol, cache_dir: str | os.PathLike | None
) -> Path:
    key = hashlib.sha256(f"{SUMMARY_VERSION}|{sha256}|{dataset.fingerprint()}|{protocol.key()}".encode()).hexdigest()[
        :32
    ]
    return Path(cache_dir or default_cache_dir()) / "leaderboard" / f"{key}.json"


def _read_summary(path: Path) -> dict[str, Any] | None:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return summary if isinstance(summary, dict) and summary.get("version") == SUMMARY_VERSION else None


def _class_mismatch(path: Path, class_names: Sequence[str], dataset: SegmentationDataset) -> str | None:
    """Why a checkpoint trained on ``class_names`` cannot be scored on ``dataset`` (None when it can)."""
    if list(class_names) == list(dataset.class_names):
        return None
    return (
        f"{path} was trained on classes {', '.join(class_names)} but the data has "
        f"{', '.join(dataset.class_names)}; score it on the dataset it was trained for"
    )


def _known_class_mismatch(path: Path, dataset: SegmentationDataset) -> str | None:
    """:func:`_class_mismatch` from the label map saved beside the checkpoint in its run folder, without loading
    the model: a board can then offer to score only what can be scored. None when that file is missing."""
    try:
        label_map = LabelMap.load(path.parent / "label_map.json")
    except (OSError, LabelMapError):
        return None
    return _class_mismatch(path, label_map.names, dataset)


def _score_checkpoint(
    path: Path, dataset: SegmentationDataset, protocol: Protocol, cache_dir, progress
) -> dict[str, Any]:
    """Evaluate one checkpoint: the summary dict to cache (scores, or ``{"error": reason}``)."""
    try:
        checkpoint = load_checkpoint(path)
        check_compatible(checkpoint, dataset.label_map)
        problem = _class_mismatch(path, checkpoint.label_map.names, dataset)
        if problem:
            raise CheckpointError(problem)
        evaluation = evaluate_checkpoint(path, dataset, protocol=protocol, cache_dir=cache_dir, progress=progress)
    except (CheckpointError, ConfigError) as error:
        # The checkpoint's own faults (unreadable, other classes, unknown model) are cached as refusals;
        # data errors (DatasetError) propagate: they concern every checkpoint.
        return {"error": str(error)}
    scores = evaluation.metrics.to_dict(dataset.class_names)
    return {
        "model": checkpoint.model_name,
        "loss": str(checkpoint.config.get("loss", "?")),
        "step": checkpoint.step,
        "scores": {key: scores[key] for key in SUMMARY_FIELDS},
        "iou": scores["iou"],
    }


def build_leaderboard(
    checkpoint_paths: Sequence[str | os.PathLike],
    dataset: SegmentationDataset,
    protocol: Protocol = LEADERBOARD_PROTOCOL,
    progress: LeaderboardProgress | None = None,
    *,
    cached_only: bool = False,
    cache_dir: str | os.PathLike | None = None,
    sources: Sequence[CatalogEntry] = (),
) -> Leaderboard:
    """Score every checkpoint on ``dataset`` and rank by mIoU (then mIoU without background, then run name).

    Checkpoints that cannot be read, or whose classes differ from the data, are listed in
    ``skipped`` with the reason. Results (and refusals) are cached by file SHA-256, so a second
    build loads no model. With ``cached_only`` nothing is evaluated: uncached checkpoints are listed
    in ``pending`` (a page can show the board at once and evaluate on request).

    Args:
        checkpoint_paths: the ``.pt`` files (e.g. :func:`find_checkpoints`).
        dataset: the held-out split.
        protocol: how predictions are made; the same for every checkpoint.
        progress: called with (fraction done, message) while evaluating.
        cached_only: only read caches.
        cache_dir: cache root (default ``$SEGLAB_CACHE_DIR`` or ``~/.cache/seglab``).
        sources: registered prediction sources (:func:`seglab.sources.catalog.list_sources`) ranked beside
            the checkpoints, each under its own description (preprocessing, mapping); their cache key is
            the source's content hash, settings and mapping.
    """
    paths = [Path(p) for p in checkpoint_paths]
    entries: list[_Entry] = []
    skipped, pending = [], []
    for position, path in enumerate(paths):
        shown = display_name(str(path))  # paths and names reach a browser table and a CSV file
        label = display_name(f"{path.parent.name}/{path.name}")
        problem = run_problem_of_checkpoint(path)
        if problem is not None:  # the rule of `seglab runs` and the app's sidebar: not scored, shown with the reason
            skipped.append(SkippedCheckpoint(shown, display_name(f"run {path.parent.name} is not usable: {problem}")))
            continue
        try:
            sha256 = file_sha256(path)
        except OSError as error:
            skipped.append(SkippedCheckpoint(shown, display_name(f"cannot read the file ({error.strerror or error})")))
            continue
        summary_path = _summary_path(sha256, dataset, protocol, cache_dir)
        summary = _read_summary(summary_path)
        if summary is None and cached_only and not evaluation_cache_path(path, dataset, protocol, cache_dir).is_file():
            mismatch = _known_class_mismatch(path, dataset)
            if mismatch:  # listed once with its reason, never offered for scoring
                skipped.append(SkippedCheckpoint(shown, display_name(mismatch)))
            else:
                pending.append(shown)
            continue
        if summary is None:
            if progress:
                progress(position / len(paths), f"Evaluating {label} ({position + 1}/{len(paths)})")

            def image_progress(done: int, total: int, position: int = position, label: str = label) -> None:
                if progress:
                    progress(
                        (position + done / max(total, 1)) / len(paths), f"Evaluating {label}: {done}/{total} images"
                    )

            summary = {"version": SUMMARY_VERSION, "sha256": sha256}
            summary.update(_score_checkpoint(path, dataset, protocol, cache_dir, image_progress))
            write_cache("leaderboard", summary_path, partial(write_json_atomic, summary_path, summary))
        if "error" in summary:
            skipped.append(SkippedCheckpoint(shown, display_name(str(summary["error"]))))
        else:
            entries.append(_Entry(display_name(path.parent.name), display_name(path.name), shown, sha256, summary))
    for position, entry in enumerate(sources):
        place = (position, len(sources))
        _add_source(entry, dataset, cache_dir, cached_only, entries, skipped, pending, progress, place)
    if progress:
        progress(1.0, f"Scored {len(entries)} entries")
    return Leaderboard(
        rows=_rank(entries, dataset.class_names),
        skipped=skipped,
        class_names=list(dataset.class_names),
        protocol=protocol,
        dataset=dataset.describe(),
        pending=pending,
    )


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def _or_zero(value: float) -> float:
    return 0.0 if math.isnan(value) else value


@dataclass(frozen=True)
class _Entry:
    run: str
    file: str
    path: str
    sha256: str
    summary: dict[str, Any]


def _rank(entries: list[_Entry], class_names: Sequence[str]) -> list[LeaderboardRow]:
    def sort_key(entry: _Entry) -> tuple:
        scores = entry.summary["scores"]
        miou, foreground = _number(scores["miou"]), _number(scores["miou_no_background"])
        return (math.isnan(miou), -_or_zero(miou), -_or_zero(foreground), entry.path)

    rows = []
    for rank, entry in enumerate(sorted(entries, key=sort_key), start=1):
        summary = entry.summary
        scores = summary["scores"]
        rows.append(
            LeaderboardRow(
                rank=rank,
                run=entry.run,
                file=entry.file,
                path=entry.path,
                sha256=entry.sha256,
                model=str(summary.get("model", "?")),
                loss=str(summary.get("loss", "?")),
                step=int(summary.get("step", 0)),
                miou=_number(scores["miou"]),
                miou_no_background=_number(scores["miou_no_background"]),
                pixel_acc=_number(scores["pixel_acc"]),
                mean_acc=_number(scores["mean_acc"]),
                iou={name: _number(summary["iou"].get(name)) for name in class_names},
            )
        )
    return rows


def _add_source(
    entry: CatalogEntry,
    dataset: SegmentationDataset,
    cache_dir: str | os.PathLike | None,
    cached_only: bool,
    entries: list[_Entry],
    skipped: list[SkippedCheckpoint],
    pending: list[str],
    progress: LeaderboardProgress | None,
    place: tuple[int, int],
) -> None:
    """Score one registered source into ``entries`` (or ``skipped``/``pending``), through the same caches."""
    from seglab.engine.evaluation import _mapping_key, evaluate_source, source_cache_path

    if not entry.ok or entry.description is None:
        skipped.append(SkippedCheckpoint(str(entry.file), f"registered source {entry.name}: {entry.problem}"))
        return
    description = entry.description
    try:
        source = description.open(label_map=dataset.label_map)
        content = source.content_hash()
        key = f"{SUMMARY_VERSION}|source|{content}|{source.settings_key()}|{_mapping_key(description.mapping)}"
    except (SeglabError, OSError) as error:
        skipped.append(SkippedCheckpoint(str(entry.file), f"registered source {entry.name}: {error}"))
        return
    digest = hashlib.sha256(f"{key}|{dataset.fingerprint()}".encode()).hexdigest()[:32]
    summary_path = Path(cache_dir or default_cache_dir()) / "leaderboard" / f"{digest}.json"
    summary = _read_summary(summary_path)
    with source:
        evaluated = source_cache_path(source, dataset, description.mapping, cache_dir).is_file()
        if summary is None and cached_only and not evaluated:
            pending.append(str(entry.file))
            return
        if summary is None:
            position, total = place
            if progress:
                progress(position / max(total, 1), f"Evaluating {entry.name} ({position + 1}/{total} sources)")
            summary = {"version": SUMMARY_VERSION, "sha256": content}
            try:
                evaluation = evaluate_source(source, dataset, mapping=description.mapping, cache_dir=cache_dir)
            except SourceError as error:  # the source's own fault: cached as a refusal, like a checkpoint's
                summary["error"] = f"registered source {entry.name}: {error}"
            else:
                scores = evaluation.metrics.to_dict(dataset.class_names)
                summary.update(
                    model=source.describe(),
                    loss="-",
                    step=0,
                    scores={name: scores[name] for name in SUMMARY_FIELDS},
                    iou=scores["iou"],
                )
            write_cache("leaderboard", summary_path, partial(write_json_atomic, summary_path, summary))
    if "error" in summary:
        skipped.append(SkippedCheckpoint(str(entry.file), summary["error"]))
    else:
        entries.append(_Entry(entry.name, description.kind, str(entry.file), content, summary))


def to_csv(leaderboard: Leaderboard) -> str:
    """The board as CSV text (header + one line per row); undefined scores are empty cells."""
    records = leaderboard.records()
    columns = _columns(leaderboard.class_names)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({key: _csv_value(value) for key, value in record.items()})
    return buffer.getvalue()


def _columns(class_names: Sequence[str]) -> list[str]:
    head = ["rank", "run", "file", "model", "loss", "step", *SUMMARY_FIELDS]
    return head + [f"iou_{name}" for name in class_names] + ["sha256", "dataset", "protocol"]


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6f}"
    return value
