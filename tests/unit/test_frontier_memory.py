"""crawlkit.frontier.memory: the in-memory frontier, driven with asyncio.run() and a fake clock.

What it shares with the sqlite frontier is in test_frontier_contract.py, run against both. Here:
what only it does: hosts counted and their limits looked up at push, requests handed back as the
very objects pushed (retried ones too), and next_ready_in() while only a busy host holds work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from crawlkit.frontier import FrontierStats, HostLimits, MemoryFrontier
from crawlkit.http import Request
from support.frontierkit import FakeClock, limits, req, run, urls

T = TypeVar("T")


def frontier(
    host_limits: Callable[[str], HostLimits] | None = None,
    depth_limit: int = 0,
    clock: FakeClock | None = None,
) -> tuple[MemoryFrontier, FakeClock]:
    clock = clock or FakeClock()
    return MemoryFrontier(host_limits or limits(), depth_limit=depth_limit, clock=clock), clock


# -- hosts ----------------------------------------------------------------------------------------------


def test_host_limits_are_looked_up_per_host() -> None:
    # At push, in order (the sqlite frontier looks them up when it loads a host).
    calls: list[str] = []

    def host_limits(host: str) -> HostLimits:
        calls.append(host)
        return HostLimits(4)

    f = MemoryFrontier(host_limits, clock=FakeClock())
    run(f.push([req("http://a.test/1"), req("http://a.test/2"), req("http://B.test:8080/1")]))
    assert calls == ["a.test", "b.test"]
    assert f.statistics().hosts == 2


def test_statistics_and_len() -> None:
    # ``hosts`` counts hosts from the push on (the sqlite frontier counts loaded hosts only).
    f, _ = frontier(limits(concurrency=1))

    async def go() -> None:
        await f.push(
            [req("http://a.test/1"), req("http://a.test/2"), req("http://b.test/1"), req("http://a.test/1")]
        )
        assert f.statistics() == FrontierStats(pending=3, leased=0, seen=3, done=0, failed=0, hosts=2)
        assert len(f) == 3
        a, b = await f.lease(10)
        assert f.statistics() == FrontierStats(pending=1, leased=2, seen=3, done=0, failed=0, hosts=2)
        await f.ack(a, [])
        await f.fail(b, "timeout")
        (c,) = await f.lease(10)
        await f.ack(c, [])
        assert f.statistics() == FrontierStats(pending=0, leased=0, seen=3, done=2, failed=1, hosts=0)
        assert len(f) == 0

    run(go())


def test_delay_and_concurrency_together() -> None:
    # Kept here, not in the contract: the sqlite frontier's next_ready_in() is not None here.
    f, clock = frontier(limits(concurrency=1, delay=1.0))

    async def go() -> None:
        await f.push([req("http://a.test/1"), req("http://a.test/2")])
        (r,) = await f.lease(10)
        clock.advance(5.0)
        assert await f.lease(10) == []  # the delay passed but the only slot is taken
        await f.ack(r, [])
        assert urls(await f.lease(10)) == ["http://a.test/2"]

    run(go())


# -- the very objects -------------------------------------------------------------------------------------


def test_request_objects_are_returned_unchanged() -> None:
    f, _ = frontier()
    original = req("http://a.test/1", meta={"k": 1}, priority=3, callback="parse_item")

    async def go() -> Request:
        await f.push([original])
        (r,) = await f.lease(1)
        return r

    assert run(go()) is original


def test_a_retried_request_comes_back_as_the_same_object() -> None:
    # The sqlite frontier stores a delayed retry and hands back an equal copy.
    f, clock = frontier()

    async def go() -> None:
        await f.push([req("http://a.test/flaky")])
        (r,) = await f.lease(1)
        r.attempt += 1
        await f.retry(r, 5.0)
        clock.advance(4.9)
        assert await f.lease(10) == []
        clock.advance(0.1)
        again = await f.lease(10)
        assert again == [r]
        assert again[0].attempt == 1

    run(go())
