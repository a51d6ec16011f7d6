"""The JSONL exporter: one writer, batched asynchronous writes (aiofiles), whole lines only.

Items arrive as complete JSON lines; the exporter only ever writes whole buffers of whole lines,
so a clean stop can never leave a partial line behind. ``offset`` is the byte length of what has
been written and flushed, which the durable commit step records.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Literal

import aiofiles
from aiofiles.threadpool.binary import AsyncBufferedIOBase

from .errors import ExportError

__all__ = ["JsonLinesExporter"]

log = logging.getLogger("crawlkit.export")

Mode = Literal["overwrite", "append"]


class JsonLinesExporter:
    """Appends JSON lines to a file, writing in the background once ``flush_bytes`` pile up."""

    def __init__(self, path: Path, mode: Mode = "overwrite", flush_bytes: int = 256 * 1024) -> None:
        self.path = path
        self.mode = mode
        self.flush_bytes = flush_bytes
        self.items = 0
        self._file: AsyncBufferedIOBase | None = None
        self._buffer = bytearray()
        self._lock = asyncio.Lock()
        self._offset = 0
        self._error: ExportError | None = None

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
            if resume_offset is not None:
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
                self._file = await aiofiles.open(self.path, "ab")
            else:
                self._file = await aiofiles.open(self.path, "ab" if self.mode == "append" else "wb")
            self._offset = await self._file.tell()
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
        """Write what is queued (and fsync if asked); return the file's offset after it."""
        async with self._lock:
            if self._error is not None:
                raise self._error
            assert self._file is not None, "exporter is not open"
            if self._buffer:
                data = bytes(self._buffer)
                self._buffer.clear()
                try:
                    await self._file.write(data)
                    await self._file.flush()
                except OSError as exc:
                    self._error = ExportError(f"cannot write output {self.path}: {exc.strerror or exc}")
                    raise self._error from exc
                self._offset += len(data)
            if sync:
                try:
                    await asyncio.to_thread(os.fsync, self._file.fileno())
                except OSError as exc:
                    self._error = ExportError(f"cannot sync output {self.path}: {exc.strerror or exc}")
                    raise self._error from exc
            return self._offset

    async def close(self) -> None:
        if self._file is None:
            return
        try:
            if self._error is None:
                await self.flush()
        finally:
            await self._file.close()
            self._file = None
