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


def encode_parts(header: dict[str, Any], arrays: list[np.ndarray] | tuple[np.ndarray, ...] = ()) -> list[Any]:
    """One framed message as buffers to write in turn: length, JSON header, then per array its .npy header and data.

    The array data is passed as a memoryview, never copied (a 480x360 logits array is several MB).
    """
    parts: list[Any] = []
    sizes = []
    for array in arrays:
        array = np.ascontiguousarray(array)
        if array.dtype.hasobject:
            raise ValueError("object arrays cannot be sent")
        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(head, np.lib.format.header_data_from_array_1_0(array))
        parts += [head.getvalue(), array.data.cast("B") if array.size else b""]
        sizes.append(len(parts[-2]) + array.nbytes)
    text = json.dumps({**header, "sizes": sizes}).encode()
    return [LENGTH.pack(len(text)), text, *parts]


def encode_message(header: dict[str, Any], arrays: list[np.ndarray] | tuple[np.ndarray, ...] = ()) -> bytes:
    """:func:`encode_parts` joined into one bytes object (small messages)."""
    return b"".join(bytes(part) for part in encode_parts(header, arrays))


def parse_header(data: bytes | bytearray) -> dict[str, Any]:
    header = json.loads(bytes(data).decode())
    if not isinstance(header, dict) or not all(isinstance(size, int) and size >= 0 for size in header.get("sizes", [])):
        raise ValueError("malformed message header")
    return header


def decode_array(blob: bytes | bytearray) -> np.ndarray:
    """One .npy blob, without copying its data; object arrays are refused."""
    stream = io.BytesIO(bytes(blob[:4096]))
    version = np.lib.format.read_magic(stream)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = reader(stream)
    if dtype.hasobject:
        raise ValueError("object arrays are refused")
    count = int(np.prod(shape))
    if stream.tell() + count * dtype.itemsize != len(blob):
        raise ValueError("array size does not match its header")
    array = np.frombuffer(blob, dtype=dtype, count=count, offset=stream.tell())
    return array.reshape(shape, order="F" if fortran_order else "C")


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
        arrays.append(decode_array(bytearray(blob)))
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
        for part in encode_parts(reply, outputs):
            replies.write(part)
        replies.flush()


if __name__ == "__main__":
    raise SystemExit(main())
