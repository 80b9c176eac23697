"""``seglab eval`` diagnostics: the options that tune them and the ``diagnostics`` part of the report."""

from __future__ import annotations

import argparse
from pathlib import Path

from seglab.analysis.diagnostics.objects import SizeBuckets
from seglab.analysis.diagnostics.report import DiagnosticOptions, format_diagnostics, summarise_evaluation
from seglab.analysis.diagnostics.slices import read_tags
from seglab.data.base import SegmentationDataset
from seglab.engine.predict import DatasetEvaluation
from seglab.errors import ConfigError

_MAX_TAGS_BYTES = 50 << 20


def add_diagnostics_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tags``, ``--detect-threshold``, ``--small-object``, ``--confident`` for ``seglab eval``."""
    group = parser.add_argument_group("diagnostics (objects, boundaries, calibration, slices)")
    group.add_argument("--tags", metavar="CSV", help="per-image tags, rows 'id,tag': one slice per tag in the report")
    group.add_argument(
        "--detect-threshold",
        type=float,
        default=0.5,
        help="share of an object's pixels predicted right for it to count as found (default: 0.5)",
    )
    group.add_argument(
        "--small-object",
        type=float,
        default=SizeBuckets.small,
        help="objects under this share of the image are 'small' (default: 0.01)",
    )
    group.add_argument(
        "--confident",
        type=float,
        default=0.9,
        help="'confidently wrong' means wrong with at least this confidence (default: 0.9)",
    )


def diagnostics_options(args: argparse.Namespace) -> DiagnosticOptions:
    """The options from the command line, checked before any work."""
    sizes = SizeBuckets(small=args.small_object, large=max(SizeBuckets.large, args.small_object * 5))
    return DiagnosticOptions(cover=args.detect_threshold, sizes=sizes, confident=args.confident)


def read_tags_file(path: str | None) -> dict[str, list[str]] | None:
    """The ``--tags`` CSV, or ``None`` without one; unreadable or malformed files are a :class:`ConfigError`."""
    if not path:
        return None
    try:
        with open(path, "rb") as stream:
            data = stream.read(_MAX_TAGS_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"cannot read the tags file {path}: {error.strerror or error}") from None
    if len(data) > _MAX_TAGS_BYTES:
        raise ConfigError(f"the tags file {Path(path).name} is larger than {_MAX_TAGS_BYTES >> 20} MB")
    try:
        return read_tags(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"the tags file {Path(path).name} is not UTF-8 text") from None


def check_diagnostics_arguments(args: argparse.Namespace) -> None:
    """Refuse bad thresholds or an unreadable tags file before anything is evaluated."""
    diagnostics_options(args)
    read_tags_file(args.tags)


def add_diagnostics(
    summary: dict, result: DatasetEvaluation, dataset: SegmentationDataset, args: argparse.Namespace
) -> str | None:
    """Put the ``diagnostics`` key into an eval summary; returns its text lines (None without diagnostics)."""
    options, tags = diagnostics_options(args), read_tags_file(args.tags)
    background = dataset.label_map.background_index
    diagnostics = summarise_evaluation(result, options=options, tags=tags, background_index=background)
    summary["diagnostics"] = diagnostics
    return format_diagnostics(diagnostics) if diagnostics is not None else None
