"""Per-host state stays small when a crawl meets many hosts, and politeness holds all the same.

Real servers on several loopback addresses (127.0.3.x: each one a host to the crawler): idle
keep-alive connections are bounded in all, the hosts used last keeping theirs; a robots.txt whose
parser was dropped from memory is parsed again from its kept text, never fetched again, and its
rules and Crawl-delay hold as before.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from crawlkit import CrawlStats, crawl
from crawlkit.fetch import CrawlHostPolicy, Fetcher, Politeness
from crawlkit.fetch import _politeness as politeness_module
from crawlkit.fetch._connector import BoundedIdleConnector
from crawlkit.frontier import MemoryFrontier
from crawlkit.http import Request
from crawlkit.settings import load_settings
from crawlspiders.polite_spiders import UrlsSpider
from support.misbehaving import page, serve

HOSTS = [f"127.0.3.{i}" for i in range(1, 11)]


async def _hello(request: web.Request) -> web.Response:
    return page("hello")


def test_idle_connections_are_bounded_and_the_hosts_used_last_keep_theirs() -> None:
    async def crawl(port: int) -> tuple[Counter[str], Counter[str], list[int]]:
        created: Counter[str] = Counter()
        reused: Counter[str] = Counter()

        async def on_create(session: Any, context: SimpleNamespace, params: Any) -> None:
            created[context.trace_request_ctx["host"]] += 1

        async def on_reuse(session: Any, context: SimpleNamespace, params: Any) -> None:
            reused[context.trace_request_ctx["host"]] += 1

        trace = aiohttp.TraceConfig()
        trace.on_connection_create_end.append(on_create)
        trace.on_connection_reuseconn.append(on_reuse)
        connector = BoundedIdleConnector(max_idle=4, limit=8)
        idle_after_each = []
        async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as session:

            async def get(host: str) -> None:
                async with session.get(f"http://{host}:{port}/", trace_request_ctx={"host": host}) as r:
                    await r.read()

            for host in HOSTS:
                await get(host)
                idle_after_each.append(connector.idle_connections)
            await get(HOSTS[-1])  # used last: its connection was kept
            await get(HOSTS[0])  # idle longest: its connection was closed
        return created, reused, idle_after_each

    with serve([web.get("/", _hello)], address=HOSTS[0], also=HOSTS[1:]) as server:
        created, reused, idle = asyncio.run(crawl(server.port))
    assert max(idle) <= 4, idle  # a plain TCPConnector holds one per host: 10
    assert reused[HOSTS[-1]] == 1 and created[HOSTS[-1]] == 1
    assert created[HOSTS[0]] == 2 and reused[HOSTS[0]] == 0


def test_a_dropped_robots_parser_is_parsed_again_and_its_rules_and_delay_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(politeness_module, "_PARSED_KEPT", 1)  # one parser in memory at a time
    rules = "User-agent: *\nDisallow: /private\nCrawl-delay: 0.25\n"

    async def robots(request: web.Request) -> web.Response:
        text = rules if request.host.startswith(HOSTS[0]) else "User-agent: *\nDisallow: /other\n"
        return web.Response(text=text, content_type="text/plain")

    async def check(port: int) -> list[Any]:
        settings = load_settings(environ={})
        policy = CrawlHostPolicy.from_settings(settings)
        stats = CrawlStats()
        politeness = Politeness(settings, policy, MemoryFrontier(policy), stats)
        seen = []
        async with Fetcher(settings) as fetcher:
            politeness.attach(fetcher)
            first, second = (f"http://{h}:{port}" for h in HOSTS[:2])
            seen.append(await politeness.gate(Request(f"{first}/private/a")))
            parser = weakref.ref(politeness._robots[first].parser)
            gc.disable()  # freed by reference counting, not by a collection
            try:
                seen.append(await politeness.gate(Request(f"{second}/private/a")))  # drops first's parser
                freed = parser() is None
            finally:
                gc.enable()
            policy.set_robots_delay(HOSTS[0], None)  # as the policy forgets hosts beyond its bound
            seen.append(await politeness.gate(Request(f"{first}/private/b")))
            seen.append(await politeness.gate(Request(f"{first}/public")))
            seen.append(policy.robots_delay(HOSTS[0]))
            seen.append(await politeness.gate(Request(f"{second}/other")))
        await politeness.close()
        seen.append(dict(stats.robots))
        seen.append(freed)
        return seen

    with serve([web.get("/robots.txt", robots)], address=HOSTS[0], also=HOSTS[1:2]) as server:
        seen = asyncio.run(check(server.port))
        robots_hits = Counter(hit.host.split(":")[0] for hit in server.hits("/robots.txt"))
    no = politeness_module.DISALLOWED
    assert seen[:6] == [no, None, no, None, 0.25, no]
    assert robots_hits == {HOSTS[0]: 1, HOSTS[1]: 1}  # each fetched once, however often re-parsed
    assert seen[6] == {"parsed": 2, "parsed_again": 2}
    assert seen[7], "a dropped parser waits for a full collection"


def test_each_host_keeps_its_connection_while_many_hosts_take_turns(tmp_path: Path) -> None:
    """A durable crawl of 100 hosts, one request at a time each, their pages taking turns: every
    host's pages (and its robots.txt) go over one connection. Idle connections were bounded at 64
    for this concurrency, so each host's connection was closed while the other 99 were served:
    4 connections for each host's 5 requests (about 250 µs of CPU each on loopback)."""
    hosts = [f"127.0.4.{i}" for i in range(1, 101)]
    connections: dict[str, set[object]] = {}

    async def robots(request: web.Request) -> web.Response:
        connections.setdefault(request.host.split(":")[0], set()).add(request.transport)
        return web.Response(text="User-agent: *\nDisallow: /private/\n", content_type="text/plain")

    async def numbered(request: web.Request) -> web.Response:
        connections.setdefault(request.host.split(":")[0], set()).add(request.transport)
        return page(request.match_info["n"])

    routes = [web.get("/robots.txt", robots), web.get("/p/{n}", numbered)]
    with serve(routes, address=hosts[0], also=hosts[1:]) as server:
        urls = [server.url(f"/p/{n}", host) for n in range(4) for host in hosts]
        out = tmp_path / "out.jsonl"
        stats = crawl(
            UrlsSpider,
            out,
            settings={
                "frontier": "sqlite",
                "job_dir": str(tmp_path / "job"),
                "parse_workers": 1,
                "concurrency": 4,
                "concurrency_per_host": 1,
            },
            handle_signals=False,
            urls=" ".join(urls),
        )
    assert stats.ok and stats.pages == 400
    per_host = Counter(len(seen) for seen in connections.values())
    assert len(connections) == 100 and per_host == {1: 100}, per_host
