"""The test website itself behaves as documented (hit with aiohttp and raw sockets, no crawlkit)."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import time
import zlib
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs

import aiohttp
import brotli
import pytest
from multidict import CIMultiDictProxy
from selectolax.lexbor import LexborHTMLParser
from yarl import URL

from support.testsite import (
    CHARSET_NAMES,
    DEFAULT_FANOUT,
    DEFAULT_SIZE,
    ENCODED_PAGE,
    GZIP_BOMB_SIZE,
    MAX_DEPTH,
    OFFSITE_URL,
    SiteLog,
    charset_text,
    graph_links,
    graph_path,
    reachable,
)

if TYPE_CHECKING:
    from conftest import Site

T = TypeVar("T")


def run(factory: Callable[[aiohttp.ClientSession], Awaitable[T]], **session_kwargs: Any) -> T:
    """Run ``factory(session)`` in a fresh event loop with a fresh client session."""

    async def main() -> T:
        async with aiohttp.ClientSession(**session_kwargs) as session:
            return await factory(session)

    return asyncio.run(main())


async def fetch(
    session: aiohttp.ClientSession, url: str, **kwargs: Any
) -> tuple[int, CIMultiDictProxy[str], bytes, aiohttp.ClientResponse]:
    async with session.get(url, **kwargs) as resp:
        body = await resp.read()
        return resp.status, resp.headers, body, resp


# -- the graph ---------------------------------------------------------------------------------


def test_graph_defaults_are_fully_reachable_and_deterministic() -> None:
    assert reachable() == set(range(DEFAULT_SIZE))
    assert graph_links(0) == list(range(1, DEFAULT_FANOUT + 1))
    assert graph_links(123) == graph_links(123)
    assert graph_links(123, seed=1) != graph_links(123, seed=2) or graph_links(456, seed=1) != graph_links(
        456, seed=2
    )
    for n in (0, 1, 500, 999):
        links = graph_links(n)
        assert len(links) == DEFAULT_FANOUT
        assert n not in links
        assert len(set(links)) == len(links)
        assert all(0 <= m < DEFAULT_SIZE for m in links)
    assert reachable(50, 0, 0) == {0}
    assert reachable(50, 3, 7) == set(range(50))
    with pytest.raises(ValueError):
        graph_links(10, size=10)


def _graph_targets(page_url: str, body: bytes) -> tuple[list[str], list[str], list[URL]]:
    tree = LexborHTMLParser(body)
    graph_hrefs = [a.attributes["href"] or "" for a in tree.css("a.graph")]
    other_hrefs = [a.attributes["href"] or "" for a in tree.css("a.other")]
    resolved = [URL(page_url).join(URL(h)) for h in graph_hrefs]
    return graph_hrefs, other_hrefs, resolved


def test_graph_page_links_are_variants_of_graph_links(site: Site) -> None:
    size, fanout, seed = 300, 4, 5
    pages = [0, 1, 17, 299]

    async def go(session: aiohttp.ClientSession) -> list[tuple[int, bytes]]:
        out = []
        for n in pages:
            status, _, body, _ = await fetch(session, site.url(graph_path(n, size, fanout, seed)))
            out.append((status, body))
        return out

    results = run(go)
    for n, (status, body) in zip(pages, results, strict=True):
        assert status == 200
        tree = LexborHTMLParser(body)
        assert tree.css_first("h1.title").text() == f"Page {n}"  # type: ignore[union-attr]
        assert tree.css_first("span.n").text() == str(n)  # type: ignore[union-attr]
        assert tree.css_first("a[name=top]").attributes.get("href") is None  # type: ignore[union-attr]
        page_url = site.url(graph_path(n, size, fanout, seed))
        hrefs, others, resolved = _graph_targets(page_url, body)
        targets = []
        for u in resolved:
            assert u.host == "127.0.0.1" and u.port == site.port
            assert u.path.startswith("/graph/")
            assert {k: v[0] for k, v in parse_qs(u.query_string).items()} == {
                "size": str(size),
                "fanout": str(fanout),
                "seed": str(seed),
            }
            targets.append(int(u.path.rsplit("/", 1)[1]))
        assert set(targets) == set(graph_links(n, size, fanout, seed))
        # Every variant form is present.
        assert any(h.startswith(site.base) for h in hrefs)
        assert any(h.startswith("HTTP://") for h in hrefs)
        assert any("#" in h for h in hrefs)
        assert any(h.startswith("/graph/x/../") for h in hrefs)
        assert any(h[0].isdigit() for h in hrefs)  # relative to /graph/n
        assert any(h.index("seed") < h.index("size") for h in hrefs)
        assert OFFSITE_URL in others
        assert any(h.startswith("mailto:") for h in others)
        assert any(h.startswith("javascript:") for h in others)
        assert "#top" in others


def test_graph_bad_parameters(site: Site) -> None:
    async def go(session: aiohttp.ClientSession) -> list[int]:
        urls = ["/graph/1000", "/graph/x", "/graph/1?size=abc", "/graph/-1", "/graph/5?size=5"]
        return [(await fetch(session, site.url(u)))[0] for u in urls]

    assert run(go) == [404, 404, 400, 404, 404]


# -- depth, redirects, statuses ------------------------------------------------------------------


def test_depth_chain(site: Site) -> None:
    async def go(session: aiohttp.ClientSession) -> list[tuple[int, bytes]]:
        return [
            (s, b)
            for s, _, b, _ in [await fetch(session, site.url(f"/depth/{d}")) for d in (0, 7, MAX_DEPTH, 51)]
        ]

    (s0, b0), (s7, b7), (s50, b50), (s51, _) = run(go)
    assert (s0, s7, s50, s51) == (200, 200, 200, 404)
    assert LexborHTMLParser(b0).css_first("a.next").attributes["href"] == "/depth/1"  # type: ignore[union-attr]
    assert LexborHTMLParser(b7).css_first("span.d").text() == "7"  # type: ignore[union-attr]
    assert LexborHTMLParser(b50).css("a") == []


def test_redirect_chain(site: Site) -> None:
    async def go(session: aiohttp.ClientSession) -> tuple[list[tuple[int, str]], str, int, int]:
        hops = []
        for k in (4, 3, 2, 1):
            status, headers, _, _ = await fetch(session, site.url(f"/redirect/{k}"), allow_redirects=False)
            hops.append((status, headers["Location"]))
        async with session.get(site.url("/redirect/4")) as resp:
            await resp.read()
            return hops, str(resp.url), resp.status, len(resp.history)

    hops, final, status, history = run(go)
    assert hops == [
        (302, f"{site.base}/redirect/3"),
        (302, "2"),
        (302, f"{site.base}/redirect/1"),
        (302, "/ok"),
    ]
    assert (final, status, history) == (site.url("/ok"), 200, 4)
    assert site.log.paths()[-5:] == ["/redirect/4", "/redirect/3", "/redirect/2", "/redirect/1", "/ok"]


def test_redirect_codes_and_loop(site: Site) -> None:
    async def go(session: aiohttp.ClientSession) -> tuple[int, str, str, str]:
        s307, h307, _, _ = await fetch(session, site.url("/redirect/2?code=307"), allow_redirects=False)
        _, ha, _, _ = await fetch(session, site.url("/redirect-loop/a"), allow_redirects=False)
        _, hb, _, _ = await fetch(session, site.url("/redirect-loop/b"), allow_redirects=False)
        with pytest.raises(aiohttp.TooManyRedirects):
            await fetch(session, site.url("/redirect-loop/a"), max_redirects=5)
        return s307, h307["Location"], ha["Location"], hb["Location"]

    assert run(go) == (307, f"{site.base}/redirect/1?code=307", "/redirect-loop/b", "/redirect-loop/a")
    assert site.log.count("/redirect-loop") >= 2 + 5


def test_status_codes_and_plain_pages(site: Site) -> None:
    async def go(session: aiohttp.ClientSession) -> list[tuple[int, bytes]]:
        paths = [
            "/status/200",
            "/status/404",
            "/status/500",
            "/status/204",
            "/ok",
            "/callback-raises",
            "/callback-exits",
            "/robots.txt",
            "/no-such-page",
        ]
        return [(s, b) for s, _, b, _ in [await fetch(session, site.url(p)) for p in paths]]

    got = run(go)
    assert [s for s, _ in got] == [200, 404, 500, 204, 200, 200, 200, 404, 404]
    assert b"status 404" in got[1][1]
    assert got[3][1] == b""
    assert b'<h1 class="title">ok</h1>' in got[4][1]


# -- failures and retries -------------------------------------------------------------------------


def test_flaky_counts_per_key_and_resets(site: Site) -> None:
    async def go(session: aiohttp.ClientSession, key: str, n: int, query: str = "") -> list[int]:
        return [(await fetch(session, site.url(f"/flaky/{key}{query}")))[0] for _ in range(n)]

    assert run(lambda s: go(s, "a", 4, "?fail=2")) == [503, 503, 200, 200]
    assert run(lambda s: go(s, "b", 3, "?fail=1&code=500")) == [500, 200, 200]
    assert run(lambda s: go(s, "c", 2)) == [503, 200]  # fail defaults to 1
    assert site.state.hits("flaky", "a") == 4
    site.reset()
    assert site.log.count() == 0
    assert run(lambda s: go(s, "a", 2, "?fail=1")) == [503, 200]


async def _raw_get(site: Site, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {site.netloc}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def test_drop_closes_connection_without_response(site: Site) -> None:
    # Raw sockets: aiohttp's client silently retries an idempotent request once after a drop.
    async def go() -> list[bytes]:
        return [await _raw_get(site, "/drop/k1?fail=2") for _ in range(3)]

    first, second, third = asyncio.run(go())
    assert first == b""
    assert second == b""
    assert third.startswith(b"HTTP/1.1 200")
    entries = site.log.entries("/drop/k1")
    assert [(e.dropped, e.status) for e in entries] == [(True, None), (True, None), (False, 200)]


def test_retry_after_delta(site: Site) -> None:
    async def go(session: aiohttp.ClientSession) -> list[tuple[int, str | None]]:
        out = []
        for _ in range(3):
            status, headers, _, _ = await fetch(session, site.url("/retry-after/d1?seconds=2&count=2"))
            out.append((status, headers.get("Retry-After")))
        return out

    assert run(go) == [(429, "2"), (429, "2"), (200, None)]


def test_retry_after_date_is_at_least_s_ahead(site: Site) -> None:
    async def go(session: aiohttp.ClientSession) -> tuple[int, str, int]:
        status, headers, _, _ = await fetch(session, site.url("/retry-after/d2?seconds=3&mode=date&code=503"))
        then, _, _, _ = await fetch(session, site.url("/retry-after/d2?seconds=3&mode=date"))
        return status, headers["Retry-After"], then

    status, value, then = run(go)
    assert (status, then) == (503, 200)
    wait = parsedate_to_datetime(value).timestamp() - time.time()
    assert 2.9 <= wait <= 5.1
    times = site.log.times("/retry-after/d2")
    assert len(times) == 2 and times[0] <= times[1]


def test_retry_after_bad_mode(site: Site) -> None:
    assert run(lambda s: fetch(s, site.url("/retry-after/x?mode=later")))[0] == 400


# -- timing, size, concurrency --------------------------------------------------------------------


def test_slow_requests_overlap_and_are_counted_in_flight(site: Site) -> None:
    async def go(session: aiohttp.ClientSession) -> list[int]:
        results = await asyncio.gather(
            *(fetch(session, site.url(f"/slow?delay=0.4&i={i}")) for i in range(4))
        )
        return [r[0] for r in results]

    started = time.monotonic()
    assert run(go) == [200] * 4
    elapsed = time.monotonic() - started
    assert elapsed >= 0.4
    assert site.log.max_in_flight("/slow") == 4  # they overlapped: all four in flight at once
    assert site.log.max_in_flight("/slow", host=site.netloc) == 4
    assert site.log.max_in_flight("/graph") == 0
    assert site.log.wait_idle(5)
    assert site.log.in_flight() == 0
    entries = site.log.entries("/slow")
    assert all(e.end is not None and e.end - e.start >= 0.39 for e in entries)


def test_drip_sends_chunks_over_time(site: Site) -> None:
    started = time.monotonic()
    status, _, body, _ = run(lambda s: fetch(s, site.url("/drip?chunks=3&interval=0.2&size=4")))
    assert (status, body) == (200, b"d" * 12)
    assert time.monotonic() - started >= 0.6


def test_big_body_exact_size_with_and_without_length(site: Site) -> None:
    async def go(session: aiohttp.ClientSession) -> list[tuple[int, str | None, int, str | None]]:
        out = []
        for query in ("size=1000", "size=300000&chunked=1", "size=0"):
            status, headers, body, _ = await fetch(session, site.url(f"/big?{query}"))
            out.append((status, headers.get("Content-Length"), len(body), headers.get("Transfer-Encoding")))
        return out

    assert run(go) == [(200, "1000", 1000, None), (200, None, 300000, "chunked"), (200, "0", 0, None)]


def test_gzip_bomb_headers_and_ratio(site: Site) -> None:
    status, headers, body, _ = run(lambda s: fetch(s, site.url("/gzip-bomb"), auto_decompress=False))
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert int(headers["Content-Length"]) == len(body) < 200_000
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    head = inflater.decompress(body, 1024)
    assert head.startswith(b"<!DOCTYPE html>")
    total = len(head)
    while inflater.unconsumed_tail:
        total += len(inflater.decompress(inflater.unconsumed_tail, 8 * 1024 * 1024))
    total += len(inflater.flush())
    assert total == GZIP_BOMB_SIZE


@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "deflate", "raw-deflate", "br", "identity"])
def test_encoded_pages(site: Site, coding: str) -> None:
    status, headers, body, _ = run(lambda s: fetch(s, site.url(f"/encoded/{coding}"), auto_decompress=False))
    assert status == 200
    sent = headers["Content-Encoding"]
    if coding in ("gzip", "x-gzip"):
        assert sent == coding
        plain = zlib.decompress(body, 16 + zlib.MAX_WBITS)
    elif coding == "deflate":
        assert sent == "deflate"
        plain = zlib.decompress(body)
    elif coding == "raw-deflate":
        assert sent == "deflate"
        with pytest.raises(zlib.error):
            zlib.decompress(body)
        plain = zlib.decompress(body, -zlib.MAX_WBITS)
    elif coding == "br":
        assert sent == "br"
        plain = brotli.decompress(body)
    else:
        assert sent == "identity"
        plain = body
    assert plain == ENCODED_PAGE


# -- charsets -------------------------------------------------------------------------------------


def _charset_get(site: Site, path: str) -> tuple[int, str, bytes]:
    status, headers, body, _ = run(lambda s: fetch(s, site.url(path)))
    return status, headers.get("Content-Type", ""), body


@pytest.mark.parametrize("name", CHARSET_NAMES)
def test_charset_header_and_none(site: Site, name: str) -> None:
    text = charset_text(name)
    status, content_type, body = _charset_get(site, f"/charset/{name}?via=header")
    assert status == 200
    assert content_type == f"text/html; charset={name}"
    assert text in body.decode(name)
    assert text.encode(name) in body
    status, content_type, body = _charset_get(site, f"/charset/{name}?via=none")
    assert (status, content_type) == (200, "text/html")
    assert text.encode(name) in body
    assert b"charset" not in body


@pytest.mark.parametrize("name", [n for n in CHARSET_NAMES if not n.startswith("utf-16")])
@pytest.mark.parametrize("via", ["meta", "http-equiv"])
def test_charset_meta(site: Site, name: str, via: str) -> None:
    status, content_type, body = _charset_get(site, f"/charset/{name}?via={via}")
    assert (status, content_type) == (200, "text/html")
    if via == "meta":
        assert f'<meta charset="{name}">'.encode() in body
    else:
        assert f'content="text/html; charset={name}"'.encode() in body
    assert charset_text(name).encode(name) in body


@pytest.mark.parametrize(
    ("name", "bom"),
    [
        ("utf-8", codecs.BOM_UTF8),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
    ],
)
def test_charset_bom(site: Site, name: str, bom: bytes) -> None:
    status, content_type, body = _charset_get(site, f"/charset/{name}?via=bom")
    assert (status, content_type) == (200, "text/html")
    assert body.startswith(bom)
    assert charset_text(name) in body[len(bom) :].decode(name)


def test_charset_declared_label_and_bad_combinations(site: Site) -> None:
    status, content_type, body = _charset_get(site, "/charset/windows-1252?via=header&declared=iso-8859-1")
    assert (status, content_type) == (200, "text/html; charset=iso-8859-1")
    assert "’".encode("cp1252") in body  # noqa: RUF001 - cp1252-only byte 0x92, labelled latin-1
    assert _charset_get(site, "/charset/shift_jis?via=bom")[0] == 400
    assert _charset_get(site, "/charset/utf-16-le?via=meta")[0] == 400
    assert _charset_get(site, "/charset/klingon?via=header")[0] == 400


def test_charset_texts_differ_per_script() -> None:
    assert charset_text("utf-8") == "Zoë’s café — “naïve” façade"  # noqa: RUF001
    assert charset_text("windows-1252") == charset_text("utf-8")
    for name in ("iso-8859-2", "shift_jis", "gb2312"):
        text = charset_text(name)
        assert text != charset_text("utf-8")
        assert text.encode(name).decode(name) == text
        with pytest.raises(UnicodeDecodeError):
            text.encode(name).decode("utf-8")


# -- the log --------------------------------------------------------------------------------------


def test_log_records_method_path_headers_and_body(site: Site) -> None:
    async def go(session: aiohttp.ClientSession) -> dict[str, Any]:
        await fetch(session, site.url("/ok?x=1"), headers={"User-Agent": "crawlkit-test/1"})
        async with session.post(site.url("/echo?y=2"), data=b"payload") as resp:
            data: dict[str, Any] = await resp.json()
            return data

    before = time.monotonic()
    echoed = run(go)
    after = time.monotonic()
    assert echoed["method"] == "POST"
    assert echoed["body"] == "payload"
    assert echoed["path_qs"] == "/echo?y=2"
    ok, post = site.log.entries()
    assert (ok.method, ok.path, ok.path_qs, ok.query, ok.status) == ("GET", "/ok", "/ok?x=1", "x=1", 200)
    assert ok.user_agent == "crawlkit-test/1"
    assert ok.headers["user-agent"] == "crawlkit-test/1"
    assert ok.host == site.netloc
    assert before <= ok.time <= post.start <= after
    assert (post.method, post.body) == ("POST", b"payload")
    assert site.log.count("/echo") == 1
    assert site.log.count("/ec") == 0  # prefixes match whole path segments
    assert len(site.log) == 2


def test_site_log_prefix_matching_without_a_server() -> None:
    log = SiteLog()
    assert log.entries() == []
    assert log.max_in_flight() == 0
    assert log.in_flight("/slow") == 0
    assert log.wait_idle(0.1)
