"""Competitions: their settings, the hidden images and the fixed public/private assignment.

The hidden split's labels stay on the server. At creation a seeded share of its images (30% by
default, like Kaggle's "Usage" column) is marked *public*: submissions are ranked on those before
the reveal; the rest (*private*) decide the final ranking. The assignment is stored per image and
never changes, so every submission is scored on exactly the same images.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seglab.competition.audit import log_action
from seglab.competition.clock import now
from seglab.competition.errors import CompetitionError
from seglab.competition.scoring import KIND_LABELS, image_sizes, scorer_available
from seglab.competition.store import CompetitionStore
from seglab.data.base import SegmentationDataset
from seglab.data.spec import DataSpec, build_dataset

METRICS = {
    "miou": "mIoU, MMSegmentation's IoUMetric: one confusion matrix summed over the scored images (void pixels "
    "dropped), IoU = TP / (TP + FP + FN) per class, mean over the classes present in ground truth or prediction",
    "miou_no_background": "mIoU as above, without the background class",
    "pixel_acc": "pixel accuracy: correctly labelled pixels / labelled pixels (void dropped), over the scored images",
}
METRIC_LABELS = {"miou": "mIoU", "miou_no_background": "mIoU (no background)", "pixel_acc": "pixel accuracy"}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,62}$")


@dataclass
class CompetitionSettings:
    """What a teacher chooses when creating a competition (every default in one place)."""

    name: str
    spec: DataSpec  # the dataset; spec.split is the hidden split whose labels stay on the server
    metric: str = "miou"
    public_share: float = 0.3  # share of the hidden images on the public leaderboard
    split_seed: int = 0  # seeds the public/private assignment
    quota_count: int = 5  # scored-or-pending submissions per team ...
    quota_window_s: int = 3600  # ... within any rolling window of this many seconds
    deadline: float | None = None  # UNIX seconds; no submissions after it
    kinds: tuple[str, ...] = ("checkpoint", "masks_zip")
    max_finals: int = 2  # final submissions a team may choose for the private ranking
    max_upload_mb: float = 100.0
    show_class_iou: bool = False  # students see per-class public IoU of their own submissions
    time_limit_s: float = 300.0  # wall-clock limit of one scoring
    memory_limit_mb: int = 2048  # address space a scoring may add to the worker's (RLIMIT_AS)

    def validate(self) -> None:
        """Raise CompetitionError naming the first invalid setting."""
        if not NAME_PATTERN.match(self.name or ""):
            raise CompetitionError(
                f"competition name {self.name!r} must be 1-63 letters, digits, spaces, '_', '.' or '-', "
                "starting with a letter or digit"
            )
        if self.metric not in METRICS:
            raise CompetitionError(f"unknown metric {self.metric!r}; choose one of {', '.join(METRICS)}")
        if not 0.0 < self.public_share < 1.0:
            raise CompetitionError(f"public share must be between 0 and 1 (e.g. 0.3), got {self.public_share}")
        for name, value, low in (
            ("quota_count", self.quota_count, 1),
            ("quota_window_s", self.quota_window_s, 1),
            ("max_finals", self.max_finals, 1),
            ("memory_limit_mb", self.memory_limit_mb, 64),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise CompetitionError(f"{name} must be a whole number >= {low}, got {value!r}")
        for name, number in (("max_upload_mb", self.max_upload_mb), ("time_limit_s", self.time_limit_s)):
            if not (isinstance(number, (int, float)) and math.isfinite(number) and number > 0):
                raise CompetitionError(f"{name} must be a positive number, got {number!r}")
        if not self.kinds:
            raise CompetitionError("allow at least one submission kind")
        for kind in self.kinds:
            if kind not in KIND_LABELS:
                raise CompetitionError(f"unknown submission kind {kind!r}; choose from {', '.join(KIND_LABELS)}")
            if not scorer_available(kind):
                raise CompetitionError(
                    f"{KIND_LABELS[kind]} submissions cannot be scored by this seglab yet (the model-file scorer "
                    "is not installed); allow checkpoint and/or masks_zip"
                )


@dataclass(frozen=True)
class HiddenImage:
    """One image of the hidden split: its id, size, and whether it counts on the public leaderboard."""

    position: int
    sample_id: str
    height: int
    width: int
    is_public: bool


@dataclass(frozen=True)
class Competition:
    """A created competition, as stored."""

    id: int
    name: str
    created_at: float
    spec: DataSpec
    fingerprint: str
    class_names: tuple[str, ...]
    background_index: int | None
    metric: str
    public_share: float
    split_seed: int
    quota_count: int
    quota_window_s: int
    deadline: float | None
    kinds: tuple[str, ...]
    max_finals: int
    max_upload_mb: float
    show_class_iou: bool
    time_limit_s: float
    memory_limit_mb: int
    frozen_at: float | None = None
    revealed_at: float | None = None

    @property
    def hidden_split(self) -> str:
        return self.spec.split

    @property
    def is_frozen(self) -> bool:
        return self.frozen_at is not None

    @property
    def is_revealed(self) -> bool:
        return self.revealed_at is not None

    @property
    def state(self) -> str:
        """ "revealed", "frozen" (the public board) or "open", for a status line."""
        return "revealed" if self.is_revealed else "frozen" if self.is_frozen else "open"

    @property
    def metric_description(self) -> str:
        return METRICS[self.metric]

    @property
    def metric_label(self) -> str:
        return METRIC_LABELS[self.metric]

    def phase(self, at: float | None = None) -> str:
        """For a team's status line: "the final ranking is revealed", "open" or "closed" (the deadline passed)."""
        if self.is_revealed:
            return "the final ranking is revealed"
        return "open" if self.accepts_submissions(at) else "closed"

    def accepts_submissions(self, at: float | None = None) -> bool:
        """Open: not revealed and the deadline (if any) not passed."""
        at = now() if at is None else at
        return not self.is_revealed and (self.deadline is None or at <= self.deadline)


