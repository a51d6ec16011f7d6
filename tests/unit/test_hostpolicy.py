"""The host policy (rules, jitter, adaptive throttling) and how both frontiers consult it."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from crawlkit.errors import ConfigError
from crawlkit.fetch._hostpolicy import CrawlHostPolicy, parse_host_rules
from crawlkit.frontier import Frontier, HostLimits, HostPolicy, MemoryFrontier, SqliteFrontier
from crawlkit.http import Request
from crawlkit.settings import load_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- rules -------------------------------------------------------------------------------------------


def test_host_rules_first_matching_glob_wins() -> None:
    policy = CrawlHostPolicy(
        concurrency=8,
        delay=0.0,
        rules=parse_host_rules(
            {
                "*.Example.com": {"concurrency": 2, "delay": 1.0},
                "*.com": {"concurrency": 3},
                "a.org": {"delay": 2},
            }
        ),
    )
    assert policy.limits("www.example.com") == HostLimits(2, 1.0)
    assert policy.limits("example.com") == HostLimits(3, 0.0)  # "*.example.com" needs a subdomain
    assert policy.limits("a.org") == HostLimits(8, 2.0)
    assert policy.limits("b.org") == HostLimits(8, 0.0)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"*.a.com": {"concurency": 2}}, "entry '*.a.com' has unknown key 'concurency'"),
        ({"*.a.com": {"concurrency": 0}}, "'concurrency' must be an integer of at least 1"),
        ({"*.a.com": {"concurrency": True}}, "'concurrency' must be an integer"),
        ({"b.com": {"delay": -1}}, "entry 'b.com': 'delay' must be a number of seconds"),
        ({"b.com": {"delay": "slow"}}, "'delay' must be a number"),
        ({"b.com": 3}, "got 'b.com': 3"),
        ({" ": {}}, "empty host pattern"),
    ],
)
def test_bad_host_rules_fail_at_settings_load_naming_the_entry(
    rules: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match="host_rules") as info:
        load_settings(spider_settings={"host_rules": rules}, environ={})
    assert message in str(info.value)


def test_host_rules_from_the_command_line_as_json() -> None:
    settings = load_settings(
        overrides={"host_rules": '{"*.a.com": {"concurrency": 2, "delay": 0.5}}'}, environ={}
    )
    assert CrawlHostPolicy.from_settings(settings).limits("x.a.com") == HostLimits(2, 0.5)


# -- delay ---------------------------------------------------------------------------------------------


def test_delay_is_jittered_between_half_and_one_and_a_half() -> None:
    policy = CrawlHostPolicy(concurrency=8, delay=1.0, rng=random.Random(7), autothrottle=False)
    delays = [policy.delay("a.test") for _ in range(2000)]
    assert 0.5 <= min(delays) < 0.55 and 1.45 < max(delays) <= 1.5
    assert 0.95 < sum(delays) / len(delays) < 1.05
    assert CrawlHostPolicy(concurrency=8, delay=0.0).delay("a.test") == 0.0


def test_robots_delay_is_a_floor_that_jitter_never_cuts() -> None:
    policy = CrawlHostPolicy(concurrency=8, delay=1.0, rng=random.Random(1))
    policy.set_robots_delay("a.test", 2.0)
    assert {policy.delay("a.test") for _ in range(200)} == {2.0}
    policy.set_robots_delay("a.test", 0.8)
    assert min(policy.delay("a.test") for _ in range(500)) == 0.8  # jitter below 0.8 is lifted
    assert max(policy.delay("a.test") for _ in range(500)) > 1.0


def test_a_healthy_host_gets_no_adaptive_delay() -> None:
    clock = Clock()
    policy = CrawlHostPolicy(concurrency=4, delay=0.0, clock=clock)
    for latency in [0.2, 0.1, 0.3, 0.15, 0.25, 0.2] * 5:  # noisy, but never straining
        policy.observe("a.test", started=clock(), latency=latency, status=200)
    assert policy.throttle_delay("a.test") == 0.0 and policy.delay("a.test") == 0.0


def test_a_straining_host_is_slowed_at_once_and_sped_up_gradually() -> None:
    clock = Clock()
    policy = CrawlHostPolicy(concurrency=4, delay=0.0, clock=clock)
    for _ in range(5):
        policy.observe("a.test", started=clock(), latency=0.1, status=200)
    for _ in range(10):  # the server slows to 2 s a page
        policy.observe("a.test", started=clock(), latency=2.0, status=200)
    assert policy.throttle_delay("a.test") == pytest.approx(0.5, rel=0.1)  # latency / concurrency
    delays = []
    for _ in range(16):
        policy.observe("a.test", started=clock(), latency=0.1, status=200)
        delays.append(policy.throttle_delay("a.test"))
    assert all(b < a for a, b in itertools.pairwise(delays))  # down a step per good response
    assert delays[0] > 0.3 and delays[-1] < 0.05
    # Error pages come fast: they never lower the delay.
    before = policy.throttle_delay("a.test")
    policy.observe("a.test", started=clock(), latency=0.001, status=404)
    assert policy.throttle_delay("a.test") == before


def test_429_and_503_rest_the_host_and_raise_its_delay_once_per_wave() -> None:
    clock = Clock()
    policy = CrawlHostPolicy(concurrency=4, delay=0.0, clock=clock, retry_after_max=30.0)
    started = clock()
    clock.now += 0.1
    assert policy.observe("a.test", started=started, latency=0.1, status=429) == 1.0
    # Three more answers to requests that were in flight with it: no further raise.
    for _ in range(3):
        assert policy.observe("a.test", started=started, latency=0.1, status=429) == 1.0
    assert policy.throttle_delay("a.test") == 1.0
    # A request started after the rest that still gets a 429: the delay doubles.
    clock.now += 1.5
    assert policy.observe("a.test", started=clock(), latency=0.1, status=503) == 2.0
    # Retry-After wins, capped by retry_after_max.
    assert policy.observe("a.test", started=started, latency=None, status=429, retry_after=7.0) == 7.0
    assert policy.observe("a.test", started=started, latency=None, status=429, retry_after=99.0) == 30.0
    # Other hosts are untouched.
    assert policy.throttle_delay("b.test") == 0.0 and policy.delay("b.test") == 0.0


def test_a_retry_after_rests_the_host_that_long_and_leaves_its_delay_alone() -> None:
    clock = Clock()
    policy = CrawlHostPolicy(concurrency=1, delay=0.0, clock=clock)
    for _ in range(5):
        policy.observe("a.test", started=clock(), latency=0.2, status=200)
    # Five 429s in a row, each to a request started after the last: each asks for 2 s.
    for _ in range(5):
        clock.now += 2.0
        assert policy.observe("a.test", started=clock(), latency=0.0, status=429, retry_after=2.0) == 2.0
    assert policy.throttle_delay("a.test") == 0.0 and policy.delay("a.test") == 0.0
    assert policy.throttled_hosts(10) == {}
    # A 503 with Retry-After alike.
    assert policy.observe("a.test", started=clock(), latency=0.0, status=503, retry_after=3.0) == 3.0
    assert policy.delay("a.test") == 0.0


def test_a_penalty_never_doubles_the_latency_part_of_the_delay() -> None:
    clock = Clock()
    policy = CrawlHostPolicy(concurrency=1, delay=0.0, clock=clock)
    for _ in range(5):
        policy.observe("a.test", started=clock(), latency=0.5, status=200)
    for _ in range(10):  # the server slows to 3 s a page: a latency part of about 3 s
        policy.observe("a.test", started=clock(), latency=3.0, status=200)
    latency_part = policy.throttle_delay("a.test")
    assert latency_part == pytest.approx(3.0, rel=0.1)
    rests = []
    for _ in range(4):  # four waves of 429s without Retry-After
        clock.now += 1.0
        rests.append(policy.observe("a.test", started=clock(), latency=None, status=429))
    # The penalty doubles itself (1, 2, 4, 8); the delay is the larger of the two parts, not
    # the latency part doubled four times (48 s).
    assert rests == [1.0, 2.0, 4.0, 8.0]
    assert policy.throttle_delay("a.test") == 8.0
    # Good answers take a quarter of the penalty off each, down to the latency part.
    for _ in range(20):
        clock.now += 1.0
        policy.observe("a.test", started=clock(), latency=3.0, status=200)
    assert policy.throttle_delay("a.test") == pytest.approx(latency_part, rel=0.1)


def test_answers_in_flight_at_a_429_do_not_lower_the_penalty() -> None:
    clock = Clock()
    policy = CrawlHostPolicy(concurrency=8, delay=0.0, clock=clock)
    started = clock()
    clock.now += 0.1
    assert policy.observe("a.test", started=started, latency=None, status=429) == 1.0
    for _ in range(7):  # the rest of the wave, started with the 429'd request, answer 200
        policy.observe("a.test", started=started, latency=0.1, status=200)
    assert policy.throttle_delay("a.test") == 1.0
    policy.observe("a.test", started=clock(), latency=0.1, status=200)
    assert policy.throttle_delay("a.test") == 0.75


def test_autothrottle_off_keeps_only_the_configured_delay() -> None:
    policy = CrawlHostPolicy(concurrency=4, delay=0.0, autothrottle=False)
    assert policy.observe("a.test", started=0.0, latency=5.0, status=429) is None
    assert policy.delay("a.test") == 0.0


# -- the frontiers consult the policy at each lease, and honour cooldowns -------------------------------


class CountingPolicy:
    """A HostPolicy that hands out the delays it is given, one per lease, and counts the asks."""

    def __init__(self, delays: list[float]) -> None:
        self.delays = delays
        self.asked = 0

    def limits(self, host: str) -> HostLimits:
        return HostLimits(concurrency=10)

    def delay(self, host: str) -> float:
        self.asked += 1
        return self.delays.pop(0) if self.delays else 0.0


FrontierFactory = Callable[[Path, HostPolicy, Clock], Frontier]


def memory(path: Path, policy: HostPolicy, clock: Clock) -> Frontier:
    return MemoryFrontier(policy, clock=clock)


def sqlite(path: Path, policy: HostPolicy, clock: Clock) -> Frontier:
    return SqliteFrontier(path / "f.sqlite", policy, clock=clock, spider_name="s")


@asynccontextmanager
async def opened(
    factory: FrontierFactory, tmp_path: Path, policy: HostPolicy
) -> AsyncIterator[tuple[Frontier, Clock]]:
    clock = Clock()
    frontier = factory(tmp_path, policy, clock)
    await frontier.open()
    try:
        yield frontier, clock
    finally:
        await frontier.close()


def hosts(requests: list[Request]) -> list[str]:
    return [r.url.split("/")[2] for r in requests]


@pytest.mark.parametrize("factory", [memory, sqlite])
def test_the_delay_is_asked_at_each_lease(tmp_path: Path, factory: FrontierFactory) -> None:
    policy = CountingPolicy([2.0, 0.5, 0.0])

    async def body() -> None:
        async with opened(factory, tmp_path, policy) as (frontier, clock):
            await frontier.push([Request(f"http://a.test/{i}") for i in range(4)])
            first = await frontier.lease(10)
            assert len(first) == 1 and policy.asked == 1  # the first start sets a 2 s delay
            assert await frontier.lease(10) == []
            assert frontier.next_ready_in() == pytest.approx(2.0)
            clock.now += 2.0
            assert len(await frontier.lease(10)) == 1  # then 0.5 s
            clock.now += 0.5
            assert len(await frontier.lease(10)) == 2  # then none: both at once
            assert policy.asked == 4

    asyncio.run(body())


@pytest.mark.parametrize("factory", [memory, sqlite])
def test_cooldown_holds_one_host_while_others_are_served(tmp_path: Path, factory: FrontierFactory) -> None:
    policy = CountingPolicy([])

    async def body() -> None:
        async with opened(factory, tmp_path, policy) as (frontier, clock):
            await frontier.push([Request(f"http://{h}.test/{i}") for i in range(3) for h in ("a", "b")])
            leased = await frontier.lease(2)
            assert sorted(hosts(leased)) == ["a.test", "b.test"]
            frontier.cooldown("a.test", 5.0)  # a.test answered 429
            for request in leased:
                await frontier.ack(request, [])
            assert sorted(hosts(await frontier.lease(10))) == ["b.test", "b.test"]
            assert await frontier.lease(10) == []
            assert frontier.next_ready_in() == pytest.approx(5.0)
            clock.now += 4.9
            assert await frontier.lease(10) == []
            clock.now += 0.1
            assert hosts(await frontier.lease(10)) == ["a.test", "a.test"]
            frontier.cooldown("gone.test", 3.0)  # a host not in play: nothing to hold

    asyncio.run(body())


@pytest.mark.parametrize("factory", [memory, sqlite])
def test_a_cooldown_that_comes_after_the_host_was_found_ready_still_holds(
    tmp_path: Path, factory: FrontierFactory
) -> None:
    policy = CountingPolicy([])

    async def body() -> None:
        async with opened(factory, tmp_path, policy) as (frontier, clock):
            await frontier.push([Request(f"http://a.test/{i}") for i in range(3)])
            first = await frontier.lease(1)  # a.test is ready again at once (no delay)
            frontier.cooldown("a.test", 1.0)
            assert await frontier.lease(10) == []
            clock.now += 1.0
            assert len(await frontier.lease(10)) == 2
            await frontier.ack(first[0], [])

    asyncio.run(body())


# -- the report's slowest hosts ----------------------------------------------------------------------


def _slowest_by_scan(policy: CrawlHostPolicy, n: int) -> list[float]:
    latencies = [t.latency for t in policy._throttle.values() if t.latency is not None]
    return [round(lat, 3) for lat in sorted(latencies, reverse=True)[:n]]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_slowest_hosts_stay_exact_as_latencies_rise_and_fall(seed: int) -> None:
    """The candidates kept between samples give what a scan of every host gives, whichever way
    the hosts' latencies move (a slow host that recovers leaves the top, a fast one that strains
    enters it, a host answering without a latency is not counted)."""
    rng = random.Random(seed)
    policy = CrawlHostPolicy(concurrency=8, delay=0.0, rng=rng)
    hosts = [f"h{i}.example" for i in range(1_500)]
    speed = {host: rng.uniform(0.001, 0.05) for host in hosts}
    for step in range(40):
        for host in rng.sample(hosts, 400):
            if rng.random() < 0.1:
                speed[host] = rng.choice([rng.uniform(0.5, 3.0), rng.uniform(0.0005, 0.002)])
            status = rng.choice([200, 200, 200, 404, 503, None])
            latency = None if status is None else speed[host] * rng.uniform(0.8, 1.2)
            policy.observe(host, started=0.0, latency=latency, status=status)
        n = (3, 10, 100)[step % 3]
        got = policy.slowest_hosts(n)
        assert sorted(got.values(), reverse=True) == _slowest_by_scan(policy, n)
        assert all(round(policy._throttle[host].latency or -1.0, 3) == lat for host, lat in got.items())


def test_slowest_hosts_with_every_latency_tied() -> None:
    policy = CrawlHostPolicy(concurrency=8, delay=0.0)
    for i in range(1_000):
        policy.observe(f"h{i}.example", started=0.0, latency=0.02, status=200)
    policy.observe("slow.example", started=0.0, latency=2.0, status=200)
    got = policy.slowest_hosts(10)
    assert next(iter(got)) == "slow.example" and len(got) == 10
    assert list(got.values()) == [2.0] + [0.02] * 9
