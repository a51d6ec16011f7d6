"""What the frontier tests share: fake clocks, host limits, requests, and a drain."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from crawlkit.frontier import Frontier, HostLimits
from crawlkit.http import Request

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Clocks:
    """The monotonic clock (delays, retries in memory) and the wall clock (the retry times the
    sqlite frontier stores), moving together."""

    def __init__(self, start: float = 1000.0) -> None:
        self.mono = FakeClock(start)
        self.wall = FakeClock(1_700_000_000.0)

    @property
    def now(self) -> float:
        return self.mono.now

    def advance(self, seconds: float) -> None:
        self.mono.advance(seconds)
        self.wall.advance(seconds)


def limits(
    concurrency: int = 100, delay: float = 0.0, per_host: Mapping[str, HostLimits] | None = None
) -> Callable[[str], HostLimits]:
    """Host limits: ``per_host[host]`` where given, else ``HostLimits(concurrency, delay)``."""
    table = dict(per_host or {})

    def for_host(host: str) -> HostLimits:
        return table.get(host, HostLimits(concurrency, delay))

    return for_host


def req(url: str, **kwargs: Any) -> Request:
    return Request(url, **kwargs)


def urls(requests: Sequence[Request]) -> list[str]:
    return [r.url for r in requests]


async def drain(f: Frontier, n: int = 100) -> list[str]:
    """Lease and ack until nothing is ready; the URLs in lease order."""
    out: list[str] = []
    while batch := await f.lease(n):
        out.extend(urls(batch))
        for r in batch:
            await f.ack(r, [])
    return out


async def crawl_a_pagination_chain(
    f: Frontier, start: str, pages: int = 10, items_per_page: int = 20
) -> list[str]:
    """Lease and ack a shop's pagination one request at a time; the URLs in lease order.

    ``start`` is ``ORIGIN/list/0``. Each listing links ``items_per_page`` items (callback
    ``parse_item``) and then the next listing, up to ``pages`` listings; items link nothing.
    """
    origin = start.rsplit("/list/", 1)[0]
    await f.push([Request(start)])
    served: list[str] = []
    while batch := await f.lease(1):
        (r,) = batch
        served.append(r.url)
        links: list[Request] = []
        if "/list/" in r.url:
            page = int(r.url.rsplit("/", 1)[1])
            links = [
                Request(f"{origin}/item/{page}-{i}", callback="parse_item") for i in range(items_per_page)
            ]
            if page + 1 < pages:
                links.append(Request(f"{origin}/list/{page + 1}"))
        await f.ack(r, links)
    return served


def listing_positions(served: Sequence[str]) -> list[int]:
    """Where the listings of ``crawl_a_pagination_chain()`` came in the order of service."""
    return [i for i, url in enumerate(served) if "/list/" in url]
