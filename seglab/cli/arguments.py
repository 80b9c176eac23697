"""The flags shared by several ``seglab`` commands: which dataset (``--data``, ``--root``, ...), and
``KEY=VALUE`` options (``--shapes``, ``--model-option``)."""

from __future__ import annotations

import argparse

from seglab.data.spec import DATA_KINDS, DataSpec

__all__ = ["add_data_arguments", "apply_shapes_options", "data_spec_from_args", "parse_key_values"]


def add_data_arguments(parser: argparse.ArgumentParser, *, split_default: str | None = "train") -> None:
    """The flags that pick a dataset: shared by stats, train, eval."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data", choices=DATA_KINDS, default=None, help="dataset layout (default: shapes, the built-in synthetic data)"
    )
    group.add_argument("--root", help="dataset folder for --data voc/camvid (e.g. ../shared/data/camvid)")
    group.add_argument("--split", default=split_default, help="split name: train/val/test (VOC: also trainval)")
    group.add_argument("--images", help="--data folder: folder of images")
    group.add_argument("--masks", help="--data folder: folder of masks (class-index or colour-coded PNGs)")
    group.add_argument(
        "--list-file", help="--data folder: optional list of 'IMAGE [MASK]' lines (matched by file name)"
    )
    group.add_argument("--label-map", help="label map JSON (class ids, names, colours, ignore index)")
    group.add_argument(
        "--mask-format", choices=("auto", "index", "rgb"), default="auto", help="--data folder: how masks are encoded"
    )


def data_spec_from_args(args: argparse.Namespace, base: DataSpec | None = None) -> DataSpec:
    """Build a DataSpec from data flags, starting from ``base`` (e.g. a checkpoint's data)."""
    spec = DataSpec() if base is None else DataSpec.from_dict(base.to_dict())
    if args.data is not None and args.data != spec.kind:
        spec = DataSpec(kind=args.data)
    for flag in ("root", "images", "masks", "list_file", "label_map"):
        value = getattr(args, flag, None)
        if value is not None:
            setattr(spec, flag, value)
    if getattr(args, "split", None):
        spec.split = args.split
    if getattr(args, "mask_format", "auto") != "auto":
        spec.mask_format = args.mask_format
    return spec


def parse_key_values(items: list[str], what: str) -> dict:
    """``KEY=VALUE`` flags as a dict; each value read as JSON where it parses (``3``, ``true``), else a string."""
    import json

    from seglab.errors import ConfigError

    parsed = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} {item!r} must look like KEY=VALUE")
        try:
            parsed[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key.strip()] = raw
    return parsed


def apply_shapes_options(spec: DataSpec, items: list[str]) -> None:
    """Merge ``--shapes KEY=VALUE`` flags into ``spec.shapes``; ConfigError names a bad option."""
    from seglab.data.shapes import ShapesConfig
    from seglab.errors import ConfigError

    merged = {**spec.shapes.to_dict(), **parse_key_values(items, "--shapes")}
    try:
        spec.shapes = ShapesConfig.from_dict(merged)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"--shapes: {error}") from None
