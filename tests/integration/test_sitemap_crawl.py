"""Sitemaps in a real crawl: robots.txt Sitemap lines, an index, gzip and text sitemaps."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
from aiohttp import web

from crawlkit import crawl
from crawlspiders.polite_spiders import SitemapSpider
from support.misbehaving import page, serve

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def urlset(urls: list[str], lastmod: bool = False) -> bytes:
    stamp = "<lastmod>2024-01-02</lastmod>" if lastmod else ""
    body = "".join(f"<url><loc>{u}</loc>{stamp}</url>" for u in urls)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {NS}>{body}</urlset>'.encode()


def index(urls: list[str]) -> bytes:
    body = "".join(f"<sitemap><loc>{u}</loc></sitemap>" for u in urls)
    return f'<?xml version="1.0"?><sitemapindex {NS}>{body}</sitemapindex>'.encode()


def test_crawl_from_robots_sitemap_lines_through_an_index_and_gzip(tmp_path: Path) -> None:
    pages = [f"/p/{i}" for i in range(30)]

    def routes(base: list[str]) -> list[web.RouteDef]:
        async def robots(request: web.Request) -> web.Response:
            return web.Response(text=f"User-agent: *\nDisallow: /p/29\nSitemap: {base[0]}/index.xml\n")

        async def idx(request: web.Request) -> web.Response:
            body = index([f"{base[0]}/one.xml", f"{base[0]}/two.xml.gz", f"{base[0]}/three.txt"])
            return web.Response(body=body, content_type="application/xml")

        async def one(request: web.Request) -> web.Response:
            return web.Response(body=urlset([base[0] + p for p in pages[:10]], True), content_type="text/xml")

        async def two(request: web.Request) -> web.Response:
            return web.Response(
                body=gzip.compress(urlset([base[0] + p for p in pages[10:20]])),
                content_type="application/x-gzip",
            )

        async def three(request: web.Request) -> web.Response:
            return web.Response(text="\n".join(base[0] + p for p in pages[20:]))

        async def leaf(request: web.Request) -> web.Response:
            return page(request.path)

        return [
            web.get("/robots.txt", robots),
            web.get("/index.xml", idx),
            web.get("/one.xml", one),
            web.get("/two.xml.gz", two),
            web.get("/three.txt", three),
            web.get("/p/{n}", leaf),
            web.get("/", leaf),
        ]

    base: list[str] = []
    with serve(routes(base)) as server:
        base.append(server.base)
        out = tmp_path / "items.jsonl"
        stats = crawl(
            SitemapSpider,
            out,
            settings={"frontier": "memory", "parse_workers": 1},
            handle_signals=False,
            start=server.url("/"),
            follow_robots="1",
        )
    items = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [item["url"] for item in items if "start" in item] == [server.url("/")]
    got = sorted(item["url"] for item in items if "start" not in item)
    assert got == sorted(server.base + p for p in pages[:29])  # /p/29 is disallowed
    assert stats.filtered["robots"] == 1
    lastmods = {item["url"]: item["lastmod"] for item in items if "start" not in item}
    assert lastmods[server.base + "/p/0"] == "2024-01-02" and lastmods[server.base + "/p/15"] is None
    assert stats.not_parsed == {}  # the gzip sitemap was asked for: parsed, not skipped as binary
    assert stats.ok
