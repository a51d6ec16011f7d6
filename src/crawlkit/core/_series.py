"""The crawl's time series: its figures every few seconds, kept so a report can be made later.

A durable crawl appends one JSON line per sample to ``series.jsonl`` in its job folder, and
rewrites ``stats.json`` there (the crawl's figures so far, ``CrawlStats.as_dict()``) at each
sample and at the end: ``crawlkit report`` and ``crawlkit serve`` read both while the crawl runs
or long after. Each run of the job starts with a line ``{"run": {...}}`` that holds when it began
and the settings in force, so a resumed job's report shows every run, gaps and all.

The samples come from the same ``ProgressSampler`` as the progress display (``_progress.py``),
so the rates are the ones the terminal shows; nothing here runs per page. A crawl with no job
folder (the memory frontier) keeps its points in memory for ``--report``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .._version import __version__
from ..guards import MASK, is_secret_header, redact_text
from ..settings import Settings

if TYPE_CHECKING:
    from ..fetch import CrawlHostPolicy
    from ._progress import ProgressSampler, Snapshot
    from ._stats import CrawlStats

__all__ = ["SERIES_FILE", "STATS_FILE", "SeriesData", "SeriesRecorder", "load_series", "settings_in_force"]

log = logging.getLogger("crawlkit.series")

SERIES_FILE = "series.jsonl"
STATS_FILE = "stats.json"
_SLOW_HOSTS = 10
# A series that grows past this many points in memory keeps every other one: a crawl of days
# with no job folder must not grow without bound. The file of a durable job keeps them all.
_MEMORY_POINTS = 20_000


def settings_in_force(settings: Settings) -> dict[str, Any]:
    """The settings as plain data, with credentials masked (a report may be shared)."""
    data: dict[str, Any] = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if f.name == "default_headers" and isinstance(value, dict):
            value = {k: MASK if is_secret_header(k) else redact_text(str(v)) for k, v in value.items()}
        elif isinstance(value, str):
            value = redact_text(value)
        elif isinstance(value, list):
            value = [redact_text(v) if isinstance(v, str) else v for v in value]
        data[f.name] = value
    return data


@dataclass
class SeriesData:
    """A crawl's recorded points and runs, and its latest figures: what a report is made of."""

    points: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    name: str = ""


def load_series(job_path: Path) -> SeriesData:
    """What a job folder holds of its series and figures; a missing or torn line is skipped."""
    data = SeriesData(name=job_path.name)
    try:
        raw = (job_path / SERIES_FILE).read_bytes()
    except OSError:
        raw = b""
    for line in raw.splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # the last line of a crawl killed mid-write
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("run"), dict):
            data.runs.append(entry["run"])
        else:
            data.points.append(entry)
    try:
        stats = orjson.loads((job_path / STATS_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        stats = {}
    if isinstance(stats, dict):
        data.stats = stats
    return data


class SeriesRecorder:
    """Samples the crawl every ``series_interval`` seconds into points (and the job folder)."""

    def __init__(
        self,
        settings: Settings,
        *,
        name: str,
        spider: str = "",
        job_path: Path | None = None,
        host_policy: CrawlHostPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.interval = settings.series_interval
        self.job_path = job_path
        self.host_policy = host_policy
        self.data = SeriesData(name=name)
        self.spider = spider or name
        self.begun = False
        self._run = 0
        self._stats: CrawlStats | None = None

    def begin(self, stats: CrawlStats) -> None:
        """Start a run: its line in the series, with the settings in force."""
        self._stats = stats
        self.begun = True
        if self.job_path is not None:
            earlier = load_series(self.job_path)
            self.data.runs, self.data.points = earlier.runs, earlier.points
        self._run = len(self.data.runs)
        run = {
            "index": self._run,
            "started": round(time.time(), 3),
            "spider": self.spider,
            "crawlkit": __version__,
            "pid": os.getpid(),
            "settings": settings_in_force(self.settings),
        }
        self.data.runs.append(run)
        self._append({"run": run})

    async def run(self, sampler: ProgressSampler) -> None:
        """Record a point every interval until cancelled (the crawl's end records the last)."""
        while True:
            await asyncio.sleep(self.interval)
            self.record(sampler.sample())

    def record(self, snap: Snapshot) -> None:
        stats = self._stats
        assert stats is not None, "record() before begin()"
        point = {
            "t": round(time.time(), 3),
            "run": self._run,
            "elapsed": round(snap.elapsed, 3),
            "pages": snap.pages,
            "items": snap.items,
            "pages_per_s": round(snap.pages_per_s, 2),
            "items_per_s": round(snap.items_per_s, 2),
            "queued": snap.queued,
            "in_flight": snap.in_flight,
            "errors": snap.errors,
            "retries": snap.retries,
            "hosts": {host: round(rate, 2) for host, rate in snap.hosts},
        }
        points = self.data.points
        points.append(point)
        if self.job_path is None and len(points) > _MEMORY_POINTS:
            del points[::2]
        self._append(point)
        self.write_stats(stats)

    def write_stats(self, stats: CrawlStats) -> None:
        """The figures so far, for ``crawlkit report`` and the dashboard (atomic: no torn reads)."""
        if self.host_policy is not None and stats.finished is None:
            stats.slow_hosts = self.host_policy.slowest_hosts(_SLOW_HOSTS)
        figures = stats.as_dict()
        figures["running"] = stats.finished is None
        figures["updated"] = round(time.time(), 3)
        self.data.stats = figures
        if self.job_path is None:
            return
        try:
            stats_path = self.job_path / STATS_FILE
            partial = stats_path.with_name(f".{STATS_FILE}.partial")
            partial.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
            os.replace(partial, stats_path)
        except OSError as exc:
            log.debug("cannot write the crawl's figures: %s", exc)  # only the report is short

    def _append(self, entry: dict[str, Any]) -> None:
        if self.job_path is None:
            return
        try:
            with open(self.job_path / SERIES_FILE, "ab") as out:
                out.write(orjson.dumps(entry) + b"\n")
        except OSError as exc:
            log.debug("cannot record the crawl's series: %s", exc)  # a full disk: the crawl goes on
