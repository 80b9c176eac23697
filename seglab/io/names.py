"""Display-safe names for file names that are not valid UTF-8.

On POSIX, Python decodes a file name's undecodable bytes as lone surrogates (PEP 383), which print
fine on a terminal but cannot be encoded as UTF-8: a browser, a URL or a JSON file refuses them.
Every sample id and every file name shown to a user goes through :func:`display_name` once, where
it is made, so the rest of the code only ever sees printable, UTF-8-encodable text.
"""

from __future__ import annotations


def display_name(text: str) -> str:
    """``text`` with every undecodable byte written as ``\\xNN`` (valid UTF-8 is returned unchanged).

    Distinct byte names stay distinct, so the result can serve as an id: ``caf\\xe9`` for a Latin-1
    ``café`` never collides with a real ``café``, which is UTF-8. (Only a name that literally holds the
    four characters ``\\xe9`` could look the same; datasets refuse two samples with one id.)
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape")
        return raw.decode("utf-8", "backslashreplace")
