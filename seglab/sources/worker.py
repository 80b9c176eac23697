"""``python -m seglab.sources.worker``: runs one untrusted model file for a parent process.

The parent (:class:`seglab.sources.isolation.WorkerRunner`) talks over stdin/stdout with a
pickle-free protocol: every message is a 4-byte big-endian length, a JSON header of that length,
then the arrays the header announces (``"sizes"``), each as ``.npy`` bytes read with
``allow_pickle=False``. Requests: ``{"op": "load", "kind", "path", "options"}``, ``{"op": "run"}`` +
one array, ``{"op": "exit"}``. Replies: ``{"ok": true, ...}`` (+ arrays) or ``{"ok": false, "error"}``.

A segfault, an abort or an endless loop here ends or stalls only this process; the parent turns it
into a :class:`seglab.errors.SourceError` for that source.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
from typing import Any, BinaryIO

import numpy as np

LENGTH = struct.Struct(">I")
MAX_HEADER_BYTES = 1 << 20


def encode_message(header: dict[str, Any], arrays: list[np.ndarray] | tuple[np.ndarray, ...] = ()) -> bytes:
    """One framed message: length, JSON header (with the array byte sizes), arrays as .npy bytes."""
    blobs = []
    for array in arrays:
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
        blobs.append(buffer.getvalue())
    head = json.dumps({**header, "sizes": [len(blob) for blob in blobs]}).encode()
    return LENGTH.pack(len(head)) + head + b"".join(blobs)


def parse_header(data: bytes) -> dict[str, Any]:
    header = json.loads(data.decode())
    if not isinstance(header, dict) or not all(isinstance(size, int) and size >= 0 for size in header.get("sizes", [])):
        raise ValueError("malformed message header")
    return header


def decode_array(blob: bytes) -> np.ndarray:
    """One .npy blob; object arrays are refused (``allow_pickle=False``)."""
    return np.lib.format.read_array(io.BytesIO(blob), allow_pickle=False)


def _read_exact(stream: BinaryIO, count: int) -> bytes | None:
    chunks, remaining = [], count
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_message(stream: BinaryIO) -> tuple[dict[str, Any], list[np.ndarray]] | None:
    """Blocking read of one message; ``None`` at end of stream."""
    prefix = _read_exact(stream, LENGTH.size)
    if prefix is None:
        return None
    (length,) = LENGTH.unpack(prefix)
    if length > MAX_HEADER_BYTES:
        raise ValueError(f"message header of {length} bytes")
    head = _read_exact(stream, length)
    if head is None:
        return None
    header = parse_header(head)
    arrays = []
    for size in header.get("sizes", []):
        blob = _read_exact(stream, size)
        if blob is None:
            return None
        arrays.append(decode_array(blob))
    return header, arrays


def _handle(
    header: dict[str, Any], arrays: list[np.ndarray], state: dict[str, Any]
) -> tuple[dict[str, Any], list[np.ndarray]]:
    from seglab.sources.runners import load_runner

    operation = header.get("op")
    if operation == "load":
        state["runner"] = load_runner(header["kind"], header["path"], header.get("options", {}))
        return {"ok": True, "info": state["runner"].info(), "pid": os.getpid()}, []
    if operation == "run":
        if "runner" not in state:
            return {"ok": False, "error": "no model loaded"}, []
        return {"ok": True}, [state["runner"].run(arrays[0])]
    return {"ok": False, "error": f"unknown operation {operation!r}"}, []


def main() -> int:
    """Serve requests until ``exit`` or end of input."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints of libraries must not corrupt the protocol
    requests = sys.stdin.buffer
    state: dict[str, Any] = {}
    while True:
        message = read_message(requests)
        if message is None or message[0].get("op") == "exit":
            return 0
        try:
            reply, outputs = _handle(*message, state)
        except Exception as error:  # every failure becomes a reply: the parent decides what to do
            from seglab.sources.runners import failure_message

            reply, outputs = {"ok": False, "error": failure_message(error)}, []
        replies.write(encode_message(reply, outputs))
        replies.flush()


if __name__ == "__main__":
    raise SystemExit(main())
