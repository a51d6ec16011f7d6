"""Job directories: where a durable crawl keeps its state between runs.

A job directory holds the SQLite frontier, a ``job.json`` that says which spider and which
output it belongs to (the file and every option that shapes it: format, gzip, parts, CSV columns;
with several feeds, each feed and its options), and a lock file that keeps a second crawl out
while one runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from .._version import __version__
from ..errors import ConfigError
from ..exporters import OutputSpec, output_key
from ._stats import JobTotals

__all__ = ["JobDir", "output_key"]

_FORMAT = 1

# The output options a job records, with how the command line sets each: resuming with another
# value would cut back or continue files that the committed offset does not describe.
_OUTPUT_OPTIONS = ("format", "gzip", "max_items_per_file", "csv_fields", "fields")


def _output_options(spec: OutputSpec) -> dict[str, object]:
    return {
        "format": spec.format,
        "gzip": spec.gzip,
        "max_items_per_file": spec.max_items_per_file,
        "csv_fields": list(spec.csv_fields),
        "fields": list(spec.fields),
    }


def _as_option(name: str, value: object) -> str:
    """The command-line option that gives ``name`` this value, for the message that names it."""
    if name == "format":
        return f"--format {value}"
    if name == "gzip":
        return "--gzip" if value else "no --gzip"
    if name == "max_items_per_file":
        return f"--max-items-per-file {value}" if value else "no --max-items-per-file"
    if isinstance(value, list) and value:
        return "-s csv_fields=" + ",".join(map(str, value))
    return "no csv_fields setting"


@dataclass
class JobDir:
    """An open, locked job directory."""

    path: Path
    _lock: IO[bytes] | None = None

    @property
    def frontier_path(self) -> Path:
        return self.path / "frontier.sqlite"

    @property
    def info_path(self) -> Path:
        return self.path / "job.json"

    @classmethod
    def default_for(cls, spider_name: str) -> Path:
        return Path(".crawlkit") / "jobs" / spider_name

    def lock(self) -> None:
        """Take the job's lock, or fail at once if another crawl holds it."""
        try:
            # Private: the frontier keeps whole requests, credentials included, to resume them.
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle = open(self.path / "lock", "a+b")  # noqa: SIM115 - held for the whole crawl
        except OSError as exc:
            raise ConfigError(f"cannot use job directory {self.path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().decode(errors="replace").strip() or "unknown"
            handle.close()
            raise ConfigError(
                f"another crawl (pid {holder}) is running on job directory {self.path}; "
                "wait for it to end, or give this one another --job-dir"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()).encode())
        handle.flush()
        self._lock = handle

    def unlock(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.truncate(0)
            self._lock.close()
            self._lock = None

    def read_info(self) -> dict[str, object] | None:
        if not self.info_path.exists():
            return None
        try:
            info = orjson.loads(self.info_path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(
                f"{self.info_path} is corrupt ({exc}); move the job directory away or use --fresh"
            ) from None
        if not isinstance(info, dict):
            raise ConfigError(f"{self.info_path} is corrupt; move the job directory away or use --fresh")
        return info

    def check(self, spider_name: str, outputs: list[OutputSpec], *, feeds: bool = False) -> bool:
        """Check that the job belongs to this spider and outputs; True if it has state to resume.

        ``feeds``: the outputs come from the ``feeds`` setting (and -o, if given): a refusal
        names the feed and its option, not a command-line option.
        """
        info = self.read_info()
        if info is None:
            return False
        if info.get("format") != _FORMAT:
            raise ConfigError(
                f"job directory {self.path} was written by an incompatible crawlkit "
                f"({info.get('crawlkit')}); use --fresh to start again or another --job-dir"
            )
        if info.get("spider") != spider_name:
            raise ConfigError(
                f"job directory {self.path} belongs to spider {info.get('spider')!r}, not {spider_name!r}; "
                "use another --job-dir, or --fresh to discard it"
            )
        if feeds or "feeds" in info:
            self._check_feeds(info, outputs)
            return self.frontier_path.exists()
        spec = outputs[0]
        recorded = str(info.get("output"))
        if recorded != output_key(spec.path):
            raise ConfigError(
                f"job directory {self.path} writes to {recorded}; resume with -o {recorded}, "
                "or use --fresh to start again"
            )
        recorded_options = info.get("output_options")
        if isinstance(recorded_options, dict):  # absent from jobs of older versions: nothing to compare
            wanted = _output_options(spec)
            for option in _OUTPUT_OPTIONS:
                was, now = recorded_options.get(option), wanted[option]
                if was is not None and was != now:
                    raise ConfigError(
                        f"job directory {self.path} was started with {_as_option(option, was)}, "
                        f"but this crawl has {_as_option(option, now)}; resume it with "
                        f"{_as_option(option, was)}, or add --fresh to start over"
                    )
        return self.frontier_path.exists()

    def _check_feeds(self, info: dict[str, object], outputs: list[OutputSpec]) -> None:
        """Several outputs: the same feeds, each with the same options, in any order.

        Each feed's committed offset is recorded by its path, so the order does not matter; a
        feed added or dropped, or one with other options, has no offset that describes it.
        """
        recorded: dict[str, object] = {str(info.get("output")): info.get("output_options")}
        feeds = info.get("feeds")
        if isinstance(feeds, dict):
            recorded.update(feeds)
        wanted = {output_key(spec.path): _output_options(spec) for spec in outputs}
        again = (
            f"resume it with the feeds it started with ({', '.join(recorded)}), or add --fresh to start over"
        )
        for key in wanted:
            if key not in recorded:
                raise ConfigError(f"job directory {self.path} was started without feed {key}; {again}")
        for key in recorded:
            if key not in wanted:
                raise ConfigError(
                    f"job directory {self.path} was started with feed {key}, which this crawl lacks; {again}"
                )
        for key, now in wanted.items():
            was = recorded[key]
            if not isinstance(was, dict):
                continue  # written by an older version: nothing to compare
            for option in _OUTPUT_OPTIONS:
                before, after = was.get(option), now[option]
                if before is not None and before != after:
                    name = "fields" if option == "csv_fields" else option  # a feed's name for it
                    raise ConfigError(
                        f"job directory {self.path} was started with feed {key} at {name} = "
                        f"{before!r}, but this crawl has {name} = {after!r}; resume it with the "
                        "feed's options as they were, or add --fresh to start over"
                    )

    def write_info(self, spider_name: str, outputs: list[OutputSpec], *, feeds: bool = False) -> None:
        first, *others = outputs
        info: dict[str, object] = {
            "format": _FORMAT,
            "crawlkit": __version__,
            "spider": spider_name,
            "output": output_key(first.path),
            "output_options": _output_options(first),
        }
        if feeds:
            info["feeds"] = {output_key(spec.path): _output_options(spec) for spec in others}
        tmp = self.info_path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))
        os.replace(tmp, self.info_path)

    @property
    def totals_path(self) -> Path:
        return self.path / "totals.json"

    def read_totals(self) -> JobTotals:
        """The summed figures of the job's earlier runs (none when missing or unreadable)."""
        try:
            data = orjson.loads(self.totals_path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return JobTotals()  # only the summary's "whole crawl" figures depend on it
        return JobTotals.from_dict(data) if isinstance(data, dict) else JobTotals()

    def write_totals(self, totals: JobTotals) -> None:
        tmp = self.totals_path.with_suffix(".tmp")
        try:
            tmp.write_bytes(orjson.dumps(totals.as_dict(), option=orjson.OPT_INDENT_2))
            os.replace(tmp, self.totals_path)
        except OSError:
            pass  # a full disk: the crawl's state is safe; only the next summary's totals are short

    def clear(self, keep: tuple[str, ...] = ()) -> list[str]:
        """Remove the job's state (``--fresh``) but the files named in ``keep``; return what was removed."""
        removed: list[str] = []
        if not self.path.exists():
            return removed
        for entry in sorted(self.path.iterdir()):
            if entry.name == "lock" or entry.name in keep:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(str(entry))
        return removed
