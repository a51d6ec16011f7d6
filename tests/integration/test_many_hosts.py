"""Per-host state stays small when a crawl meets many hosts, and politeness holds all the same.

Real servers on several loopback addresses (127.0.3.x: each one a host to the crawler): a
robots.txt whose parser was dropped from memory is parsed again from its kept text, never fetched
again, and its rules and Crawl-delay hold as before.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from aiohttp import web

from crawlkit import CrawlStats
from crawlkit.fetch import CrawlHostPolicy, Fetcher, Politeness
from crawlkit.fetch import _politeness as politeness_module
from crawlkit.frontier import MemoryFrontier
from crawlkit.http import Request
from crawlkit.settings import load_settings
from support.misbehaving import serve

HOSTS = [f"127.0.3.{i}" for i in range(1, 11)]


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
            seen.append(await politeness.gate(Request(f"{second}/private/a")))  # drops the first's parser
            policy.set_robots_delay(HOSTS[0], None)  # as the policy forgets hosts beyond its bound
            seen.append(await politeness.gate(Request(f"{first}/private/b")))
            seen.append(await politeness.gate(Request(f"{first}/public")))
            seen.append(policy.robots_delay(HOSTS[0]))
            seen.append(await politeness.gate(Request(f"{second}/other")))
        await politeness.close()
        seen.append(dict(stats.robots))
        return seen

    with serve([web.get("/robots.txt", robots)], address=HOSTS[0], also=HOSTS[1:2]) as server:
        seen = asyncio.run(check(server.port))
        robots_hits = Counter(hit.host.split(":")[0] for hit in server.hits("/robots.txt"))
    no = politeness_module.DISALLOWED
    assert seen[:6] == [no, None, no, None, 0.25, no]
    assert robots_hits == {HOSTS[0]: 1, HOSTS[1]: 1}  # each fetched once, however often re-parsed
    assert seen[6] == {"parsed": 2, "parsed_again": 2}
