"""The memory ceiling (``max_memory_mb``): the whole crawl's resident memory, watched.

A crawl is several processes: the main one (event loop, frontier, bodies in flight) and the parser
workers (callbacks, and whatever they keep). What counts against the ceiling is the sum of their
resident set sizes, read from ``/proc/<pid>/statm`` five times a second (a few microseconds each
time). At 80% a warning says how much each part holds and what grew since the crawl began; at
100% the crawl stops gracefully, so that the same command resumes it (with the durable frontier).

A crawl that renders pages also counts its browser (``browser_bytes``, given by the browser
fetcher): Chromium's processes share most of their pages, so they are counted by proportional set
size, not by adding their resident sizes, which would count those pages once per process.

Without ``/proc`` (macOS) there is no cheap way to read another process's resident size from the
standard library: the ceiling is then not enforced, and a warning says so once.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MemoryGuard", "MemorySample", "rss_bytes"]

log = logging.getLogger("crawlkit.memory")

MIB = 1024 * 1024
WARN_AT = 0.8
# A warning is given again only after use fell back below this share of the ceiling.
_REARM_BELOW = 0.7
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes(pid: int) -> int | None:
    """Resident memory of a process in bytes, or None if it is gone (or there is no /proc)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class MemorySample:
    main: int  # bytes resident in the main process
    workers: int  # bytes resident in the parser workers, together
    frontier: int  # requests queued (pending) in the frontier
    inflight: int  # bytes of response bodies held (being read or waiting for a parser)
    parse_queue: int  # responses waiting for, or inside, a parser worker
    browser: int = 0  # bytes the headless browser's processes hold (PSS), if the crawl renders

    @property
    def total(self) -> int:
        return self.main + self.workers + self.browser


class MemoryGuard:
    """Samples the crawl's memory; warns at 80% of ``limit_mb``, calls ``stop`` at 100%."""

    def __init__(
        self,
        limit_mb: int,
        *,
        worker_pids: Callable[[], list[int]],
        frontier_size: Callable[[], int],
        inflight_bytes: Callable[[], int],
        parse_queue: Callable[[], int],
        stop: Callable[[str], None],
        interval: float = 0.2,
        browser_bytes: Callable[[], int] | None = None,
    ) -> None:
        self.limit = limit_mb * MIB
        self.interval = interval
        self.peak = 0
        self._worker_pids = worker_pids
        self._frontier_size = frontier_size
        self._inflight_bytes = inflight_bytes
        self._parse_queue = parse_queue
        self._stop = stop
        self._browser_bytes = browser_bytes
        self._first: MemorySample | None = None
        self._warned = False
        self._stopped = False

    def sample(self) -> MemorySample | None:
        main = rss_bytes(os.getpid())
        if main is None:
            return None
        workers = sum(rss_bytes(pid) or 0 for pid in self._worker_pids())
        browser = self._browser_bytes() if self._browser_bytes is not None else 0
        return MemorySample(
            main, workers, self._frontier_size(), self._inflight_bytes(), self._parse_queue(), browser
        )

    async def run(self) -> None:
        """Watch until cancelled (or until the ceiling stopped the crawl)."""
        if self.sample() is None:
            log.warning("max_memory_mb is set, but memory cannot be read here (no /proc): not enforced")
            return
        while not self._stopped:
            self.check()
            await asyncio.sleep(self.interval)

    def check(self) -> None:
        sample = self.sample()
        if sample is None:
            return
        if self._first is None:
            self._first = sample
        self.peak = max(self.peak, sample.total)
        share = sample.total / self.limit
        if share >= 1.0:
            self._stopped = True
            used = sample.total // MIB
            reason = f"memory limit ({used} MiB of {self.limit // MIB} MiB; {self.grew_most(sample)})"
            log.error("%s: stopping gracefully; run the same command again to resume", self.describe(sample))
            self._stop(reason)
        elif share >= WARN_AT and not self._warned:
            self._warned = True
            log.warning("%s", self.describe(sample))
        elif share < _REARM_BELOW:
            self._warned = False

    def grew_most(self, sample: MemorySample) -> str:
        first = self._first or sample
        grown = {
            "parser workers": sample.workers - first.workers,
            "main process": sample.main - first.main,
        }
        if self._browser_bytes is not None:
            grown["browser"] = sample.browser - first.browser
        name, by = max(grown.items(), key=lambda kv: kv[1])
        return f"{name} grew most, by {by // MIB} MiB"

    def describe(self, sample: MemorySample) -> str:
        """How much each part holds and what grew since the first sample."""
        first = self._first or sample

        def mib(n: int) -> str:
            return f"{n / MIB:.0f} MiB"

        def delta(now: int, then: int, unit: Callable[[int], str]) -> str:
            change = now - then
            return f"{unit(now)} ({'+' if change >= 0 else '-'}{unit(abs(change))} since start)"

        return (
            f"memory at {mib(sample.total)} of {mib(self.limit)} "
            f"({100 * sample.total / self.limit:.0f}%): {self.grew_most(sample)}; "
            f"parser workers {delta(sample.workers, first.workers, mib)}, "
            f"main process {delta(sample.main, first.main, mib)}; "
            + (f"browser {delta(sample.browser, first.browser, mib)}; " if self._browser_bytes else "")
            + f"requests queued {delta(sample.frontier, first.frontier, str)}, "
            f"response bodies in flight {sample.inflight / MIB:.1f} MiB, "
            f"responses waiting for a parser {sample.parse_queue}"
        )
