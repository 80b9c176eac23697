"""Exceptions with messages a user can act on.

Every error seglab raises on bad input derives from :class:`SeglabError`, so the CLI and the app
can show ``str(error)`` as a one-line explanation instead of a traceback.
"""

from __future__ import annotations


class SeglabError(Exception):
    """Base class: the message says what went wrong and what to do next."""


class DatasetError(SeglabError):
    """A dataset file or folder is missing, unreadable or inconsistent."""


class PathNotAllowedError(SeglabError):
    """A link or a form named a server path outside the app's allow-list (see seglab.io.allowed_paths)."""


class LabelMapError(SeglabError):
    """A label map JSON file is malformed or inconsistent."""


class CheckpointError(SeglabError):
    """A checkpoint is missing, tampered, truncated or incompatible."""


class ConfigError(SeglabError):
    """A training or evaluation option is invalid."""


class TrainingDivergedError(SeglabError):
    """The loss or a gradient became NaN or infinite."""


class LabelError(SeglabError, ValueError):
    """A mask or prediction is unusable as class ids: wrong values, dtype or shape.

    Also a :class:`ValueError`, so callers that validate plain arrays can catch either.
    """


class SeglabWarning(UserWarning):
    """Something worked but not fully (e.g. a cache could not be written); the CLI prints it as one line."""


class CacheWriteWarning(SeglabWarning):
    """A result was computed but could not be saved to the disk cache (read-only, full): it is recomputed next time."""


class SourceError(SeglabError):
    """A model file, model description or folder of predictions is missing, unsafe, inconsistent or failed."""
