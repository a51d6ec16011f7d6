"""A session's proxy, cookies and headers stay together across requests; a block retires it.

aiohttp directly (not the engine), two real forward proxies and a real site on 127.0.0.1. The
site gives each new visitor a cookie, and answers a Cloudflare-like challenge page (with a 200)
to the visitor whose cookie it has decided to block.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from crawlkit.fetch import Classifier, HeaderProfile, Label, ProxyPool, Session, SessionPool, parse_proxy
from support.forwardproxy import ForwardProxy, forward_proxy
from support.misbehaving import Server, serve

CHALLENGE = (Path(__file__).parent.parent / "fixtures" / "challenges" / "cloudflare_js.html").read_text()
BLOCKED: set[str] = set()
_visitors = itertools.count(1)


async def shop(request: web.Request) -> web.Response:
    visitor = request.cookies.get("visitor")
    if visitor in BLOCKED:
        return web.Response(text=CHALLENGE, content_type="text/html")
    response = web.Response(
        text=f"<html><title>shop</title><p>{visitor}</p></html>", content_type="text/html"
    )
    if visitor is None:
        response.set_cookie("visitor", f"v{next(_visitors)}", path="/")
    return response


@pytest.fixture
def site() -> Iterator[Server]:
    BLOCKED.clear()
    with serve([web.get("/shop/{n}", shop)]) as server:
        yield server


@pytest.fixture
def proxies() -> Iterator[tuple[ForwardProxy, ForwardProxy]]:
    with forward_proxy(auth=("u1", "p1")) as one, forward_proxy(auth=("u2", "p2")) as two:
        yield one, two


def profiles() -> Iterator[HeaderProfile]:
    for n in itertools.count(1):
        yield HeaderProfile(
            f"profile {n}", (("User-Agent", f"TestBrowser/{n}"), ("Accept-Language", f"l{n}"))
        )


async def fetch(http: aiohttp.ClientSession, session: Session, url: str, classifier: Classifier) -> Label:
    """One request as the wiring step will send it: the session's headers, cookies and proxy."""
    headers = session.headers()
    cookie = session.cookie_header(url)
    if cookie:
        headers["Cookie"] = cookie
    via = session.proxy_args(url)
    assert via is not None
    async with http.get(
        url, headers={**headers, **via.headers}, proxy=via.proxy, proxy_headers=via.proxy_headers
    ) as resp:
        body = await resp.read()
        session.store_cookies(resp.headers.getall("Set-Cookie", []), str(resp.url))
        return classifier.response(resp.status, resp.headers.items(), body, via_proxy=True).label


def test_a_session_keeps_its_proxy_cookies_and_headers_and_a_block_retires_it(
    site: Server, proxies: tuple[ForwardProxy, ForwardProxy]
) -> None:
    one, two = proxies
    pool = SessionPool(
        profiles().__next__,
        size=2,
        proxies=ProxyPool(
            [
                parse_proxy(one.url_with_credentials("u1", "p1")),
                parse_proxy(two.url_with_credentials("u2", "p2")),
            ]
        ),
    )
    classifier = Classifier()

    async def crawl() -> list[tuple[str, Label]]:
        done = []
        # One aiohttp session for all: cookies travel with crawlkit's sessions, not aiohttp's.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            for n in range(12):
                session = await pool.acquire()
                label = await fetch(http, session, site.url(f"/shop/{n}"), classifier)
                pool.record(session, label)
                done.append((session.id, label))
                if n == 5:  # the site decides to block the first visitor
                    BLOCKED.add("v1")
        return done

    done = asyncio.run(crawl())
    hits = site.hits()
    # Each visitor cookie was always sent with the same User-Agent, through the same proxy.
    by_visitor: dict[str, set[tuple[str, str]]] = {}
    for hit in hits:
        if "Cookie" in hit.headers:
            by_visitor.setdefault(hit.headers["Cookie"], set()).add(
                (hit.headers["User-Agent"], hit.headers["Accept-Language"])
            )
    assert by_visitor and all(len(identities) == 1 for identities in by_visitor.values())
    seen_by_proxy = {p.url: {s.headers.get("user-agent") for s in p.seen} for p in (one, two)}
    assert not (seen_by_proxy[one.url] & seen_by_proxy[two.url])  # no profile used both proxies
    # No credential reached the site.
    assert not any("Proxy-Authorization" in h.headers or "Authorization" in h.headers for h in hits)

    # The blocked visitor's session got one challenge page, was retired, and never came back.
    blocked = [sid for sid, label in done if label is Label.BLOCKED]
    assert len(blocked) == 1
    after = done[[label for _, label in done].index(Label.BLOCKED) + 1 :]
    assert blocked[0] not in {sid for sid, _ in after}
    assert all(label is Label.OK for _, label in after)
    assert pool.stats() == {"live": 2, "retired": {"blocked": 1}}
    # Its replacement is a new visitor: a fresh jar, a fresh profile, on the proxy that was free.
    assert len({sid for sid, _ in done}) == 3
