"""One output file, plain or gzip, written in whole chunks with a byte offset that can be cut back to.

A gzip sink compresses each write into a complete gzip member. A file of several members is one
valid gzip stream (``gzip.open`` and ``zcat`` read them all), and every member boundary is a place
the file can be cut back to, so committed offsets work exactly as for a plain file.
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import logging
import os
import zlib
from pathlib import Path

import aiofiles
from aiofiles.threadpool.binary import AsyncFileIO

from ..errors import ExportError
from ._base import is_stream

__all__ = ["Sink", "committed_size", "gzip_member", "os_cause"]

log = logging.getLogger("crawlkit.export")

# Compressing a small write on the event loop costs less than a hop to a thread.
_INLINE_COMPRESS = 16 * 1024


def gzip_member(data: bytes) -> bytes:
    """``data`` as one complete gzip member; the same input always gives the same bytes."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


class Sink:
    """An open output file: ``write`` appends, ``offset`` is its size, ``read`` its content."""

    def __init__(self, path: Path, *, compress: bool) -> None:
        self.path = path
        self.compress = compress
        self.offset = 0
        self._file: AsyncFileIO | None = None
        self._stream = False  # a character device or a pipe: no fsync, no cutting back

    def encoded(self, data: bytes) -> bytes:
        """What writing ``data`` puts on disk."""
        return gzip_member(data) if self.compress and data else data

    async def open(self, *, truncate_to: int | None) -> None:
        """Open for appending; ``truncate_to`` None starts an empty file, else cuts it to that size.

        A file that is not there yet is created either way.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = is_stream(self.path)
            if self._stream:
                # A stream has no position to resume from: what is written to it from now on counts.
                self._file = await aiofiles.open(self.path, "ab", buffering=0)
                self.offset = truncate_to or 0
                return
            if truncate_to is not None and self.path.exists() and self.path.stat().st_size > truncate_to:
                await asyncio.to_thread(os.truncate, self.path, truncate_to)
            # Unbuffered: the exporter batches by itself, and a failed write must leave no bytes in
            # a buffer that closing the file would try to write again.
            if truncate_to is None:
                self._file = await aiofiles.open(self.path, "wb", buffering=0)
            else:
                self._file = await aiofiles.open(self.path, "ab", buffering=0)
            self.offset = await self._file.tell()
        except OSError as exc:
            raise ExportError(f"cannot open output {self.path}: {os_cause(exc)}") from exc

    @property
    def is_open(self) -> bool:
        return self._file is not None

    async def write(self, data: bytes) -> None:
        if not data:
            return
        assert self._file is not None, "sink is not open"
        if self.compress:
            data = (
                gzip_member(data)
                if len(data) < _INLINE_COMPRESS
                else await asyncio.to_thread(gzip_member, data)
            )
        try:
            view = memoryview(data)
            while view:  # a write may be short when the disk fills up: the next one says why
                written = await self._file.write(view)
                view = view[written:]
        except OSError as exc:
            await self._cut_back()
            raise ExportError(f"cannot write output {self.path}: {os_cause(exc)}") from exc
        self.offset += len(data)

    async def _cut_back(self) -> None:
        """Remove what a failed write left after the last whole write (resuming would, too)."""
        assert self._file is not None
        if self._stream:
            return
        try:
            await asyncio.to_thread(os.ftruncate, self._file.fileno(), self.offset)
            await self._file.seek(self.offset)
        except OSError as exc:  # the resume cuts the file back to the committed offset anyway
            log.warning("cannot cut %s back to %d bytes: %s", self.path, self.offset, os_cause(exc))

    async def sync(self) -> None:
        assert self._file is not None, "sink is not open"
        if self._stream:
            return
        try:
            await asyncio.to_thread(os.fsync, self._file.fileno())
        except OSError as exc:
            raise ExportError(f"cannot sync output {self.path}: {os_cause(exc)}") from exc

    async def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            try:
                await file.close()
            except OSError as exc:
                raise ExportError(f"cannot close output {self.path}: {os_cause(exc)}") from exc

    def read(self) -> bytes:
        """The file's content, decompressed (for counting records or reading a CSV header)."""
        data = self.path.read_bytes()
        return gzip.decompress(data) if self.compress and data else data


def committed_size(path: Path, committed: int) -> int:
    """The size of ``path`` (0 when missing), which must hold the ``committed`` bytes a resume keeps.

    A stream (a device, a pipe) cannot be measured: it is taken to hold what was committed.
    """
    if is_stream(path):
        return committed
    size = path.stat().st_size if path.exists() else 0
    if size < committed:
        raise ExportError(
            f"output {path} holds {size} bytes but {committed} were committed: it was changed or "
            "replaced outside crawlkit; restore it or start again with --fresh"
        )
    return size


def os_cause(exc: OSError) -> str:
    """An OSError's cause for a message: 'No space left on device (ENOSPC)'."""
    name = errno.errorcode.get(exc.errno or 0)
    text = exc.strerror or str(exc)
    return f"{text} ({name})" if name else text
