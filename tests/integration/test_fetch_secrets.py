"""Credentials on the wire: which origin gets them, which wins, and what a server cannot make stick.

Real aiohttp servers on 127.0.0.1: two servers on two ports are two origins. The fetcher is the
one a crawl uses (``crawlkit.testing.fetch_response``, or ``Fetcher`` for several requests in one
session).
"""

from __future__ import annotations

import asyncio
import base64

import pytest
from aiohttp import web

from crawlkit import Request
from crawlkit.errors import FetchError, ProtocolError
from crawlkit.fetch import Fetcher, RetryPolicy
from crawlkit.fetch._cookies import MAX_COOKIE_HEADER_BYTES, MAX_COOKIES_PER_HOST
from crawlkit.settings import load_settings
from crawlkit.testing import fetch_response
from support.misbehaving import page, serve

CREDENTIALS = {
    "Authorization": "Bearer DEFAULT-SECRET",
    "Cookie": "sid=DEFAULT-SECRET",
    "Proxy-Authorization": "Basic DEFAULT-SECRET",
    "X-API-Key": "DEFAULT-SECRET",
}


async def _ok(request: web.Request) -> web.Response:
    return page("ok")


def test_default_credentials_do_not_follow_a_redirect_to_another_origin() -> None:
    with serve([web.get("/landing", _ok)]) as other:

        async def away(request: web.Request) -> web.Response:
            raise web.HTTPFound(other.url("/landing"))

        async def here(request: web.Request) -> web.Response:
            raise web.HTTPFound("/landing")

        with serve([web.get("/away", away), web.get("/here", here), web.get("/landing", _ok)]) as first:
            settings = {"default_headers": CREDENTIALS}
            assert fetch_response(first.url("/away"), settings=settings).status == 200
            assert fetch_response(first.url("/here"), settings=settings).status == 200
            for hit in first.hits():  # the origin they were meant for gets them, on every hop
                assert {k: hit.headers.get(k) for k in CREDENTIALS} == CREDENTIALS
            landed = other.hits("/landing")
            assert len(landed) == 1
            assert "DEFAULT-SECRET" not in repr(landed[0].headers)


def test_url_user_info_wins_over_a_default_authorization() -> None:
    # aiohttp refuses a request with both ("Cannot combine AUTHORIZATION header with AUTH
    # argument or credentials encoded in URL"): the URL's, more specific, is sent.
    with serve([web.get("/private", _ok)]) as server:
        url = server.url("/private").replace("http://", "http://alice:p%40ss@")
        settings = {"default_headers": {"Authorization": "Bearer DEFAULT"}}
        assert fetch_response(url, settings=settings).status == 200
        request = Request(url, headers={"authorization": "Bearer OWN"})
        assert fetch_response(url, settings=settings, request=request).status == 200
        sent = [hit.headers["Authorization"] for hit in server.hits("/private")]
        assert sent == ["Basic " + base64.b64encode(b"alice:p@ss").decode()] * 2


def test_a_response_head_that_does_not_parse_is_not_retried() -> None:
    async def crowded(request: web.Request) -> web.Response:
        return web.Response(text="x", headers={f"X-H{i}": "v" for i in range(300)})

    with serve([web.get("/crowded", crowded)]) as server, pytest.raises(FetchError) as caught:
        fetch_response(server.url("/crowded"))
    assert isinstance(caught.value, ProtocolError) and caught.value.reason == "protocol"
    assert not RetryPolicy(load_settings()).is_retryable(caught.value)


def test_the_cookie_jar_keeps_crawlkits_bounds() -> None:
    async def many(request: web.Request) -> web.Response:
        start = int(request.query["start"])
        response = page("cookies")
        for i in range(start, start + 25):
            response.set_cookie(f"c{i:03d}", "v")
        return response

    async def big(request: web.Request) -> web.Response:
        response = page("big cookies")
        for i in range(10):
            response.set_cookie(f"big{i}", "x" * 1000)
        return response

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=request.headers.get("Cookie", ""))

    async def run(base_many: str, base_big: str) -> tuple[str, str]:
        async with Fetcher(load_settings()) as fetcher:
            for start in range(0, 100, 25):
                await fetcher.fetch(Request(f"{base_many}/many?start={start}"))
            counted = await fetcher.fetch(Request(f"{base_many}/echo"))
            await fetcher.fetch(Request(f"{base_big}/big"))
            sized = await fetcher.fetch(Request(f"{base_big}/echo"))
        return counted.body.decode(), sized.body.decode()

    routes = [web.get("/many", many), web.get("/big", big), web.get("/echo", echo)]
    with serve(routes) as server:
        # Another host name for the same server, so that the two jars' hosts do not mix.
        counted, sized = asyncio.run(run(server.base, server.url("", host="localhost")))
    names = [part.split("=")[0] for part in counted.split("; ")]
    assert len(names) == MAX_COOKIES_PER_HOST  # the first ones set; the later names were dropped
    assert set(names) == {f"c{i:03d}" for i in range(MAX_COOKIES_PER_HOST)}
    assert 0 < len(sized) <= MAX_COOKIE_HEADER_BYTES
    assert sized.count("big") == MAX_COOKIE_HEADER_BYTES // 1007


def test_an_empty_jar_sends_no_cookie_until_one_is_set_and_none_after_it_expires() -> None:
    async def set_one(request: web.Request) -> web.Response:
        response = page("one cookie")
        response.set_cookie("sid", request.query["v"], max_age=int(request.query["age"]))
        return response

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=request.headers.get("Cookie", "(none)"))

    async def run(base: str) -> list[str]:
        seen = []
        async with Fetcher(load_settings()) as fetcher:
            seen.append((await fetcher.fetch(Request(f"{base}/echo"))).body.decode())
            await fetcher.fetch(Request(f"{base}/set?v=1&age=1"))
            seen.append((await fetcher.fetch(Request(f"{base}/echo"))).body.decode())
            await asyncio.sleep(1.1)
            seen.append((await fetcher.fetch(Request(f"{base}/echo"))).body.decode())
        return seen

    with serve([web.get("/set", set_one), web.get("/echo", echo)]) as server:
        assert asyncio.run(run(server.base)) == ["(none)", "sid=1", "(none)"]
