"""Links are requested as a browser requests them: a real crawl of a real aiohttp server.

The server records the request target of every request, byte for byte, as it came off the wire.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from aiohttp import web

from crawlkit import crawl
from crawlkit.testing import fixture_server
from crawlspiders.spiders import FollowAllSpider

# href on the page -> the request target a browser sends for it (None: a browser goes nowhere).
LINKS = {
    "/r?url=https%3A%2F%2Fb.test%2Fw%3Fq%3D1": "/r?url=https%3A%2F%2Fb.test%2Fw%3Fq%3D1",
    "/search/%20?f%5B0%5D=field%3A99": "/search/%20?f%5B0%5D=field%3A99",
    "/wiki/Bachelor%27s_degree": "/wiki/Bachelor%27s_degree",
    "\\back\\slash.html": "/back/slash.html",
    "/tab\tbed\n.html": "/tabbed.html",
    "q?a b": "/q?a%20b",
    "/caf\u00e9": "/caf%C3%A9",
    "/\u00a0nbsp": "/%C2%A0nbsp",
    "http://[::1": None,
    "http://exa mple.test/": None,
    "//%zz/": None,
}


def test_links_reach_the_server_as_a_browser_sends_them(tmp_path: Path) -> None:
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.raw_path)
        if request.raw_path == "/":
            anchors = "".join(f'<a href="{href}">x</a>' for href in LINKS)
            return web.Response(text=f"<html><body>{anchors}</body></html>", content_type="text/html")
        return web.Response(text="<html><body>leaf</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    out = tmp_path / "items.jsonl"
    settings = {
        "frontier": "memory",
        "job_dir": str(tmp_path / "job"),
        "parse_workers": 1,
        "progress": "off",
        "obey_robots": False,
    }
    with fixture_server(app) as base:
        FollowAllSpider.start_urls = [f"{base}/"]
        try:
            stats = crawl(FollowAllSpider, out, settings=settings, handle_signals=False)
        finally:
            del FollowAllSpider.start_urls
    wanted = {target for target in LINKS.values() if target is not None}
    assert sorted(seen) == sorted({"/"} | wanted)
    invalid = sum(1 for target in LINKS.values() if target is None)
    assert stats.filtered["invalid_url"] == invalid  # skipped, counted, never fetched
    items = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted(item["url"] for item in items) == sorted(f"{base}{target}" for target in {"/"} | wanted)
