"""Live progress while a crawl runs: a rich display on a terminal, periodic log lines elsewhere.

The engine calls nothing here per page. A task samples the counters the engine keeps anyway
(``CrawlStats``, the frontier's length, the number of requests in flight) on a timer, twice a
second for the display and every ``progress_interval`` seconds for log lines, and derives rates
from the difference between samples. The busiest hosts are those with the most responses over
the last few seconds: the politeness gate adds one to ``stats.recent_hosts[host]`` per response
(it knows the host already), and each sample takes that counter and leaves an empty one, so it
never holds more than one window's hosts. Hosts with requests in flight at the instant of a
sample said nothing of a fast crawl: a host serving 100 pages a second often has none.

ETA: a crawl discovers its own work, so the time left is only known once the queue shrinks. It is
shown when the queue got shorter over the last sampling window, as the queue's length divided by
the rate it shrank at; while the queue grows, it is unknown and shown as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import sys
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..settings import Settings
from ._stats import CrawlStats

if TYPE_CHECKING:
    from ._series import SeriesRecorder

__all__ = ["ProgressSampler", "Snapshot", "progress_display"]

log = logging.getLogger("crawlkit.progress")

_DISPLAY_INTERVAL = 0.5
_RATE_WINDOW = 5.0  # seconds over which rates and the queue trend are measured
_HOSTS_SHOWN = 3


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the crawl looks like at one moment, with rates over the last few seconds."""

    elapsed: float
    pages: int
    items: int
    pages_per_s: float
    items_per_s: float
    queued: int
    in_flight: int
    retries: int
    errors: int
    hosts: list[tuple[str, float]]  # the busiest, with their responses per second
    eta: float | None

    def line(self) -> str:
        """The snapshot as one log line."""
        hosts = ", ".join(f"{h} {rate:.1f}/s" for h, rate in self.hosts) or "-"
        return (
            f"progress: {self.pages} pages ({self.pages_per_s:.1f}/s), {self.items} items "
            f"({self.items_per_s:.1f}/s), queue {self.queued}, in flight {self.in_flight}, "
            f"retries {self.retries}, errors {self.errors}, busiest hosts: {hosts}, "
            f"ETA {_duration(self.eta)}, elapsed {_duration(self.elapsed)}"
        )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressSampler:
    """Turns successive readings of the crawl's counters into snapshots."""

    def __init__(self, stats: CrawlStats, frontier: Any, in_flight: Callable[[], int]) -> None:
        self._stats = stats
        self._frontier = frontier
        self._in_flight = in_flight
        self._history: deque[tuple[float, int, int, int]] = deque()  # (time, pages, items, queued)
        stats.recent_hosts = Counter()
        # Responses by host in each window between two samples, (the window's end, counts), and
        # their sum: the windows kept span the last _RATE_WINDOW seconds, as the rates do.
        self._host_windows: deque[tuple[float, Counter[str]]] = deque()
        self._host_total: Counter[str] = Counter()
        self._hosts_since = time.monotonic()

    def sample(self) -> Snapshot:
        stats = self._stats
        now = time.monotonic()
        queued = len(self._frontier)
        history = self._history
        history.append((now, stats.pages, stats.items, queued))
        while len(history) > 2 and now - history[1][0] >= _RATE_WINDOW:
            history.popleft()
        then, pages0, items0, queued0 = history[0]
        span = now - then
        rate_span = span
        if len(history) == 1:
            # The first sample has no earlier one: its rates are since the crawl began (not 0,
            # which the first log line otherwise always showed). The queue's drain stays unknown.
            rate_span, pages0, items0 = stats.elapsed, 0, 0
        pages_rate = (stats.pages - pages0) / rate_span if rate_span > 0 else 0.0
        items_rate = (stats.items - items0) / rate_span if rate_span > 0 else 0.0
        drain = (queued0 - queued) / span if span > 0 else 0.0
        eta = queued / drain if drain > 0 else (0.0 if queued == 0 and span > 0 else None)
        hosts = self._busiest_hosts(now)
        return Snapshot(
            elapsed=stats.elapsed,
            pages=stats.pages,
            items=stats.items,
            pages_per_s=pages_rate,
            items_per_s=items_rate,
            queued=queued,
            in_flight=self._in_flight(),
            retries=stats.retries,
            errors=stats.pages_failed + stats.items_failed,
            hosts=hosts,
            eta=eta,
        )

    def _busiest_hosts(self, now: float) -> list[tuple[str, float]]:
        """The hosts with the most responses over the last few seconds, with their rates."""
        stats = self._stats
        taken, stats.recent_hosts = stats.recent_hosts or Counter(), Counter()
        windows, total = self._host_windows, self._host_total
        windows.append((now, taken))
        total.update(taken)
        while len(windows) > 1 and now - windows[0][0] >= _RATE_WINDOW:
            self._hosts_since, old = windows.popleft()
            for host, count in old.items():
                left = total[host] - count
                if left > 0:
                    total[host] = left
                else:
                    del total[host]
        span = now - self._hosts_since
        if span <= 0:
            return []
        busiest = heapq.nlargest(_HOSTS_SHOWN, total.items(), key=lambda pair: pair[1])
        return [(host, count / span) for host, count in busiest]


