"""Start requests into the frontier: ``start_requests()`` read in chunks, checked as start URLs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

from ..errors import StorageError
from ..guards import running
from ..http import Request
from ..parsing import filter_reason
from ..spider import Spider
from ._stats import CrawlStats

__all__ = ["push_start_requests", "seed", "start_requests_to_push"]

log = logging.getLogger("crawlkit.engine")

_CHUNK = 1000  # start requests pushed at once: a million start URLs never sit in one list
# The first push is small: the feeder leases nothing until it lands, and a thousand start URLs
# read, fingerprinted and inserted first held the first request back by 20 ms. Each push after
# it is four times the one before, up to _CHUNK; the loop is let go every 64 requests read.
_FIRST_CHUNK = 64


async def seed(
    spider: Spider,
    push: Callable[[list[Request]], Awaitable[None]],
    stats: CrawlStats,
    *,
    resumed: bool,
    stopping: Callable[[], bool],
    more: Iterable[Request] = (),
) -> bool:
    """``push_start_requests()``, with an error of ``start_requests()`` counted and logged.

    True when the start requests need not run again (a resume skips them): they were exhausted,
    or they raised, which running them again would do again. A ``StorageError`` (the frontier's
    database) is raised.
    """
    try:
        return await push_start_requests(spider, push, resumed=resumed, stopping=stopping, more=more)
    except StorageError:
        raise
    except Exception as exc:
        log.error(
            "start_requests() of %s raised %s: %s",
            type(spider).__name__,
            type(exc).__name__,
            exc,
            exc_info=True,
        )
        stats.failures["start_requests"] += 1
        stats.pages_failed += 1
        return True


async def push_start_requests(
    spider: Spider,
    push: Callable[[list[Request]], Awaitable[None]],
    *,
    resumed: bool,
    stopping: Callable[[], bool],
    more: Iterable[Request] = (),
) -> bool:
    """Push what ``spider.start_requests()`` yields, a chunk at a time, then ``more`` (a
    re-crawl's pages to visit again).

    True once it is exhausted; False when a stop cut it short (a resume runs it again). A
    resumed job sees its start requests deduplicated: what it pushed before is known.
    """
    chunk: list[Request] = []
    size = _FIRST_CHUNK
    async for request in _chain(_aiter(spider.start_requests()), more):
        if resumed:
            request.dont_filter = False
        if stopping():
            return False
        if not isinstance(request, Request):
            raise TypeError(f"start_requests() must yield Requests, not {type(request).__name__}")
        chunk.append(request)
        if len(chunk) >= size:
            await push(chunk)
            chunk = []
            size = min(4 * size, _CHUNK)
            await asyncio.sleep(0)
        elif len(chunk) % _FIRST_CHUNK == 0:
            # Reading start requests holds the event loop, and a push may not wait at all (the
            # insert is sent, not awaited): a turn every 64 lets the leased pages go on meanwhile.
            await asyncio.sleep(0)
    if chunk:
        await push(chunk)
    return True


def start_requests_to_push(requests: list[Request], stats: CrawlStats) -> list[Request]:
    """The requests that may go to the frontier as start requests; the rest counted and named."""
    kept = []
    for request in requests:
        # Start requests are not links: allowed_domains does not apply to them.
        reason = filter_reason(None, request)
        if reason is not None:
            stats.filtered[reason] += 1
            log.warning("start request %s skipped (%s)", request.url, reason)
        else:
            kept.append(request)
    return kept


async def _chain(first: AsyncIterator[Request], then: Iterable[Request]) -> AsyncIterator[Request]:
    async for request in first:
        yield request
    for request in then:
        yield request


async def _aiter(source: Iterable[Request] | AsyncIterator[Request]) -> AsyncIterator[Request]:
    if isinstance(source, AsyncIterator):
        async for request in source:
            yield request
    else:
        # A blocking start_requests() stalls the event loop: the watchdog names it.
        iterator = iter(source)
        while True:
            with running("spider.start_requests()"):
                try:
                    request = next(iterator)
                except StopIteration:
                    return
            yield request
