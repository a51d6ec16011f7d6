"""Sitemaps: parsing (XML, indexes, gzip, text, robots.txt) as a stream, and a real crawl of them."""

from __future__ import annotations

import gzip
import itertools

import pytest

from crawlkit import Request, Response, Spider
from crawlkit.spider._sitemaps import MAX_SITEMAP_SIZE, SitemapError, iter_sitemap, sitemap_requests

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def urlset(urls: list[str], lastmod: bool = False) -> bytes:
    body = "".join(
        f"<url><loc>{u}</loc>{'<lastmod>2024-01-02</lastmod>' if lastmod else ''}<priority>1</priority></url>"
        for u in urls
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {NS}>{body}</urlset>'.encode()


def index(urls: list[str]) -> bytes:
    body = "".join(f"<sitemap><loc>{u}</loc></sitemap>" for u in urls)
    return f'<?xml version="1.0"?><sitemapindex {NS}>{body}</sitemapindex>'.encode()


def test_urlset_with_lastmod_and_namespaces() -> None:
    entries = list(
        iter_sitemap("http://a.test/sitemap.xml", urlset(["http://a.test/1", "http://a.test/2"], True))
    )
    assert entries == [("url", "http://a.test/1", "2024-01-02"), ("url", "http://a.test/2", "2024-01-02")]


def test_index_gzip_text_and_robots() -> None:
    assert list(iter_sitemap("http://a.test/i.xml", index(["http://a.test/s1.xml.gz"]))) == [
        ("sitemap", "http://a.test/s1.xml.gz", None)
    ]
    gz = gzip.compress(urlset(["http://a.test/z"]))
    assert list(iter_sitemap("http://a.test/s1.xml.gz", gz)) == [("url", "http://a.test/z", None)]
    text = b"http://a.test/t1\n\n  https://a.test/t2  \nnot a url\r\n"
    assert [u for _, u, _ in iter_sitemap("http://a.test/s.txt", text)] == [
        "http://a.test/t1",
        "https://a.test/t2",
    ]
    robots = b"User-agent: *\nDisallow: /x\nSitemap: http://a.test/s1.xml\nsitemap:http://a.test/s2.xml\n"
    assert list(iter_sitemap("http://a.test/robots.txt", robots)) == [
        ("sitemap", "http://a.test/s1.xml", None),
        ("sitemap", "http://a.test/s2.xml", None),
    ]


def test_a_large_sitemap_is_parsed_as_a_stream() -> None:
    urls = [f"http://a.test/page/{i}" for i in range(50_000)]
    body = urlset(urls)
    entries = iter_sitemap("http://a.test/big.xml", body)
    # The first entries come after one 64 KiB chunk has been parsed, not after the whole body.
    first = list(itertools.islice(entries, 10))
    assert [u for _, u, _ in first] == urls[:10]
    assert sum(1 for _ in entries) == len(urls) - 10


def test_a_broken_sitemap_yields_what_came_before_the_error() -> None:
    body = urlset(["http://a.test/1", "http://a.test/2"])[:-20] + b"<url><loc>oops</url>"
    got: list[tuple[str, str, str | None]] = []
    with pytest.raises(SitemapError, match="not a well-formed sitemap"):
        got.extend(iter_sitemap("http://a.test/s.xml", body))
    assert [u for _, u, _ in got] == ["http://a.test/1"]


def test_a_doctype_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b"<urlset><url><loc>&lol2;</loc></url></urlset>"
    )
    with pytest.raises(SitemapError, match="DOCTYPE"):
        list(iter_sitemap("http://a.test/s.xml", bomb))


def test_a_gzip_bomb_sitemap_stops_at_the_cap() -> None:
    bomb = gzip.compress(b"<" + b" " * (MAX_SITEMAP_SIZE + 10), compresslevel=9)
    with pytest.raises(Exception, match="exceeds"):
        list(iter_sitemap("http://a.test/s.xml.gz", bomb))


class Nested(Spider):
    sitemap_max_depth = 1
    sitemap_callback = "parse_page"


def test_requests_go_to_the_sitemap_callback_and_index_depth_is_bounded() -> None:
    spider = Nested()
    page = Response(
        "http://a.test/s.xml",
        200,
        {},
        urlset(["/rel", "http://a.test/abs"], True),
        Request("http://a.test/s.xml"),
    )
    requests = list(sitemap_requests(spider, page))
    assert [(r.url, r.callback, r.meta) for r in requests] == [
        ("http://a.test/rel", "parse_page", {"sitemap_lastmod": "2024-01-02"}),
        ("http://a.test/abs", "parse_page", {"sitemap_lastmod": "2024-01-02"}),
    ]
    top = Response(
        "http://a.test/i.xml", 200, {}, index(["http://a.test/s.xml"]), Request("http://a.test/i.xml")
    )
    (child,) = sitemap_requests(spider, top)
    assert child.callback == "_parse_sitemap" and child.meta["sitemap_depth"] == 1
    deeper = Response("http://a.test/s.xml", 200, {}, index(["http://a.test/t.xml"]), child)
    assert list(sitemap_requests(spider, deeper)) == []  # deeper than sitemap_max_depth


def test_start_requests_include_sitemaps_and_robots_when_asked() -> None:
    class Plain(Spider):
        start_urls = ["http://a.test/"]

    assert [r.url for r in Plain().start_requests()] == ["http://a.test/"]  # type: ignore[union-attr]

    class WithSitemaps(Spider):
        start_urls = ["http://a.test/"]
        sitemap_urls = ["https://b.test/sitemap.xml"]
        sitemap_follow_robots = True

    urls = [(r.url, r.callback) for r in WithSitemaps().start_requests()]  # type: ignore[union-attr]
    assert urls == [
        ("http://a.test/", None),
        ("https://b.test/sitemap.xml", "_parse_sitemap"),
        ("http://a.test/robots.txt", "_parse_sitemap"),
        ("https://b.test/robots.txt", "_parse_sitemap"),
    ]
