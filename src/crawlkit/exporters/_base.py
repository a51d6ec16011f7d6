"""What every exporter offers the engine, and where the output goes (format, gzip, parts)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

__all__ = ["Exporter", "Mode", "OutputSpec", "is_stream", "output_key", "output_spec"]

Mode = Literal["overwrite", "append"]

_EXTENSIONS = {".jsonl": "jsonl", ".jl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv"}


def is_stream(path: Path) -> bool:
    """Whether ``path`` is a character device or a pipe (``/dev/null``, ``/dev/stdout``, a FIFO).

    A stream cannot be synced, cut back or measured: its output is written and that is all, so a
    resumed crawl cannot take back what it wrote after the last commit.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def output_key(path: Path) -> str:
    """How job.json and a checkpoint name an output: its real path, but a stream as it was given.

    ``/dev/stdout`` resolves to ``/proc/PID/fd/pipe:[N]``, a name that changes with every process,
    so a crawl written to ``-o -`` could never be resumed with the same command.
    """
    return str(path.absolute()) if is_stream(path) else str(path.resolve())


class Exporter(Protocol):
    """The engine's view of an exporter.

    ``add()`` queues whole JSON lines; ``flush()`` writes them and returns ``offset``, the byte
    position that the durable commit step records; ``open(resume_offset)`` cuts the output back
    to such a position before going on. Bytes are only ever written in whole records.
    """

    items: int

    @property
    def offset(self) -> int: ...

    @property
    def should_flush(self) -> bool: ...

    async def open(self, resume_offset: int | None = None) -> None: ...

    def add(self, lines: list[bytes]) -> None: ...

    async def flush(self, *, sync: bool = False) -> int: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """Where and how items are written.

    With ``max_items_per_file``, ``path`` names the series: ``out.jsonl`` is written as
    ``out-0001.jsonl``, ``out-0002.jsonl``, ...
    """

    path: Path
    format: str = "jsonl"
    gzip: bool = False
    max_items_per_file: int = 0
    csv_fields: list[str] = field(default_factory=list)
    # The fields a JSON or JSONL output keeps, in this order (a feed's ``fields``); empty: all.
    fields: list[str] = field(default_factory=list)

    @property
    def _stem_and_suffix(self) -> tuple[str, str]:
        name = self.path.name
        gz = ""
        if name.endswith(".gz"):
            name, gz = name[:-3], ".gz"
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem:
            return name, gz
        return stem, f".{ext}{gz}"

    @property
    def part_glob_prefix(self) -> str:
        return self._stem_and_suffix[0] + "-"

    @property
    def part_suffix(self) -> str:
        return self._stem_and_suffix[1]

    def part_path(self, part: int) -> Path:
        """The file of part ``part`` (counted from 1)."""
        return self.path.with_name(f"{self.part_glob_prefix}{part:04d}{self.part_suffix}")

    @property
    def first_file(self) -> Path:
        """The file written first: the output itself, or its first part."""
        return self.part_path(1) if self.max_items_per_file else self.path

    @property
    def label(self) -> str:
        """How the summary names the output."""
        if not self.max_items_per_file:
            return str(self.path)
        pattern = self.path.with_name(f"{self.part_glob_prefix}NNNN{self.part_suffix}")
        return f"{pattern} ({self.max_items_per_file} items per file)"


def output_spec(
    path: Path,
    output_format: str = "",
    gzip: bool = False,
    max_items_per_file: int = 0,
    csv_fields: list[str] | None = None,
    fields: list[str] | None = None,
) -> OutputSpec:
    """The output's format from ``output_format`` or else the file's extension (``.gz`` aside).

    ``fields`` are a feed's: the columns of a CSV feed, or the fields a JSON feed keeps.
    """
    name = path.name.lower()
    compressed = gzip or name.endswith(".gz")
    if name.endswith(".gz"):
        name = name[:-3]
    fmt = output_format.lower() or _EXTENSIONS.get(Path(name).suffix, "jsonl")
    if fields and fmt == "csv":
        csv_fields, fields = fields, None
    return OutputSpec(path, fmt, compressed, max_items_per_file, list(csv_fields or []), list(fields or []))
