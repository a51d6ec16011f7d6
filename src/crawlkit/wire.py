"""Framing for the pipes between the main process and parser workers.

A frame is an 8-byte big-endian length and a pickle (protocol 5). Long-lived workers on plain
pipes cost far less per message than ``ProcessPoolExecutor``'s machinery, which is what lets a
second core pay off for pages that take well under a millisecond to parse.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any, BinaryIO

__all__ = ["HEADER", "encode", "read_frame", "write_frame"]

HEADER = struct.Struct("!Q")
_PROTOCOL = 5


def encode(obj: Any) -> bytes:
    payload = pickle.dumps(obj, protocol=_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


def read_frame(stream: BinaryIO) -> Any | None:
    """The next object from a blocking stream, or ``None`` at end of stream."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return pickle.loads(payload)


def write_frame(stream: BinaryIO, obj: Any) -> None:
    stream.write(encode(obj))
    stream.flush()