def _mode(settings: Settings) -> str:
    if settings.progress != "auto":
        return settings.progress
    return "rich" if sys.stderr.isatty() else "log"


@contextlib.asynccontextmanager
async def progress_display(
    settings: Settings,
    stats: CrawlStats,
    frontier: Any,
    in_flight: Callable[[], int],
    series: SeriesRecorder | None = None,
) -> AsyncIterator[None]:
    """Show progress (as ``settings.progress`` says) and record ``series`` while the block runs.

    The display and the series share one sampler: it hands out the busiest hosts of each window
    once, so two samplers would each see half of them.
    """
    mode = _mode(settings)
    if mode == "off" and series is None:
        yield
        return
    sampler = ProgressSampler(stats, frontier, in_flight)
    tasks = []
    if mode != "off":
        runner = _rich if mode == "rich" else _log_lines
        tasks.append(asyncio.create_task(runner(sampler, settings.progress_interval), name="progress"))
    if series is not None:
        series.begin(stats)
        tasks.append(asyncio.create_task(series.run(sampler), name="series"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if series is not None:
            series.record(sampler.sample())  # the crawl's last figures, however short it was


async def _log_lines(sampler: ProgressSampler, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        log.info("%s", sampler.sample().line())


def _render(snap: Snapshot) -> Any:
    from rich.table import Table

    grid = Table.grid(padding=(0, 3))
    for width in (28, 26, 16, 16):  # fixed: the display must not jump as numbers grow
        grid.add_column(min_width=width)
    grid.add_row(
        f"[bold]pages[/] {snap.pages:,} [dim]({snap.pages_per_s:.1f}/s)[/]",
        f"[bold]items[/] {snap.items:,} [dim]({snap.items_per_s:.1f}/s)[/]",
        f"[bold]queue[/] {snap.queued:,}",
        f"[bold]in flight[/] {snap.in_flight}",
    )
    grid.add_row(
        f"[bold]retries[/] {snap.retries:,}",
        "[bold]errors[/] " + (f"[red]{snap.errors:,}[/]" if snap.errors else "0"),
        f"[bold]ETA[/] {_duration(snap.eta)}",
        f"[bold]elapsed[/] {_duration(snap.elapsed)}",
    )
    hosts = ", ".join(f"{h} ({rate:.1f}/s)" for h, rate in snap.hosts) or "-"
    grid.add_row(f"[bold]busiest hosts[/] {hosts}", "", "", "")
    return grid


async def _rich(sampler: ProgressSampler, interval: float) -> None:
    from rich.console import Console
    from rich.file_proxy import FileProxy
    from rich.live import Live

    console = Console(stderr=True)
    live = Live(console=console, auto_refresh=False, transient=True, redirect_stderr=False)
    # Log lines written meanwhile go above the display instead of through it.
    proxy = FileProxy(console, sys.stderr)
    moved = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and h.stream is sys.stderr
    ]
    for handler in moved:
        handler.setStream(proxy)
    try:
        with live:
            while True:
                live.update(_render(sampler.sample()), refresh=True)
                await asyncio.sleep(_DISPLAY_INTERVAL)
    finally:
        for handler in moved:
            handler.setStream(sys.stderr)
