"""CrawlStop: stop signals, graceful and forced stops, the shutdown timer, close counts, output errors.

Real signals are sent to this process and handled by a real event loop; the worker tasks are real
tasks. The crawl-level behaviour (exit codes, summaries) is in tests/integration/test_signals.py.
"""

from __future__ import annotations

import asyncio
import os
import signal

from crawlkit.core import CrawlStats
from crawlkit.core._stopping import CrawlStop
from crawlkit.errors import ExportError
from crawlkit.settings import Settings


def _stop(
    settings: Settings, stats: CrawlStats, workers: list[asyncio.Task[None]], committing: set[object]
) -> tuple[CrawlStop, list[int]]:
    woken: list[int] = []
    stop = CrawlStop(
        settings,
        stats,
        wake=lambda: woken.append(1),
        in_flight=lambda: len(workers),
        workers=workers,
        is_committing=lambda task: task in committing,
    )
    return stop, woken


def test_a_first_signal_stops_gracefully_a_second_at_once_and_handlers_are_put_back() -> None:
    def before(signum: int, frame: object) -> None:
        raise AssertionError("the program's handler ran during the crawl")

    async def main() -> None:
        stats = CrawlStats()
        workers = [asyncio.create_task(asyncio.sleep(60)) for _ in range(2)]
        committing: set[object] = {workers[1]}
        stop, woken = _stop(Settings(shutdown_timeout=30), stats, workers, committing)
        with stop.signals_handled(asyncio.get_running_loop()):
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.05)
            assert (stop.requested, stop.forced, stats.stop_reason) == (True, False, "SIGTERM")
            assert woken and not any(task.cancelled() for task in workers)
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.05)
            assert (stop.forced, stats.stop_reason) == (True, "SIGTERM (forced)")
            # The committing worker is let finish: a commit cut in half writes items twice.
            assert workers[0].cancelled() and not workers[1].done()
        stop.cancel_hard_stop()
        workers[1].cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    previous = signal.signal(signal.SIGTERM, before)
    try:
        asyncio.run(main())
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_graceful_stop_is_forced_after_shutdown_timeout() -> None:
    async def main() -> None:
        stats = CrawlStats()
        workers = [asyncio.create_task(asyncio.sleep(60))]
        stop, _ = _stop(Settings(shutdown_timeout=0.05), stats, workers, set())
        stop.stop("close_spider: done")
        stop.stop("SIGINT")  # a later graceful stop changes nothing
        assert (stop.forced, stats.stop_reason) == (False, "close_spider: done")
        await asyncio.sleep(0.2)
        assert (stop.forced, stats.stop_reason) == (True, "close_spider: done (shutdown timeout)")
        assert workers[0].cancelled()

    asyncio.run(main())


def test_a_close_count_reached_stops_gracefully() -> None:
    async def main() -> None:
        stats = CrawlStats()
        stop, _ = _stop(Settings(close_after_items=3), stats, [], set())
        assert stop.counting
        stats.items = 2
        stop.check_counts()
        assert not stop.requested
        stats.items = 3
        stop.check_counts()
        assert (stop.requested, stop.forced, stats.stop_reason) == (True, False, "close_after_items (3)")
        stop.cancel_hard_stop()

    asyncio.run(main())
    assert not _stop(Settings(), CrawlStats(), [], set())[0].counting


def test_an_output_error_stops_at_once_and_the_first_is_kept() -> None:
    async def main() -> None:
        stats = CrawlStats()
        workers = [asyncio.create_task(asyncio.sleep(60))]
        stop, _ = _stop(Settings(), stats, workers, set())
        first, second = ExportError("disk full"), ExportError("I/O error")
        stop.output_failed(first)
        stop.output_failed(second)
        await asyncio.sleep(0)
        assert stop.storage_error is first
        assert (stop.requested, stop.forced, stats.stop_reason) == (True, True, "output error")
        assert workers[0].cancelled()

    asyncio.run(main())
