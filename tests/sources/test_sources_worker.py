"""Tests for the worker protocol of seglab/sources/worker.py: framed JSON + .npy bytes, never pickles."""

from __future__ import annotations

import io

import numpy as np
import pytest

from seglab.sources.worker import decode_array, encode_message, encode_parts, read_message


def test_messages_round_trip_arrays_of_every_numeric_kind():
    arrays = [
        np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2),
        np.array([[3, -1]], np.int64),
        np.zeros((0, 4), np.uint8),
    ]
    header, decoded = read_message(io.BytesIO(encode_message({"op": "run", "note": "é"}, arrays)))
    assert header["op"] == "run" and header["note"] == "é" and len(header["sizes"]) == 3
    for sent, received in zip(arrays, decoded, strict=True):
        np.testing.assert_array_equal(received, sent)
        assert received.dtype == sent.dtype and received.flags.writeable


def test_object_arrays_are_refused_both_ways():
    with pytest.raises(ValueError, match="object arrays"):
        encode_parts({"op": "run"}, [np.array([{"a": 1}], dtype=object)])
    blob = io.BytesIO()
    np.save(blob, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="object arrays are refused"):
        decode_array(bytearray(blob.getvalue()))


def test_a_truncated_array_is_refused_and_a_closed_stream_ends_reading():
    blob = io.BytesIO()
    np.save(blob, np.ones((4, 4), np.float32))
    with pytest.raises(ValueError, match="does not match its header"):
        decode_array(bytearray(blob.getvalue()[:-8]))
    assert read_message(io.BytesIO(b"")) is None
    assert read_message(io.BytesIO(encode_message({"op": "run"}, [np.ones(3)])[:-5])) is None
