"""What students download: the hidden split's images, without labels, as one zip.

Each image is a lossless PNG named ``<id>.png``, so a predicted mask saved under the same name fits
the upload check. A ``README.txt`` states the expected submission format and the class ids. The
zip is built once per competition and dataset fingerprint and kept in ``downloads/``.
"""

from __future__ import annotations

import io
import threading
import zipfile
from pathlib import Path

from seglab.competition.competitions import Competition, hidden_images
from seglab.competition.errors import CompetitionError
from seglab.competition.store import CompetitionStore
from seglab.data.spec import build_dataset
from seglab.io.atomic_files import atomic_write

_BUILD_LOCK = threading.Lock()  # thirty students clicking Download at once build the zip once


def submission_format(competition: Competition) -> str:
    """The README text of the download: how to name and encode the predicted masks."""
    classes = "\n".join(f"  {index}: {name}" for index, name in enumerate(competition.class_names))
    return (
        f"{competition.name}: hidden images (no labels)\n\n"
        "Predict every image and submit a zip with one mask per image:\n"
        "  - named like the image: <id>.png (all at the top of the zip, or all in one folder)\n"
        "  - the same width and height as the image\n"
        "  - a single-channel 8-bit PNG whose pixel values are class ids:\n"
        f"{classes}\n"
        "  e.g. PIL.Image.fromarray(labels.astype('uint8')).save('<id>.png')\n"
        "Or submit your seglab checkpoint (best.pt) instead: the server predicts these images itself.\n"
    )


def hidden_images_zip(store: CompetitionStore, competition: Competition) -> Path:
    """The zip of hidden images for ``competition`` (built on first use, then read from disk)."""
    path = store.folder / "downloads" / f"competition-{competition.id}-{competition.fingerprint}.zip"
    with _BUILD_LOCK:
        if not path.is_file():
            _write_images_zip(store, competition, path)
    return path


def _write_images_zip(store: CompetitionStore, competition: Competition, path: Path) -> None:
    from PIL import Image

    dataset = build_dataset(competition.spec)
    expected = [image.sample_id for image in hidden_images(store, competition)]
    if list(dataset.ids) != expected:
        raise CompetitionError("the hidden split on the server changed since the competition was created")
    with atomic_write(path) as stream, zipfile.ZipFile(stream, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("README.txt", submission_format(competition))
        for index, sample_id in enumerate(dataset.ids):
            image, _ = dataset.load(index)  # the mask is dropped here: labels never leave the server
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            archive.writestr(f"{sample_id}.png", buffer.getvalue())
