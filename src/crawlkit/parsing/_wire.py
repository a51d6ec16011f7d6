"""Framing for the pipes between the main process and parser workers.

A frame is an 8-byte big-endian length and a pickle (protocol 5). Long-lived workers on plain
pipes cost far less per message than ``ProcessPoolExecutor``'s machinery, which is what lets a
second core pay off for pages that take well under a millisecond to parse.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
from typing import Any, BinaryIO

__all__ = ["HEADER", "FrameReader", "encode", "encode_parts", "write_frame"]

HEADER = struct.Struct("!Q")
_PROTOCOL = 5
_READ_SIZE = 1 << 20


def encode(obj: Any) -> bytes:
    return b"".join(encode_parts(obj))


def encode_parts(obj: Any) -> tuple[bytes, bytes]:
    """A frame as its header and its pickle, for a transport's ``writelines``: joined, a batch of
    response bodies would be copied once more only to put 8 bytes in front of it."""
    payload = pickle.dumps(obj, protocol=_PROTOCOL)
    return HEADER.pack(len(payload)), payload


class FrameReader:
    """The frames arriving on a pipe, taken as they come: ``poll()`` never waits.

    A parser worker looks at its input between two callbacks, so that a page sent ahead of the
    others is parsed next, not after the batches that were sent before it.
    """

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        # A worker polls between two callbacks, and mostly nothing has come: asking poll(2) costs
        # about half what a read that fails with EAGAIN does, raised as BlockingIOError.
        self._poller = select.poll()
        self._poller.register(fd, select.POLLIN)
        self._buffer = bytearray()
        self.ended = False  # the writer closed the pipe (a partial frame at the end is dropped)

    def poll(self) -> list[Any]:
        """The frames that have arrived complete; an empty list if none has."""
        buffer = self._buffer
        if not self.ended and not self._poller.poll(0):  # POLLHUP too: the end is read below
            return self._frames() if len(buffer) >= HEADER.size else []
        while not self.ended:
            try:
                chunk = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                break
            if not chunk:
                self.ended = True
                break
            buffer += chunk
            if len(chunk) < _READ_SIZE:
                break  # the pipe is empty: no need for a read that says so
        return self._frames()

    def wait(self) -> list[Any]:
        """At least one frame, waiting for it; an empty list only at the end of the input."""
        while True:
            frames = self.poll()
            if frames or self.ended:
                return frames
            select.select([self._fd], [], [])

    def _frames(self) -> list[Any]:
        buffer = self._buffer
        frames = []
        start = 0
        with memoryview(buffer) as view:
            while len(buffer) - start >= HEADER.size:
                (size,) = HEADER.unpack_from(view, start)
                end = start + HEADER.size + size
                if len(buffer) < end:
                    break
                with view[start + HEADER.size : end] as payload:
                    frames.append(pickle.loads(payload))
                start = end
        if start:
            del buffer[:start]
        return frames


def write_frame(stream: BinaryIO, obj: Any) -> None:
    stream.write(encode(obj))
    stream.flush()
