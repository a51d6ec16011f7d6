"""crawlkit.frontier.memory: the in-memory frontier, driven with asyncio.run() and a fake clock."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

import pytest

from crawlkit.frontier import Frontier, FrontierStats, HostLimits, MemoryFrontier, PushResult
from crawlkit.http import Request

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def limits(
    concurrency: int = 100, delay: float = 0.0, per_host: Mapping[str, HostLimits] | None = None
) -> Callable[[str], HostLimits]:
    """Host limits: ``per_host[host]`` where given, else ``HostLimits(concurrency, delay)``."""
    table = dict(per_host or {})

    def for_host(host: str) -> HostLimits:
        return table.get(host, HostLimits(concurrency, delay))

    return for_host


def frontier(
    host_limits: Callable[[str], HostLimits] | None = None,
    depth_limit: int = 0,
    clock: FakeClock | None = None,
) -> tuple[MemoryFrontier, FakeClock]:
    clock = clock or FakeClock()
    return MemoryFrontier(host_limits or limits(), depth_limit=depth_limit, clock=clock), clock


def req(url: str, **kwargs: object) -> Request:
    return Request(url, **kwargs)  # type: ignore[arg-type]


def urls(requests: Sequence[Request]) -> list[str]:
    return [r.url for r in requests]


# -- basics -------------------------------------------------------------------------------------------


def test_satisfies_the_protocol() -> None:
    f, _ = frontier()
    assert isinstance(f, Frontier)

    async def go() -> None:
        await f.open()
        await f.close()

    run(go())


def test_empty_frontier() -> None:
    f, _ = frontier()
    assert f.is_finished()
    assert f.next_ready_in() is None
    assert len(f) == 0
    assert run(f.lease(10)) == []
    assert f.statistics() == FrontierStats(pending=0, leased=0, seen=0, done=0, failed=0, hosts=0)


def test_push_and_lease_one() -> None:
    f, _ = frontier()

    async def go() -> None:
        result = await f.push([req("http://a.test/1")])
        assert result == PushResult(queued=1, duplicates=0, over_depth=0)
        assert len(f) == 1
        assert not f.is_finished()
        assert f.next_ready_in() == 0.0
        assert await f.lease(0) == []
        leased = await f.lease(5)
        assert urls(leased) == ["http://a.test/1"]
        assert len(f) == 0
        assert not f.is_finished()  # leased, not yet given back
        assert await f.lease(5) == []

    run(go())


# -- priority -----------------------------------------------------------------------------------------


def test_priority_order_within_a_host() -> None:
    f, _ = frontier()

    async def go() -> list[str]:
        await f.push(
            [
                req("http://a.test/p0", priority=0),
                req("http://a.test/p5-first", priority=5),
                req("http://a.test/pminus", priority=-1),
                req("http://a.test/p5-second", priority=5),
                req("http://a.test/p10", priority=10),
            ]
        )
        return urls(await f.lease(10))

    assert run(go()) == [
        "http://a.test/p10",
        "http://a.test/p5-first",
        "http://a.test/p5-second",
        "http://a.test/p0",
        "http://a.test/pminus",
    ]


def test_fifo_for_equal_priority() -> None:
    f, _ = frontier()

    async def go() -> list[str]:
        await f.push([req(f"http://a.test/{i}") for i in range(5)])
        out: list[str] = []
        while batch := await f.lease(2):
            out.extend(urls(batch))
        return out

    assert run(go()) == [f"http://a.test/{i}" for i in range(5)]


def test_priority_order_across_hosts_pushed_together() -> None:
    f, _ = frontier()

    async def go() -> list[str]:
        await f.push(
            [
                req("http://a.test/low", priority=0),
                req("http://b.test/high", priority=10),
                req("http://c.test/mid", priority=5),
            ]
        )
        return urls(await f.lease(3))

    assert run(go()) == ["http://b.test/high", "http://c.test/mid", "http://a.test/low"]


def test_priority_order_across_hosts_after_a_later_push() -> None:
    # Higher priority is fetched sooner, whichever host it is on. Host a.test sits in the ready
    # heap keyed by the priority its best request had when the host was scheduled (0); a later
    # priority-10 request for a.test does not move it, so b.test's priority-0 request is leased
    # first.
    f, _ = frontier()

    async def go() -> list[str]:
        await f.push([req("http://b.test/low"), req("http://a.test/low")])
        await f.push([req("http://a.test/urgent", priority=10)])
        return urls(await f.lease(1))

    assert run(go()) == ["http://a.test/urgent"]


# -- dedup ----------------------------------------------------------------------------------------------


def test_duplicates_are_dropped() -> None:
    f, _ = frontier()

    async def go() -> None:
        first = await f.push([req("http://a.test/x?b=2&a=1"), req("http://a.test/y")])
        assert first == PushResult(queued=2, duplicates=0)
        again = await f.push(
            [
                req("http://a.test/x?a=1&b=2"),  # same page, query reordered
                req("http://A.TEST/x?b=2&a=1#frag"),
                req("http://a.test/y"),
                req("http://a.test/z"),
            ]
        )
        assert again == PushResult(queued=1, duplicates=3)
        assert f.statistics().seen == 3
        assert len(f) == 3

    run(go())


def test_duplicates_within_one_batch() -> None:
    f, _ = frontier()
    result = run(f.push([req("http://a.test/same"), req("http://a.test/same")]))
    assert result == PushResult(queued=1, duplicates=1)


def test_seen_outlives_the_request() -> None:
    f, _ = frontier()

    async def go() -> PushResult:
        await f.push([req("http://a.test/1")])
        (r,) = await f.lease(1)
        await f.ack(r, [])
        return await f.push([req("http://a.test/1")])

    assert run(go()) == PushResult(queued=0, duplicates=1)


def test_dont_filter_skips_dedup() -> None:
    f, _ = frontier()

    async def go() -> None:
        await f.push([req("http://a.test/1")])
        result = await f.push(
            [req("http://a.test/1", dont_filter=True), req("http://a.test/1", dont_filter=True)]
        )
        assert result == PushResult(queued=2, duplicates=0)
        assert len(f) == 3
        assert urls(await f.lease(10)) == ["http://a.test/1"] * 3

    run(go())


def test_method_and_body_make_different_requests() -> None:
    f, _ = frontier()
    result = run(
        f.push(
            [
                req("http://a.test/form"),
                req("http://a.test/form", method="POST", body=b"a=1"),
                req("http://a.test/form", method="POST", body=b"a=2"),
                req("http://a.test/form", method="POST", body=b"a=1"),
            ]
        )
    )
    assert result == PushResult(queued=3, duplicates=1)


# -- depth ----------------------------------------------------------------------------------------------


def test_depth_limit() -> None:
    f, _ = frontier(depth_limit=2)
    result = run(f.push([req(f"http://a.test/{d}", depth=d) for d in range(5)]))
    assert result == PushResult(queued=3, duplicates=0, over_depth=2)
    assert sorted(urls(run(f.lease(10)))) == ["http://a.test/0", "http://a.test/1", "http://a.test/2"]


def test_depth_limit_applies_to_dont_filter_and_ack() -> None:
    f, _ = frontier(depth_limit=1)

    async def go() -> PushResult:
        await f.push([req("http://a.test/0")])
        (r,) = await f.lease(1)
        return await f.ack(
            r, [req("http://a.test/1", depth=1), req("http://a.test/2", depth=2, dont_filter=True)]
        )

    assert run(go()) == PushResult(queued=1, duplicates=0, over_depth=1)


def test_no_depth_limit() -> None:
    f, _ = frontier(depth_limit=0)
    assert run(f.push([req("http://a.test/deep", depth=10_000)])).queued == 1


# -- per-host concurrency -------------------------------------------------------------------------------


def test_per_host_concurrency_limit_holds() -> None:
    f, _ = frontier(limits(per_host={"a.test": HostLimits(2), "b.test": HostLimits(5)}))

    async def go() -> None:
        await f.push([req(f"http://a.test/{i}") for i in range(5)])
        await f.push([req(f"http://b.test/{i}") for i in range(3)])
        first = await f.lease(100)
        hosts = Counter(r.url.split("/")[2] for r in first)
        assert hosts == {"a.test": 2, "b.test": 3}
        # a.test is saturated: nothing more for it...
        assert await f.lease(100) == []
        # ...but other hosts are still served.
        await f.push([req("http://b.test/late"), req("http://c.test/new")])
        assert sorted(urls(await f.lease(100))) == ["http://b.test/late", "http://c.test/new"]
        assert await f.lease(100) == []
        # Ending one a.test lease frees exactly one slot.
        a_leased = [r for r in first if "a.test" in r.url]
        await f.ack(a_leased[0], [])
        assert urls(await f.lease(100)) == ["http://a.test/2"]
        assert await f.lease(100) == []
        await f.fail(a_leased[1], "http_500")
        assert urls(await f.lease(100)) == ["http://a.test/3"]

    run(go())


def test_concurrency_one_serialises_a_host() -> None:
    f, _ = frontier(limits(concurrency=1))

    async def go() -> list[str]:
        await f.push([req(f"http://a.test/{i}") for i in range(3)])
        order: list[str] = []
        while not f.is_finished():
            batch = await f.lease(10)
            assert len(batch) == 1
            order.extend(urls(batch))
            await f.ack(batch[0], [])
        return order

    assert run(go()) == ["http://a.test/0", "http://a.test/1", "http://a.test/2"]


def test_host_limits_are_looked_up_per_host() -> None:
    calls: list[str] = []

    def host_limits(host: str) -> HostLimits:
        calls.append(host)
        return HostLimits(4)

    f = MemoryFrontier(host_limits, clock=FakeClock())
    run(f.push([req("http://a.test/1"), req("http://a.test/2"), req("http://B.test:8080/1")]))
    assert calls == ["a.test", "b.test"]
    assert f.statistics().hosts == 2


# -- per-host delay -----------------------------------------------------------------------------------


def test_per_host_delay_uses_the_clock() -> None:
    f, clock = frontier(limits(concurrency=10, delay=1.0))

    async def go() -> None:
        await f.push([req(f"http://a.test/{i}") for i in range(3)])
        assert urls(await f.lease(10)) == ["http://a.test/0"]
        assert await f.lease(10) == []
        assert f.next_ready_in() == pytest.approx(1.0)
        clock.advance(0.5)
        assert await f.lease(10) == []
        assert f.next_ready_in() == pytest.approx(0.5)
        clock.advance(0.5)
        assert urls(await f.lease(10)) == ["http://a.test/1"]
        clock.advance(0.99)
        assert await f.lease(10) == []
        clock.advance(0.01)
        assert urls(await f.lease(10)) == ["http://a.test/2"]

    run(go())


def test_delay_of_one_host_does_not_hold_up_another() -> None:
    f, clock = frontier(limits(per_host={"a.test": HostLimits(10, delay=5.0), "b.test": HostLimits(10)}))

    async def go() -> None:
        await f.push(
            [req("http://a.test/1"), req("http://a.test/2"), req("http://b.test/1"), req("http://b.test/2")]
        )
        assert sorted(urls(await f.lease(10))) == ["http://a.test/1", "http://b.test/1", "http://b.test/2"]
        assert f.next_ready_in() == pytest.approx(5.0)
        clock.advance(5.0)
        assert f.next_ready_in() == pytest.approx(0.0)
        assert urls(await f.lease(10)) == ["http://a.test/2"]

    run(go())


def test_delay_holds_after_the_host_goes_idle() -> None:
    f, clock = frontier(limits(concurrency=10, delay=2.0))

    async def go() -> None:
        await f.push([req("http://a.test/1")])
        (r,) = await f.lease(10)
        await f.ack(r, [])
        await f.push([req("http://a.test/2")])
        assert await f.lease(10) == []
        clock.advance(2.0)
        assert urls(await f.lease(10)) == ["http://a.test/2"]

    run(go())


def test_delay_and_concurrency_together() -> None:
    f, clock = frontier(limits(concurrency=1, delay=1.0))

    async def go() -> None:
        await f.push([req("http://a.test/1"), req("http://a.test/2")])
        (r,) = await f.lease(10)
        clock.advance(5.0)
        assert await f.lease(10) == []  # the delay passed but the only slot is taken
        await f.ack(r, [])
        assert urls(await f.lease(10)) == ["http://a.test/2"]

    run(go())


# -- retry, ack, fail, release ---------------------------------------------------------------------------


def test_retry_with_delay_waits_for_its_time() -> None:
    f, clock = frontier()

    async def go() -> None:
        await f.push([req("http://a.test/flaky")])
        (r,) = await f.lease(1)
        r.attempt += 1
        await f.retry(r, 5.0)
        assert len(f) == 1
        assert not f.is_finished()
        assert f.statistics().leased == 0
        assert f.next_ready_in() == pytest.approx(5.0)
        clock.advance(4.9)
        assert await f.lease(10) == []
        assert f.next_ready_in() == pytest.approx(0.1)
        clock.advance(0.1)
        again = await f.lease(10)
        assert again == [r]
        assert again[0].attempt == 1
        await f.ack(again[0], [])
        assert f.is_finished()

    run(go())


def test_retry_without_delay_is_ready_at_once() -> None:
    f, _ = frontier()

    async def go() -> None:
        await f.push([req("http://a.test/1")])
        (r,) = await f.lease(1)
        await f.retry(r, 0)
        assert f.next_ready_in() == 0.0
        assert await f.lease(1) == [r]

    run(go())


def test_retry_is_not_a_duplicate_and_other_requests_go_first() -> None:
    f, clock = frontier()

    async def go() -> None:
        await f.push([req("http://a.test/1"), req("http://a.test/2")])
        first = (await f.lease(1))[0]
        await f.retry(first, 1.0)
        assert urls(await f.lease(10)) == ["http://a.test/2"]
        clock.advance(1.0)
        assert urls(await f.lease(10)) == ["http://a.test/1"]
        assert f.statistics().seen == 2

    run(go())


def test_retries_come_back_in_time_order() -> None:
    f, clock = frontier()

    async def go() -> None:
        await f.push([req(f"http://h{i}.test/") for i in range(3)])
        leased = await f.lease(3)
        for r, delay in zip(leased, (3.0, 1.0, 2.0), strict=True):
            await f.retry(r, delay)
        assert f.next_ready_in() == pytest.approx(1.0)
        seen: list[str] = []
        for _ in range(3):
            clock.advance(1.0)
            seen.extend(urls(await f.lease(10)))
        assert seen == ["http://h1.test/", "http://h2.test/", "http://h0.test/"]

    run(go())


def test_ack_pushes_new_requests() -> None:
    f, _ = frontier()

    async def go() -> None:
        await f.push([req("http://a.test/0")])
        (r,) = await f.lease(1)
        result = await f.ack(
            r,
            [
                req("http://a.test/1", depth=1),
                req("http://b.test/1", depth=1),
                req("http://a.test/0", depth=1),
            ],
        )
        assert result == PushResult(queued=2, duplicates=1)
        stats = f.statistics()
        assert (stats.pending, stats.leased, stats.done, stats.seen) == (2, 0, 1, 3)
        assert sorted(urls(await f.lease(10))) == ["http://a.test/1", "http://b.test/1"]

    run(go())


def test_fail_counts_and_finishes() -> None:
    f, _ = frontier()

    async def go() -> None:
        await f.push([req("http://a.test/1"), req("http://a.test/2")])
        a, b = await f.lease(2)
        await f.fail(a, "http_404")
        assert not f.is_finished()
        await f.ack(b, [])
        assert f.is_finished()
        stats = f.statistics()
        assert (stats.done, stats.failed, stats.pending, stats.leased) == (1, 1, 0, 0)

    run(go())


def test_release_returns_requests_to_pending() -> None:
    f, _ = frontier(limits(concurrency=2))

    async def go() -> None:
        await f.push([req(f"http://a.test/{i}") for i in range(3)])
        leased = await f.lease(10)
        assert len(leased) == 2
        assert f.statistics().leased == 2
        await f.release(leased)
        stats = f.statistics()
        assert (stats.pending, stats.leased, stats.done, stats.failed) == (3, 0, 0, 0)
        again = await f.lease(10)
        assert len(again) == 2  # the host's slots were freed too
        assert set(urls(again)) <= {f"http://a.test/{i}" for i in range(3)}
        await f.release(again)
        everything: list[str] = []
        while not f.is_finished():
            batch = await f.lease(10)
            everything.extend(urls(batch))
            for r in batch:
                await f.ack(r, [])
        assert sorted(everything) == [f"http://a.test/{i}" for i in range(3)]

    run(go())


def test_is_finished_and_next_ready_in_lifecycle() -> None:
    f, _ = frontier()

    async def go() -> None:
        assert f.is_finished() and f.next_ready_in() is None
        await f.push([req("http://a.test/1")])
        assert not f.is_finished() and f.next_ready_in() == 0.0
        (r,) = await f.lease(1)
        assert not f.is_finished() and f.next_ready_in() is None  # nothing pending, one leased
        await f.ack(r, [])
        assert f.is_finished() and f.next_ready_in() is None

    run(go())


def test_statistics_and_len() -> None:
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


# -- a randomised run --------------------------------------------------------------------------------------


def test_randomised_crawl_respects_limits_and_handles_every_request_once() -> None:
    rng = random.Random(1234)
    hosts = {
        f"h{i}.test": HostLimits(concurrency=rng.randint(1, 3), delay=rng.choice([0.0, 0.0, 0.5]))
        for i in range(4)
    }
    f, clock = frontier(limits(per_host=hosts))
    handled: Counter[str] = Counter()
    in_flight: Counter[str] = Counter()
    last_start: dict[str, float] = {}
    attempts: Counter[str] = Counter()

    def new_links(n: int) -> list[Request]:
        return [req(f"http://h{rng.randrange(4)}.test/p{rng.randrange(60)}", depth=1) for _ in range(n)]

    async def go() -> None:
        await f.push(new_links(10))
        leased: list[Request] = []
        for _ in range(5000):
            if f.is_finished():
                break
            for r in await f.lease(rng.randint(1, 4)):
                host = r.url.split("/")[2]
                in_flight[host] += 1
                assert in_flight[host] <= hosts[host].concurrency
                if hosts[host].delay and host in last_start:
                    assert clock.now - last_start[host] >= hosts[host].delay - 1e-9
                last_start[host] = clock.now
                leased.append(r)
            rng.shuffle(leased)
            while leased and rng.random() < 0.6:
                r = leased.pop()
                host = r.url.split("/")[2]
                in_flight[host] -= 1
                roll = rng.random()
                if roll < 0.15 and attempts[r.url] < 2:
                    attempts[r.url] += 1
                    await f.retry(r, rng.choice([0.0, 0.3, 1.0]))
                elif roll < 0.2:
                    await f.fail(r, "http_500")
                    handled[r.url] += 1
                else:
                    await f.ack(r, new_links(rng.randint(0, 3)))
                    handled[r.url] += 1
            clock.advance(rng.choice([0.0, 0.1, 0.25]))
        assert f.is_finished()

    run(go())
    stats = f.statistics()
    assert stats.pending == 0 and stats.leased == 0
    assert sum(handled.values()) == stats.done + stats.failed == stats.seen
    assert all(count == 1 for count in handled.values())


def test_fake_clock_is_used_not_the_real_one() -> None:
    clock = FakeClock(start=0.0)
    f = MemoryFrontier(limits(concurrency=10, delay=3600.0), clock=clock)

    async def go() -> None:
        await f.push([req("http://a.test/1"), req("http://a.test/2")])
        assert len(await f.lease(10)) == 1
        clock.advance(3600.0)
        assert len(await f.lease(10)) == 1

    run(go())


def test_request_objects_are_returned_unchanged() -> None:
    f, _ = frontier()
    original = req("http://a.test/1", meta={"k": 1}, priority=3, callback="parse_item")

    async def go() -> Request:
        await f.push([original])
        (r,) = await f.lease(1)
        return r

    assert run(go()) is original
