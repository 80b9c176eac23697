"""A folder of predictions written by any tool, one file per sample, as a prediction source.

Files are matched to dataset sample ids by file stem (``<id>.png``, or ``<id>_labels.png`` and the
other mask suffixes seglab's folder datasets accept, so ``seglab predict`` output works as is):

- PNG with class ids (8 or 16 bit, grayscale or palette), or colour-coded PNG decoded through a
  label map (``encoding``: auto | index | rgb, as for dataset masks). Pixels holding the label
  map's ignore value (or 255) or an unknown colour are "no class" and count as *other* (reported).
- ``.npy`` / ``.npz``: an (H, W) integer label array, or a (K, H, W) float16/float32 array of
  probabilities or logits (logits, i.e. values whose class sums are not 1, are softmaxed). In an
  ``.npz`` the array is found by name (labels / probabilities / logits / ...) or as its only array.

A prediction whose size differs from its image is an error unless ``resize=True``, which resizes it
(nearest neighbour) and says so in :meth:`PredictionFolderSource.notes`. Array headers and PNG
headers are checked against :class:`~seglab.sources.base.SourceLimits` before anything is decoded.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from seglab.data.folder import MASK_SUFFIXES
from seglab.data.io import read_image_size, read_mask, read_mask_pixels, stat_files
from seglab.data.label_map import LabelMap
from seglab.errors import DatasetError, SourceError
from seglab.sources.base import DEFAULT_LIMITS, PredictionSource, SourceLimits, SourcePrediction, softmax

PREDICTION_EXTENSIONS = (".png", ".npy", ".npz")
ENCODINGS = ("auto", "index", "rgb")
LABEL_KEYS = ("labels", "label", "prediction", "pred", "mask", "segmentation")
SCORE_KEYS = ("probabilities", "probs", "scores", "logits", "softmax")
SUM_TOLERANCE = 1e-2  # float16 probabilities sum to 1 within ~1e-3 per pixel


class PredictionFolderSource(PredictionSource):
    """See the module docstring.

    Args:
        folder: the folder of prediction files (not searched recursively).
        class_names: the classes the files' ids refer to (``None``: the dataset's classes, by id).
        label_map: decodes colour PNGs and names the ignore value (default: none; give the dataset's).
        encoding: PNG encoding: auto (per file, as dataset masks), index or rgb.
        resize: nearest-neighbour resize predictions of another size instead of refusing them.
        limits: size limits for files and decoded arrays.
    """

    kind = "predictions"
    can_predict_images = False

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        class_names: Sequence[str] | None = None,
        label_map: LabelMap | None = None,
        encoding: str = "auto",
        resize: bool = False,
        name: str | None = None,
        limits: SourceLimits = DEFAULT_LIMITS,
    ) -> None:
        self.folder = Path(folder).resolve()
        if not self.folder.is_dir():
            raise SourceError(f"predictions folder {self.folder} does not exist (or is not a folder)")
        if encoding not in ENCODINGS:
            raise SourceError(f"prediction encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
        self.name = name or self.folder.name
        self._class_names = list(class_names) if class_names is not None else None
        self.label_map, self.encoding, self.resize, self.limits = label_map, encoding, bool(resize), limits
        self.files = _prediction_files(self.folder)
        self._resized: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {}

    @property
    def class_names(self) -> list[str] | None:
        if self._class_names is not None:
            return self._class_names
        return self.label_map.names if self.label_map is not None else None

    @property
    def has_probabilities(self) -> bool:
        """True when the folder holds score arrays (judged from the first file)."""
        first = next(iter(sorted(self.files.values())), None)
        return first is not None and first.suffix in (".npy", ".npz") and self._array_info(first)[1] == 3

    def content_hash(self) -> str:
        listing = stat_files(self.folder, sorted(self.files.values()))
        return hashlib.sha256(json.dumps(listing).encode()).hexdigest()

    def settings(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "class_names": self._class_names,
            "label_map": self.label_map.to_dict() if self.label_map is not None else None,
            "encoding": self.encoding,
            "resize": self.resize,
        }

    def notes(self) -> list[str]:
        notes = []
        if self._resized:
            (source, target) = next(iter(self._resized.values()))
            notes.append(
                f"{len(self._resized)} prediction(s) had another size than their image and were resized (nearest "
                f"neighbour), e.g. {source[1]}x{source[0]} -> {target[1]}x{target[0]}"
            )
        return notes

    # -- matching ------------------------------------------------------------------------------------
    def file_for(self, sample_id: str) -> Path | None:
        """The prediction file of a sample id (exact stem first, then the mask suffixes), or None."""
        candidates = [sample_id, *(sample_id + suffix for suffix in MASK_SUFFIXES)]
        for stem in candidates:
            if stem in self.files:
                return self.files[stem]
        return None

    def match(self, sample_ids: Sequence[str]) -> tuple[list[str], list[str]]:
        """``(sample ids without a file, files matching no sample id)``."""
        missing = [sample_id for sample_id in sample_ids if self.file_for(sample_id) is None]
        used = {self.file_for(sample_id) for sample_id in sample_ids}
        extra = sorted(path.name for path in self.files.values() if path not in used)
        return missing, extra

    def prediction_size(self, sample_id: str) -> tuple[int, int]:
        """``(height, width)`` of a sample's prediction from the file header (nothing decoded)."""
        path = self._require(sample_id)
        if path.suffix == ".png":
            return read_image_size(path)
        shape, _, _ = self._array_info(path)
        return (shape[-2], shape[-1])

    # -- predictions ---------------------------------------------------------------------------------
    def predict(self, sample_id: str | None, image: np.ndarray) -> SourcePrediction:
        if sample_id is None:
            raise SourceError(
                f"{self.name} is a folder of predictions: it has none for an image that is not in the dataset"
            )
        path = self._require(sample_id)
        if path.stat().st_size > self.limits.max_file_bytes:
            raise SourceError(
                f"prediction file {path} is larger than the {self.limits.max_file_bytes / 2**20:.0f} MB limit"
            )
        labels, probabilities = self._read_png(path) if path.suffix == ".png" else self._read_array(path)
        size = tuple(image.shape[:2])
        found = tuple(labels.shape)
        if found != size:
            if not self.resize:
                raise SourceError(
                    f"prediction {path.name} is {found[1]}x{found[0]} but image {sample_id} is {size[1]}x{size[0]} "
                    "(width x height); write predictions at the image's size, or allow a nearest-neighbour resize "
                    "(resize=True, --resize-predictions)"
                )
            labels, probabilities = _resize_nearest(labels, probabilities, size)
            self._resized[sample_id] = (found, size)
        return SourcePrediction(labels, probabilities)

    def _require(self, sample_id: str) -> Path:
        path = self.file_for(sample_id)
        if path is None:
            raise SourceError(
                f"no prediction for sample {sample_id!r} in {self.folder} (expected {sample_id}.png, .npy or .npz)"
            )
        return path

    def _read_png(self, path: Path) -> tuple[np.ndarray, None]:
        height, width = read_image_size(path)
        if height * width > self.limits.max_pixels:
            raise SourceError(
                f"prediction {path} is {width}x{height}, more than the {self.limits.max_pixels / 1e6:.0f} MP limit"
            )
        try:
            pixels = read_mask_pixels(path)
            if pixels.ndim == 2 and self.encoding != "rgb":
                labels = pixels.astype(np.int64)
            else:
                labels, _ = read_mask(path, self.label_map, self.encoding)
                labels = labels.astype(np.int64)
        except DatasetError as error:
            raise SourceError(str(error).replace("mask", "prediction", 1)) from None
        if self.label_map is not None:
            labels[labels == self.label_map.ignore_index] = -1
        return labels, None

    def _array_info(self, path: Path) -> tuple[tuple[int, ...], int, np.dtype]:
        """``(shape, ndim, dtype)`` of the chosen array, from its .npy header only."""
        shape, dtype = _array_header(path, self.limits)
        return shape, len(shape), dtype

    def _read_array(self, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
        shape, dtype = _array_header(path, self.limits)
        array = _load_array(path)
        if len(shape) == 2:
            if dtype.kind not in "iub":
                raise SourceError(f"{path.name}: an (H, W) prediction must hold integer class ids, got {dtype}")
            return array.astype(np.int64), None
        if dtype.kind != "f":
            raise SourceError(
                f"{path.name}: a (K, H, W) prediction must hold float probabilities or logits, got {dtype}"
            )
        scores = array.astype(np.float32)
        if not np.isfinite(scores).all():
            raise SourceError(f"{path.name} holds NaN or infinite scores")
        sums = scores.sum(axis=0)
        is_probability = scores.min() >= 0 and np.abs(sums - 1).max() <= SUM_TOLERANCE
        probabilities = scores / sums if is_probability else softmax(scores)
        return probabilities.argmax(axis=0).astype(np.int64), probabilities.astype(np.float32, copy=False)


def _prediction_files(folder: Path) -> dict[str, Path]:
    """``{stem: path}`` of the prediction files; one file per stem."""
    files: dict[str, Path] = {}
    clashes = []
    for entry in sorted(folder.iterdir()):
        if entry.suffix.lower() not in PREDICTION_EXTENSIONS or not entry.is_file() or entry.name.startswith("."):
            continue
        if entry.stem in files:
            clashes.append(f"{files[entry.stem].name} / {entry.name}")
        files[entry.stem] = entry
    if clashes:
        raise SourceError(
            f"{folder} holds several predictions for one sample: {', '.join(clashes[:5])}; keep one per sample"
        )
    if not files:
        raise SourceError(f"{folder} holds no prediction files (.png, .npy or .npz named after the sample ids)")
    return files


def _array_header(path: Path, limits: SourceLimits) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a .npy file or of the chosen member of a .npz, checked against the limits."""
    try:
        if path.suffix == ".npy":
            with open(path, "rb") as stream:
                shape, dtype = _read_npy_header(stream)
        else:
            with zipfile.ZipFile(path) as archive:
                member = _choose_member([Path(name).stem for name in archive.namelist() if name.endswith(".npy")], path)
                with archive.open(member + ".npy") as stream:
                    shape, dtype = _read_npy_header(stream)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise SourceError(f"cannot read prediction {path}: {error}; it is corrupt or not a NumPy file") from None
    if dtype.hasobject:
        raise SourceError(f"{path.name} holds Python objects; seglab reads numeric arrays only")
    if len(shape) not in (2, 3) or min(shape, default=0) < 1:
        raise SourceError(f"{path.name} has shape {shape}; expected (H, W) labels or (K, H, W) scores")
    if shape[-2] * shape[-1] > limits.max_pixels:
        raise SourceError(
            f"{path.name} is {shape[-1]}x{shape[-2]}, more than the {limits.max_pixels / 1e6:.0f} MP limit"
        )
    if len(shape) == 3 and (shape[0] > limits.max_classes or int(np.prod(shape)) * 4 > limits.max_array_bytes):
        raise SourceError(
            f"{path.name} has shape {shape}: too many classes or too large (limits: {limits.max_classes} classes)"
        )
    if len(shape) == 3 and shape[0] == 1:
        raise SourceError(
            f"{path.name} has one score channel; store (H, W) labels or (K, H, W) scores for K >= 2 classes"
        )
    return shape, dtype


def _read_npy_header(stream: Any) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(stream)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = reader(stream)
    return tuple(int(v) for v in shape), np.dtype(dtype)


def _choose_member(names: list[str], path: Path) -> str:
    for key in (*LABEL_KEYS, *SCORE_KEYS):
        if key in names:
            return key
    if len(names) == 1:
        return names[0]
    raise SourceError(
        f"{path.name} holds arrays {names}; name the prediction one of {', '.join(LABEL_KEYS + SCORE_KEYS)} "
        "or store a single array"
    )


def _load_array(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    with np.load(path, allow_pickle=False) as archive:
        return archive[_choose_member(list(archive.files), path)]


def _resize_nearest(labels: np.ndarray, probabilities: np.ndarray | None, size: tuple[int, int]):
    """Nearest-neighbour resize by index arithmetic (pixel centres), exact for any dtype."""
    rows = np.minimum(((np.arange(size[0]) + 0.5) * labels.shape[0] / size[0]).astype(np.int64), labels.shape[0] - 1)
    columns = np.minimum(((np.arange(size[1]) + 0.5) * labels.shape[1] / size[1]).astype(np.int64), labels.shape[1] - 1)
    resized = labels[rows[:, None], columns[None, :]]
    if probabilities is None:
        return resized, None
    return resized, np.ascontiguousarray(probabilities[:, rows[:, None], columns[None, :]])


def write_prediction_png(labels: np.ndarray, path: str | os.PathLike) -> None:
    """Write (H, W) class ids as an 8-bit (ids < 256) or 16-bit grayscale PNG."""
    labels = np.asarray(labels)
    if labels.min() < 0 or labels.max() > 65535:
        raise SourceError("class ids must be within 0-65535 to be written as PNG")
    mode_array = labels.astype(np.uint8) if labels.max() < 256 else labels.astype(np.uint16)
    Image.fromarray(mode_array).save(path)
