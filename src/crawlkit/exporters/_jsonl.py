"""The JSONL exporter: one writer, batched asynchronous writes (aiofiles), whole lines only.

Items arrive as complete JSON lines; the exporter only ever writes whole buffers of whole lines,
so a clean stop can never leave a partial line behind. ``offset`` is the byte length of what has
been written and flushed, which the durable commit step records.

The file itself is a :class:`~crawlkit.exporters._sink.Sink`, as for every other format: it
keeps the offset, cuts a failed write's partial buffer back off at once (the error names the file
and the cause), and fsyncs. What this exporter adds is the cheapest batching there is for lines
that are already encoded: one growing buffer, written when ``flush_bytes`` pile up.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from ..errors import ExportError
from ._base import Mode
from ._sink import Sink, committed_size

__all__ = ["JsonLinesExporter"]

log = logging.getLogger("crawlkit.export")


class JsonLinesExporter:
    """Appends JSON lines to a file; ``should_flush`` says when ``flush_bytes`` have piled up."""

    def __init__(self, path: Path, mode: Mode = "overwrite", flush_bytes: int = 256 * 1024) -> None:
        self.path = path
        self.mode = mode
        self.flush_bytes = flush_bytes
        self.items = 0
        self._sink = Sink(path, compress=False)
        self._buffer = bytearray()
        self._lock = asyncio.Lock()
        self._error: ExportError | None = None

    @property
    def offset(self) -> int:
        """Bytes written to the file so far."""
        return self._sink.offset

    async def open(self, resume_offset: int | None = None) -> None:
        """Open the output; when resuming, first cut it back to the last committed offset.

        Bytes past that offset belong to work that was never committed: it will be done again.
        """
        try:
            if resume_offset is not None:
                size = committed_size(self.path, resume_offset)
                if size > resume_offset:
                    log.warning(
                        "cutting %d uncommitted bytes from the end of %s", size - resume_offset, self.path
                    )
                keep: int | None = resume_offset
            elif self.mode == "append":
                keep = self.path.stat().st_size if self.path.exists() else None
            else:
                keep = None
        except OSError as exc:
            raise ExportError(f"cannot open output {self.path}: {exc.strerror or exc}") from exc
        await self._sink.open(truncate_to=keep)

    def add(self, lines: list[bytes]) -> None:
        """Queue whole JSON lines; ``flush()`` writes them (the engine calls it once ``should_flush``)."""
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
            assert self._sink.is_open, "exporter is not open"
            try:
                if self._buffer:
                    data = bytes(self._buffer)
                    self._buffer.clear()
                    await self._sink.write(data)
                if sync:
                    await self._sink.sync()
            except ExportError as exc:
                self._error = exc  # the file is cut back to the last whole buffer: nothing more goes in
                raise
            return self._sink.offset

    async def close(self) -> None:
        if not self._sink.is_open:
            return
        try:
            if self._error is None:
                await self.flush()
        finally:
            await self._sink.close()


def _retrieved(task: asyncio.Future[int]) -> None:
    if not task.cancelled():
        task.exception()
