"""Reading images and masks from disk, with errors that name the file and say what to do.

Images come back as (H, W, 3) uint8 RGB whatever their mode. Masks come back as (H, W) uint8 class
indices: palette ('P') and grayscale PNGs are read as raw indices (a VOC palette PNG stores the
class id in each pixel and the colours only in its palette), RGB colour-coded masks are decoded
through the label map's colours. Pillow reads everything: it keeps the decompression-bomb limit,
reports truncated files instead of padding them, and, unlike ``cv2.imread``, does not turn a
palette PNG into colours.
"""

from __future__ import annotations

import os
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from seglab.data.label_map import LABEL_MAP_HINT, LabelMap
from seglab.errors import DatasetError

MASK_FORMATS = ("auto", "index", "rgb")
MAX_LISTED_VALUES = 10

# Pillow's failure modes for a file that is not a readable image: unidentified format, truncated
# or corrupt data (OSError, SyntaxError/ValueError from broken headers, EOFError), or too many pixels.
_READ_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)
_INDEX_MODES = {"P", "L", "1", "I", "I;16", "I;16L", "I;16B", "I;16N", "LA", "PA"}


def read_image(path: str | os.PathLike, *, upright: bool = False) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB (grayscale, RGBA, palette, CMYK and 16-bit converted).

    The one rule for EXIF orientation, used by every surface (see :func:`oriented`):

    - ``upright=False`` (datasets: training, stats, the app's Dataset and Inspect pages): the pixels
      as stored. Masks carry no EXIF and are drawn on the stored pixels, so rotating only the image
      would misalign it with its mask (the convention of torchvision, MMSegmentation and CamVid/VOC).
    - ``upright=True`` (a lone photo: ``seglab predict``, the app's upload through
      :func:`read_image_bytes`): rotated as the camera recorded, i.e. as a phone or viewer shows it.

    Raises :class:`DatasetError` naming the file.
    """
    return _rgb_array(oriented(_open_loaded(path, "image"), upright=upright))


def oriented(image: Image.Image, *, upright: bool) -> Image.Image:
    """``image`` as stored, or with its EXIF orientation applied when ``upright`` (the rule of :func:`read_image`)."""
    return ImageOps.exif_transpose(image) if upright else image


def _rgb_array(image: Image.Image) -> np.ndarray:
    """A loaded Pillow image of any mode as (H, W, 3) uint8 RGB."""
    if image.mode == "RGB":
        return np.asarray(image)
    if image.mode in {"I", "I;16", "I;16L", "I;16B", "I;16N"}:
        # 16-bit grayscale: keep the top byte so the full range maps onto 0-255.
        gray = (np.asarray(image).astype(np.int64) >> 8).clip(0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "F":
        gray = np.nan_to_num(np.asarray(image)).clip(0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # Pillow asks palette-with-transparency images to go via RGBA
    return np.asarray(image.convert("RGB"))


def read_mask(path: str | os.PathLike, label_map: LabelMap | None, mask_format: str = "auto") -> tuple[np.ndarray, int]:
    """Read a mask file as ``(mask (H, W) uint8 class indices, unknown_colour_pixels)``.

    ``mask_format``:

    - ``"index"``: pixel values are class ids (palette 'P' PNGs read as raw indices, grayscale
      as is, an RGB file only if its three channels are equal).
    - ``"rgb"``: pixel colours are class colours, decoded with ``label_map.encode_rgb``; colours
      not in the map become the ignore index and are counted in ``unknown_colour_pixels``.
    - ``"auto"``: decided per file: P/L/I modes are indices, RGB/RGBA are colours, except an RGB
      file whose channels are equal everywhere, which is an index mask saved as RGB (unless its
      values are not valid ids but are all class colours, e.g. a colour mask holding only grays).

    ``label_map`` may be ``None`` only for index masks (colour masks raise :class:`DatasetError`).
    """
    if mask_format not in MASK_FORMATS:
        raise DatasetError(f"mask format {mask_format!r} is not one of {', '.join(MASK_FORMATS)}")
    pixels = read_mask_pixels(path, as_colours=mask_format == "rgb")
    if pixels.ndim == 2:
        return _as_index_mask(pixels, path), 0
    gray = None if mask_format == "rgb" else _gray_channel(pixels)
    if gray is None:
        if mask_format == "index":
            raise DatasetError(
                f"mask {path} is a colour (RGB) image but mask format 'index' expects class ids; "
                "use mask format 'rgb' (or 'auto') with a label map giving each class colour"
            )
        if label_map is None:
            raise DatasetError(
                f"mask {path} is colour-coded (RGB): decoding it needs a label map giving each class "
                f"colour; give {LABEL_MAP_HINT}"
            )
        return label_map.encode_rgb(pixels)
    if mask_format == "index" or label_map is None or _all_values_valid(gray, label_map):
        return gray, 0
    decoded, unknown = label_map.encode_rgb(pixels)
    return (decoded, 0) if unknown == 0 else (gray, 0)


def read_mask_pixels(path: str | os.PathLike, as_colours: bool = False) -> np.ndarray:
    """The stored values of a mask file: (H, W) for index modes (P, L, I), else (H, W, 3) uint8 RGB.

    With ``as_colours`` every mode is converted to RGB (a palette PNG through its palette).
    """
    image = _open_loaded(path, "mask")
    if image.mode in _INDEX_MODES and not as_colours:
        values = np.asarray(image)
        return values[..., 0] if values.ndim == 3 else values  # LA/PA: drop the alpha channel
    if image.mode not in {"RGB", "RGBA"}:
        image = image.convert("RGBA" if image.mode == "P" and "transparency" in image.info else "RGB")
    return np.asarray(image)[..., :3]


def validate_sample(
    image: np.ndarray,
    mask: np.ndarray,
    label_map: LabelMap,
    image_path: str | os.PathLike,
    mask_path: str | os.PathLike,
) -> None:
    """Raise :class:`DatasetError` if ``mask`` does not fit ``image`` or holds values outside ``label_map``."""
    if image.shape[:2] != mask.shape[:2]:
        raise DatasetError(
            f"mask {mask_path} is {_size(mask)} but image {image_path} is {_size(image)} (width x height); "
            "a mask must have its image's size: re-export the mask at the image's resolution or fix the pairing"
        )
    validate_labels(mask, label_map, mask_path)


def validate_labels(mask: np.ndarray, label_map: LabelMap, mask_path: str | os.PathLike) -> None:
    """Raise :class:`DatasetError` if ``mask`` holds values that are neither classes nor the ignore index."""
    if not _all_values_valid(mask, label_map):
        invalid = label_map.invalid_values(mask)
        listed = ", ".join(str(v) for v in invalid[:MAX_LISTED_VALUES])
        if len(invalid) > MAX_LISTED_VALUES:
            listed += f", ... ({len(invalid)} values in all)"
        raise DatasetError(
            f"mask {mask_path} holds label values {listed} that are not classes of label map "
            f"{label_map.name!r} (class ids 0-{label_map.num_classes - 1}, ignore index {label_map.ignore_index}); "
            f"give the label map that matches these masks ({LABEL_MAP_HINT}) or fix the mask"
        )


def list_folder(folder: str | os.PathLike[str]) -> set[str]:
    """Names of the entries of ``folder`` (empty when it does not exist): one listing, no per-file stat."""
    try:
        with os.scandir(folder) as entries:
            return {entry.name for entry in entries}
    except (FileNotFoundError, NotADirectoryError):
        return set()


def stat_files(root: str | os.PathLike, paths: list[Path]) -> list[tuple[str, int, int]]:
    """Sorted ``(path relative to root, size, mtime_ns)`` per file, ``-1`` for a missing one.

    A cheap dataset fingerprint: any edit, replacement or deletion changes it, and nothing is read.
    """
    parts = []
    for path in paths:
        try:
            stat = os.stat(path)
            size, mtime = stat.st_size, stat.st_mtime_ns
        except OSError:
            size = mtime = -1
        parts.append((Path(os.path.relpath(path, root)).as_posix(), size, mtime))
    return sorted(parts)


def read_image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(height, width)`` from the image header, without decoding the pixels."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, *_READ_ERRORS) as error:
        raise DatasetError(f"cannot read image file {path}: {error}; check that it exists and is an image") from None
    return height, width


def _open_loaded(path: str | os.PathLike, what: str) -> Image.Image:
    """Open and fully decode an image file, turning every failure into a DatasetError."""
    path = Path(path)
    if not path.is_file():
        where = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise DatasetError(
            f"{what} file {path} {where}; check the dataset path and that the file was not moved or renamed"
        )
    try:
        with Image.open(path) as image:  # closes the file even for multi-frame formats (GIF, TIFF)
            image.load()
    except Image.DecompressionBombError as error:
        raise DatasetError(
            f"{what} file {path} is too large to read safely ({error}); downscale it, "
            "or raise PIL.Image.MAX_IMAGE_PIXELS only if you trust the file"
        ) from None
    except _READ_ERRORS as error:
        raise DatasetError(
            f"cannot read {what} file {path}: {error}. It is corrupt, truncated or not an image; "
            "re-download or re-export it, or remove it from the dataset"
        ) from None
    return image


def _as_index_mask(values: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """Class ids as uint8; a 16-bit mask may hold ids above 255, which no label map can have."""
    if values.dtype == np.uint8:
        return values
    if values.dtype == bool:
        return values.astype(np.uint8)
    if values.size and (values.min() < 0 or values.max() > 255):
        outside = np.unique(values[(values < 0) | (values > 255)])
        listed = ", ".join(str(int(v)) for v in outside[:MAX_LISTED_VALUES])
        raise DatasetError(
            f"mask {path} holds label values {listed} outside 0-255; seglab masks store class ids 0-254 "
            "plus an ignore index, so re-export the mask as an 8-bit PNG"
        )
    return values.astype(np.uint8)


def _gray_channel(rgb: np.ndarray) -> np.ndarray | None:
    """The first channel when all three are equal everywhere (an index mask saved as RGB), else None."""
    red = rgb[..., 0]
    if np.array_equal(red, rgb[..., 1]) and np.array_equal(red, rgb[..., 2]):
        return np.ascontiguousarray(red)
    return None


def _all_values_valid(mask: np.ndarray, label_map: LabelMap) -> bool:
    """Cheap check first (max only), the full ``invalid_values`` scan only when it cannot decide."""
    if mask.size == 0:
        return True
    top = int(mask.max())
    if top < label_map.num_classes or top == label_map.ignore_index == label_map.num_classes:
        return int(mask.min()) >= 0
    return not label_map.invalid_values(mask)


def _size(array: np.ndarray) -> str:
    return f"{array.shape[1]}x{array.shape[0]}"


UPLOAD_FORMATS = ("PNG", "JPEG")


def read_image_bytes(data: bytes, *, max_pixels: int, what: str = "uploaded file", upright: bool = True) -> np.ndarray:
    """Decode an uploaded PNG or JPEG as (H, W, 3) uint8 RGB, refusing anything else.

    An upload is a lone photo with no mask to keep aligned, so by default its EXIF orientation is
    applied, the same rule as ``seglab predict`` (:func:`read_image` with ``upright=True``).

    The size is checked from the header before any pixel is decoded, so a small file claiming
    huge dimensions costs nothing; Pillow's decompression-bomb limit stays on and truncated files
    are reported (``LOAD_TRUNCATED_IMAGES`` is left off). Raises :class:`DatasetError`.
    """
    if not data:
        raise DatasetError(f"{what} is empty; choose a PNG or JPEG image")
    try:
        with Image.open(BytesIO(data), formats=list(UPLOAD_FORMATS)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise DatasetError(
                    f"{what} is {width}x{height} ({width * height / 1e6:.1f} MP), more than the "
                    f"{max_pixels / 1e6:.1f} MP this page accepts; downscale it and upload again"
                )
            image.load()
            return _rgb_array(oriented(image, upright=upright))
    except Image.DecompressionBombError as error:
        raise DatasetError(f"{what} is too large to decode safely ({error}); downscale it") from None
    except UnidentifiedImageError:
        raise DatasetError(f"{what} is not a PNG or JPEG image; upload a .png or .jpg file") from None
    except _READ_ERRORS as error:
        raise DatasetError(f"cannot decode {what}: {error}. It is corrupt or truncated; export it again") from None
