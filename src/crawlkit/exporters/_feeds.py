"""Several outputs of one crawl (the ``feeds`` setting), written as one exporter.

Every item goes to every feed. The engine sees one exporter: its ``offset`` is the first feed's,
which the frontier's checkpoint records as it always has, and ``offsets()`` gives every feed's,
which the commit step records in the same checkpoint (in its state document). Both are read
under the commit lock after one flush of every feed, so each offset covers exactly the items of
the acks that checkpoint makes durable, and a resume cuts each feed back to its own offset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ExportError
from ..settings import Settings
from ._base import Exporter, Mode, OutputSpec, output_key, output_spec
from ._feed import FeedExporter
from ._jsonl import JsonLinesExporter

__all__ = ["Feed", "FeedSet", "exporter_for", "feeds_from_settings", "output_exporter"]


@dataclass(frozen=True, slots=True)
class Feed:
    """One output: where and how, and its own mode (None: the crawl's, from the command line)."""

    spec: OutputSpec
    mode: Mode | None = None


def feeds_from_settings(settings: Settings) -> list[Feed]:
    """The ``feeds`` setting's outputs, in the order they were written (already checked)."""
    feeds = []
    for path, options in settings.feeds.items():
        overwrite: Any = options.get("overwrite")
        mode: Mode | None = None if overwrite is None else ("overwrite" if overwrite else "append")
        spec = output_spec(
            Path(path),
            str(options.get("format", "")),
            bool(options.get("gzip", False)),
            int(options.get("max_items_per_file", 0)),
            fields=list(options.get("fields", [])),
        )
        feeds.append(Feed(spec, mode))
    return feeds


def output_exporter(spec: OutputSpec, mode: Mode) -> Exporter:
    """The exporter of one output: plain JSONL in one file keeps the lean exporter."""
    if spec.format == "jsonl" and not spec.gzip and not spec.max_items_per_file and not spec.fields:
        return JsonLinesExporter(spec.path, mode)
    return FeedExporter(spec, mode)


def exporter_for(outputs: Sequence[tuple[OutputSpec, Mode]]) -> Exporter:
    """One output's exporter, or a :class:`FeedSet` of several, each keyed by its path."""
    if not outputs:
        raise ConfigError("no output: give -o PATH, or the feeds setting")
    if len(outputs) == 1:
        return output_exporter(*outputs[0])
    return FeedSet([(output_key(spec.path), output_exporter(spec, mode)) for spec, mode in outputs])


class FeedSet:
    """Writes every item to each of several exporters; see the module docs for the offsets."""

    def __init__(self, feeds: list[tuple[str, Exporter]]) -> None:
        if not feeds:
            raise ValueError("a feed set needs at least one feed")
        self._feeds = feeds  # (key the checkpoint records the offset under, exporter)
        self.items = 0

    @property
    def offset(self) -> int:
        """The first feed's offset: the one the frontier's checkpoint records."""
        return self._feeds[0][1].offset

    def offsets(self) -> dict[str, int]:
        """Every feed's offset, by key."""
        return {key: exporter.offset for key, exporter in self._feeds}

    @property
    def should_flush(self) -> bool:
        return any(exporter.should_flush for _, exporter in self._feeds)

    async def open(self, resume_offset: int | None = None, offsets: object = None) -> None:
        """Open every feed; when resuming, cut each back to its own offset in ``offsets``.

        A job's feeds are fixed when it starts (job.json), and every checkpoint records them all:
        a feed missing from a checkpoint's ``offsets`` means a damaged checkpoint.
        """
        if resume_offset is None:
            for _, exporter in self._feeds:
                await exporter.open()
            return
        recorded = offsets if isinstance(offsets, dict) else {}  # as the checkpoint's JSON has it
        for key, exporter in self._feeds:
            offset = recorded.get(key)
            if not isinstance(offset, int):
                raise ExportError(
                    f"the job's last checkpoint records no offset for feed {key}; it cannot be resumed "
                    "exactly: add --fresh to start over"
                )
            await exporter.open(resume_offset=offset)

    def add(self, lines: list[bytes]) -> None:
        for _, exporter in self._feeds:
            exporter.add(lines)
        self.items += len(lines)

    async def flush(self, *, sync: bool = False) -> int:
        """Flush every feed (each shielded, as one exporter's flush is); return the first's offset."""
        results = await asyncio.gather(
            *(exporter.flush(sync=sync) for _, exporter in self._feeds), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return self.offset

    async def close(self) -> None:
        """Close every feed, even after one fails; then raise the first failure."""
        failure: BaseException | None = None
        for _, exporter in self._feeds:
            try:
                await exporter.close()
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
