"""Proxies against real forward proxies and a real site on 127.0.0.1, through aiohttp itself.

One proxy wants credentials, one is down, one answers 502 to everything. The site records every
request's headers: credentials must reach the proxy and never the site, and a proxy's failures
must be told apart from the site's (the classifier's ``proxy_error``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web

from crawlkit.fetch import Classifier, Label, NoProxyAvailable, ProxyPool, ProxyState, parse_proxy
from support.forwardproxy import ForwardProxy, down_proxy_url, forward_proxy
from support.misbehaving import Server, page, serve

USER, PASSWORD = "crawler", "s3cret-pw"


async def ok(request: web.Request) -> web.Response:
    return page("a page")


@pytest.fixture
def site() -> Iterator[Server]:
    with serve([web.get("/page", ok)]) as server:
        yield server


@pytest.fixture
def auth_proxy() -> Iterator[ForwardProxy]:
    with forward_proxy(auth=(USER, PASSWORD)) as proxy:
        yield proxy


@pytest.fixture
def failing_proxy() -> Iterator[ForwardProxy]:
    with forward_proxy(fail_status=502) as proxy:
        yield proxy


async def attempt(url: str, proxy_url: str, classifier: Classifier | None = None) -> tuple[int, Label]:
    """One request through the proxy (credentials from its URL), and the classifier's label."""
    proxy = parse_proxy(proxy_url)
    classifier = classifier or Classifier()
    async with aiohttp.ClientSession() as session:
        try:
            via = proxy.for_request(url)
            async with session.get(
                url, proxy=via.proxy, proxy_headers=via.proxy_headers, headers=via.headers
            ) as resp:
                body = await resp.read()
                verdict = classifier.response(resp.status, resp.headers.items(), body, via_proxy=True)
                return resp.status, verdict.label
        except aiohttp.ClientError as exc:
            return 0, classifier.error(exc).label


def test_credentials_reach_the_proxy_and_never_the_site(site: Server, auth_proxy: ForwardProxy) -> None:
    status, label = asyncio.run(attempt(site.url("/page"), auth_proxy.url_with_credentials(USER, PASSWORD)))
    assert (status, label) == (200, Label.OK)
    [seen] = auth_proxy.seen
    assert seen.target == site.url("/page")  # absolute form: it went through the proxy
    assert seen.headers["proxy-authorization"].startswith("Basic ")
    [hit] = site.hits("/page")
    leaked = {k.lower() for k in hit.headers} & {"proxy-authorization", "authorization"}
    assert not leaked
    assert PASSWORD not in repr(hit.headers)


def test_wrong_credentials_are_the_proxys_error(site: Server, auth_proxy: ForwardProxy) -> None:
    result = asyncio.run(attempt(site.url("/page"), auth_proxy.url_with_credentials(USER, "wrong")))
    assert result == (407, Label.PROXY_ERROR)
    assert site.hits() == []


def test_a_failed_tunnel_is_the_proxys_error(site: Server, auth_proxy: ForwardProxy) -> None:
    # An https target goes through CONNECT: the proxy's 407 there is raised by aiohttp.
    https = site.url("/page").replace("http://", "https://")
    status, label = asyncio.run(attempt(https, auth_proxy.url_with_credentials(USER, "wrong")))
    assert (status, label) == (0, Label.PROXY_ERROR)
    assert auth_proxy.seen[0].method == "CONNECT"
    assert site.hits() == []


def test_a_down_proxy_is_the_proxys_error(site: Server) -> None:
    assert asyncio.run(attempt(site.url("/page"), down_proxy_url())) == (0, Label.PROXY_ERROR)
    https = site.url("/page").replace("http://", "https://")
    assert asyncio.run(attempt(https, down_proxy_url())) == (0, Label.PROXY_ERROR)


def test_a_proxys_own_502_is_its_error_not_the_sites(site: Server, failing_proxy: ForwardProxy) -> None:
    assert asyncio.run(attempt(site.url("/page"), failing_proxy.url)) == (502, Label.PROXY_ERROR)
    https = site.url("/page").replace("http://", "https://")
    assert asyncio.run(attempt(https, failing_proxy.url)) == (0, Label.PROXY_ERROR)
    assert site.hits() == []


def test_a_dead_site_behind_a_good_proxy_is_the_sites_failure(auth_proxy: ForwardProxy) -> None:
    dead_site = down_proxy_url() + "/page"  # nothing listens there either
    result = asyncio.run(attempt(dead_site, auth_proxy.url_with_credentials(USER, PASSWORD)))
    assert result == (502, Label.NETWORK_ERROR)  # Proxy-Status: error=connection_refused


def test_the_pool_rests_bad_proxies_and_keeps_the_site_healthy(
    site: Server, auth_proxy: ForwardProxy, failing_proxy: ForwardProxy
) -> None:
    good = parse_proxy(auth_proxy.url_with_credentials(USER, PASSWORD))
    down, bad = parse_proxy(down_proxy_url()), parse_proxy(failing_proxy.url)
    pool = ProxyPool([down, bad, good], failures_to_rest=2, rest_base=60)
    classifier = Classifier()

    async def crawl(n: int) -> list[Label]:
        labels = []
        async with aiohttp.ClientSession() as session:
            for _ in range(n):
                proxy = await pool.acquire(wait=1)
                via = proxy.for_request(site.url("/page"))
                try:
                    async with session.get(
                        site.url("/page"),
                        proxy=via.proxy,
                        proxy_headers=via.proxy_headers,
                        headers=via.headers,
                    ) as resp:
                        body = await resp.read()
                        verdict = classifier.response(resp.status, resp.headers.items(), body, via_proxy=True)
                except aiohttp.ClientError as exc:
                    verdict = classifier.error(exc)
                pool.record(proxy, verdict.label)
                labels.append(verdict.label)
        return labels

    labels = asyncio.run(crawl(12))
    assert pool.state(down) is ProxyState.RESTING
    assert pool.state(bad) is ProxyState.RESTING
    assert pool.state(good) is ProxyState.READY
    assert labels.count(Label.PROXY_ERROR) == 4  # two each, then rested
    assert labels.count(Label.OK) == 8
    assert len(site.hits("/page")) == 8  # every request that reached the site was answered
    stats = {s["proxy"]: s for s in pool.stats()}
    assert stats[str(good)]["successes"] == 8
    assert stats[str(bad)]["proxy_errors"] == 2
    assert PASSWORD not in repr(pool.stats())

    # Only the resting ones left: the pool says so, within the deadline asked.
    only_bad = ProxyPool([down], failures_to_rest=1, rest_base=60)
    only_bad.record(down, Label.PROXY_ERROR)
    with pytest.raises(NoProxyAvailable):
        asyncio.run(only_bad.acquire(wait=0.1))