def default_hidden_split(splits: Sequence[str]) -> str:
    """The split a new competition hides by default: "test" when the data has one, else its last split."""
    if not splits:
        raise CompetitionError("the data source has no readable split")
    return "test" if "test" in splits else splits[-1]


def public_assignment(count: int, share: float, seed: int) -> np.ndarray:
    """``(count,)`` bool: which hidden images are public. A seeded permutation picks
    ``round(share * count)`` of them (at least one public and one private image when count >= 2)."""
    if count < 2:
        raise CompetitionError(f"the hidden split needs at least 2 images (one public, one private); it has {count}")
    public_count = min(max(round(share * count), 1), count - 1)
    chosen = np.random.default_rng(seed).permutation(count)[:public_count]
    mask = np.zeros(count, dtype=bool)
    mask[chosen] = True
    return mask


def _absolute_paths(spec: DataSpec) -> DataSpec:
    """The spec with its paths made absolute, so the worker reads the same files from any folder."""
    data = spec.to_dict()
    for name in ("root", "images", "masks", "list_file", "label_map"):
        if data.get(name):
            data[name] = str(Path(data[name]).expanduser().resolve())
    return DataSpec.from_dict(data)


def create_competition(
    store: CompetitionStore, settings: CompetitionSettings, dataset: SegmentationDataset | None = None
) -> Competition:
    """Check the settings and the hidden split, fix the public/private assignment, store it all.

    ``dataset`` is built from ``settings.spec`` when not given. Raises CompetitionError (or the
    data's DatasetError) with what to change.
    """
    settings.validate()
    spec = _absolute_paths(settings.spec)
    dataset = dataset if dataset is not None else build_dataset(spec)
    sizes = image_sizes(dataset)
    public = public_assignment(len(dataset), settings.public_share, settings.split_seed)
    label_map = dataset.label_map
    try:
        with store.transaction() as connection:
            cursor = connection.execute(
                """INSERT INTO competitions (name, created_at, spec_json, fingerprint, class_names_json,
                   background_index, metric, public_share, split_seed, quota_count, quota_window_s, deadline,
                   kinds_json, max_finals, max_upload_mb, show_class_iou, time_limit_s, memory_limit_mb)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    settings.name,
                    now(),
                    json.dumps(spec.to_dict(), sort_keys=True),
                    dataset.fingerprint(),
                    json.dumps(list(label_map.names)),
                    label_map.background_index,
                    settings.metric,
                    settings.public_share,
                    settings.split_seed,
                    settings.quota_count,
                    settings.quota_window_s,
                    settings.deadline,
                    json.dumps(list(settings.kinds)),
                    settings.max_finals,
                    settings.max_upload_mb,
                    int(settings.show_class_iou),
                    settings.time_limit_s,
                    settings.memory_limit_mb,
                ),
            )
            competition_id = int(cursor.lastrowid or 0)
            connection.executemany(
                "INSERT INTO hidden_images (competition_id, position, sample_id, height, width, is_public, mask_path) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (competition_id, position, sample_id, int(height), int(width), int(public[position]), mask_path)
                    for position, (sample_id, (height, width), mask_path) in enumerate(
                        zip(dataset.ids, sizes, _mask_files(dataset), strict=True)
                    )
                ],
            )
            log_action(
                connection,
                competition_id,
                "create",
                settings.name,
                f"{spec.describe()}, {len(dataset)} hidden images ({int(public.sum())} public), "
                f"metric {settings.metric}, quota {settings.quota_count} per {settings.quota_window_s} s",
            )
    except sqlite3.IntegrityError:
        raise CompetitionError(f"a competition named {settings.name!r} already exists; choose another name") from None
    return get_competition(store, settings.name)


def _competition_from_row(row: sqlite3.Row) -> Competition:
    return Competition(
        id=row["id"],
        name=row["name"],
        created_at=row["created_at"],
        spec=DataSpec.from_dict(json.loads(row["spec_json"])),
        fingerprint=row["fingerprint"],
        class_names=tuple(json.loads(row["class_names_json"])),
        background_index=row["background_index"],
        metric=row["metric"],
        public_share=row["public_share"],
        split_seed=row["split_seed"],
        quota_count=row["quota_count"],
        quota_window_s=row["quota_window_s"],
        deadline=row["deadline"],
        kinds=tuple(json.loads(row["kinds_json"])),
        max_finals=row["max_finals"],
        max_upload_mb=row["max_upload_mb"],
        show_class_iou=bool(row["show_class_iou"]),
        time_limit_s=row["time_limit_s"],
        memory_limit_mb=row["memory_limit_mb"],
        frozen_at=row["frozen_at"],
        revealed_at=row["revealed_at"],
    )


def list_competitions(store: CompetitionStore) -> list[Competition]:
    """Every competition, newest first."""
    with store.connect() as connection:
        rows = connection.execute("SELECT * FROM competitions ORDER BY created_at DESC, id DESC").fetchall()
    return [_competition_from_row(row) for row in rows]


def get_competition(store: CompetitionStore, name: str | None = None) -> Competition:
    """The competition called ``name``; without a name, the only (or newest) one."""
    with store.connect() as connection:
        if name is None:
            row = connection.execute("SELECT * FROM competitions ORDER BY created_at DESC, id DESC LIMIT 1").fetchone()
        else:
            row = connection.execute("SELECT * FROM competitions WHERE name = ?", (name,)).fetchone()
    if row is None:
        known = ", ".join(c.name for c in list_competitions(store)) or "none yet"
        what = f"no competition named {name!r}" if name else "no competition yet"
        raise CompetitionError(f"{what} (existing: {known}); create one with 'seglab competition create'")
    return _competition_from_row(row)


def competition_by_id(store: CompetitionStore, competition_id: int) -> Competition:
    """The competition with this database id."""
    with store.connect() as connection:
        row = connection.execute("SELECT * FROM competitions WHERE id = ?", (competition_id,)).fetchone()
    if row is None:
        raise CompetitionError(f"no competition with id {competition_id}")
    return _competition_from_row(row)


def hidden_images(store: CompetitionStore, competition: Competition) -> list[HiddenImage]:
    """The hidden split's images in scoring order, with the fixed public/private assignment."""
    with store.connect() as connection:
        rows = connection.execute(
            "SELECT position, sample_id, height, width, is_public FROM hidden_images "
            "WHERE competition_id = ? ORDER BY position",
            (competition.id,),
        ).fetchall()
    return [HiddenImage(row[0], row[1], row[2], row[3], bool(row[4])) for row in rows]


# -- which data is hidden ----------------------------------------------------------------------------
def _mask_files(dataset: SegmentationDataset) -> list[str | None]:
    """Resolved ground-truth mask files of a file-based dataset (``None`` per sample for generated data)."""
    paths = getattr(dataset, "mask_paths", None)
    if paths is None:
        return [None] * len(dataset)
    return [str(Path(path).resolve()) for path in paths]


def _hidden_mask_files(store: CompetitionStore, competition_id: int) -> frozenset[str]:
    with store.connect() as connection:
        rows = connection.execute(
            "SELECT mask_path FROM hidden_images WHERE competition_id = ? AND mask_path IS NOT NULL", (competition_id,)
        ).fetchall()
    return frozenset(row[0] for row in rows)


def hidden_split_competition(
    store: CompetitionStore | None, spec: DataSpec, dataset: SegmentationDataset | None = None
) -> Competition | None:
    """The not-yet-revealed competition whose hidden labels the data ``spec`` (with its split) would show, else
    ``None``. Pages call this to refuse the hidden split to anyone but the signed-in teacher.

    Shapes: the same generator seed and split (a sample depends only on seed, split and index; the
    other knobs redraw the same scenes). File datasets: any sample whose ground-truth file is one of
    the hidden masks, however the data is described (CamVid layout, image + mask folders, a list
    file, another path spelling). ``dataset`` (built from ``spec`` when not given) supplies the files.
    """
    if store is None:
        return None
    active = [competition for competition in list_competitions(store) if not competition.is_revealed]
    if not active:
        return None
    if spec.kind == "shapes":
        wanted = (spec.shapes.seed, spec.split)
        return next(
            (c for c in active if c.spec.kind == "shapes" and (c.spec.shapes.seed, c.spec.split) == wanted), None
        )
    files = {path for path in _mask_files(dataset if dataset is not None else build_dataset(spec)) if path}
    return next((c for c in active if c.spec.kind != "shapes" and files & _hidden_mask_files(store, c.id)), None)
