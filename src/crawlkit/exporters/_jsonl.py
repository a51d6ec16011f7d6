"""The JSONL exporter: one writer, batched asynchronous writes (aiofiles), whole lines only.

Items arrive as complete JSON lines; the exporter only ever writes whole buffers of whole lines,
so a clean stop can never leave a partial line behind. ``offset`` is the byte length of what has
been written and flushed, which the durable commit step records.

A write that fails (disk full, file too large, I/O error) may have put part of a buffer on disk:
the file is cut back to the last whole buffer at once, and the error names the file and the cause.
The file is unbuffered (the exporter does its own batching), so no half-written buffer lingers in
memory to be written again when the file is closed.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from pathlib import Path

import aiofiles
from aiofiles.threadpool.binary import AsyncFileIO

from ..errors import ExportError
from ._base import Mode, is_stream

__all__ = ["JsonLinesExporter"]

log = logging.getLogger("crawlkit.export")


class JsonLinesExporter:
    """Appends JSON lines to a file, writing in the background once ``flush_bytes`` pile up."""

    def __init__(self, path: Path, mode: Mode = "overwrite", flush_bytes: int = 256 * 1024) -> None:
        self.path = path
        self.mode = mode
        self.flush_bytes = flush_bytes
        self.items = 0
        self._file: AsyncFileIO | None = None
        self._buffer = bytearray()
        self._lock = asyncio.Lock()
        self._offset = 0
        self._error: ExportError | None = None
        self._stream = False  # a character device or a pipe: no fsync, no cutting back

    @property
    def offset(self) -> int:
        """Bytes written to the file so far."""
        return self._offset

    async def open(self, resume_offset: int | None = None) -> None:
        """Open the output; when resuming, first cut it back to the last committed offset.

        Bytes past that offset belong to work that was never committed: it will be done again.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = is_stream(self.path)
            if self._stream:
                self._file = await aiofiles.open(self.path, "ab", buffering=0)
            elif resume_offset is not None:
                size = self.path.stat().st_size if self.path.exists() else 0
                if size < resume_offset:
                    raise ExportError(
                        f"output {self.path} holds {size} bytes but {resume_offset} were committed: "
                        "it was changed or replaced outside crawlkit; restore it or start again with --fresh"
                    )
                if size > resume_offset:
                    log.warning(
                        "cutting %d uncommitted bytes from the end of %s", size - resume_offset, self.path
                    )
                    await asyncio.to_thread(os.truncate, self.path, resume_offset)
                self._file = await aiofiles.open(self.path, "ab", buffering=0)
            else:
                append = self.mode == "append"
                self._file = await aiofiles.open(self.path, "ab" if append else "wb", buffering=0)
            # A stream has no position to resume from: what is written after it counts.
            self._offset = (resume_offset or 0) if self._stream else await self._file.tell()
        except OSError as exc:
            raise ExportError(f"cannot open output {self.path}: {exc.strerror or exc}") from exc

    def add(self, lines: list[bytes]) -> None:
        """Queue whole JSON lines; ``maybe_flush()`` writes them when enough have piled up."""
        if self._error is not None:
            raise self._error
        self._buffer += b"".join(lines)
        self.items += len(lines)

    @property
    def should_flush(self) -> bool:
        return len(self._buffer) >= self.flush_bytes

    async def flush(self, *, sync: bool = False) -> int:
        """Write what is queued (and fsync if asked); return the file's offset after it.

        The write runs shielded: a cancelled caller must not leave a write finished in the file
        but missing from ``offset``, or the offset a checkpoint records would cut committed
        items on resume.
        """
        flushing = asyncio.ensure_future(self._flush(sync))
        # A caller cancelled meanwhile never sees a write error; the exporter keeps it (every
        # later call raises it), so it is not "never retrieved".
        flushing.add_done_callback(_retrieved)
        return await asyncio.shield(flushing)

    async def _flush(self, sync: bool) -> int:
        async with self._lock:
            if self._error is not None:
                raise self._error
            assert self._file is not None, "exporter is not open"
            if self._buffer:
                data = bytes(self._buffer)
                self._buffer.clear()
                try:
                    await self._write_all(data)
                except OSError as exc:
                    self._error = ExportError(f"cannot write output {self.path}: {os_cause(exc)}")
                    await self._cut_back()
                    raise self._error from exc
                self._offset += len(data)
            if sync and not self._stream:
                try:
                    await asyncio.to_thread(os.fsync, self._file.fileno())
                except OSError as exc:
                    self._error = ExportError(f"cannot sync output {self.path}: {os_cause(exc)}")
                    raise self._error from exc
            return self._offset

    async def _write_all(self, data: bytes) -> None:
        # An unbuffered write may write less than asked (the disk filled up on the way): go on
        # until it is all written or the next write fails with the reason.
        assert self._file is not None
        view = memoryview(data)
        while view:
            written = await self._file.write(view)
            view = view[written:]

    async def _cut_back(self) -> None:
        """Remove a partial buffer that a failed write left at the end of the file."""
        assert self._file is not None
        if self._stream:
            return
        try:
            await asyncio.to_thread(os.ftruncate, self._file.fileno(), self._offset)
            await self._file.seek(self._offset)
        except OSError as exc:  # resuming cuts it back to the committed offset anyway
            log.warning("cannot cut %s back to %d bytes: %s", self.path, self._offset, os_cause(exc))

    async def close(self) -> None:
        if self._file is None:
            return
        try:
            if self._error is None:
                await self.flush()
        finally:
            await self._file.close()
            self._file = None


def _retrieved(task: asyncio.Future[int]) -> None:
    if not task.cancelled():
        task.exception()


def os_cause(exc: OSError) -> str:
    """An OSError's cause for a message: 'No space left on device (ENOSPC)'."""
    name = errno.errorcode.get(exc.errno or 0)
    text = exc.strerror or str(exc)
    return f"{text} ({name})" if name else text
