"""How items are laid out in an output file: JSON lines, a JSON array, or CSV.

Items reach the exporter as JSON lines (serialised by the parser workers); a format turns a batch
of them into the bytes of one file. Every format keeps the property the durable commit step
relies on: a file cut back to any committed offset holds whole records only, and the bytes a clean
close adds (a JSON array's closing bracket) lie after the last committed offset.
"""

from __future__ import annotations

import csv
import io
import logging
from typing import Any, Protocol

import orjson

__all__ = ["CsvFormat", "Format", "JsonArrayFormat", "JsonLinesFormat", "format_for"]

log = logging.getLogger("crawlkit.export")


class Format(Protocol):
    """One output format. ``first`` tells ``encode`` that the file holds nothing yet."""

    name: str
    trailer: bytes  # written by a clean close of a file that holds items
    empty: bytes  # written by a clean close of a file that holds none

    def encode(self, lines: list[bytes], first: bool) -> bytes: ...

    def resume(self, head: bytes) -> None: ...

    def count(self, data: bytes) -> int: ...


class JsonLinesFormat:
    """One JSON object a line: valid at every committed offset, the default."""

    name = "jsonl"
    trailer = b""
    empty = b""

    def encode(self, lines: list[bytes], first: bool) -> bytes:
        return b"".join(lines)

    def resume(self, head: bytes) -> None:
        return None

    def count(self, data: bytes) -> int:
        return data.count(b"\n")


class JsonArrayFormat:
    """A JSON array, one item a line: ``[`` and the first item, then ``,`` and one item a line.

    The closing ``]`` is written by a clean close. After a hard kill the file lacks it until the
    crawl is resumed and ends: resuming cuts the file back to the committed offset (which never
    includes the bracket) and goes on with the next item.
    """

    name = "json"
    trailer = b"\n]\n"
    empty = b"[]\n"

    def encode(self, lines: list[bytes], first: bool) -> bytes:
        # item_to_json ends every line with a newline, and orjson never writes a raw newline
        # inside one: stripping it leaves exactly one item.
        body = b",\n".join(line[:-1] if line.endswith(b"\n") else line for line in lines)
        return (b"[\n" if first else b",\n") + body

    def resume(self, head: bytes) -> None:
        return None

    def count(self, data: bytes) -> int:
        return sum(1 for line in data.split(b"\n") if line.strip() not in (b"", b"[", b"]", b"[]"))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


class CsvFormat:
    """CSV with a header line; columns from ``csv_fields`` or the first item's fields.

    Text is written as is, ``null`` as an empty cell, and anything else (numbers, booleans, lists,
    objects) as JSON. A field that is not a column is left out, with a warning the first time.
    """

    name = "csv"
    trailer = b""
    empty = b""

    def __init__(self, fields: list[str] | None = None) -> None:
        self.fields: list[str] = list(fields or [])
        self._warned: set[str] = set()
        self.empty = self._header() if self.fields else b""

    def _header(self) -> bytes:
        out = io.StringIO()
        csv.writer(out).writerow(self.fields)
        return out.getvalue().encode()

    def encode(self, lines: list[bytes], first: bool) -> bytes:
        records = [orjson.loads(line) for line in lines]
        records = [r if isinstance(r, dict) else {"value": r} for r in records]
        if not self.fields and records:
            self.fields = list(records[0])
            self.empty = self._header()
        out = io.StringIO()
        writer = csv.writer(out)
        if first:
            writer.writerow(self.fields)
        columns = set(self.fields)
        for record in records:
            extra = record.keys() - columns - self._warned
            if extra:
                self._warned |= extra
                log.warning(
                    "CSV output: field(s) %s are not columns (%s) and are left out; set csv_fields "
                    "(a feed's fields) to choose the columns",
                    ", ".join(sorted(extra)),
                    ", ".join(self.fields),
                )
            writer.writerow([_cell(record.get(name)) for name in self.fields])
        return out.getvalue().encode()

    def resume(self, head: bytes) -> None:
        """Take the columns from the header of a file being continued."""
        line = head.split(b"\n", 1)[0].decode("utf-8", "replace")
        found = next(csv.reader([line]), [])
        if found and self.fields and found != self.fields:
            log.warning(
                "CSV output: the existing file's columns (%s) differ from csv_fields (%s); "
                "keeping the file's",
                ", ".join(found),
                ", ".join(self.fields),
            )
        if found:
            self.fields = found
            self.empty = self._header()

    def count(self, data: bytes) -> int:
        rows = sum(1 for _ in csv.reader(io.StringIO(data.decode("utf-8", "replace"))))
        return max(rows - 1, 0)


def format_for(name: str, csv_fields: list[str] | None = None) -> Format:
    """A fresh format object by name (``jsonl``, ``json`` or ``csv``)."""
    if name == "csv":
        return CsvFormat(csv_fields)
    if name == "json":
        return JsonArrayFormat()
    return JsonLinesFormat()
