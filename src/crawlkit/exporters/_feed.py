"""The general exporter: any format, optionally gzipped, optionally split into numbered parts.

It keeps :class:`~crawlkit.exporters.JsonLinesExporter`'s interface and guarantees: whole records
only, ``offset`` a byte count that the commit step records and ``open(resume_offset)`` cuts back
to. With parts, the offset counts the bytes of every part in order (earlier parts are complete
and never change), so one number still names a place in the whole output.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import orjson

from ..errors import ExportError
from ._base import Mode, OutputSpec
from ._formats import CsvFormat, Format, format_for
from ._jsonl import _retrieved
from ._sink import Sink, committed_size

__all__ = ["FeedExporter"]

log = logging.getLogger("crawlkit.export")

# Encoding CSV parses every line again: past this many items a batch is encoded in a thread.
_CSV_INLINE_ITEMS = 64


class FeedExporter:
    """Writes items in ``spec.format``; see the module docs for the offset of split output."""

    def __init__(self, spec: OutputSpec, mode: Mode = "overwrite", flush_bytes: int = 256 * 1024) -> None:
        self.spec = spec
        self.path = spec.path
        self.mode = mode
        self.flush_bytes = flush_bytes
        self.items = 0
        self.format: Format = format_for(spec.format, spec.csv_fields)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._lock = asyncio.Lock()
        self._error: ExportError | None = None
        self._sink: Sink | None = None
        self._part = 1
        self._in_part = 0  # items in the current part (counted only when splitting)
        self._closed_bytes = 0  # bytes of the parts before the current one

    # -- where things go -------------------------------------------------------------------

    @property
    def offset(self) -> int:
        """Bytes written so far, across every part."""
        return self._closed_bytes + (self._sink.offset if self._sink is not None else 0)

    def _file(self, part: int) -> Path:
        return self.spec.part_path(part) if self.spec.max_items_per_file else self.spec.path

    def _new_sink(self, part: int) -> Sink:
        return Sink(self._file(part), compress=self.spec.gzip)

    def _existing_parts(self) -> list[int]:
        pattern = re.compile(
            re.escape(self.spec.part_glob_prefix) + r"(\d{4,})" + re.escape(self.spec.part_suffix)
        )
        found = []
        for path in self.spec.path.parent.glob(self.spec.part_glob_prefix + "*" + self.spec.part_suffix):
            match = pattern.fullmatch(path.name)
            if match:
                found.append(int(match.group(1)))
        return sorted(found)

    # -- opening -----------------------------------------------------------------------------

    async def open(self, resume_offset: int | None = None) -> None:
        """Open the output; when resuming, first cut it back to the last committed offset."""
        try:
            if resume_offset is not None:
                await self._resume(resume_offset)
            elif self.mode == "append":
                await self._append()
            else:
                await self._fresh()
        except OSError as exc:
            raise ExportError(f"cannot open output {self.spec.path}: {exc.strerror or exc}") from exc

    async def _fresh(self) -> None:
        if self.spec.max_items_per_file:
            for part in self._existing_parts():
                self._file(part).unlink()
        self._sink = self._new_sink(1)
        await self._sink.open(truncate_to=None)

    async def _append(self) -> None:
        parts = self._existing_parts() if self.spec.max_items_per_file else [1]
        last = parts[-1] if parts else 1
        for part in parts[:-1]:
            self._closed_bytes += self._file(part).stat().st_size
        path = self._file(last)
        size = path.stat().st_size if path.exists() else 0
        keep = self._without_tail(path, size, appending=True)
        await self._continue(last, keep)

    async def _resume(self, committed: int) -> None:
        part, remaining = 1, committed
        if self.spec.max_items_per_file:
            while True:
                path = self._file(part)
                size = path.stat().st_size if path.exists() else 0
                if remaining <= size or not self._file(part + 1).exists():
                    break
                remaining -= size
                self._closed_bytes += size
                part += 1
            for later in self._existing_parts():
                if later > part:
                    self._file(later).unlink()
        path = self._file(part)
        size = committed_size(path, remaining)
        if size > remaining:
            tail = _read_tail(path, size - remaining)
            closing = {self._new_sink(part).encoded(b) for b in (self.format.trailer, self.format.empty)}
            if tail in closing:
                log.debug("reopening %s after its clean close", path)
            else:
                log.warning("cutting %d uncommitted bytes from the end of %s", size - remaining, path)
        await self._continue(part, remaining)

    def _without_tail(self, path: Path, size: int, *, appending: bool) -> int:
        """How much of an existing file to keep when adding to it: a JSON array loses its ``]``."""
        if not size or not self.format.trailer:
            return size
        sink = self._new_sink(0)
        for closing in (self.format.trailer, self.format.empty):
            encoded = sink.encoded(closing)
            if size >= len(encoded) and _read_tail(path, len(encoded)) == encoded:
                return size - len(encoded)
        raise ExportError(
            f"cannot {'append to' if appending else 'continue'} {path}: it does not end like a JSON "
            "array that crawlkit closed; write to a new file, or use --overwrite"
        )

    async def _continue(self, part: int, keep: int) -> None:
        self._part = part
        sink = self._sink = self._new_sink(part)
        if not sink.path.exists():
            await sink.open(truncate_to=None)
        else:
            await sink.open(truncate_to=keep)
        if sink.offset and isinstance(self.format, CsvFormat):
            self.format.resume(await asyncio.to_thread(_head, sink))
        if self.spec.max_items_per_file and sink.offset:
            self._in_part = self.format.count(await asyncio.to_thread(sink.read))
            if self._in_part >= self.spec.max_items_per_file:
                trailer = sink.encoded(self.format.trailer)
                if trailer and _read_tail(sink.path, min(len(trailer), sink.offset)) != trailer:
                    await sink.write(self.format.trailer)  # a full part that lost its "]" to append
                await self._seal(sync=False)

    # -- writing -----------------------------------------------------------------------------

    def add(self, lines: list[bytes]) -> None:
        """Queue whole JSON lines; ``flush()`` writes them."""
        if self._error is not None:
            raise self._error
        if self.spec.fields and self.format.name != "csv":
            lines = [_kept(line, self.spec.fields) for line in lines]
        self._pending.extend(lines)
        self._pending_bytes += sum(map(len, lines))
        self.items += len(lines)

    @property
    def should_flush(self) -> bool:
        return self._pending_bytes >= self.flush_bytes

    async def flush(self, *, sync: bool = False) -> int:
        """Write what is queued (and fsync if asked); return the offset after it.

        Shielded, as :meth:`JsonLinesExporter.flush <crawlkit.exporters.JsonLinesExporter.flush>`:
        the lines are taken from the queue before they are encoded, compressed and written, so a
        caller cancelled meanwhile (a forced stop) would leave them out of the file, or in it but
        out of ``offset``, while their pages are acked: the next checkpoint would then record an
        offset that loses them on resume.
        """
        flushing = asyncio.ensure_future(self._flush(sync))
        flushing.add_done_callback(_retrieved)
        return await asyncio.shield(flushing)

    async def _flush(self, sync: bool) -> int:
        async with self._lock:
            if self._error is not None:
                raise self._error
            lines, self._pending, self._pending_bytes = self._pending, [], 0
            try:
                await self._write(lines)
                if sync and self._sink is not None:
                    await self._sink.sync()
            except ExportError as exc:
                self._error = exc
                raise
            return self.offset

    async def _write(self, lines: list[bytes]) -> None:
        limit = self.spec.max_items_per_file
        while lines:
            if self._sink is None:
                self._part += 1
                self._in_part = 0
                self._sink = self._new_sink(self._part)
                await self._sink.open(truncate_to=None)
            room = limit - self._in_part if limit else len(lines)
            chunk, lines = lines[:room], lines[room:]
            first = self._sink.offset == 0
            if isinstance(self.format, CsvFormat) and len(chunk) > _CSV_INLINE_ITEMS:
                data = await asyncio.to_thread(self.format.encode, chunk, first)
            else:
                data = self.format.encode(chunk, first)
            self._in_part += len(chunk)
            full = bool(limit) and self._in_part >= limit
            await self._sink.write(data + self.format.trailer if full else data)
            if full:
                await self._seal(sync=True)

    async def _seal(self, *, sync: bool) -> None:
        """Close a full part for good; the next item opens the next part."""
        sink = self._sink
        assert sink is not None
        if sync:
            await sink.sync()  # a later commit's offset covers this part: it must be on disk first
        await sink.close()
        self._closed_bytes += sink.offset
        self._sink = None

    async def close(self) -> None:
        """Write what is left and close the file cleanly (a JSON array gets its ``]``)."""
        if self._sink is None and not self._pending:
            return
        try:
            if self._error is None:
                await self.flush()
                sink = self._sink
                if sink is not None:
                    await sink.write(self.format.trailer if sink.offset else self.format.empty)
        finally:
            if self._sink is not None:
                await self._sink.close()
                self._sink = None


def _kept(line: bytes, fields: list[str]) -> bytes:
    """A JSON line with only ``fields``, in that order; a field the item lacks is left out."""
    record = orjson.loads(line)
    if not isinstance(record, dict):
        return line
    return orjson.dumps({name: record[name] for name in fields if name in record}) + b"\n"


def _read_tail(path: Path, n: int) -> bytes:
    with path.open("rb") as f:
        f.seek(-n, 2)
        return f.read()


def _head(sink: Sink) -> bytes:
    """The first line of a file (decompressed), for a CSV header."""
    if not sink.compress:
        with sink.path.open("rb") as f:
            return f.readline()
    import gzip

    with gzip.open(sink.path, "rb") as f:
        return f.readline()
